// Checkpoints: exact round trips, exact resumption of training, every mismatch and every
// kind of bad file reported by name, and saves that are atomic.
#include <catch2/catch.hpp>

#include <piano/io/checkpoint.hpp>
#include <piano/model/factory.hpp>
#include <piano/nn/linear.hpp>
#include <piano/ops/indexing.hpp>
#include <piano/ops/reduce.hpp>
#include <piano/optim/adam.hpp>
#include <piano/optim/sgd.hpp>

#include <support/test_helpers.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using piano::Checkpoint;
using piano::CheckpointError;
using piano::CheckpointFormat;
using piano::Index;
using piano::Matrix;
using piano::Tensor;
using piano::testing::read_bytes;
using piano::testing::TempDir;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

/// Names of leftover temporary files (save_checkpoint's "*.tmp.*") in dir.
std::vector<std::string> temp_files(const TempDir& dir) {
    std::vector<std::string> out;
    for (const auto& entry : fs::directory_iterator(dir.path())) {
        const std::string name = entry.path().filename().string();
        if (name.find(".tmp") != std::string::npos) out.push_back(name);
    }
    return out;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// encoder: Linear 3 -> hidden, head: Linear hidden -> 1. Parameter names:
// <first>.weight [3,hidden], <first>.bias [1,hidden], head.weight [hidden,1], head.bias [1,1].
template <typename T>
class Net : public piano::Module<T> {
public:
    Net(std::mt19937_64& rng, Index hidden = 4, const std::string& first = "encoder", bool head_bias = true) {
        this->register_module(first, std::make_shared<piano::Linear<T>>(3, hidden, rng));
        this->register_module("head", std::make_shared<piano::Linear<T>>(hidden, 1, rng, head_bias));
    }
};

template <typename T>
bool same_bits(const Matrix<T>& a, const Matrix<T>& b) {
    return a.rows() == b.rows() && a.cols() == b.cols() &&
           std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.size())) == 0;
}

template <typename T>
std::vector<Matrix<T>> values_of(const piano::Module<T>& model) {
    std::vector<Matrix<T>> out;
    for (const auto& [name, p] : model.named_parameters()) out.push_back(p.value());
    return out;
}

// One optimizer step on a simple loss, so the optimizer state is not all zeros.
template <typename T>
void one_step(Net<T>& net, piano::Optimizer<T>& optimizer) {
    optimizer.zero_grad();
    for (auto& [name, p] : net.named_parameters()) {
        Tensor<T> loss = piano::mean(p * T(2));
        loss.backward();
    }
    optimizer.step();
}

// A checkpoint using every field, with values that a careless text format would not
// reproduce bit for bit.
template <typename T>
Checkpoint<T> sample_checkpoint() {
    std::mt19937_64 rng(7);
    Net<T> net(rng);
    piano::Adam<T> adam(net.named_parameters(), piano::AdamOptions{});
    one_step(net, adam);
    Checkpoint<T> c = piano::capture<T>(net, {{"hidden", "4"}, {"name", "tiny \"net\"\n\ttab"}}, &adam, &rng);
    Matrix<T>& w = c.parameters[0].second;  // encoder.weight [3,4]
    w(0, 0) = T(-0.0);
    w(0, 1) = -std::numeric_limits<T>::denorm_min();
    w(0, 2) = std::numeric_limits<T>::denorm_min();
    w(0, 3) = std::numeric_limits<T>::max();
    w(1, 0) = std::numeric_limits<T>::lowest();
    w(1, 1) = T(1) / T(3);
    w(1, 2) = std::numeric_limits<T>::min();
    w(1, 3) = T(0.1);
    c.step = 7;
    c.epoch = 2;
    c.metadata = {{"data", "clicks-2024.tsv"}, {"note", "\xC3\xBCmlaut"}};
    return c;
}

