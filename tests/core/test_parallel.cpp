// with_thread_team (piano/core/parallel.hpp): one OpenMP region kept up for a scope, in
// which every parallel_for hands its pieces to the team. Checked: the pieces really run at
// once on two threads, also after the waiting thread fell asleep; the results are the bits
// of a serial run; loops inside a piece and nested teams run on their own thread; an
// exception from the scope reaches the caller and the next team works; every piece runs
// once, the master's pieces a prefix of the loop and the other threads' the rest.
#include <catch2/catch.hpp>

#include <piano/core/parallel.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <thread>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace parallel_test {

using piano::Index;
namespace detail = piano::detail;

// Work above kParallelMinWork, so that parallel_for spreads the pieces.
constexpr double kBigWork = 2 * detail::kParallelMinWork;

// Two pieces that each wait (up to `limit`) until both have started: true only if two
// threads ran them at the same time.
bool pieces_overlap(std::chrono::seconds limit = std::chrono::seconds(20)) {
    std::atomic<int> started{0};
    std::atomic<bool> overlapped[2] = {false, false};
    detail::parallel_for(2, kBigWork, [&](Index k) {
        started.fetch_add(1);
        const auto give_up = std::chrono::steady_clock::now() + limit;
        while (started.load() < 2 && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
        overlapped[k] = started.load() == 2;
    });
    return overlapped[0] && overlapped[1];
}

// out[k] = a float sum whose rounding depends on the order of its terms.
std::vector<float> pieces_of_sums(Index count) {
    std::vector<float> out(static_cast<std::size_t>(count));
    detail::parallel_for(count, kBigWork, [&](Index k) {
        float s = 0;
        for (int i = 1; i <= 1000; ++i) s += std::sin(static_cast<float>(k * 1000 + i)) / static_cast<float>(i);
        out[static_cast<std::size_t>(k)] = s;
    });
    return out;
}

// Sets the OpenMP thread count for one scope.
struct ThreadCount {
#ifdef _OPENMP
    explicit ThreadCount(int n) : before(omp_get_max_threads()) { omp_set_num_threads(n); }
    ~ThreadCount() { omp_set_num_threads(before); }
    int before;
#else
    explicit ThreadCount(int) {}
#endif
};

}  // namespace parallel_test

TEST_CASE("with_thread_team runs every loop of its scope on one team, with the bits of a serial run", "[core][threads]") {
    namespace pt = parallel_test;
    namespace detail = piano::detail;
    std::vector<float> serial;
    {
        pt::ThreadCount one(1);
        serial = pt::pieces_of_sums(40);
    }
#ifdef _OPENMP
    pt::ThreadCount two(2);
    REQUIRE(detail::max_threads() == 2);
    int threads_in_scope = 0, threads_in_piece = 0, threads_in_nested = 0;
    bool overlap_first = false, overlap_after_sleep = false;
    std::vector<std::vector<float>> sums;
    piano::with_thread_team([&] {
        threads_in_scope = detail::max_threads();
        overlap_first = pt::pieces_overlap();
        for (int loop = 0; loop < 20; ++loop) sums.push_back(pt::pieces_of_sums(40));
        // Longer than the spin budget: the waiting thread sleeps, and the next loop wakes it.
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        overlap_after_sleep = pt::pieces_overlap();
        detail::parallel_for(2, pt::kBigWork, [&](piano::Index k) {
            if (k == 0) threads_in_piece = detail::max_threads();
        });
        piano::with_thread_team([&] { threads_in_nested = detail::max_threads(); });
    });
    CHECK(threads_in_scope == 2);
    CHECK(overlap_first);
    CHECK(overlap_after_sleep);
    CHECK(threads_in_piece == 1);   // a loop inside a piece runs on the piece's thread
    CHECK(threads_in_nested == 2);  // a nested team is the outer one
    for (const auto& s : sums) CHECK(s == serial);
    CHECK(detail::max_threads() == 2);  // the team is gone
#else
    std::vector<float> in_team;
    piano::with_thread_team([&] { in_team = pt::pieces_of_sums(40); });
    CHECK(in_team == serial);
    WARN("built without OpenMP: with_thread_team ran its scope on one thread");
#endif
}

TEST_CASE("a team runs each piece once: the master a prefix of the pieces, the other threads the rest", "[core][threads]") {
    namespace pt = parallel_test;
    namespace detail = piano::detail;
#ifdef _OPENMP
    pt::ThreadCount three(3);
    piano::with_thread_team([&] {
        for (const piano::Index count : {piano::Index{0}, piano::Index{1}, piano::Index{2}, piano::Index{3}, piano::Index{17}, piano::Index{1000}}) {
            std::vector<std::atomic<int>> runs(static_cast<std::size_t>(count));
            std::vector<char> on_master(static_cast<std::size_t>(count), 0);
            const std::thread::id master = std::this_thread::get_id();
            detail::parallel_for(count, pt::kBigWork, [&](piano::Index k) {
                runs[static_cast<std::size_t>(k)].fetch_add(1);
                on_master[static_cast<std::size_t>(k)] = std::this_thread::get_id() == master;
                // Slow enough that the other threads take part in the longer loops.
                volatile float sink = 0;
                for (int i = 0; i < 2000; ++i) sink = sink + std::sin(static_cast<float>(i));
            });
            INFO("pieces: " << count);
            for (const auto& r : runs) CHECK(r.load() == 1);
            // The master's pieces come first, in one run from piece 0.
            const auto first_other = std::find(on_master.begin(), on_master.end(), 0);
            CHECK(std::find(first_other, on_master.end(), 1) == on_master.end());
        }
    });
#else
    WARN("built without OpenMP: no team to check");
#endif
}

TEST_CASE("with_thread_team passes an exception from its scope on, and the next team works", "[core][threads]") {
    namespace pt = parallel_test;
    pt::ThreadCount two(2);
    int loops = 0;
    CHECK_THROWS_WITH(piano::with_thread_team([&] {
                          (void)pt::pieces_of_sums(8);
                          ++loops;
                          throw std::runtime_error("stop here");
                      }),
                      "stop here");
    CHECK(loops == 1);
    std::vector<float> after;
    piano::with_thread_team([&] { after = pt::pieces_of_sums(8); });
    pt::ThreadCount one(1);
    CHECK(after == pt::pieces_of_sums(8));
}
