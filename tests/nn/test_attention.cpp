// MultiHeadAttention on ragged batches, and the pre-LN transformer encoder built on it.
#include <catch2/catch.hpp>

#include <piano/core/gradcheck.hpp>
#include <piano/nn/attention.hpp>
#include <piano/nn/transformer.hpp>

#include <support/test_helpers.hpp>

#include <cmath>
#include <random>

using piano::Index;
using piano::Mask;
using piano::Matrix;
using piano::Tensor;
using piano::testing::random_tensor;
using piano::testing::randomize;
using piano::testing::with_parameters;
using Inputs = std::vector<Tensor<double>>;

namespace {

Mask column_mask(std::initializer_list<bool> flags) {
    Mask m(static_cast<Index>(flags.size()), 1);
    Index i = 0;
    for (bool f : flags) m(i++, 0) = f;
    return m;
}

// The ragged cross-attention batch used below: 3 segments with 2, 1, 2 queries and 3, 0, 2
// keys (segment 1 has nothing to attend to).
const std::vector<Index> kQueryOffsets = {0, 2, 3, 5};
const std::vector<Index> kKeyOffsets = {0, 3, 3, 5};

}  // namespace

TEST_CASE("MultiHeadAttention rejects d_model not divisible by heads, naming both", "[nn][attention][errors]") {
    std::mt19937_64 rng(1);
    CHECK_THROWS_AS(piano::MultiHeadAttention<double>(10, 3, rng), std::invalid_argument);
    CHECK_THROWS_WITH(piano::MultiHeadAttention<double>(10, 3, rng),
                      Catch::Contains("d_model 10") && Catch::Contains("heads 3"));
    CHECK_THROWS_WITH(piano::MultiHeadAttention<double>(8, 0, rng), Catch::Contains("heads 0"));
}

TEST_CASE("MultiHeadAttention parameter names and shapes", "[nn][attention]") {
    std::mt19937_64 rng(2);
    piano::MultiHeadAttention<double> mha(8, 2, rng, 0.0, 12);
    std::vector<std::string> names;
    for (const auto& [name, p] : mha.named_parameters()) names.push_back(name);
    CHECK(names == std::vector<std::string>{"w_q.weight", "w_q.bias", "w_k.weight", "w_k.bias", "w_v.weight",
                                            "w_v.bias", "w_o.weight", "w_o.bias"});
    CHECK(mha.w_v().weight.rows() == 12);
    CHECK(mha.d_head() == 4);
}

TEST_CASE("ragged self-attention gradients w.r.t. input and parameters, with a key mask", "[nn][attention]") {
    std::mt19937_64 rng(3);
    piano::MultiHeadAttention<double> mha(4, 2, rng);
    randomize(mha, 4);
    const std::vector<Index> offsets = {0, 2, 3, 6};  // lengths 2, 1, 3
    const Mask mask = column_mask({true, true, true, true, false, true});
    auto f = [&](const Inputs& in) { return mha.forward(in[0], in[0], in[0], offsets, offsets, &mask); };
    const auto r = piano::check_gradients(f, with_parameters({random_tensor(6, 4, 5)}, mha));
    INFO(r.message);
    CHECK(r.ok);
}

TEST_CASE("ragged cross-attention gradients, including a segment with no keys", "[nn][attention]") {
    std::mt19937_64 rng(6);
    piano::MultiHeadAttention<double> mha(4, 2, rng, 0.0, 6);  // values wider than d_model
    randomize(mha, 7);
    const Mask mask = column_mask({true, false, true, true, true});
    auto f = [&](const Inputs& in) {
        return mha.forward(in[0], in[1], in[2], kQueryOffsets, kKeyOffsets, &mask);
    };
    const Inputs data = {random_tensor(5, 4, 8), random_tensor(5, 4, 9), random_tensor(5, 6, 10)};
    const auto r = piano::check_gradients(f, with_parameters(data, mha));
    INFO(r.message);
    CHECK(r.ok);
}

TEST_CASE("queries with no key, or only masked keys, get exact zeros", "[nn][attention]") {
    std::mt19937_64 rng(11);
    piano::MultiHeadAttention<double> mha(4, 2, rng);
    randomize(mha, 12);
    Tensor<double> q = random_tensor(5, 4, 13);
    q.set_requires_grad(true);
    const Tensor<double> kv = random_tensor(5, 4, 14);

    // Segment 1 has no keys; segment 2's keys are all masked.
    const Mask mask = column_mask({true, true, true, false, false});
    piano::AttentionWeights<double> w;
    Tensor<double> out = mha.forward(q, kv, kv, kQueryOffsets, kKeyOffsets, &mask, &w);
    CHECK(out.value().allFinite());
    CHECK(out.value().middleRows(0, 2).cwiseAbs().maxCoeff() > 0.0);
    CHECK(out.value().middleRows(2, 3) == Matrix<double>::Zero(3, 4));
    CHECK(w.segments[1].rows() == 2 * 1);
    CHECK(w.segments[1].cols() == 0);
    CHECK(w.segments[2] == Matrix<double>::Zero(2 * 2, 2));

    out.backward(Matrix<double>::Ones(5, 4));
    CHECK(q.grad().allFinite());
    CHECK(q.grad().middleRows(2, 3) == Matrix<double>::Zero(3, 4));
}