template <typename T>
void check_same(const Checkpoint<T>& a, const Checkpoint<T>& b) {
    CHECK(a.config == b.config);
    CHECK(a.metadata == b.metadata);
    CHECK(a.step == b.step);
    CHECK(a.epoch == b.epoch);
    CHECK(a.rng_state == b.rng_state);
    REQUIRE(a.parameters.size() == b.parameters.size());
    for (std::size_t i = 0; i < a.parameters.size(); ++i) {
        CHECK(a.parameters[i].first == b.parameters[i].first);
        CHECK(same_bits(a.parameters[i].second, b.parameters[i].second));
    }
    REQUIRE(a.optimizer.has_value() == b.optimizer.has_value());
    if (!a.optimizer) return;
    CHECK(a.optimizer_name == b.optimizer_name);
    CHECK(a.optimizer->step == b.optimizer->step);
    REQUIRE(a.optimizer->slots.size() == b.optimizer->slots.size());
    for (const auto& [name, buffers] : a.optimizer->slots) {
        REQUIRE(b.optimizer->slots.count(name) == 1);
        const auto& other = b.optimizer->slots.at(name);
        REQUIRE(buffers.size() == other.size());
        for (std::size_t k = 0; k < buffers.size(); ++k) CHECK(same_bits(buffers[k], other[k]));
    }
}

// A small model-only checkpoint, for tests that cut or corrupt every byte of a file.
Checkpoint<double> small_checkpoint() {
    Checkpoint<double> c;
    c.config = {{"hidden", "2"}};
    Matrix<double> w(2, 2);
    w << 1.5, -2.25, 3.0, 0.125;
    c.parameters = {{"w", w}, {"b", Matrix<double>::Constant(1, 2, 0.5)}};
    c.step = 3;
    return c;
}

void overwrite_u64(std::string& bytes, std::size_t offset, std::uint64_t value) {
    for (std::size_t i = 0; i < 8; ++i) bytes[offset + i] = static_cast<char>((value >> (8 * i)) & 0xFF);
}

/// A binary checkpoint's bytes with its trailing checksum recomputed, so that a corruption
/// made on purpose reaches the parser behind the checksum.
std::string restamped(const std::string& bytes) {
    namespace ck = piano::detail::checkpoint;
    const std::string body = bytes.substr(0, bytes.size() - ck::kChecksumSize);
    return body + ck::checksum_bytes(ck::checksum(body.data(), body.size()));
}

/// The same file as format version 1 wrote it: binary without the trailing checksum,
/// JSON without the "checksum" field, and version 1 in the header.
std::string as_version_1(const std::string& file) {
    if (file.rfind("PIANOCKP", 0) == 0) {
        std::string bytes = file.substr(0, file.size() - piano::detail::checkpoint::kChecksumSize);
        bytes[9] = 1;  // after the magic (8 bytes) and the endianness flag: u32 version, little-endian
        return bytes;
    }
    std::string text = file;
    const auto version = text.find("\"format_version\": 2");
    const auto sum = text.find(",\n    \"checksum\"");
    REQUIRE(version != std::string::npos);
    REQUIRE(sum != std::string::npos);
    text.erase(sum, text.find('\n', sum + 2) - sum);
    text[version + 18] = '1';
    return text;
}

}  // namespace

TEMPLATE_TEST_CASE("a checkpoint round-trips bit for bit", "[io][checkpoint]", float, double) {
    TempDir dir("checkpoint");
    const Checkpoint<TestType> saved = sample_checkpoint<TestType>();
    SECTION("binary") {
        piano::save_checkpoint(dir / "ck.bin", saved);
        check_same(saved, piano::load_checkpoint<TestType>(dir / "ck.bin"));
    }
    SECTION("json") {
        piano::save_checkpoint(dir / "ck.json", saved, CheckpointFormat::json);
        check_same(saved, piano::load_checkpoint<TestType>(dir / "ck.json"));
    }
    SECTION("a model-only checkpoint stays model-only") {
        Checkpoint<TestType> bare = saved;
        bare.optimizer.reset();
        bare.optimizer_name.clear();
        bare.rng_state.clear();
        piano::save_checkpoint(dir / "bare.bin", bare);
        const auto loaded = piano::load_checkpoint<TestType>(dir / "bare.bin");
        CHECK_FALSE(loaded.optimizer.has_value());
        check_same(bare, loaded);
    }
}

