// bench/piano_bench.cpp: PIANO's speed in the SPEC's reference configuration.
//
// Reference configuration: d=64, 4 heads, 2 layers, FFN 256, L=50 candidates, H=50
// history events, 4 query terms, 100k item rows, 10k term rows, batch 32, float32,
// Adam lr 1e-3 with lazy (row-sparse) embedding updates. Ids are uniform over each table
// (the worst case for sparse updates: few repeats). bench/torch_piano.py draws the same
// distributions for the PyTorch twin.
//
// Prints one key=value per line:
//   train_lists_per_s        training throughput: forward, losses, backward, Adam step
//   infer_us_per_list        single-request latency of Reranker::rerank(request) (median)
//   infer_batch_lists_per_s  Reranker::rerank on a batch of 256 lists
//   peak_rss_mb              the process's peak resident set
//   gemm_gflops              a 1024^3 float product through Eigen, with the same threads
//
// Options: --threads N (OpenMP threads, default 1), --seconds S (time per measurement,
// default 2), --clock wall|cpu (cpu: the process's CPU time instead of the wall clock; on a
// loaded machine it leaves out the time spent waiting for a core, which only makes sense
// with one thread), --only train|infer|batch|gemm (one measurement, for profilers),
// --iters N (with --only: run exactly N iterations after one warm-up, no timing budget).
#include <piano/model/losses.hpp>
#include <piano/model/piano_model.hpp>
#include <piano/optim/adam.hpp>

#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace data = piano::data;

namespace {

constexpr std::size_t kList = 50, kHistory = 50, kQueryTerms = 4, kBatch = 32, kServeBatch = 256;

data::Row uniform_row(std::mt19937_64& rng, long rows) {
    return static_cast<data::Row>(1 + rng() % static_cast<std::uint64_t>(rows - 1));
}

data::ItemFields random_item(std::mt19937_64& rng, const piano::PianoConfig& c) {
    data::ItemFields f;
    f.item = uniform_row(rng, c.item_rows);
    f.brand = uniform_row(rng, c.brand_rows);
    f.cate1 = uniform_row(rng, c.category_rows);
    f.cate2 = uniform_row(rng, c.category_rows);
    f.cate3 = uniform_row(rng, c.category_rows);
    f.cate4 = uniform_row(rng, c.category_rows);
    f.shop = uniform_row(rng, c.shop_rows);
    return f;
}

// One request: 4 query terms; 50 events (80% with a 4-term query, type and gap uniform);
// 50 candidates, 10% clicked, 30% of clicks converted.
data::Request random_request(std::mt19937_64& rng, const piano::PianoConfig& c) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    data::Request r;
    for (std::size_t t = 0; t < kQueryTerms; ++t) r.query.push_back(uniform_row(rng, c.term_rows));
    for (std::size_t j = 0; j < kHistory; ++j) {
        data::HistoryEvent e;
        e.has_query = u(rng) < 0.8;
        if (e.has_query) {
            for (std::size_t t = 0; t < kQueryTerms; ++t) e.query.push_back(uniform_row(rng, c.term_rows));
        }
        e.fields = random_item(rng, c);
        e.type = static_cast<data::Behavior>(rng() % data::kBehaviorCount);
        e.gap = static_cast<std::int64_t>(rng() % 1000000);
        r.history.push_back(std::move(e));
    }
    for (std::size_t i = 0; i < kList; ++i) {
        data::Candidate cand;
        cand.fields = random_item(rng, c);
        cand.click = u(rng) < 0.1;
        cand.conv = cand.click && u(rng) < 0.3;
        cand.label = cand.conv ? 3.f : static_cast<float>(cand.click);
        r.candidates.push_back(std::move(cand));
    }
    return r;
}

bool use_cpu_clock = false;