TEST_CASE("a segment's output depends only on its own keys", "[nn][attention]") {
    std::mt19937_64 rng(15);
    piano::MultiHeadAttention<double> mha(4, 2, rng);
    const Tensor<double> q = random_tensor(5, 4, 16);
    const Tensor<double> kv = random_tensor(5, 4, 17);
    const std::vector<Index> key_offsets = {0, 2, 5, 5};  // segment 1 has keys 2..4
    const Matrix<double> before = mha.forward(q, kv, kv, kQueryOffsets, key_offsets).value();

    Tensor<double> changed = kv.detach();
    changed.mutable_value().middleRows(2, 3) = random_tensor(3, 4, 18).value();
    const Matrix<double> after = mha.forward(q, changed, changed, kQueryOffsets, key_offsets).value();
    CHECK(after.middleRows(0, 2) == before.middleRows(0, 2));  // segment 0: bit for bit the same
    CHECK(after.row(2) != before.row(2));                      // segment 1 does see the change
}

TEST_CASE("a ragged batch gives the same rows as each list alone", "[nn][attention]") {
    std::mt19937_64 rng(19);
    piano::MultiHeadAttention<double> mha(8, 4, rng);
    const Tensor<double> x = random_tensor(7, 8, 20);
    const std::vector<Index> offsets = {0, 3, 4, 7};
    const Matrix<double> batched = mha.forward(x, x, x, offsets, offsets).value();
    for (std::size_t s = 0; s + 1 < offsets.size(); ++s) {
        const Index n = offsets[s + 1] - offsets[s];
        const Tensor<double> alone = piano::slice_rows(x, offsets[s], n).detach();
        const Matrix<double> y = mha.forward(alone, alone, alone, {0, n}, {0, n}).value();
        CHECK((y - batched.middleRows(offsets[s], n)).cwiseAbs().maxCoeff() < 1e-12);
    }
}

TEST_CASE("masked keys change nothing and get weight zero", "[nn][attention]") {
    std::mt19937_64 rng(21);
    piano::MultiHeadAttention<double> mha(4, 2, rng);
    const Tensor<double> x = random_tensor(5, 4, 22);
    const std::vector<Index> offsets = {0, 2, 5};
    const Mask mask = column_mask({true, true, true, false, true});
    piano::AttentionWeights<double> w;
    const Matrix<double> before = mha.forward(x, x, x, offsets, offsets, &mask, &w).value();
    CHECK(w.segments[1].col(1) == Matrix<double>::Zero(2 * 3, 1));

    // Change the masked token's key and value (but not its query): no other row moves.
    Tensor<double> kv = x.detach();
    kv.mutable_value().row(3) = random_tensor(1, 4, 23).value();
    const Matrix<double> after = mha.forward(x, kv, kv, offsets, offsets, &mask).value();
    CHECK((after - before).cwiseAbs().maxCoeff() < 1e-14);
}