TEST_CASE("the JSON checkpoint is readable", "[io][checkpoint]") {
    TempDir dir("checkpoint");
    piano::save_checkpoint(dir / "ck.json", sample_checkpoint<float>(), CheckpointFormat::json);
    const std::string text = read_bytes(dir / "ck.json");
    CHECK_THAT(text, Contains("\"magic\": \"PIANOCKP\""));
    CHECK_THAT(text, Contains("\"format_version\": 2"));
    CHECK_THAT(text, Contains("\"scalar\": \"float\""));
    CHECK_THAT(text, Contains("\"encoder.weight\""));
    CHECK_THAT(text, Contains("\"head.bias\""));
    CHECK_THAT(text, Contains("\"hidden\""));
    CHECK_THAT(text, Contains("\"adam\""));
    // The binary file starts with the raw magic number.
    piano::save_checkpoint(dir / "ck.bin", sample_checkpoint<float>());
    CHECK(read_bytes(dir / "ck.bin").substr(0, 8) == "PIANOCKP");
}

TEST_CASE("resuming from a checkpoint is bit-identical to not stopping", "[io][checkpoint]") {
    // Linear 3 -> 1 on a fixed data set, MSE on a minibatch of 4 rows drawn with the run's
    // generator each step, so the RNG state matters as much as the parameters and Adam's moments.
    using T = double;
    std::mt19937_64 data_rng(123);
    const Tensor<T> x = Tensor<T>::randn(16, 3, data_rng);
    const Tensor<T> y = Tensor<T>::randn(16, 1, data_rng);
    const piano::AdamOptions options{0.05, 0.9, 0.999, 1e-8, 0.01};

    auto train = [&](piano::Linear<T>& model, piano::Adam<T>& adam, std::mt19937_64& rng, int steps) {
        std::uniform_int_distribution<Index> pick(0, x.rows() - 1);
        for (int s = 0; s < steps; ++s) {
            std::vector<Index> rows(4);
            for (auto& r : rows) r = pick(rng);
            const Tensor<T> diff = model.forward(piano::gather_rows(x, rows)) - piano::gather_rows(y, rows);
            Tensor<T> loss = piano::mean(diff * diff);
            adam.zero_grad();
            loss.backward();
            adam.step();
        }
    };

    std::mt19937_64 rng_a(42);
    piano::Linear<T> model_a(3, 1, rng_a);
    piano::Adam<T> adam_a(model_a.named_parameters(), options);
    train(model_a, adam_a, rng_a, 6);

    for (const auto format : {CheckpointFormat::binary, CheckpointFormat::json}) {
        DYNAMIC_SECTION((format == CheckpointFormat::binary ? "binary" : "json")) {
            TempDir dir("checkpoint");
            {
                std::mt19937_64 rng(42);
                piano::Linear<T> model(3, 1, rng);
                piano::Adam<T> adam(model.named_parameters(), options);
                train(model, adam, rng, 3);
                Checkpoint<T> c = piano::capture<T>(model, {{"in", "3"}, {"out", "1"}}, &adam, &rng);
                c.step = 3;
                piano::save_checkpoint(dir / "ck", c, format);
            }
            // A different seed: everything must come from the file.
            std::mt19937_64 rng(999);
            piano::Linear<T> model(3, 1, rng);
            piano::Adam<T> adam(model.named_parameters(), options);
            const Checkpoint<T> c = piano::load_checkpoint<T>(dir / "ck");
            piano::restore<T>(model, c, &adam, &rng);
            CHECK(c.step == 3);
            CHECK(adam.steps_taken() == 3);
            train(model, adam, rng, 3);
            CHECK(model.weight.value() == model_a.weight.value());
            CHECK(model.bias.value() == model_a.bias.value());
            CHECK(rng == rng_a);
        }
    }
}

