// piano/core/parallel.hpp: OpenMP over fixed pieces of work, so that no result depends on
// the number of threads.
//
// The rule: a loop is cut into pieces whose boundaries depend only on the
// problem (fixed row blocks, one list of a batch, ...), never on the thread count; each
// piece writes its own slice of the output, and every sum inside a piece runs in the same
// order whichever thread runs it. Threads then only decide *who* computes a piece, so 1
// and 8 threads give bit-identical results.
//
// A training step runs some 200 such loops. Opening an OpenMP region for each wakes the
// waiting threads each time; train() instead keeps one team of threads up for a whole
// epoch (with_thread_team), and the loops inside hand their pieces to it.
//
// Eigen parallelises large products by itself, splitting them by the thread count (and
// changing its blocking with it), which would break the rule; piano switches that off
// (keep_eigen_serial below).
//
// Without OpenMP (no -fopenmp) everything runs on the calling thread, in the same pieces.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef PIANO_BLAS_OPENBLAS
extern "C" void openblas_set_num_threads(int num_threads);  // OpenBLAS's cblas.h, without its other names
#endif
#ifdef PIANO_PARALLEL_PROFILE
#include <time.h>

#include <cxxabi.h>
#include <map>
#include <string>
#include <typeinfo>
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

#ifdef _OPENMP
class ThreadTeam;
/// The team whose master this thread is, while it runs with_thread_team's scope and is not
/// inside one of the team's pieces; null otherwise.
inline ThreadTeam*& active_team() {
    thread_local ThreadTeam* team = nullptr;
    return team;
}
inline int team_size(const ThreadTeam& team);
#endif

