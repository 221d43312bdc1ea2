// piano/core/parallel.hpp: OpenMP over fixed pieces of work, so that no result depends on
// the number of threads.
//
// The rule: a loop is cut into pieces whose boundaries depend only on the
// problem (fixed row blocks, one list of a batch, ...), never on the thread count; each
// piece writes its own slice of the output, and every sum inside a piece runs in the same
// order whichever thread runs it. Threads then only decide *who* computes a piece, so 1
// and 8 threads give bit-identical results.
//
// Eigen parallelises large products by itself, splitting them by the thread count (and
// changing its blocking with it), which would break the rule; piano switches that off
// (keep_eigen_serial below).
//
// Without OpenMP (no -fopenmp) everything runs on the calling thread, in the same pieces.
#pragma once

#include <algorithm>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef PIANO_PARALLEL_PROFILE
#include <time.h>
#endif

#include <Eigen/Core>

namespace piano {
using Index = Eigen::Index;  // as in piano/core/tensor.hpp, which includes this header
}

namespace piano::detail {

/// Work below this (scalar multiply-adds, roughly) runs on the calling thread: opening a
/// parallel region costs about a microsecond, far more on a loaded machine.
inline constexpr double kParallelMinWork = 32768;

/// Rows per piece for products and row-wise kernels. Fixed, so that a row's result never
/// depends on how many threads there are.
inline constexpr Index kRowBlock = 64;

/// The number of threads a parallel region here would use (1 without OpenMP).
inline int max_threads() {
#ifdef _OPENMP
    return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}

/// Eigen's own product threading splits a product by the thread count; piano turns it off
/// (Eigen::setNbThreads(1)) the first time one of its kernels runs, and parallelises over
/// its own fixed pieces instead. A program that calls Eigen::setNbThreads(n > 1) afterwards
/// gives up piano's guarantee that results do not depend on the thread count.
inline void keep_eigen_serial() {
    static const bool done = [] {
        Eigen::setNbThreads(1);
        return true;
    }();
    (void)done;
}

#ifdef PIANO_PARALLEL_PROFILE
/// Instrumentation for benchmarks (compile with -DPIANO_PARALLEL_PROFILE; off otherwise):
/// on one thread, every loop that parallel_for would spread over threads is run piece by
/// piece with each piece timed, and the schedule OpenMP's dynamic
/// schedule would produce on 2..kMaxSimThreads threads is replayed. From the totals a
/// benchmark predicts its time on N threads as (total - parallel) + makespan[N], free of
/// whatever else the machine runs. Not thread-safe: profile with one thread.
struct ParallelProfile {
    static constexpr int kMaxSimThreads = 4;
    double parallel = 0;                    // seconds in pieces of parallel loops, one thread
    double makespan[kMaxSimThreads + 1] = {};  // seconds those loops take on N threads (N >= 2)
    long regions = 0;                       // parallel loops run
};
inline ParallelProfile& parallel_profile() {
    static ParallelProfile p;
    return p;
}
// The monotonic clock: read in user space (vDSO), so timing thousands of pieces per step
// costs little; per-thread CPU clocks are system calls that would distort the profile.
inline double thread_seconds() {
    timespec t{};
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}
inline bool& in_profiled_piece() {
    thread_local bool inside = false;
    return inside;
}
/// Runs one piece; never inlined, so a sampling profiler can tell parallel pieces apart.
template <typename F>
__attribute__((noinline)) void run_profiled_piece(F& body, Index k) {
    body(k);
}
#endif

/// body(k) for every k in [0, count), spread over the threads when there is more than one
/// piece and `work` (the total, in multiply-adds) is large enough. Pieces must write
/// disjoint memory and must not throw.
template <typename F>
void parallel_for(Index count, double work, F&& body) {
    keep_eigen_serial();
#ifdef PIANO_PARALLEL_PROFILE
    if (work >= kParallelMinWork && count > 1 && !in_profiled_piece()) {
        ParallelProfile& prof = parallel_profile();
        double busy[ParallelProfile::kMaxSimThreads + 1][ParallelProfile::kMaxSimThreads] = {};
        in_profiled_piece() = true;
        for (Index k = 0; k < count; ++k) {
            const double t0 = thread_seconds();
            run_profiled_piece(body, k);
            const double dt = thread_seconds() - t0;
            prof.parallel += dt;
            // Dynamic schedule: the next piece goes to the thread that is free first.
            for (int n = 2; n <= ParallelProfile::kMaxSimThreads; ++n) {
                double* free_at = busy[n];
                int first = 0;
                for (int t = 1; t < n; ++t) first = free_at[t] < free_at[first] ? t : first;
                free_at[first] += dt;
            }
        }
        in_profiled_piece() = false;
        for (int n = 2; n <= ParallelProfile::kMaxSimThreads; ++n) {
            double span = 0;
            for (int t = 0; t < n; ++t) span = std::max(span, busy[n][t]);
            prof.makespan[n] += span;
        }
        ++prof.regions;
        return;
    }
#endif
#ifdef _OPENMP
    if (work >= kParallelMinWork && count > 1 && max_threads() > 1) {
#pragma omp parallel for schedule(dynamic, 1)
        for (Index k = 0; k < count; ++k) body(k);
        return;
    }
#else
    (void)work;
#endif
    for (Index k = 0; k < count; ++k) body(k);
}

/// body(begin, count) for the blocks of `block` rows that cover [0, rows) (the last one
/// shorter), in parallel as parallel_for. work_per_row: multiply-adds per row.
template <typename F>
void parallel_rows(Index rows, Index block, double work_per_row, F&& body) {
    const Index blocks = (rows + block - 1) / block;
    parallel_for(blocks, work_per_row * static_cast<double>(rows), [&](Index k) {
        const Index begin = k * block;
        body(begin, std::min(block, rows - begin));
    });
}

/// Scatter-adds (dst.row(dest[i]) += ..., in the order of i) in parallel without races:
/// the destination rows [0, rows) are cut into kScatterRanges fixed ranges, and the piece
/// for a range walks every i in order, doing body(i) only for those whose dest[i] falls in
/// its range. Every destination row still receives its contributions in the order of i,
/// so the result does not depend on the thread count (nor on whether it runs in
/// parallel at all). work_per_item: multiply-adds of one body(i).
inline constexpr Index kScatterRanges = 16;
template <typename F>
void parallel_scatter(Index rows, const Index* dest, Index count, double work_per_item, F&& body) {
#ifdef PIANO_PARALLEL_PROFILE
    const bool one_thread = false;  // profile the ranges as they would run on several threads
#else
    const bool one_thread = max_threads() == 1;
#endif
    if (work_per_item * static_cast<double>(count) < kParallelMinWork || one_thread) {
        for (Index i = 0; i < count; ++i) body(i);
        return;
    }
    const Index span = (rows + kScatterRanges - 1) / kScatterRanges;
    parallel_for(kScatterRanges, work_per_item * static_cast<double>(count), [&](Index r) {
        const Index lo = r * span, hi = lo + span;
        for (Index i = 0; i < count; ++i) {
            if (dest[i] >= lo && dest[i] < hi) body(i);
        }
    });
}

/// Asks the CPU to start loading `count` entries from `p` into the cache (a hint, no
/// effect on results). Row lookups in large embedding tables are cache misses; issuing them
/// a few rows ahead overlaps their latencies.
template <typename T>
inline void prefetch(const T* p, Index count) {
#if defined(__GNUC__) || defined(__clang__)
    constexpr Index kLine = 64 / static_cast<Index>(sizeof(T));
    for (Index c = 0; c < count; c += kLine) __builtin_prefetch(p + c);
#else
    (void)p;
    (void)count;
#endif
}

}  // namespace piano::detail