TEST_CASE("restore names every mismatch and changes nothing", "[io][checkpoint]") {
    std::mt19937_64 rng(1);
    Net<double> source(rng);
    const Checkpoint<double> c = piano::capture<double>(source);

    auto expect_untouched_failure = [](Net<double>& model, const Checkpoint<double>& checkpoint,
                                       const std::string& expected) {
        const auto before = values_of(model);
        CHECK_THROWS_WITH(piano::restore<double>(model, checkpoint), Contains(expected));
        const auto after = values_of(model);
        for (std::size_t i = 0; i < before.size(); ++i) CHECK(same_bits(before[i], after[i]));
    };

    SECTION("a renamed parameter: both names, the likely new name first") {
        Net<double> model(rng, 4, "encoders");
        expect_untouched_failure(model, c, "checkpoint has no parameter 'encoders.weight' (it has: 'encoder.weight'");
        expect_untouched_failure(model, c, "checkpoint parameter 'encoder.weight' is not in the model (it has: "
                                        "'encoders.weight'");
    }
    SECTION("a wrong shape") {
        Net<double> model(rng, 8);
        expect_untouched_failure(model, c, "parameter 'encoder.weight': checkpoint [3,4], model [3,8]");
        expect_untouched_failure(model, c, "parameter 'head.weight': checkpoint [4,1], model [8,1]");
    }
    SECTION("a parameter missing from the checkpoint") {
        Net<double> smaller(rng, 4, "encoder", false);
        const Checkpoint<double> without_bias = piano::capture<double>(smaller);
        Net<double> model(rng);
        expect_untouched_failure(model, without_bias, "checkpoint has no parameter 'head.bias' (it has: 'head.weight'");
    }
    SECTION("an extra parameter in the checkpoint") {
        Net<double> model(rng, 4, "encoder", false);
        expect_untouched_failure(model, c, "checkpoint parameter 'head.bias' is not in the model");
    }
    SECTION("optimizer and generator state that is absent or of another kind") {
        Net<double> model(rng);
        piano::Adam<double> adam(model.named_parameters(), piano::AdamOptions{});
        CHECK_THROWS_WITH(piano::restore<double>(model, c, &adam), Contains("checkpoint has no optimizer state"));
        std::mt19937_64 other(5);
        CHECK_THROWS_WITH(piano::restore<double>(model, c, nullptr, &other), Contains("checkpoint has no RNG state"));

        const Checkpoint<double> with_adam = piano::capture<double>(source, {}, &adam);
        piano::SGD<double> sgd(model.named_parameters(), piano::SGDOptions{0.1, 0.9});
        CHECK_THROWS_WITH(piano::restore<double>(model, with_adam, &sgd),
                          Contains("checkpoint optimizer is 'adam', the optimizer given is 'sgd'"));
    }
    SECTION("a matching model loads") {
        Net<double> model(rng);
        piano::restore<double>(model, c);
        const auto after = values_of(model);
        for (std::size_t i = 0; i < after.size(); ++i) CHECK(same_bits(after[i], c.parameters[i].second));
    }
}

TEST_CASE("load_checkpoint rejects foreign and mismatched files with a clear message", "[io][checkpoint]") {
    TempDir dir("checkpoint");
    const fs::path path = dir / "ck";
    SECTION("no such file") {
        CHECK_THROWS_WITH(piano::load_checkpoint<double>(dir / "absent"), Contains("cannot open the file"));
    }
    SECTION("an empty file") {
        write_bytes(path, "");
        CHECK_THROWS_WITH(piano::load_checkpoint<double>(path), Contains("the file is empty"));
    }
    SECTION("a text file") {
        write_bytes(path, "hello world\nthis is not a model\n");
        CHECK_THROWS_WITH(piano::load_checkpoint<double>(path),
                          Contains("not a piano checkpoint (magic \"hello wo\", expected \"PIANOCKP\")") &&
                              Contains("Hint: piano reads only files written by piano::save_checkpoint"));
    }
    SECTION("a PNG image") {
        write_bytes(path, std::string("\x89PNG\r\n\x1A\n\0\0\0\rIHDR", 16));
        CHECK_THROWS_WITH(piano::load_checkpoint<double>(path),
                          Contains("not a piano checkpoint (magic \"\\x89PNG\\r\\n\\x1A\\n\""));
    }
    SECTION("a file of zeros") {
        write_bytes(path, std::string(4096, '\0'));
        CHECK_THROWS_WITH(piano::load_checkpoint<double>(path),
                          Contains("not a piano checkpoint (magic \"\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\""));
    }
    SECTION("JSON that is not a checkpoint") {
        write_bytes(path, "{\"weights\": [1, 2, 3]}");
        CHECK_THROWS_WITH(piano::load_checkpoint<double>(path), Contains("not a piano checkpoint (magic missing"));
        write_bytes(path, "{\"magic\": \"GGUF\"}");
        CHECK_THROWS_WITH(piano::load_checkpoint<double>(path), Contains("not a piano checkpoint (magic \"GGUF\""));
    }
    SECTION("a newer format version, binary and JSON") {
        piano::save_checkpoint(path, small_checkpoint());
        std::string bytes = read_bytes(path);
        bytes[9] = 3;  // after the magic (8 bytes) and the endianness flag: u32 version, little-endian
        write_bytes(path, bytes);
        CHECK_THROWS_WITH(piano::load_checkpoint<double>(path),
                          Contains("format version 3 was written by a newer piano; this build reads versions up to 2"));

        piano::save_checkpoint(path, small_checkpoint(), CheckpointFormat::json);
        std::string text = read_bytes(path);
        const auto at = text.find("\"format_version\": 2");
        REQUIRE(at != std::string::npos);
        text.replace(at, 19, "\"format_version\": 7");
        write_bytes(path, text);
        CHECK_THROWS_WITH(piano::load_checkpoint<double>(path),
                          Contains("format version 7 was written by a newer piano"));
    }
    SECTION("the other scalar type") {
        piano::save_checkpoint(path, small_checkpoint());
        CHECK_THROWS_WITH(piano::load_checkpoint<float>(path),
                          Contains("holds double parameters but is loaded as float; load it with "
                                   "load_checkpoint<double>"));
    }
    SECTION("every message names the file") {
        write_bytes(path, "nope");
        CHECK_THROWS_WITH(piano::load_checkpoint<double>(path), Contains("load_checkpoint '" + path.string() + "'"));
    }
}

