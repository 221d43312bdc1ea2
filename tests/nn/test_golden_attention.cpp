// MultiHeadAttention and TransformerEncoderLayer against PyTorch (tests/golden/golden_attention.py):
// forward, attention weights, input gradients and every parameter gradient, in double.
#include <catch2/catch.hpp>

#include <piano/nn/attention.hpp>
#include <piano/nn/transformer.hpp>

#include <support/golden.hpp>

#include <random>
#include <string>

using piano::Index;
using piano::Mask;
using piano::Matrix;
using piano::Tensor;
using piano::testing::GoldenFixture;
using piano::testing::kGoldenTolerance;
using piano::testing::max_relative_difference;

namespace {

std::string fixture_path(const std::string& name) { return std::string(PIANO_TEST_FIXTURES) + "/golden/" + name; }

std::vector<Index> offsets_from(const Matrix<double>& row) {
    std::vector<Index> out;
    for (Index i = 0; i < row.size(); ++i) out.push_back(static_cast<Index>(row(0, i)));
    return out;
}

Mask mask_from(const Matrix<double>& column) { return (column.array() != 0.0); }

/// Every parameter of m takes the fixture's "param.<name>", so the C++ layer holds
/// PyTorch's weights.
void load_parameters(const piano::Module<double>& m, const GoldenFixture& fx) {
    for (auto [name, p] : m.named_parameters()) {
        const Matrix<double>& value = fx["param." + name];
        INFO(name);
        REQUIRE(value.rows() == p.rows());
        REQUIRE(value.cols() == p.cols());
        p.mutable_value() = value;
    }
}

/// Every parameter's gradient against the fixture's "grad.<name>".
void check_parameter_gradients(const piano::Module<double>& m, const GoldenFixture& fx) {
    for (const auto& [name, p] : m.named_parameters()) {
        INFO("gradient of " << name);
        CHECK(max_relative_difference(p.grad(), fx["grad." + name]) < kGoldenTolerance);
    }
}

}  // namespace

TEST_CASE("golden: ragged masked cross-attention matches PyTorch", "[nn][attention][golden]") {
    const GoldenFixture fx(fixture_path("attention_mha.txt"));
    std::mt19937_64 rng(1);
    piano::MultiHeadAttention<double> mha(8, 2, rng);
    load_parameters(mha, fx);

    Tensor<double> query(fx["query"], true), key(fx["key"], true), value(fx["value"], true);
    const Mask key_mask = mask_from(fx["key_mask"]);
    piano::AttentionWeights<double> weights;
    Tensor<double> out = mha.forward(query, key, value, offsets_from(fx["query_offsets"]),
                                     offsets_from(fx["key_offsets"]), &key_mask, &weights);
    CHECK(max_relative_difference(out.value(), fx["output"]) < kGoldenTolerance);
    for (std::size_t s = 0; s < weights.segments.size(); ++s) {
        INFO("weights of segment " << s);
        CHECK(max_relative_difference(weights.segments[s], fx["weights." + std::to_string(s)]) < kGoldenTolerance);
    }

    out.backward(fx["upstream"]);
    CHECK(max_relative_difference(query.grad(), fx["grad.query"]) < kGoldenTolerance);
    CHECK(max_relative_difference(key.grad(), fx["grad.key"]) < kGoldenTolerance);
    CHECK(max_relative_difference(value.grad(), fx["grad.value"]) < kGoldenTolerance);
    check_parameter_gradients(mha, fx);
}

TEST_CASE("golden: ragged pre-LN TransformerEncoderLayer matches PyTorch", "[nn][transformer][golden]") {
    const GoldenFixture fx(fixture_path("attention_encoder_layer.txt"));
    std::mt19937_64 rng(2);
    piano::TransformerEncoderLayer<double> layer(8, 2, 16, 0.0, rng);
    load_parameters(layer, fx);

    Tensor<double> x(fx["x"], true);
    const Mask key_mask = mask_from(fx["key_mask"]);
    Tensor<double> out = layer.forward(x, offsets_from(fx["offsets"]), &key_mask);
    CHECK(max_relative_difference(out.value(), fx["output"]) < kGoldenTolerance);

    out.backward(fx["upstream"]);
    CHECK(max_relative_difference(x.grad(), fx["grad.x"]) < kGoldenTolerance);
    check_parameter_gradients(layer, fx);
}
