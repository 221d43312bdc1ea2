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
//   block_gemm_gflops        the products the model is made of: 64-row blocks (kRowBlock)
//                            of [B(L+1), d] through the FFN's [d, ffn] and [ffn, d]
//   train_mflop_per_list, infer_mflop_per_list
//                            the products a list costs (model_flops below), in MFLOP
//   train_gflops, batch_gflops, train_roofline, batch_roofline
//                            the rates those give, and their fractions of gemm_gflops
//   train_allocs_per_step, infer_allocs_per_request, batch_allocs_per_call
//                            heap allocations (malloc and calloc calls) of one call, steady state
//   train_batch_build_allocs the same for building one training batch (data::make_batch,
//                            which train() does every step; the step above reuses built ones)
//
// Options: --threads N (OpenMP threads, default 1), --seconds S (time per measurement,
// default 2), --clock wall|cpu (cpu: the process's CPU time instead of the wall clock; on a
// loaded machine it leaves out the time spent waiting for a core, which only makes sense
// with one thread), --only train|infer|batch|gemm (one measurement, for profilers; a
// comma-separated list runs several),
// --iters N (with --only: run exactly N iterations after one warm-up, no timing budget),
// --list L, --history H, --batch B, --serve-batch B, --train-batches N (the shapes, for the
// cost curves of bench/cost_curves.py; defaults 50, 50, 32, 256, 8).
#include <piano/model/losses.hpp>
#include <piano/model/piano_model.hpp>
#include <piano/optim/adam.hpp>

#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
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

// Every heap allocation of the program is counted, to show what a training step or a
// request allocates once the buffers that persist across calls exist. The count sits in
// malloc and calloc themselves (this definition takes the place of glibc's, which it
// calls under its internal name), because Eigen allocates its matrices with malloc, not
// operator new, and operator new calls malloc too. glibc only (Debian's).
namespace {
std::atomic<long> allocations{0};
}  // namespace

extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* malloc(std::size_t size) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_calloc(count, size);
}
}