TEST_CASE("attention weights: layout, row sums and the math", "[nn][attention]") {
    std::mt19937_64 rng(24);
    piano::MultiHeadAttention<double> mha(4, 2, rng);
    randomize(mha, 25);
    const Tensor<double> q = random_tensor(5, 4, 26), kv = random_tensor(5, 4, 27);
    const std::vector<Index> key_offsets = {0, 3, 4, 5};
    piano::AttentionWeights<double> w;
    mha.forward(q, kv, kv, kQueryOffsets, key_offsets, nullptr, &w);
    REQUIRE(w.heads == 2);
    REQUIRE(w.segments.size() == 3);
    CHECK(w.segments[0].rows() == 2 * 2);
    CHECK(w.segments[0].cols() == 3);
    CHECK(w.queries(0) == 2);
    for (const auto& m : w.segments) {
        for (Index r = 0; r < m.rows(); ++r) CHECK(m.row(r).sum() == Approx(1.0).epsilon(1e-12));
    }
    CHECK(w.mean_over_heads(0).rows() == 2);

    // Head 1 of segment 0, from the definition: softmax((q W_q + b_q)_1 (k W_k + b_k)_1ᵀ / √2).
    const Matrix<double> Q = ((q.value() * mha.w_q().weight.value()).rowwise() + mha.w_q().bias.value().row(0))
                                 .block(0, 2, 2, 2);
    const Matrix<double> K = ((kv.value() * mha.w_k().weight.value()).rowwise() + mha.w_k().bias.value().row(0))
                                 .block(0, 2, 3, 2);
    Matrix<double> expected = (Q * K.transpose() / std::sqrt(2.0)).array().exp().matrix();
    for (Index r = 0; r < expected.rows(); ++r) expected.row(r) /= expected.row(r).sum();
    CHECK((w.head(0, 1) - expected).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("attention dropout acts in training only", "[nn][attention]") {
    std::mt19937_64 rng(28);
    piano::MultiHeadAttention<double> with_dropout(4, 2, rng, 0.5);
    const Tensor<double> x = random_tensor(6, 4, 29);
    const std::vector<Index> offsets = {0, 6};
    piano::AttentionWeights<double> w;
    const Matrix<double> a = with_dropout.forward(x, x, x, offsets, offsets, nullptr, &w).value();
    const Matrix<double> b = with_dropout.forward(x, x, x, offsets, offsets).value();
    CHECK(a != b);
    for (Index r = 0; r < w.segments[0].rows(); ++r) CHECK(w.segments[0].row(r).sum() == Approx(1.0));
    with_dropout.eval();
    CHECK(with_dropout.forward(x, x, x, offsets, offsets).value() ==
          with_dropout.forward(x, x, x, offsets, offsets).value());
}

TEST_CASE("MultiHeadAttention shape errors name the argument", "[nn][attention][errors]") {
    std::mt19937_64 rng(30);
    piano::MultiHeadAttention<double> mha(4, 2, rng);
    const Tensor<double> x = random_tensor(5, 4, 31);
    const std::vector<Index> offsets = {0, 2, 5};
    CHECK_THROWS_WITH(mha.forward(random_tensor(5, 3, 32), x, x, offsets, offsets), Catch::Contains("query [5,3]"));
    CHECK_THROWS_WITH(mha.forward(x, x, x, {0, 2, 4}, offsets), Catch::Contains("query_offsets"));
    CHECK_THROWS_WITH(mha.forward(x, x, x, offsets, {0, 5}), Catch::Contains("key_offsets has 2"));
    const Mask wrong = column_mask({true, true});
    CHECK_THROWS_WITH(mha.forward(x, x, x, offsets, offsets, &wrong), Catch::Contains("key_mask [2,1]"));
}

TEST_CASE("TransformerEncoderLayer gradients w.r.t. input and parameters", "[nn][transformer]") {
    std::mt19937_64 rng(33);
    piano::TransformerEncoderLayer<double> layer(4, 2, 8, 0.0, rng);
    randomize(layer, 34);
    const std::vector<Index> offsets = {0, 2, 5};
    const Mask mask = column_mask({true, true, false, true, true});
    auto f = [&](const Inputs& in) { return layer.forward(in[0], offsets, &mask); };
    const auto r = piano::check_gradients(f, with_parameters({random_tensor(5, 4, 35)}, layer));
    INFO(r.message);
    CHECK(r.ok);
}

TEST_CASE("TransformerEncoder: gradients through two layers and the final norm", "[nn][transformer]") {
    std::mt19937_64 rng(36);
    piano::TransformerEncoder<double> enc(2, 4, 2, 8, 0.0, rng);
    randomize(enc, 37);
    const std::vector<Index> offsets = {0, 3, 3, 5};
    std::vector<piano::AttentionWeights<double>> weights;
    auto f = [&](const Inputs& in) { return enc.forward(in[0], offsets, nullptr, &weights); };
    const auto r = piano::check_gradients(f, with_parameters({random_tensor(5, 4, 38)}, enc));
    INFO(r.message);
    CHECK(r.ok);
    CHECK(weights.size() == 2);
}

TEST_CASE("TransformerEncoder parameter names", "[nn][transformer]") {
    std::mt19937_64 rng(39);
    piano::TransformerEncoder<double> enc(2, 8, 2, 16, 0.1, rng);
    const auto named = enc.named_parameters();
    REQUIRE(named.size() == 2 * 16 + 2);
    CHECK(named.front().first == "layers.0.attn.w_q.weight");
    std::vector<std::string> layer0;
    for (std::size_t i = 0; i < 16; ++i) layer0.push_back(named[i].first);
    CHECK(layer0 == std::vector<std::string>{
                        "layers.0.attn.w_q.weight", "layers.0.attn.w_q.bias", "layers.0.attn.w_k.weight",
                        "layers.0.attn.w_k.bias", "layers.0.attn.w_v.weight", "layers.0.attn.w_v.bias",
                        "layers.0.attn.w_o.weight", "layers.0.attn.w_o.bias", "layers.0.ffn1.weight",
                        "layers.0.ffn1.bias", "layers.0.ffn2.weight", "layers.0.ffn2.bias",
                        "layers.0.norm1.weight", "layers.0.norm1.bias", "layers.0.norm2.weight",
                        "layers.0.norm2.bias"});
    CHECK(named[16].first == "layers.1.attn.w_q.weight");
    CHECK(named[named.size() - 2].first == "norm.weight");
    CHECK(named.back().first == "norm.bias");

    piano::TransformerEncoder<double> bare(1, 8, 2, 16, 0.0, rng, false);
    CHECK(bare.named_parameters().back().first == "layers.0.norm2.bias");
}
