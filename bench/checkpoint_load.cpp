// bench/checkpoint_load.cpp: load_checkpoint's time against the file's size.
//
// Writes model-only checkpoints of n parameters, each a [1,4] float matrix named like a
// layer's ("block.<i>.weight"), for n doubling from --from to --to, and times
// load_checkpoint on each (the median of --repeats loads). Small parameters make the
// per-parameter work (names, duplicate checks) dominate, which is where a hostile file of
// many tiny parameters would hurt. Linear loading shows as a steady time per MB and a
// ratio near 2 between rows.
//
// Prints one row per size:
//   parameters  file_bytes  binary_ms  binary_ms_per_mb  ratio  json_ms  json_ms_per_mb  ratio
// Options: --from N (default 2500), --to N (default 80000), --repeats R (default 5),
// --dir PATH (where the files go, default the system's temporary directory).
#include <piano/io/checkpoint.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

namespace {

piano::Checkpoint<float> checkpoint_of(long n) {
    piano::Checkpoint<float> c;
    c.config = {{"d_model", "4"}};
    c.parameters.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i) {
        c.parameters.emplace_back("block." + std::to_string(i) + ".weight",
                                  piano::Matrix<float>::Constant(1, 4, 0.25f * static_cast<float>(i % 7)));
    }
    return c;
}

// The median CPU time of `repeats` loads of `path`, in milliseconds. CPU time, not wall
// time: loading runs on one thread, and on a machine shared with other jobs the wall
// clock would also count the time spent waiting for a core.
double median_load_ms(const std::filesystem::path& path, int repeats) {
    std::vector<double> ms;
    for (int r = 0; r < repeats; ++r) {
        const std::clock_t start = std::clock();
        const piano::Checkpoint<float> loaded = piano::load_checkpoint<float>(path);
        const std::clock_t stop = std::clock();
        if (loaded.parameters.empty()) std::abort();  // keeps the load from being optimised away
        ms.push_back(1000.0 * static_cast<double>(stop - start) / CLOCKS_PER_SEC);
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

long option(int argc, char** argv, const char* name, long fallback) {
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], name) == 0) return std::atol(argv[i + 1]);
    }
    return fallback;
}

}  // namespace

int main(int argc, char** argv) {
    const long from = option(argc, argv, "--from", 2500), to = option(argc, argv, "--to", 80000);
    const int repeats = static_cast<int>(option(argc, argv, "--repeats", 5));
    std::filesystem::path dir = std::filesystem::temp_directory_path();
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
    }
    if (from < 1 || to < from || repeats < 1) {
        std::fprintf(stderr, "usage: piano_checkpoint_load [--from N] [--to N] [--repeats R] [--dir PATH]\n");
        return 2;
    }
    std::printf("%10s %11s %10s %16s %6s %10s %14s %6s\n", "parameters", "file_bytes", "binary_ms", "binary_ms_per_mb",
                "ratio", "json_ms", "json_ms_per_mb", "ratio");
    double previous_binary = 0, previous_json = 0;
    for (long n = from; n <= to; n *= 2) {
        const piano::Checkpoint<float> c = checkpoint_of(n);
        const auto binary = dir / ("piano_bench_load_" + std::to_string(n) + ".ckpt");
        const auto json = dir / ("piano_bench_load_" + std::to_string(n) + ".json");
        piano::save_checkpoint(binary, c, piano::CheckpointFormat::binary);
        piano::save_checkpoint(json, c, piano::CheckpointFormat::json);
        const double mb = static_cast<double>(std::filesystem::file_size(binary)) / 1e6;
        const double json_mb = static_cast<double>(std::filesystem::file_size(json)) / 1e6;
        const double b = median_load_ms(binary, repeats), j = median_load_ms(json, repeats);
        std::printf("%10ld %11ju %10.2f %16.2f %6.2f %10.2f %14.2f %6.2f\n", n,
                    static_cast<std::uintmax_t>(std::filesystem::file_size(binary)), b, b / mb,
                    previous_binary > 0 ? b / previous_binary : 0.0, j, j / json_mb,
                    previous_json > 0 ? j / previous_json : 0.0);
        std::fflush(stdout);
        previous_binary = b;
        previous_json = j;
        std::filesystem::remove(binary);
        std::filesystem::remove(json);
    }
    return 0;
}
