// tests/support/test_helpers.hpp: the helpers several test files share. They live here
// once rather than as copies in each file's anonymous namespace, because the test
// executable is a unity build (tests/CMakeLists.txt), where copies collide.
#pragma once

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include <catch2/catch.hpp>

#include <piano/core/gradcheck.hpp>
#include <piano/core/tensor.hpp>
#include <piano/data/simulator.hpp>
#include <piano/nn/module.hpp>

namespace piano::testing {

/// [rows, cols] of N(offset, stddev²) noise, the same for the same seed.
inline Tensor<double> random_tensor(Index rows, Index cols, unsigned seed, double offset = 0.0,
                                    double stddev = 1.0) {
    std::mt19937_64 rng(seed);
    Tensor<double> t = Tensor<double>::randn(rows, cols, rng, stddev);
    t.mutable_value().array() += offset;
    return t;
}

/// A [1, n] matrix holding `values`.
inline Matrix<double> row_matrix(std::initializer_list<double> values) {
    Matrix<double> m(1, static_cast<Index>(values.size()));
    Index c = 0;
    for (double v : values) m(0, c++) = v;
    return m;
}

/// The same as a constant tensor.
inline Tensor<double> row(std::initializer_list<double> values) { return Tensor<double>(row_matrix(values)); }

/// Checks that a gradient check passed; on failure Catch shows its message (which entries
/// differ, and by how much).
inline void check_ok(const GradCheckResult& r) {
    INFO(r.message);
    CHECK(r.ok);
}

/// `first` followed by every parameter of m: a gradient check then covers the inputs and
/// all parameters (check_gradients perturbs the parameters through the shared handles).
inline std::vector<Tensor<double>> with_parameters(std::vector<Tensor<double>> first, const Module<double>& m) {
    for (const auto& p : m.parameters()) first.push_back(p);
    return first;
}

/// Every parameter replaced by N(0, 0.5²) noise, so that gains of 1 and biases of 0 cannot
/// hide a wrong gradient formula.
inline void randomize(const Module<double>& m, unsigned seed) {
    std::mt19937_64 rng(seed);
    for (auto p : m.parameters()) p.mutable_value() = Tensor<double>::randn(p.rows(), p.cols(), rng, 0.5).value();
}

/// A fresh directory under the system temp directory, removed with its contents.
class TempDir {
public:
    /// `tag` goes into the directory's name, to tell which test left it behind.
    explicit TempDir(const std::string& tag) {
        std::random_device random;
        // create_directory is false when the name exists: a parallel run's directory is never shared.
        do {
            std::ostringstream name;
            name << "piano_" << tag << "_" << std::hex << random() << random();
            path_ = std::filesystem::temp_directory_path() / name.str();
        } while (!std::filesystem::create_directory(path_));
    }
    ~TempDir() {
        std::error_code ignored;  // a destructor must not throw; a leftover directory is harmless
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

/// The whole file, byte for byte.
inline std::string read_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// The file's lines without their '\n' (a '\r' before it stays: tests see the exact bytes).
inline std::vector<std::string> lines_of(const std::filesystem::path& path) {
    std::vector<std::string> lines;
    std::ifstream in(path, std::ios::binary);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

/// The tab-separated fields of `line`, empty ones included.
inline std::vector<std::string> split_tabs(const std::string& line) {
    std::vector<std::string> fields(1);
    for (const char c : line) {
        if (c == '\t')
            fields.emplace_back();
        else
            fields.back() += c;
    }
    return fields;
}

/// A small simulated world (600 requests of 8 to 12 candidates) that builds in milliseconds.
inline data::SimulatorOptions small_world() {
    data::SimulatorOptions o;
    o.users = 150;
    o.songs = 300;
    o.artists = 30;
    o.genres = 6;
    o.requests = 600;
    o.min_list_length = 8;
    o.max_list_length = 12;
    o.max_history = 10;
    o.vocabulary = 600;
    return o;
}

/// `relative` under the shared data folder beside the checkout (`../shared/data`), for
/// the tests tagged [shared]. CTest registers those only when the folder exists
/// (tests/CMakeLists.txt, which also needs the tag on the TEST_CASE line to name them);
/// run by hand without it, the test fails here saying what it needs, never passes.
inline std::string shared_data(const std::string& relative) {
    const std::filesystem::path root = std::filesystem::path(PIANO_SHARED_DIR) / "data";
    if (!std::filesystem::exists(root))
        FAIL("this [shared] test reads real data from " << root.string()
                                                        << ", which does not exist; exclude it with ~[shared]");
    return (root / relative).string();
}

}  // namespace piano::testing
