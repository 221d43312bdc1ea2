// Inverted dropout: identity in eval, a scaled random mask in training.
#include <catch2/catch.hpp>

#include <piano/core/gradcheck.hpp>
#include <piano/ops/dropout.hpp>

#include <support/test_helpers.hpp>

#include <cmath>
#include <limits>
#include <random>

using piano::Index;
using piano::Matrix;
using piano::Tensor;
using piano::testing::random_tensor;
using Inputs = std::vector<Tensor<double>>;

TEST_CASE("dropout in eval, or with p = 0, returns its input handle", "[ops][dropout]") {
    std::mt19937_64 rng(1);
    const Tensor<double> x = random_tensor(3, 4, 2).set_requires_grad(true);
    const Tensor<double> eval = piano::dropout(x, 0.5, rng, false);
    CHECK(eval.node() == x.node());
    const Tensor<double> p0 = piano::dropout(x, 0.0, rng, true);
    CHECK(p0.node() == x.node());
    CHECK(rng() == std::mt19937_64(1)());  // no randomness was consumed
}

TEST_CASE("dropout zeroes or scales each entry by 1/(1-p)", "[ops][dropout]") {
    std::mt19937_64 rng(3);
    const Tensor<double> x = Tensor<double>::constant(4, 5, 2.0);
    const Tensor<double> y = piano::dropout(x, 0.2, rng, true);
    REQUIRE(y.rows() == 4);
    REQUIRE(y.cols() == 5);
    for (Index k = 0; k < y.size(); ++k) {
        const double v = y.value().data()[k];
        INFO("entry " << k << " = " << v);
        CHECK((v == 0.0 || v == Approx(2.0 / 0.8)));
    }
}

TEST_CASE("dropout keeps the expectation and drops about p of the entries", "[ops][dropout]") {
    std::mt19937_64 rng(4);
    const double p = 0.3;
    const Tensor<float> x = Tensor<float>::ones(200, 100);
    const Tensor<float> y = piano::dropout(x, p, rng, true);  // a double p for a float tensor
    const double dropped = static_cast<double>((y.value().array() == 0.0f).count()) / 20000.0;
    CHECK(dropped == Approx(p).margin(0.02));  // ~6 standard deviations
    CHECK(y.value().mean() == Approx(1.0).margin(0.03));
}

TEST_CASE("dropout is deterministic given the rng state", "[ops][dropout]") {
    std::mt19937_64 a(5), b(5);
    const Tensor<double> x = random_tensor(6, 7, 6);
    const Tensor<double> ya = piano::dropout(x, 0.5, a, true);
    const Tensor<double> yb = piano::dropout(x, 0.5, b, true);
    CHECK(ya.value() == yb.value());
    CHECK(piano::dropout(x, 0.5, a, true).value() != ya.value());  // the state moved on
}

TEST_CASE("dropout gradient uses the forward mask", "[ops][dropout]") {
    auto f = [](const Inputs& in) {
        std::mt19937_64 rng(7);  // a fresh generator per call: the same mask every time
        return piano::dropout(in[0], 0.4, rng, true);
    };
    auto r = piano::check_gradients(f, {random_tensor(5, 4, 8)});
    INFO(r.message);
    CHECK(r.ok);

    // The gradient is zero exactly where the output was dropped.
    std::mt19937_64 rng(9);
    Tensor<double> x = Tensor<double>::ones(3, 3, true);
    Tensor<double> y = piano::dropout(x, 0.5, rng, true);
    y.backward(Matrix<double>::Ones(3, 3));
    CHECK(x.grad() == y.value());
}

TEST_CASE("dropout rejects p outside 0 <= p < 1", "[ops][dropout][errors]") {
    std::mt19937_64 rng(1);
    const Tensor<double> x = Tensor<double>::zeros(2, 2);
    CHECK_THROWS_AS(piano::dropout(x, 1.0, rng, true), std::invalid_argument);
    CHECK_THROWS_WITH(piano::dropout(x, 1.0, rng, true), Catch::StartsWith("dropout") && Catch::Contains("got 1"));
    CHECK_THROWS_WITH(piano::dropout(x, -0.25, rng, false), Catch::Contains("got -0.25"));
    CHECK_THROWS_WITH(piano::dropout(x, std::numeric_limits<double>::quiet_NaN(), rng, true),
                      Catch::Contains("got nan"));
}