TEST_CASE("corrupt checkpoints throw CheckpointError, never crash", "[io][checkpoint]") {
    TempDir dir("checkpoint");
    const fs::path path = dir / "ck";
    const fs::path source = dir / "source";

    SECTION("a binary file cut at every length") {
        piano::save_checkpoint(source, small_checkpoint());
        const std::string bytes = read_bytes(source);
        for (std::size_t n = 1; n < bytes.size(); ++n) {
            write_bytes(path, bytes.substr(0, n));
            CHECK_THROWS_AS(piano::load_checkpoint<double>(path), CheckpointError);
        }
        write_bytes(path, bytes.substr(0, bytes.size() / 2));
        CHECK_THROWS_WITH(piano::load_checkpoint<double>(path), Contains("checksum mismatch"));
        write_bytes(path, as_version_1(bytes).substr(0, bytes.size() / 2));  // no checksum to stop it
        CHECK_THROWS_WITH(piano::load_checkpoint<double>(path), Contains("the file is truncated or corrupt"));
        write_bytes(path, bytes + "x");
        CHECK_THROWS_WITH(piano::load_checkpoint<double>(path), Contains("checksum mismatch"));
        write_bytes(path, restamped(bytes.substr(0, bytes.size() - 8) + "x" + bytes.substr(bytes.size() - 8)));
        CHECK_THROWS_WITH(piano::load_checkpoint<double>(path), Contains("unexpected bytes after the end"));
    }
    SECTION("a JSON file cut at every length") {
        piano::save_checkpoint(source, small_checkpoint(), CheckpointFormat::json);
        const std::string text = read_bytes(source);
        const std::size_t end = text.rfind('}');
        for (std::size_t n = 1; n <= end; ++n) {
            write_bytes(path, text.substr(0, n));
            CHECK_THROWS_AS(piano::load_checkpoint<double>(path), CheckpointError);
        }
        write_bytes(path, text.substr(0, text.size() / 2));
        CHECK_THROWS_WITH(piano::load_checkpoint<double>(path), Contains("the file is cut off"));
    }
    SECTION("JSON nested deep enough to overflow a recursive parser") {
        write_bytes(path, "{\"magic\": " + std::string(1'000'000, '['));
        CHECK_THROWS_WITH(piano::load_checkpoint<double>(path), Contains("nests deeper than 16 levels"));
    }
    SECTION("length prefixes that claim gigabytes") {
        // small_checkpoint's layout: magic 8, endianness 1, version 4, scalar (u64 6, "double")
        // 14, step 8, epoch 8, config (u64 count, then key and value strings)...
        piano::save_checkpoint(source, small_checkpoint());
        const std::string bytes = read_bytes(source);
        for (const std::size_t offset : {std::size_t{13}, std::size_t{43}, std::size_t{51}}) {
            for (const std::uint64_t huge : {std::uint64_t{1} << 40, std::uint64_t{1} << 62, ~std::uint64_t{0}}) {
                std::string corrupt = bytes;
                overwrite_u64(corrupt, offset, huge);
                write_bytes(path, restamped(corrupt));
                CHECK_THROWS_AS(piano::load_checkpoint<double>(path), CheckpointError);
            }
        }
        // The values count of the first matrix: after the config entry ("hidden" -> "2",
        // 8+6+8+1 bytes), the parameter count, the name "w" (8+1), rows and cols.
        const std::size_t values_count = 51 + 8 + 6 + 8 + 1 + 8 + 8 + 1 + 8 + 8;
        std::string corrupt = bytes;
        REQUIRE(static_cast<unsigned char>(corrupt[values_count]) == 4);
        overwrite_u64(corrupt, values_count, std::uint64_t{1} << 61);
        write_bytes(path, restamped(corrupt));
        CHECK_THROWS_WITH(piano::load_checkpoint<double>(path), Contains("truncated or corrupt"));
        overwrite_u64(corrupt, values_count, 3);
        write_bytes(path, restamped(corrupt));
        CHECK_THROWS_AS(piano::load_checkpoint<double>(path), CheckpointError);
    }
    SECTION("random bytes, with and without the magic number, and random bit flips") {
        piano::save_checkpoint(source, small_checkpoint());
        const std::string bytes = read_bytes(source);
        std::mt19937_64 rng(2024);
        std::uniform_int_distribution<int> byte(0, 255);
        for (int trial = 0; trial < 300; ++trial) {
            std::string noise(static_cast<std::size_t>(trial), '\0');
            for (auto& ch : noise) ch = static_cast<char>(byte(rng));
            write_bytes(path, noise);
            CHECK_THROWS_AS(piano::load_checkpoint<double>(path), CheckpointError);
            write_bytes(path, "PIANOCKP" + noise);
            CHECK_THROWS_AS(piano::load_checkpoint<double>(path), CheckpointError);

            // Behind a valid checksum a flipped byte may still load (a changed value); it
            // must never crash.
            std::string flipped = bytes;
            flipped[std::uniform_int_distribution<std::size_t>(8, bytes.size() - 9)(rng)] ^=
                static_cast<char>(1 + byte(rng) % 255);
            write_bytes(path, restamped(flipped));
            try {
                (void)piano::load_checkpoint<double>(path);
            } catch (const CheckpointError&) {
            }
        }
    }
}

