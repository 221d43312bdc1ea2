// Embedding, LayerNorm, Dropout, MLP, and the Module rules they rely on (names, modes).
#include <catch2/catch.hpp>

#include <piano/core/gradcheck.hpp>
#include <piano/nn/dropout.hpp>
#include <piano/nn/embedding.hpp>
#include <piano/nn/layer_norm.hpp>
#include <piano/nn/mlp.hpp>
#include <piano/nn/transformer.hpp>

#include <support/test_helpers.hpp>

#include <functional>
#include <random>

using piano::Index;
using piano::Matrix;
using piano::Tensor;
using piano::testing::random_tensor;
using piano::testing::randomize;
using piano::testing::with_parameters;
using Inputs = std::vector<Tensor<double>>;

namespace {

/// Calls `check` on m and every module below it.
void visit(const piano::Module<double>& m, const std::function<void(const piano::Module<double>&)>& check) {
    check(m);
    for (const auto& [name, child] : m.children()) visit(*child, check);
}

/// A module that exposes the protected registration calls, to test the name rules.
struct Probe : piano::Module<double> {
    using piano::Module<double>::register_parameter;
    using piano::Module<double>::register_module;
};

}  // namespace

TEST_CASE("Embedding maps ids to rows, with row 0 for unknown ids", "[nn][embedding]") {
    std::mt19937_64 rng(1);
    piano::Embedding<double> plain(5, 3, rng);
    CHECK(plain.row_of(0) == 0);
    CHECK(plain.row_of(4) == 4);
    CHECK(plain.row_of(5) == 0);
    CHECK(plain.row_of(1000) == 0);

    piano::EmbeddingOptions hashed_options;
    hashed_options.hash_buckets = true;
    piano::Embedding<double> hashed(5, 3, rng, hashed_options);
    CHECK(hashed.row_of(3) == 3);             // in range: unchanged
    CHECK(hashed.row_of(5) == 1 + 5 % 4);     // 2
    CHECK(hashed.row_of(1003) == 1 + 1003 % 4);
    for (Index id = 5; id < 50; ++id) CHECK(hashed.row_of(id) >= 1);  // never the unknown row

    const Tensor<double> out = plain.forward({2, 7, 0, 2});
    REQUIRE(out.rows() == 4);
    REQUIRE(out.cols() == 3);
    CHECK(out.value().row(0) == plain.weight.value().row(2));
    CHECK(out.value().row(1) == plain.weight.value().row(0));
    CHECK(out.value().row(2) == plain.weight.value().row(0));
}

TEST_CASE("Embedding rejects negative ids and bad sizes, naming the value", "[nn][embedding][errors]") {
    std::mt19937_64 rng(2);
    piano::Embedding<double> e(4, 2, rng);
    CHECK_THROWS_AS(e.forward({1, -3}), std::invalid_argument);
    CHECK_THROWS_WITH(e.forward({1, -3}), Catch::Contains("-3") && Catch::Contains("position 1"));
    CHECK_THROWS_WITH(piano::Embedding<double>(0, 2, rng), Catch::Contains("rows 0"));
    piano::EmbeddingOptions hashed;
    hashed.hash_buckets = true;
    CHECK_THROWS_WITH(piano::Embedding<double>(1, 2, rng, hashed), Catch::Contains("rows 1"));
}

TEST_CASE("Embedding gradient is row-sparse and adds repeated rows", "[nn][embedding]") {
    std::mt19937_64 rng(3);
    piano::Embedding<double> e(6, 3, rng);
    const std::vector<Index> ids = {1, 4, 1, 9};  // 9 reads row 0
    auto f = [&](const Inputs&) { return e.forward(ids); };
    const auto r = piano::check_gradients(f, {e.weight});
    INFO(r.message);
    CHECK(r.ok);

    // From a zeroed gradient, a backward touches only the rows the ids read.
    e.zero_grad();
    Tensor<double> out = e.forward(ids);
    out.backward(Matrix<double>::Ones(4, 3));
    CHECK(e.weight.node()->grad_is_row_sparse);
    CHECK(e.weight.node()->touched_rows == std::vector<Index>{1, 4, 1, 0});
    CHECK(e.weight.grad().row(1) == Matrix<double>::Constant(1, 3, 2.0));
    CHECK(e.weight.grad().row(2) == Matrix<double>::Zero(1, 3));

    const auto named = e.named_parameters();
    REQUIRE(named.size() == 1);
    CHECK(named[0].first == "weight");
}

TEST_CASE("LayerNorm gradients w.r.t. input, gain and bias", "[nn][layer_norm]") {
    piano::LayerNorm<double> norm(5);
    CHECK(norm.weight.value() == Matrix<double>::Ones(1, 5));
    CHECK(norm.bias.value() == Matrix<double>::Zero(1, 5));
    randomize(norm, 4);
    auto f = [&](const Inputs& in) { return norm.forward(in[0]); };
    const auto r = piano::check_gradients(f, with_parameters({random_tensor(3, 5, 5)}, norm));
    INFO(r.message);
    CHECK(r.ok);
    const auto named = norm.named_parameters();
    REQUIRE(named.size() == 2);
    CHECK(named[0].first == "weight");
    CHECK(named[1].first == "bias");
    CHECK_THROWS_AS(norm.forward(random_tensor(3, 4, 6)), piano::ShapeError);
}

