// bench/soak.cpp: a long training run that must neither leak nor go non-finite.
//
// Trains PIANO on a simulated music-search log (piano/data/simulator.hpp) for many
// thousands of optimizer steps with anomaly detection on (every op checks its output and
// every backward its gradients: a NaN or Inf stops the run with the op's name). Every
// --sample-every steps it reads the resident set (VmRSS in /proc/self/status). The run
// passes when no value went non-finite and memory stayed flat: the largest sample of the
// last quarter is at most the largest of the first quarter plus --slack-mb (the first
// quarter absorbs the allocator's warm-up and the optimizer's lazily created rows).
//
//   piano_soak [--steps N] [--config tiny|reference] [--batch B] [--sample-every K]
//              [--requests R] [--slack-mb S] [--threads T]
//
// Prints key=value lines (steps, seconds, rss_start_mb, rss_end_mb, rss_max_mb, the
// quarter maxima, loss_first, final_loss, result) and exits 0 on pass, 1 on failure.
// Not a CI test: at the default 10000 steps it runs for minutes.
#include <piano/core/tensor.hpp>
#include <piano/data/batch.hpp>
#include <piano/data/jdsearch.hpp>
#include <piano/data/simulator.hpp>
#include <piano/model/factory.hpp>
#include <piano/model/losses.hpp>
#include <piano/optim/adam.hpp>
#include <piano/optim/clip.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace data = piano::data;