TEST_CASE("save_checkpoint is atomic", "[io][checkpoint]") {
    TempDir dir("checkpoint");
    SECTION("into a missing directory: an error naming the path, no file left") {
        const fs::path path = dir / "missing" / "ck.bin";
        CHECK_THROWS_WITH(piano::save_checkpoint(path, small_checkpoint()),
                          Contains("save_checkpoint '" + path.string() + "'"));
        CHECK_FALSE(fs::exists(dir / "missing"));
        CHECK(temp_files(dir).empty());
    }
    SECTION("a failed rename removes the temporary file") {
        fs::create_directory(dir / "ck.bin");  // a directory cannot be replaced by a file
        fs::create_directory(dir / "ck.bin" / "keep");
        CHECK_THROWS_WITH(piano::save_checkpoint(dir / "ck.bin", small_checkpoint()), Contains("cannot rename"));
        CHECK(fs::is_directory(dir / "ck.bin" / "keep"));
        CHECK(temp_files(dir).empty());
    }
    SECTION("overwriting an existing checkpoint replaces it and leaves no temporary file") {
        Checkpoint<double> c = small_checkpoint();
        piano::save_checkpoint(dir / "ck.bin", c);
        c.step = 99;
        c.parameters[0].second(0, 0) = -7.0;
        piano::save_checkpoint(dir / "ck.bin", c);
        piano::save_checkpoint(dir / "ck.json", c, CheckpointFormat::json);
        const auto loaded = piano::load_checkpoint<double>(dir / "ck.bin");
        CHECK(loaded.step == 99);
        CHECK(loaded.parameters[0].second(0, 0) == -7.0);
        CHECK(temp_files(dir).empty());
    }
}