TEST_CASE("Dropout is the identity in eval mode and drops in training", "[nn][dropout]") {
    piano::Dropout<double> drop(0.5, 7);
    const Tensor<double> x = Tensor<double>::ones(20, 10);
    CHECK(drop.is_training());
    const Matrix<double> y = drop.forward(x).value();
    const Index zeros = (y.array() == 0.0).count();
    CHECK(zeros > 50);
    CHECK(zeros < 150);
    CHECK(((y.array() == 0.0) || (y.array() == 2.0)).all());  // kept entries scaled by 1/(1-p)

    drop.eval();
    const Tensor<double> z = drop.forward(x);
    CHECK(z.node() == x.node());  // the same handle: no node recorded

    CHECK_THROWS_AS(piano::Dropout<double>(1.0), std::invalid_argument);
    CHECK_THROWS_WITH(piano::Dropout<double>(-0.25), Catch::Contains("-0.25"));
}

TEST_CASE("MLP gradients w.r.t. input and every parameter, for each activation", "[nn][mlp]") {
    for (auto act : {piano::Activation::relu, piano::Activation::gelu, piano::Activation::tanh}) {
        DYNAMIC_SECTION("activation " << static_cast<int>(act)) {
            std::mt19937_64 rng(8);
            piano::MLP<double> mlp({4, 6, 5, 2}, rng, act);
            randomize(mlp, 9);
            auto f = [&](const Inputs& in) { return mlp.forward(in[0]); };
            const auto r = piano::check_gradients(f, with_parameters({random_tensor(3, 4, 10)}, mlp));
            INFO(r.message);
            CHECK(r.ok);
        }
    }
}

TEST_CASE("MLP shapes, parameter names and errors", "[nn][mlp]") {
    std::mt19937_64 rng(11);
    piano::MLP<double> mlp({4, 6, 2}, rng, piano::Activation::relu, 0.5);
    CHECK(mlp.in_features() == 4);
    CHECK(mlp.out_features() == 2);
    std::vector<std::string> names;
    for (const auto& [name, p] : mlp.named_parameters()) names.push_back(name);
    CHECK(names == std::vector<std::string>{"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"});
    CHECK(mlp.forward(random_tensor(3, 4, 12)).cols() == 2);
    CHECK_THROWS_WITH(piano::MLP<double>({4}, rng), Catch::Contains("at least 2"));

    // With dropout 0.5, eval mode is deterministic; training mode draws new masks.
    const Tensor<double> x = random_tensor(6, 4, 13);
    mlp.eval();
    CHECK(mlp.forward(x).value() == mlp.forward(x).value());
    mlp.train();
    CHECK(mlp.forward(x).value() != mlp.forward(x).value());
}

TEST_CASE("Module names: empty, dotted and duplicate names are rejected by name", "[nn][module][errors]") {
    Probe m;
    m.register_parameter("w", Tensor<double>::zeros(1, 1));
    CHECK_THROWS_AS(m.register_parameter("", Tensor<double>::zeros(1, 1)), std::invalid_argument);
    CHECK_THROWS_WITH(m.register_parameter("", Tensor<double>::zeros(1, 1)), Catch::Contains("empty"));
    CHECK_THROWS_WITH(m.register_parameter("a.b", Tensor<double>::zeros(1, 1)), Catch::Contains("'a.b'"));
    CHECK_THROWS_WITH(m.register_parameter("w", Tensor<double>::zeros(1, 1)), Catch::Contains("'w'"));
    CHECK_THROWS_WITH(m.register_module("w", std::make_shared<piano::LayerNorm<double>>(2)), Catch::Contains("'w'"));
    CHECK_THROWS_WITH(m.register_module("x.y", std::make_shared<piano::LayerNorm<double>>(2)),
                      Catch::Contains("'x.y'"));
}

TEST_CASE("train() and eval() reach every module of an encoder", "[nn][module]") {
    std::mt19937_64 rng(14);
    piano::TransformerEncoder<double> enc(2, 4, 2, 8, 0.5, rng);
    int count = 0;
    visit(enc, [&](const piano::Module<double>& m) {
        CHECK(m.is_training());
        ++count;
    });
    CHECK(count > 10);
    enc.eval();
    visit(enc, [](const piano::Module<double>& m) { CHECK_FALSE(m.is_training()); });

    // Eval mode: every dropout is the identity, so two calls agree exactly.
    const Tensor<double> x = random_tensor(5, 4, 15);
    const std::vector<Index> offsets = {0, 2, 5};
    CHECK(enc.forward(x, offsets).value() == enc.forward(x, offsets).value());
    enc.train();
    visit(enc, [](const piano::Module<double>& m) { CHECK(m.is_training()); });
    CHECK(enc.forward(x, offsets).value() != enc.forward(x, offsets).value());
}
