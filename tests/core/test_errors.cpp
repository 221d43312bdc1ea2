// The exception types as an API (docs/errors.md): what each derives from, what a program
// can read from it, and one real message per type. docs/errors.md quotes these messages;
// a change to any of them fails here first, so the page cannot drift from the code.
#include <catch2/catch.hpp>

#include <piano/core/error.hpp>
#include <piano/data/jdsearch.hpp>
#include <piano/data/vocabulary.hpp>
#include <piano/io/checkpoint.hpp>
#include <piano/model/config.hpp>
#include <piano/nn/embedding.hpp>
#include <piano/ops/elementwise.hpp>
#include <piano/ops/matmul.hpp>
#include <piano/optim/adam.hpp>
#include <piano/optim/schedule.hpp>
#include <piano/optim/sgd.hpp>

#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>

// The families a program catches: ShapeError and ConfigError are bad arguments,
// DataError, CheckpointError and AnomalyError are failures of what was read or computed.
static_assert(std::is_base_of_v<std::invalid_argument, piano::ShapeError>);
static_assert(std::is_base_of_v<std::invalid_argument, piano::ConfigError>);
static_assert(std::is_base_of_v<std::runtime_error, piano::DataError>);
static_assert(std::is_base_of_v<std::runtime_error, piano::CheckpointError>);
static_assert(std::is_base_of_v<std::runtime_error, piano::AnomalyError>);

TEST_CASE("ShapeError names the op and both shapes", "[core][errors]") {
    const piano::Tensor<double> a(piano::Matrix<double>::Zero(2, 3)), b(piano::Matrix<double>::Zero(4, 5));
    CHECK_THROWS_AS(piano::matmul(a, b), piano::ShapeError);
    CHECK_THROWS_WITH(piano::matmul(a, b), "matmul: inner dimensions differ: [2,3] and [4,5]");
}

TEST_CASE("DataError: what() is FILE:LINE: field NAME: problem, and each part is readable", "[core][errors]") {
    try {
        piano::data::parse_request_line("q\tw1_w2\t0.0_7.0\t\t\t\t0", {"train.txt", 12});
        FAIL("no DataError");
    } catch (const piano::DataError& e) {
        CHECK(std::string(e.what()) ==
              "train.txt:12: field candidate_label_list: element [1] '7.0' is above max_label = 3 "
              "(labels: 0 none, 1 click, 2 cart, 3 purchase)");
        CHECK(e.file() == "train.txt");
        CHECK(e.line() == 12);
        CHECK(e.field() == "candidate_label_list");
    }
}

TEST_CASE("CheckpointError names the file and the problem", "[core][errors]") {
    std::istringstream text("model = piano\n");
    CHECK_THROWS_AS(piano::load_checkpoint<float>(text, "best.ckpt"), piano::CheckpointError);
    text.clear();
    text.seekg(0);
    CHECK_THROWS_WITH(piano::load_checkpoint<float>(text, "best.ckpt"),
                      Catch::StartsWith("load_checkpoint 'best.ckpt': not a piano checkpoint (magic \"model = \", "
                                        "expected \"PIANOCKP\")"));
}

TEST_CASE("ConfigError names the file, the key and the rule", "[core][errors]") {
    std::istringstream file("d_model = 16\nheads = 0\n");
    CHECK_THROWS_AS(piano::read_config(file, "model.conf"), piano::ConfigError);
    std::istringstream again("d_model = 16\nheads = 0\n");
    CHECK_THROWS_WITH(piano::read_config(again, "model.conf"), "model.conf: config key 'heads': 0 is below the minimum 1");
    std::istringstream typo("d_modle = 16\n");
    CHECK_THROWS_WITH(piano::read_config(typo, "model.conf"), "model.conf: unknown config key 'd_modle'");
}