// Seconds on the wall clock, or of this process's CPU time with --clock cpu.
double now() {
    timespec t{};
    clock_gettime(use_cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Runs fn in rounds of `per_round` calls until `seconds` have passed (at least 3 rounds)
// and returns the median seconds per call: the median resists other jobs on the machine.
double median_seconds_per_call(const std::function<void()>& fn, int per_round, double seconds) {
    fn();  // warm-up: first-touch allocations, lazily sized buffers
    std::vector<double> rounds;
    const double start = now();
    while (rounds.size() < 3 || now() - start < seconds) {
        const double t0 = now();
        for (int i = 0; i < per_round; ++i) fn();
        rounds.push_back((now() - t0) / per_round);
    }
    std::sort(rounds.begin(), rounds.end());
    return rounds[rounds.size() / 2];
}

double peak_rss_mb() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

double gemm_gflops(int threads, double seconds) {
    const Eigen::Index n = 1024;
    std::mt19937_64 rng(7);
    piano::Matrix<float> a = piano::init::normal<float>(n, n, rng, 1.0), b = piano::init::normal<float>(n, n, rng, 1.0);
    piano::Matrix<float> c(n, n);
    Eigen::setNbThreads(threads);
    const double s = median_seconds_per_call([&] { c.noalias() = a * b; }, 2, seconds);
    Eigen::setNbThreads(1);
    return 2.0 * static_cast<double>(n) * n * n / s / 1e9;
}

int usage(const char* argv0) {
    std::fprintf(stderr, "usage: %s [--threads N] [--seconds S] [--clock wall|cpu] [--only train|infer|batch|gemm] [--iters N]\n", argv0);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    int threads = 1, iters = 0;
    double seconds = 2.0;
    std::string only;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (i + 1 >= argc) return usage(argv[0]);
        if (arg == "--threads") threads = std::atoi(argv[++i]);
        else if (arg == "--seconds") seconds = std::atof(argv[++i]);
        else if (arg == "--only") only = argv[++i];
        else if (arg == "--iters") iters = std::atoi(argv[++i]);
        else if (arg == "--clock") use_cpu_clock = std::string(argv[++i]) == "cpu";
        else return usage(argv[0]);
    }
    if (threads < 1 || seconds <= 0) return usage(argv[0]);
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    if (threads > 1) std::fprintf(stderr, "piano_bench: built without OpenMP, --threads %d runs on one thread\n", threads);
#endif
    // Eigen's own GEMM threading is off: piano parallelises over fixed row blocks itself,
    // so results do not depend on the thread count. Only gemm_gflops turns it on.
    Eigen::setNbThreads(1);

    const piano::PianoConfig config = piano::PianoConfig::reference();
    std::mt19937_64 rng(2024);
    std::vector<data::Request> pool;
    for (std::size_t i = 0; i < 8 * kBatch + kServeBatch; ++i) pool.push_back(random_request(rng, config));
    std::vector<data::Batch> train_batches;
    for (std::size_t b = 0; b < 8; ++b) train_batches.push_back(data::make_batch(pool, b * kBatch, (b + 1) * kBatch));
    const data::Batch serve_batch = data::make_batch(pool, 8 * kBatch, 8 * kBatch + kServeBatch);

    piano::PianoModel<float> model(config);
    piano::AdamOptions adam;
    adam.learning_rate = 1e-3;
    adam.sparse_mode = piano::SparseMode::lazy;
    piano::Adam<float> optimizer(model.named_parameters(), adam);

    std::size_t next_batch = 0;
    auto train_step = [&] {
        const data::Batch& batch = train_batches[next_batch++ % train_batches.size()];
        model.train();
        const piano::ModelOutputs<float> out = model.forward(batch);
        piano::LossBreakdown<float> loss = piano::multi_task_loss(out, batch, config, model.loss_log_variances());
        loss.total.backward();
        optimizer.step();
        optimizer.zero_grad();
    };
    std::size_t next_request = 0;
    volatile std::size_t sink = 0;
    auto infer_one = [&] {
        const data::Request& r = pool[8 * kBatch + next_request++ % kServeBatch];
        sink = sink + model.rerank(r).order.front();
    };
    auto infer_batch = [&] { sink = sink + model.rerank(serve_batch).size(); };

    if (!only.empty() && iters > 0) {  // a fixed amount of work for callgrind / perf
        std::function<void()> fn;
        if (only == "train") fn = train_step;
        else if (only == "infer") fn = infer_one;
        else if (only == "batch") fn = infer_batch;
        else return usage(argv[0]);
        fn();
        for (int i = 0; i < iters; ++i) fn();
        std::printf("iterations=%d\n", iters);
        return 0;
    }

#ifdef PIANO_PARALLEL_PROFILE
    // Built as piano_bench_parallel_profile: on one thread, time every piece of every
    // parallel loop and replay OpenMP's dynamic schedule on N threads (core/parallel.hpp),
    // to predict the N-thread speedup without the noise of other jobs on the machine.
    {
        use_cpu_clock = false;  // the wall clock, as the pieces are timed (run it on a quiet machine)
        auto predict = [&](const char* name, const std::function<void()>& fn, int n) {
            fn();
            auto& prof = piano::detail::parallel_profile();
            prof = piano::detail::ParallelProfile{};
            const double t0 = now();
            for (int i = 0; i < n; ++i) fn();
            const double total = now() - t0;
            std::printf("%s_parallel_fraction=%.3f\n", name, prof.parallel / total);
            std::printf("%s_parallel_loops_per_call=%.1f\n", name, static_cast<double>(prof.regions) / n);
            for (int t = 2; t <= piano::detail::ParallelProfile::kMaxSimThreads; ++t) {
                std::printf("%s_predicted_speedup_%d=%.2f\n", name, t, total / (total - prof.parallel + prof.makespan[t]));
            }
        };
        predict("train", train_step, 20);
        predict("infer_batch", infer_batch, 3);
        return 0;
    }
#endif

    std::printf("threads=%d\n", threads);
    if (only.empty() || only == "train") {
        const double s = median_seconds_per_call(train_step, 5, seconds);
        std::printf("train_lists_per_s=%.1f\n", static_cast<double>(kBatch) / s);
    }
    if (only.empty() || only == "infer") {
        const double s = median_seconds_per_call(infer_one, 50, seconds);
        std::printf("infer_us_per_list=%.1f\n", s * 1e6);
    }
    if (only.empty() || only == "batch") {
        const double s = median_seconds_per_call(infer_batch, 2, seconds);
        std::printf("infer_batch_lists_per_s=%.1f\n", static_cast<double>(kServeBatch) / s);
    }
    std::printf("peak_rss_mb=%.1f\n", peak_rss_mb());
    if (only.empty() || only == "gemm") std::printf("gemm_gflops=%.1f\n", gemm_gflops(threads, seconds));
    return 0;
}