namespace {

constexpr std::size_t kQueryTerms = 4;
std::size_t kList = 50, kHistory = 50, kBatch = 32, kServeBatch = 256, kTrainBatches = 8;

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
// A round lasts about seconds / 10 at most: fewer calls per round when one call is slow
// (long lists), so that slow points still get three rounds.
double median_seconds_per_call(const std::function<void()>& fn, int per_round, double seconds) {
    const double warm_start = now();
    fn();  // warm-up: first-touch allocations, lazily sized buffers
    const double warm = std::max(now() - warm_start, 1e-9);
    per_round = std::max(1, std::min(per_round, static_cast<int>(seconds / 10 / warm)));
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

// The products of the FFN, as the model runs them: 64-row blocks (kRowBlock) of an
// [n, d] input through [d, ffn] then [ffn, d], in parallel over the blocks as ops/linear.hpp
// does. A roofline for the model's own shapes, beside the 1024^3 one.
double block_gemm_gflops(const piano::PianoConfig& c, Eigen::Index n, double seconds) {
    std::mt19937_64 rng(7);
    const Eigen::Index d = c.d_model, f = c.ffn_dim;
    const piano::Matrix<float> x = piano::init::normal<float>(n, d, rng, 1.0);
    const piano::Matrix<float> w1 = piano::init::normal<float>(d, f, rng, 0.1), w2 = piano::init::normal<float>(f, d, rng, 0.1);
    piano::Matrix<float> h(n, f), y(n, d);
    const double s = median_seconds_per_call(
        [&] {
            piano::detail::parallel_rows(n, piano::detail::kRowBlock, static_cast<double>(d * f), [&](Eigen::Index r0, Eigen::Index rows) {
                h.middleRows(r0, rows).noalias() = x.middleRows(r0, rows) * w1;
            });
            piano::detail::parallel_rows(n, piano::detail::kRowBlock, static_cast<double>(d * f), [&](Eigen::Index r0, Eigen::Index rows) {
                y.middleRows(r0, rows).noalias() = h.middleRows(r0, rows) * w2;
            });
        },
        20, seconds);
    return 4.0 * static_cast<double>(n) * static_cast<double>(d * f) / s / 1e9;
}

// Multiply-adds of one list's forward pass, from the shapes (piano_model.hpp), counting
// the products PianoModel runs (the q and r parts of the token MLP's first layer and the
// h_0 part of the item heads are formed once per request, not once per candidate):
//   query encoder   (1 + H) rows x [d, d]       (the request's query and H history queries)
//   QDIR            W_q, W_o: [d, d]; W_k (1 + H) x [d, d]; W_v (1 + H) x [2d, d];
//                   scores and context: 2 (1 + H) d
//   token MLP       L x ([3d, 2d] + [2d, d]) + [2d, 2d]
//   IAN             [2d, d]; per encoder layer, T = L + 1 tokens:
//                   4 T d^2 (Q, K, V, O) + 2 T^2 d (scores, context) + 2 T d ffn
//   heads           2 (L ([d, d] + [d, 1]) + [d, d]) + 2 ([d, d] + [d, 1])
// Elementwise work, layer norms, softmaxes and lookups are left out: they are O(L d), a
// few percent of the products at the reference shapes.
double forward_macs(const piano::PianoConfig& c, double L, double H) {
    const double d = static_cast<double>(c.d_model), f = static_cast<double>(c.ffn_dim), T = L + 1;
    const double query = (1 + H) * d * d;
    const double qdir = 2 * d * d + (1 + H) * d * d + (1 + H) * 2 * d * d + 2 * (1 + H) * d;
    const double tokens = L * (6 * d * d + 2 * d * d) + 4 * d * d;
    const double encoder = static_cast<double>(c.layers) * (4 * T * d * d + 2 * T * T * d + 2 * T * d * f);
    const double heads = 2 * (L * (d * d + d) + d * d) + 2 * (d * d + d) + 2 * d * d;
    return query + qdir + tokens + encoder + heads;
}

// Heap allocations of one call of fn, after a warm-up call (the average over 5 calls).
double allocations_per_call(const std::function<void()>& fn) {
    fn();
    const long before = allocations.load();
    for (int i = 0; i < 5; ++i) fn();
    return static_cast<double>(allocations.load() - before) / 5.0;
}

int usage(const char* argv0) {
    std::fprintf(stderr,
                 "usage: %s [--threads N] [--seconds S] [--clock wall|cpu] [--only train|infer|batch|gemm] [--iters N]\n"
                 "          [--list L] [--history H] [--batch B] [--serve-batch B] [--train-batches N]\n",
                 argv0);
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
        else if (arg == "--list") kList = std::strtoul(argv[++i], nullptr, 10);
        else if (arg == "--history") kHistory = std::strtoul(argv[++i], nullptr, 10);
        else if (arg == "--batch") kBatch = std::strtoul(argv[++i], nullptr, 10);
        else if (arg == "--serve-batch") kServeBatch = std::strtoul(argv[++i], nullptr, 10);
        else if (arg == "--train-batches") kTrainBatches = std::strtoul(argv[++i], nullptr, 10);
        else return usage(argv[0]);
    }
    if (threads < 1 || seconds <= 0 || kList < 1 || kBatch < 1 || kServeBatch < 1 || kTrainBatches < 1) return usage(argv[0]);
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    if (threads > 1) std::fprintf(stderr, "piano_bench: built without OpenMP, --threads %d runs on one thread\n", threads);
#endif
    // Eigen's own GEMM threading is off: piano parallelises over fixed row blocks itself,
    // so results do not depend on the thread count. Only gemm_gflops turns it on.
    Eigen::setNbThreads(1);

    // The twin (bench/torch_piano.py) is the paper's model, which has no query-match layer.
    piano::PianoConfig config = piano::PianoConfig::reference();
    config.query_match = false;
    std::mt19937_64 rng(2024);
    std::vector<data::Request> pool;
    const std::size_t serve_begin = kTrainBatches * kBatch;
    for (std::size_t i = 0; i < serve_begin + kServeBatch; ++i) pool.push_back(random_request(rng, config));
    std::vector<data::Batch> train_batches;
    for (std::size_t b = 0; b < kTrainBatches; ++b) train_batches.push_back(data::make_batch(pool, b * kBatch, (b + 1) * kBatch));
    const data::Batch serve_batch = data::make_batch(pool, serve_begin, serve_begin + kServeBatch);

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
        const data::Request& r = pool[serve_begin + next_request++ % kServeBatch];
        sink = sink + model.rerank(r).order.front();
    };
    auto infer_batch = [&] { sink = sink + model.rerank(serve_batch).size(); };