TEST_CASE("restore refuses a checkpoint of a model with another config, naming each key", "[io][checkpoint]") {
    // A model's config_map() (PIANO: its PianoConfig and "model") must match the keys the
    // checkpoint's config holds. Expected: CheckpointError naming the key and both values,
    // before the shape mismatches it explains, and the model unchanged.
    piano::PianoConfig small = piano::PianoConfig::tiny();
    small.term_rows = small.item_rows = 20;
    auto saved = piano::make_model<float>("piano", small);
    const Checkpoint<float> c = piano::capture<float>(*saved, saved->config_map());
    CHECK(c.config.at("model") == "piano");

    SECTION("another width: the key first, then the shapes") {
        piano::PianoConfig wide = small;
        wide.d_model = 32;
        auto model = piano::make_model<float>("piano", wide);
        try {
            piano::restore<float>(*model, c);
            FAIL("no CheckpointError");
        } catch (const CheckpointError& e) {
            const std::string message = e.what();
            const auto key = message.find("config 'd_model': checkpoint 16, model 32");
            const auto shape = message.find("parameter 'features.terms.weight': checkpoint [20,16], model [20,32]");
            CHECK(key != std::string::npos);
            CHECK(shape != std::string::npos);
            CHECK(key < shape);
        }
    }
    SECTION("a value that changes no shape, and another model kind") {
        piano::PianoConfig other = small;
        other.lambda = 0.25;
        other.use_qdir = false;
        auto model = piano::make_model<float>("piano", other);
        const auto before = values_of(*model);
        CHECK_THROWS_WITH(piano::restore<float>(*model, c), Contains("config 'lambda': checkpoint 0.5, model 0.25"));
        CHECK_THROWS_WITH(piano::restore<float>(*model, c), Contains("config 'use_qdir': checkpoint 1, model 0"));
        const auto after = values_of(*model);
        for (std::size_t i = 0; i < before.size(); ++i) CHECK(same_bits(before[i], after[i]));

        auto prm = piano::make_model<float>("prm", small);
        CHECK_THROWS_WITH(piano::restore<float>(*prm, c), Contains("config 'model': checkpoint piano, model prm"));
    }
    SECTION("the same config, or a checkpoint without one, loads") {
        auto model = piano::make_model<float>("piano", small);
        piano::restore<float>(*model, c);
        CHECK(values_of(*model) == values_of(*saved));
        Checkpoint<float> bare = c;
        bare.config.clear();
        auto other = piano::make_model<float>("piano", small);
        piano::restore<float>(*other, bare);
        CHECK(values_of(*other) == values_of(*saved));
    }
}

TEST_CASE("load_checkpoint reads a stream as it reads a file", "[io][checkpoint]") {
    // Expected: the same checkpoint from a file's bytes in memory, in both formats; errors
    // name the stream as they would name the file.
    TempDir dir("stream");
    const Checkpoint<double> c = small_checkpoint();
    for (const CheckpointFormat format : {CheckpointFormat::binary, CheckpointFormat::json}) {
        piano::save_checkpoint(dir / "c.ckpt", c, format);
        std::istringstream in(read_bytes(dir / "c.ckpt"));
        check_same(piano::load_checkpoint<double>(in, "memory"), c);
    }
    std::istringstream empty("");
    CHECK_THROWS_WITH(piano::load_checkpoint<double>(empty, "upload #3"),
                      Contains("load_checkpoint 'upload #3': the file is empty"));
}

TEST_CASE("every changed byte of a checkpoint is refused or changes nothing", "[io][checkpoint][integrity]") {
    TempDir dir("checkpoint");
    const fs::path path = dir / "ck";
    std::mt19937_64 rng(15);
    std::uniform_int_distribution<int> nonzero(1, 255);
    const Checkpoint<float> original = sample_checkpoint<float>();
    SECTION("binary: every byte after the magic, each changed once, is refused by the checksum") {
        piano::save_checkpoint(path, original);
        const std::string bytes = read_bytes(path);
        for (std::size_t i = 8; i < bytes.size(); ++i) {
            std::string changed = bytes;
            changed[i] = static_cast<char>(changed[i] ^ nonzero(rng));
            write_bytes(path, changed);
            INFO("byte " << i << " of " << bytes.size());
            CHECK_THROWS_AS(piano::load_checkpoint<float>(path), CheckpointError);
        }
        std::string exponent = bytes;
        exponent[bytes.size() / 2] = static_cast<char>(exponent[bytes.size() / 2] ^ 0x40);
        write_bytes(path, exponent);
        CHECK_THROWS_WITH(piano::load_checkpoint<float>(path),
                          Contains("checksum mismatch") && Contains("the file is corrupt"));
    }
    SECTION("JSON: every byte, each changed once, is refused or loads the same contents") {
        piano::save_checkpoint(path, original, CheckpointFormat::json);
        const std::string text = read_bytes(path);
        int loaded = 0;
        for (std::size_t i = 0; i < text.size(); ++i) {
            std::string changed = text;
            changed[i] = static_cast<char>(changed[i] ^ nonzero(rng));
            write_bytes(path, changed);
            INFO("byte " << i << " of " << text.size());
            try {
                check_same(original, piano::load_checkpoint<float>(path));
                ++loaded;  // e.g. a changed space between two fields
            } catch (const CheckpointError&) {
            }
        }
        CHECK(loaded < static_cast<int>(text.size()) / 4);
    }
}