namespace {

struct SoakOptions {
    long steps = 10000;
    std::string config = "tiny";
    std::size_t batch = 16;
    long sample_every = 100;
    int requests = 2000;
    double slack_mb = 8.0;
    int threads = 1;
};

[[noreturn]] void usage(const std::string& problem) {
    std::fprintf(stderr,
                 "piano_soak: %s\nusage: piano_soak [--steps N] [--config tiny|reference] [--batch B] "
                 "[--sample-every K] [--requests R] [--slack-mb S] [--threads T]\n",
                 problem.c_str());
    std::exit(2);
}

SoakOptions parse(int argc, char** argv) {
    SoakOptions o;
    for (int i = 1; i < argc; i += 2) {
        const std::string key = argv[i];
        if (i + 1 >= argc) usage(key + " needs a value");
        const std::string value = argv[i + 1];
        try {
            if (key == "--steps") o.steps = std::stol(value);
            else if (key == "--config") o.config = value;
            else if (key == "--batch") o.batch = static_cast<std::size_t>(std::stoul(value));
            else if (key == "--sample-every") o.sample_every = std::stol(value);
            else if (key == "--requests") o.requests = std::stoi(value);
            else if (key == "--slack-mb") o.slack_mb = std::stod(value);
            else if (key == "--threads") o.threads = std::stoi(value);
            else usage("unknown option " + key);
        } catch (const std::logic_error&) {  // stol & co: not a number, or out of range
            usage(key + ": '" + value + "' is not a number");
        }
    }
    if (o.steps < 8 || o.sample_every < 1 || o.batch < 1 || o.requests < 10 || o.threads < 1)
        usage("--steps >= 8, --sample-every, --batch and --threads >= 1, --requests >= 10");
    if (o.config != "tiny" && o.config != "reference") usage("--config is tiny or reference");
    return o;
}

/// The resident set in MB, from the VmRSS line of /proc/self/status (0 if absent).
double rss_mb() {
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("VmRSS:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;  // "VmRSS:  1234 kB"
    }
    return 0.0;
}

/// A simulated log shaped like the preset's inputs (tiny: L <= 10, H <= 8; reference:
/// L up to 50, H up to 50), written as JDsearch files and loaded back, as a user would.
data::JdsearchDataset simulated(const SoakOptions& o) {
    data::SimulatorOptions s;
    s.requests = o.requests;
    s.valid_fraction = 0.0;
    s.test_fraction = 0.0;
    if (o.config == "tiny") {
        s.users = 200;
        s.songs = 600;
        s.artists = 60;
        s.genres = 6;
        s.min_list_length = 4;
        s.max_list_length = 10;
        s.max_history = 8;
        s.vocabulary = 400;
    } else {
        s.min_list_length = 30;
        s.max_list_length = 50;
        s.max_history = 50;
    }
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("piano_soak_" + std::to_string(std::random_device{}()));
    data::write_jdsearch_files(data::simulate_music_search(s), dir);
    data::JdsearchDataset loaded = data::load_jdsearch_dir(dir.string());
    std::filesystem::remove_all(dir);
    return loaded;
}

double max_of(const std::vector<double>& v, std::size_t begin, std::size_t end) {
    return *std::max_element(v.begin() + static_cast<std::ptrdiff_t>(begin), v.begin() + static_cast<std::ptrdiff_t>(end));
}

double mean_of(const std::vector<double>& v, std::size_t begin, std::size_t end) {
    double sum = 0.0;
    for (std::size_t i = begin; i < end; ++i) sum += v[i];
    return sum / static_cast<double>(end - begin);
}

int run(const SoakOptions& o) {
#ifdef _OPENMP
    omp_set_num_threads(o.threads);
#endif
    const data::JdsearchDataset dataset = simulated(o);
    const piano::PianoConfig config = piano::sized_to_data(
        o.config == "tiny" ? piano::PianoConfig::tiny() : piano::PianoConfig::reference(), dataset.vocab,
        dataset.dense_dim);
    auto model = piano::make_model<float>("piano", config);
    piano::AdamOptions adam_options;
    adam_options.sparse_mode = piano::SparseMode::lazy;
    piano::Adam<float> adam(model->named_parameters(), adam_options);
    data::Batcher batcher(dataset.train, o.batch, 1);
    piano::set_anomaly_detection(true);
    model->train();

    std::vector<double> rss;     // one sample per sample_every steps, the first before step 1
    std::vector<double> losses;  // [steps]
    losses.reserve(static_cast<std::size_t>(o.steps));
    std::uint64_t epoch = 0;
    data::Batch batch;
    const auto start = std::chrono::steady_clock::now();
    rss.push_back(rss_mb());
    for (long step = 1; step <= o.steps; ++step) {
        if (!batcher.next(batch)) {
            batcher.start_epoch(++epoch);
            batcher.next(batch);
        }
        auto loss = piano::multi_task_loss(model->forward(batch), batch, config, model->loss_log_variances());
        loss.total.backward();
        piano::clip_grad_norm(adam.parameters(), 5.0);
        adam.step();
        adam.zero_grad();
        losses.push_back(loss.total.value()(0, 0));
        if (step % o.sample_every == 0) rss.push_back(rss_mb());
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    piano::set_anomaly_detection(false);

    std::size_t nonfinite_parameters = 0;
    for (const auto& [name, p] : model->named_parameters()) nonfinite_parameters += !p.value().allFinite();
    const std::size_t n = rss.size(), quarter = std::max<std::size_t>(1, n / 4);
    const double first_quarter = max_of(rss, 0, quarter), last_quarter = max_of(rss, n - quarter, n);
    const std::size_t window = std::min<std::size_t>(100, losses.size());
    const bool flat = last_quarter <= first_quarter + o.slack_mb;
    const bool ok = flat && nonfinite_parameters == 0;

    std::printf("config=%s\nsteps=%ld\nbatch=%zu\ntrain_requests=%zu\nthreads=%d\nanomaly_detection=on\n",
                o.config.c_str(), o.steps, o.batch, dataset.train.size(), o.threads);
    std::printf("seconds=%.1f\nsteps_per_s=%.1f\n", seconds, static_cast<double>(o.steps) / seconds);
    std::printf("rss_samples=%zu\nrss_start_mb=%.1f\nrss_end_mb=%.1f\nrss_max_mb=%.1f\n", n, rss.front(), rss.back(),
                max_of(rss, 0, n));
    std::printf("rss_first_quarter_max_mb=%.1f\nrss_last_quarter_max_mb=%.1f\nrss_slack_mb=%.1f\n", first_quarter,
                last_quarter, o.slack_mb);
    std::printf("loss_first=%.5f\nfinal_loss=%.5f\nnonfinite_parameters=%zu\n", mean_of(losses, 0, window),
                mean_of(losses, losses.size() - window, losses.size()), nonfinite_parameters);
    std::printf("result=%s\n", ok ? "ok" : flat ? "fail: non-finite parameters" : "fail: memory grew");
    return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const SoakOptions options = parse(argc, argv);
    try {
        return run(options);
    } catch (const piano::AnomalyError& e) {  // the op that made the first NaN or Inf
        std::printf("result=fail: %s\n", e.what());
    } catch (const std::exception& e) {
        std::printf("result=fail: %s\n", e.what());
    }
    return 1;
}