/// The number of threads a parallel loop here would use (1 without OpenMP).
inline int max_threads() {
#ifdef _OPENMP
    if (const ThreadTeam* team = active_team()) return team_size(*team);
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
#ifdef PIANO_BLAS_OPENBLAS
        // Built through piano::blas with OpenBLAS (EIGEN_USE_BLAS): its products run on the
        // calling thread too. OpenBLAS's own threads would compete with the pieces' threads
        // (and its pthreads build warns when called from an OpenMP loop). BLIS runs on the
        // calling thread unless told otherwise.
        openblas_set_num_threads(1);
#endif
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
///
/// It also tallies the serial time before each loop (from the end of the loop before) by
/// the loop's body type, whose name says which op opened the loop: where the time that no
/// thread count shortens is spent.
struct ParallelProfile {
    static constexpr int kMaxSimThreads = 4;
    double parallel = 0;                    // seconds in pieces of parallel loops, one thread
    double makespan[kMaxSimThreads + 1] = {};  // seconds those loops take on N threads (N >= 2)
    long regions = 0;                       // parallel loops run
    double last_loop_end = 0;               // when the last loop ended (0: none yet)
    std::map<std::string, double> serial_before;  // body type name -> seconds before its loops
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

#ifdef _OPENMP
/// How long a thread of a ThreadTeam waits for the next loop by spinning before it sleeps.
/// OMP_WAIT_POLICY is honoured as OpenMP defines it: "passive" never spins, "active" always
/// does; otherwise a waiting thread spins for kTeamSpin, enough to bridge the serial code
/// between the loops of a training step on an idle machine, short enough that on a busy one
/// a spinning thread soon gives its core back.
inline constexpr std::chrono::microseconds kTeamSpin{200};
inline std::chrono::microseconds team_spin_budget() {
    const char* policy = std::getenv("OMP_WAIT_POLICY");
    if (policy && (std::strcmp(policy, "passive") == 0 || std::strcmp(policy, "PASSIVE") == 0))
        return std::chrono::microseconds{0};
    if (policy && (std::strcmp(policy, "active") == 0 || std::strcmp(policy, "ACTIVE") == 0))
        return std::chrono::hours(24);  // "always": longer than any wait here
    return kTeamSpin;
}

/// One turn of a spin-wait: tells the CPU this is a wait loop (x86 `pause`).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
}

/// The threads of one OpenMP parallel region, kept for a whole scope (with_thread_team):
/// the master runs the scope's code, and each parallel_for it reaches hands its pieces to
/// the team instead of opening a region of its own. A training step runs some 200 loops;
/// opening a region for each wakes the sleeping threads each time (tens of microseconds on
/// a virtual machine), which held two threads to 1.2x one under OMP_WAIT_POLICY=passive.
///
/// Per loop (a "job"): the master writes the job, then bumps `generation_`; every worker
/// that sees the new generation takes pieces until none are left, then checks in. The
/// master takes pieces from the front (0, 1, ...) and the workers from the back, so in a
/// run of row-wise loops over the same rows each thread tends to get the rows it wrote in
/// the loop before, still in its core's cache (measured: two threads trained 1.73-1.87x
/// one, against 1.59-1.74x when every thread took the next free piece), while a thread
/// that falls behind is still covered by the others. The master returns once every worker
/// has checked in, so a job is never rewritten while a worker reads it. Which thread runs
/// a piece does not matter: pieces write disjoint memory, so the results are the same bits
/// for any team size.
class ThreadTeam {
public:
    explicit ThreadTeam(std::chrono::microseconds spin) : spin_(spin) {}

    int size() const { return workers_ + 1; }
    /// On the master, before the first job.
    void set_workers(int workers) { workers_ = workers; }

    /// On the master: body(k) for k in [0, count) over the team.
    template <typename F>
    void run(Index count, F& body) {
        invoke_ = [](void* b, Index k) { (*static_cast<F*>(b))(k); };
        body_ = &body;
        count_ = count;
        claimed_.store(0, std::memory_order_relaxed);
        front_.store(0, std::memory_order_relaxed);
        back_.store(0, std::memory_order_relaxed);
        checked_in_.store(0, std::memory_order_relaxed);
        publish();
        active_team() = nullptr;  // a loop inside a piece runs on the piece's thread
        // A piece must not throw; if one does on the master anyway, no piece is started
        // after it, and the exception leaves only once the workers are done with `body`.
        std::exception_ptr error;
        try {
            take_pieces(false);
        } catch (...) {
            error = std::current_exception();
            claimed_.store(count, std::memory_order_relaxed);
        }
        active_team() = this;
        wait_until([this] { return checked_in_.load(std::memory_order_acquire) == workers_; }, false);
        if (error) std::rethrow_exception(error);
    }

    /// On the master, when the scope is over: every worker leaves serve().
    void dismiss() {
        dismissed_ = true;
        publish();
    }

    /// On every thread but the master: runs jobs until dismissed.
    void serve() {
        unsigned seen = 0;
        for (;;) {
            wait_until([&] { return generation_.load() != seen; }, true);
            seen = generation_.load(std::memory_order_acquire);
            if (dismissed_) return;
            take_pieces(true);
            checked_in_.fetch_add(1, std::memory_order_release);
        }
    }

private:
    // A thread first claims one piece of the job (claimed_ counts claims, so at most
    // count_ succeed), then takes the next index from its end: front pieces 0..F-1 and back
    // pieces count_-B..count_-1 never meet, since F + B <= count_.
    void take_pieces(bool from_back) {
        while (claimed_.fetch_add(1, std::memory_order_relaxed) < count_) {
            const Index k = from_back ? count_ - 1 - back_.fetch_add(1, std::memory_order_relaxed)
                                      : front_.fetch_add(1, std::memory_order_relaxed);
            invoke_(body_, k);
        }
    }

    // generation_ and sleepers_ are sequentially consistent: a worker going to sleep either
    // sees the new generation or is seen, and woken, by the master.
    void publish() {
        generation_.fetch_add(1);
        if (sleepers_.load() > 0) {
            std::lock_guard<std::mutex> lock(mutex_);
            wake_.notify_all();
        }
    }

    /// Spins on ready() for the budget, then sleeps until woken (a worker waiting for a
    /// job) or yields its core between checks (the master waiting for check-ins, which
    /// come as soon as the workers finish their last piece).
    template <typename Ready>
    void wait_until(Ready&& ready, bool sleep) {
        using Clock = std::chrono::steady_clock;
        const auto start = Clock::now();
        for (long tries = 0; !ready(); ++tries) {
            if (tries % 64 != 63 || Clock::now() - start < spin_) {
                cpu_relax();
            } else if (sleep) {
                std::unique_lock<std::mutex> lock(mutex_);
                sleepers_.fetch_add(1);
                wake_.wait(lock, ready);
                sleepers_.fetch_sub(1);
                return;
            } else {
                std::this_thread::yield();
            }
        }
    }

    const std::chrono::microseconds spin_;
    int workers_ = 0;
    // The current job: written by the master before publish(), read by workers after.
    void (*invoke_)(void*, Index) = nullptr;
    void* body_ = nullptr;
    Index count_ = 0;
    bool dismissed_ = false;
    // Each counter on its own cache line: workers spin on generation_ while pieces are taken.
    alignas(64) std::atomic<Index> claimed_{0};
    alignas(64) std::atomic<Index> front_{0};
    alignas(64) std::atomic<Index> back_{0};
    alignas(64) std::atomic<int> checked_in_{0};
    alignas(64) std::atomic<unsigned> generation_{0};
    alignas(64) std::atomic<int> sleepers_{0};
    std::mutex mutex_;
    std::condition_variable wake_;
};

inline int team_size(const ThreadTeam& team) { return team.size(); }
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
        const double start = thread_seconds();
        if (prof.last_loop_end > 0) {
            int status = 0;
            char* name = abi::__cxa_demangle(typeid(F).name(), nullptr, nullptr, &status);
            prof.serial_before[status == 0 ? name : typeid(F).name()] += start - prof.last_loop_end;
            std::free(name);
        }
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
        prof.last_loop_end = thread_seconds();
        return;
    }
#endif
#ifdef _OPENMP
    if (ThreadTeam* team = active_team(); team && work >= kParallelMinWork && count > 1) {
        team->run(count, body);
        return;
    }
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

namespace piano {

/// Runs scope() with the threads OpenMP would give a parallel region, kept up for all of
/// it: every parallel loop of piano's kernels that scope() reaches on this thread spreads
/// its pieces over them, one region for the whole scope instead of one per loop. train()
/// runs each epoch this way; wrap the steps of a hand-written training loop in it to get
/// the same. Results are the same bits as without it. An exception from scope() reaches
/// the caller after the threads have stopped. Nested, inside another parallel region, on
/// one thread or without OpenMP, it just calls scope().
template <typename F>
void with_thread_team(F&& scope) {
#ifdef _OPENMP
    const int threads = detail::max_threads();
    if (threads <= 1 || detail::active_team() != nullptr) {
        scope();
        return;
    }
    detail::ThreadTeam team(detail::team_spin_budget());
    std::exception_ptr error;
#pragma omp parallel num_threads(threads)
    {
        // Workers read nothing of the team but its jobs, published after the count is set.
        if (omp_get_thread_num() == 0) {
            team.set_workers(omp_get_num_threads() - 1);
            detail::active_team() = &team;
            try {
                scope();
            } catch (...) {
                error = std::current_exception();
            }
            detail::active_team() = nullptr;
            team.dismiss();
        } else {
            team.serve();
        }
    }
    if (error) std::rethrow_exception(error);
#else
    scope();
#endif
}

}  // namespace piano