TEST_CASE("files of format version 1 still load, without a checksum", "[io][checkpoint][integrity]") {
    TempDir dir("checkpoint");
    const fs::path path = dir / "ck";
    const Checkpoint<float> original = sample_checkpoint<float>();
    for (const auto format : {CheckpointFormat::binary, CheckpointFormat::json}) {
        piano::save_checkpoint(path, original, format);
        write_bytes(path, as_version_1(read_bytes(path)));
        check_same(original, piano::load_checkpoint<float>(path));
    }
    // Files that version 1 itself wrote (the fuzzers' former seeds).
    const fs::path fixtures = fs::path(PIANO_TEST_FIXTURES) / "checkpoint";
    for (const char* name : {"v1_few.ckpt", "v1_few.json"}) {
        INFO(name);
        const Checkpoint<float> old = piano::load_checkpoint<float>(fixtures / name);
        CHECK(old.parameters.size() == 3);
        CHECK(old.optimizer_name == "adam");
    }
    // A version 1 JSON file has no checksum field; one that does is corrupt.
    piano::save_checkpoint(path, original, CheckpointFormat::json);
    std::string text = read_bytes(path);
    text[text.find("\"format_version\": 2") + 18] = '1';
    write_bytes(path, text);
    CHECK_THROWS_WITH(piano::load_checkpoint<float>(path), Contains("unexpected field 'checksum'"));
}

TEST_CASE("non-finite parameters and optimizer state are refused", "[io][checkpoint][integrity]") {
    TempDir dir("checkpoint");
    const fs::path path = dir / "ck";
    Checkpoint<float> c = sample_checkpoint<float>();
    SECTION("a float of 1e39 in a JSON file is inf, which is refused") {
        piano::save_checkpoint(path, c, CheckpointFormat::json);
        std::string text = as_version_1(read_bytes(path));  // no checksum to stop it first
        const std::string third = "0.3333333432674408";     // encoder.weight (1,1) = 1/3 as float
        REQUIRE(text.find(third) != std::string::npos);
        text.replace(text.find(third), third.size(), "1e39");
        write_bytes(path, text);
        CHECK_THROWS_WITH(piano::load_checkpoint<float>(path),
                          Contains("parameter 'encoder.weight' holds inf at entry (1,1), which is not finite"));
    }
    SECTION("save_checkpoint refuses to write what load_checkpoint would refuse") {
        c.optimizer->slots.begin()->second[0](0, 0) = std::numeric_limits<float>::quiet_NaN();
        CHECK_THROWS_WITH(piano::save_checkpoint(path, c),
                          Contains("optimizer state 0 of") && Contains("nan at entry (0,0)"));
        CHECK_FALSE(fs::exists(path));
    }
    SECTION("Adam refuses a negative second moment before changing anything") {
        std::mt19937_64 rng(7);
        Net<float> net(rng);
        piano::Adam<float> adam(net.named_parameters(), piano::AdamOptions{});
        one_step(net, adam);
        const piano::OptimizerState<float> before = adam.state();
        piano::OptimizerState<float> bad = before;
        bad.slots.at("head.bias")[1](0, 0) = -1.0f;
        CHECK_THROWS_WITH(adam.load_state(bad), Contains("'head.bias' slot exp_avg_sq holds -1") &&
                                                    Contains("never negative"));
        CHECK(adam.state().slots.at("head.bias")[1](0, 0) == before.slots.at("head.bias")[1](0, 0));
    }
}