    if (!only.empty() && iters > 0) {  // a fixed amount of work for callgrind / perf
        std::function<void()> fn;
        if (only == "train") fn = train_step;
        else if (only == "infer") fn = infer_one;
        else if (only == "batch") fn = infer_batch;
        else return usage(argv[0]);
        piano::with_thread_team([&] {
            fn();
            for (int i = 0; i < iters; ++i) fn();
        });
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
            // Where the serial time sits, on stderr (stdout stays key=value lines): the
            // largest tallies, by the loop whose start ends them.
            std::vector<std::pair<double, std::string>> serial;
            for (const auto& [body, seconds] : prof.serial_before) serial.emplace_back(seconds, body);
            std::sort(serial.rbegin(), serial.rend());
            std::fprintf(stderr, "%s: serial ms per call before the loops of (largest first):\n", name);
            for (std::size_t k = 0; k < std::min<std::size_t>(serial.size(), 12); ++k) {
                std::fprintf(stderr, "  %7.3f  %.200s\n", 1e3 * serial[k].first / n, serial[k].second.c_str());
            }
        };
        predict("train", train_step, 20);
        predict("infer_batch", infer_batch, 3);
        return 0;
    }
#endif

    // FLOPs per list: 2 per multiply-add; training counts the forward and a backward of
    // twice its products (each product's two input gradients), the usual 3x.
    const double infer_flop = 2 * forward_macs(config, static_cast<double>(kList), static_cast<double>(kHistory));
    const double train_flop = 3 * infer_flop;
    std::printf("threads=%d\nlist=%zu\nhistory=%zu\n", threads, kList, kHistory);
    std::printf("train_mflop_per_list=%.2f\ninfer_mflop_per_list=%.2f\n", train_flop / 1e6, infer_flop / 1e6);
    double train_rate = 0, batch_rate = 0;
    // --only: one measurement or a comma-separated list of them.
    auto wanted = [&](const std::string& name) {
        return only.empty() || ("," + only + ",").find("," + name + ",") != std::string::npos;
    };
    if (wanted("train")) {
        // As train() runs its epochs: one team of threads for all the steps.
        double s = 0;
        piano::with_thread_team([&] { s = median_seconds_per_call(train_step, 5, seconds); });
        train_rate = static_cast<double>(kBatch) / s;
        std::printf("train_lists_per_s=%.1f\n", train_rate);
        std::printf("train_allocs_per_step=%.0f\n", allocations_per_call(train_step));
        std::printf("train_batch_build_allocs=%.0f\n",
                    allocations_per_call([&] { (void)data::make_batch(pool, 0, kBatch); }));
    }
    if (wanted("infer")) {
        const double s = median_seconds_per_call(infer_one, 50, seconds);
        std::printf("infer_us_per_list=%.1f\n", s * 1e6);
        std::printf("infer_allocs_per_request=%.0f\n", allocations_per_call(infer_one));
    }
    if (wanted("batch")) {
        const double s = median_seconds_per_call(infer_batch, 2, seconds);
        batch_rate = static_cast<double>(kServeBatch) / s;
        std::printf("infer_batch_lists_per_s=%.1f\n", batch_rate);
        std::printf("batch_allocs_per_call=%.0f\n", allocations_per_call(infer_batch));
    }
    std::printf("peak_rss_mb=%.1f\n", peak_rss_mb());
    if (wanted("gemm")) {
        const double gemm = gemm_gflops(threads, seconds);
        const double block = block_gemm_gflops(config, static_cast<Eigen::Index>(kBatch * (kList + 1)), seconds);
        std::printf("gemm_gflops=%.1f\nblock_gemm_gflops=%.1f\n", gemm, block);
        if (train_rate > 0) {
            std::printf("train_gflops=%.1f\ntrain_roofline=%.3f\n", train_rate * train_flop / 1e9, train_rate * train_flop / 1e9 / gemm);
        }
        if (batch_rate > 0) {
            std::printf("batch_gflops=%.1f\nbatch_roofline=%.3f\n", batch_rate * infer_flop / 1e9, batch_rate * infer_flop / 1e9 / gemm);
        }
    }
    return 0;
}