TEST_CASE("AnomalyError names the op that made the first NaN or Inf", "[core][errors]") {
    piano::set_anomaly_detection(true);
    const piano::Tensor<double> zero(piano::Matrix<double>::Zero(1, 2));
    CHECK_THROWS_AS(zero / zero, piano::AnomalyError);
    CHECK_THROWS_WITH(zero / zero, "anomaly: div produced NaN or Inf in its output [1,2]");
    piano::set_anomaly_detection(false);
}

TEST_CASE("a caller's bug outside those families is a std::invalid_argument naming the value", "[core][errors]") {
    std::mt19937_64 rng(1);
    const piano::Embedding<double> table(4, 2, rng);
    CHECK_THROWS_AS(table.forward({1, -2}), std::invalid_argument);
    CHECK_THROWS_WITH(table.forward({1, -2}), "Embedding: id -2 (position 1) is negative; ids must be >= 0");
}

TEST_CASE("a vocabulary header with max_rows out of range is a DataError naming file and line", "[core][errors][messages]") {
    // -5 would pass std::stoull as 2^64 - 5, 99999999999 does not fit in 32-bit rows: both
    // once reached the constructor's ConfigError, which names no file (CLI exit 5, not 3).
    for (const std::string bad : {"-5", "99999999999", "+7", "1", "2147483648", "99999999999999999999999"}) {
        std::istringstream file("piano-vocabulary 1 max_rows=" + bad + "\na\n");
        INFO(bad);
        try {
            piano::data::Vocabulary::load(file, "terms.vocab");
            FAIL("no DataError");
        } catch (const piano::DataError& e) {
            CHECK(std::string(e.what()) == "terms.vocab:1: field max_rows: expected 0 (no cap) or an integer in "
                                           "[2, 2147483647], got '" + bad + "'");
        }
    }
    std::istringstream largest("piano-vocabulary 1 max_rows=2147483647\na\n");
    CHECK(piano::data::Vocabulary::load(largest, "terms.vocab").max_rows() == 2147483647u);
}

TEST_CASE("a NaN learning rate is refused naming the option and the NaN", "[core][errors][messages]") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH(piano::ConstantSchedule(nan), "ConstantSchedule: lr must be >= 0, got nan");
    CHECK_THROWS_WITH(piano::ConstantSchedule(-0.5), "ConstantSchedule: lr must be >= 0, got -0.5");
    piano::Tensor<double> w(piano::Matrix<double>::Zero(1, 1), true);
    piano::AdamOptions adam;
    adam.learning_rate = nan;
    CHECK_THROWS_WITH(piano::Adam<double>({{"w", w}}, adam), "adam: learning_rate must be >= 0, got nan");
    piano::SGDOptions sgd;
    sgd.weight_decay = -std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH(piano::SGD<double>({{"w", w}}, sgd), "sgd: weight_decay must be >= 0, got -inf");
}

TEST_CASE("bytes that do not print are escaped in DataError messages", "[core][errors][messages]") {
    // A NUL inside a label once ended what() there, hiding the rest of the message.
    const std::string line = std::string("q\tw1_w2\t0.0_1", 13) + std::string("\0x\x1b[2J", 6) + "\t\t\t\t0";
    try {
        piano::data::parse_request_line(line, {"train.txt", 3});
        FAIL("no DataError");
    } catch (const piano::DataError& e) {
        const std::string what = e.what();
        CHECK(what.find('\0') == std::string::npos);
        // The message goes on after the escaped field (the space), as it does for any other.
        CHECK_THAT(what, Catch::Contains("field candidate_label_list") && Catch::Contains("'1\\x00x\\x1B[2J' "));
        CHECK(what.size() == std::strlen(e.what()));
    }
    const piano::DataError tab("a\tb.txt", 1, "id", "bell \a, DEL \x7f, UTF-8 \xC3\xBC");
    CHECK(std::string(tab.what()) == "a\\x09b.txt:1: field id: bell \\x07, DEL \\x7F, UTF-8 \xC3\xBC");
    CHECK(tab.file() == "a\tb.txt");  // the parts stay as given
}
