// Layer normalisation: gradients into x, gain and bias; values; shape errors.
#include <catch2/catch.hpp>

#include <piano/core/gradcheck.hpp>
#include <piano/ops/layer_norm.hpp>

#include <support/test_helpers.hpp>

#include <cmath>

using piano::Matrix;
using piano::Tensor;
using piano::testing::random_tensor;
using Inputs = std::vector<Tensor<double>>;

TEST_CASE("layer_norm passes the gradient check for x, gain and bias", "[ops][layer_norm]") {
    auto f = [](const Inputs& in) { return piano::layer_norm(in[0], in[1], in[2]); };
    SECTION("random gain and bias") {
        auto r = piano::check_gradients(f, {random_tensor(4, 5, 1), random_tensor(1, 5, 2), random_tensor(1, 5, 3)});
        INFO(r.message);
        CHECK(r.ok);
    }
    SECTION("rows far from zero mean, a large eps") {
        auto g = [](const Inputs& in) { return piano::layer_norm(in[0], in[1], in[2], 0.5); };
        auto r = piano::check_gradients(
            g, {random_tensor(3, 6, 4, 3.0, 10.0), random_tensor(1, 6, 5), random_tensor(1, 6, 6)});
        INFO(r.message);
        CHECK(r.ok);
    }
}

TEST_CASE("layer_norm computes a hand-checked row", "[ops][layer_norm]") {
    // x = [1, 2, 3]: μ = 2, σ² = (1 + 0 + 1) / 3 = 2/3 (biased), x̂ = [-1, 0, 1] / √(2/3).
    Matrix<double> x(1, 3), gain(1, 3), bias(1, 3);
    x << 1, 2, 3;
    gain << 2, 1, 0.5;
    bias << 0, 1, -1;
    const double s = 1.0 / std::sqrt(2.0 / 3.0);  // 1.2247...
    Tensor<double> y = piano::layer_norm(Tensor<double>(x), Tensor<double>(gain), Tensor<double>(bias), 0.0);
    CHECK(y.value()(0, 0) == Approx(-2.0 * s));
    CHECK(y.value()(0, 1) == Approx(1.0));
    CHECK(y.value()(0, 2) == Approx(0.5 * s - 1.0));

    // The default eps (1e-5) enters under the square root.
    Tensor<double> d = piano::layer_norm(Tensor<double>(x), Tensor<double>::ones(1, 3), Tensor<double>::zeros(1, 3));
    CHECK(d.value()(0, 2) == Approx(1.0 / std::sqrt(2.0 / 3.0 + 1e-5)).epsilon(1e-12));
}

TEST_CASE("layer_norm rows have mean 0 and variance 1 with gain 1 and bias 0", "[ops][layer_norm]") {
    const Tensor<double> x = random_tensor(6, 16, 7, /*offset=*/3.0, /*stddev=*/5.0);
    Tensor<double> y = piano::layer_norm(x, Tensor<double>::ones(1, 16), Tensor<double>::zeros(1, 16), 0.0);
    for (piano::Index r = 0; r < y.rows(); ++r) {
        const auto row = y.value().row(r).array();
        const double mean = row.mean();
        CHECK(mean == Approx(0.0).margin(1e-12));
        CHECK((row - mean).square().mean() == Approx(1.0));
    }
    // In float with the default eps too.
    Tensor<float> xf(x.value().cast<float>());
    Tensor<float> yf = piano::layer_norm(xf, Tensor<float>::ones(1, 16), Tensor<float>::zeros(1, 16));
    CHECK(yf.value().rowwise().mean().cwiseAbs().maxCoeff() < 1e-5f);
    CHECK(yf.value().array().square().rowwise().mean().isApproxToConstant(1.0f, 1e-4f));
}

TEST_CASE("layer_norm of a constant row is finite", "[ops][layer_norm]") {
    Tensor<double> x(Matrix<double>::Constant(2, 3, 4.0), true);
    Tensor<double> y = piano::layer_norm(x, Tensor<double>::ones(1, 3), Tensor<double>::zeros(1, 3));
    CHECK(y.value().isZero());  // σ² = 0: eps keeps 1/√(σ² + eps) finite
    y.backward(Matrix<double>::Ones(2, 3));
    CHECK(x.grad().allFinite());
}

TEST_CASE("layer_norm rejects gain and bias that are not [1,C]", "[ops][layer_norm][errors]") {
    const Tensor<double> x = Tensor<double>::zeros(2, 4);
    const Tensor<double> ok = Tensor<double>::ones(1, 4);
    CHECK_THROWS_AS(piano::layer_norm(x, Tensor<double>::ones(1, 3), ok), piano::ShapeError);
    CHECK_THROWS_WITH(piano::layer_norm(x, Tensor<double>::ones(1, 3), ok),
                      Catch::StartsWith("layer_norm") && Catch::Contains("gain [1,3]") && Catch::Contains("[1,4]") &&
                          Catch::Contains("[2,4]"));
    CHECK_THROWS_WITH(piano::layer_norm(x, ok, Tensor<double>::zeros(2, 4)),
                      Catch::StartsWith("layer_norm") && Catch::Contains("bias [2,4]") && Catch::Contains("[1,4]"));
    CHECK_THROWS_AS(piano::layer_norm(Tensor<double>::zeros(2, 0), Tensor<double>::ones(1, 0),
                                      Tensor<double>::zeros(1, 0)),
                    piano::ShapeError);
    CHECK_THROWS_WITH(piano::layer_norm(Tensor<double>::zeros(2, 0), Tensor<double>::ones(1, 0),
                                        Tensor<double>::zeros(1, 0)),
                      Catch::StartsWith("layer_norm") && Catch::Contains("[2,0]"));
}
