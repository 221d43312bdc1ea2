// binary_cross_entropy_with_logits: values, stability, reductions, weights, masks, errors.
#include <catch2/catch.hpp>

#include <piano/core/gradcheck.hpp>
#include <piano/ops/loss.hpp>

#include <support/test_helpers.hpp>

#include <cmath>
#include <random>

using piano::BceOptions;
using piano::Index;
using piano::Mask;
using piano::Matrix;
using piano::Reduction;
using piano::Tensor;
using piano::testing::random_tensor;
using Inputs = std::vector<Tensor<double>>;

namespace {
/// Soft labels in [0,1].
Matrix<double> random_targets(Index r, Index c, unsigned seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    Matrix<double> y(r, c);
    for (Index k = 0; k < y.size(); ++k) y.data()[k] = u(rng);
    return y;
}

/// −y log σ(x) − (1−y) log(1−σ(x)), the textbook formula (fine for moderate x).
double naive_bce(double x, double y) {
    const double s = 1.0 / (1.0 + std::exp(-x));
    return -y * std::log(s) - (1.0 - y) * std::log(1.0 - s);
}

template <typename T>
Tensor<T> bce(const Tensor<T>& x, const Matrix<T>& y, const BceOptions<T>& options = {}) {
    return piano::binary_cross_entropy_with_logits(x, y, options);
}
}  // namespace

TEST_CASE("bce matches hand-computed values", "[ops][loss]") {
    Matrix<double> x(1, 3), y(1, 3);
    x << 0.0, 2.0, -1.0;
    y << 1.0, 0.0, 0.5;
    const double l0 = std::log(2.0);                // σ(0) = 1/2
    const double l1 = std::log(1.0 + std::exp(2.0));  // −log(1 − σ(2))
    const double l2 = 0.5 + std::log1p(std::exp(-1.0));
    const Tensor<double> none = bce(Tensor<double>(x), y, {{}, {}, Reduction::none});
    REQUIRE(none.rows() == 1);
    REQUIRE(none.cols() == 3);
    CHECK(none.value()(0, 0) == Approx(l0));
    CHECK(none.value()(0, 1) == Approx(l1));
    CHECK(none.value()(0, 2) == Approx(l2));
    CHECK(bce(Tensor<double>(x), y, {{}, {}, Reduction::sum}).item() == Approx(l0 + l1 + l2));
    CHECK(bce(Tensor<double>(x), y).item() == Approx((l0 + l1 + l2) / 3));
}

TEST_CASE("bce equals the naive formula for moderate logits", "[ops][loss]") {
    const Tensor<double> x = random_tensor(6, 5, 1, /*offset=*/0.0, /*stddev=*/3.0);
    const Matrix<double> y = random_targets(6, 5, 2);
    const Matrix<double> l = bce(x, y, {{}, {}, Reduction::none}).value();
    for (Index k = 0; k < l.size(); ++k) {
        CHECK(l.data()[k] == Approx(naive_bce(x.value().data()[k], y.data()[k])).epsilon(1e-10));
    }
}

TEST_CASE("bce stays finite at logits of +-1000 in float", "[ops][loss]") {
    Matrix<float> x(1, 4), y(1, 4);
    x << 1000.0f, -1000.0f, 1000.0f, -1000.0f;
    y << 0.0f, 1.0f, 1.0f, 0.0f;
    Tensor<float> logits(x, true);
    const Tensor<float> l = bce(logits, y, {{}, {}, Reduction::none});
    CHECK(l.value().allFinite());
    CHECK(l.value()(0, 0) == Approx(1000.0f));  // confidently wrong: ℓ ≈ |x|
    CHECK(l.value()(0, 1) == Approx(1000.0f));
    CHECK(l.value()(0, 2) == 0.0f);  // confidently right
    CHECK(l.value()(0, 3) == 0.0f);

    Tensor<float> mean = bce(logits, y);
    mean.backward();
    CHECK(logits.grad().allFinite());
    CHECK(logits.grad()(0, 0) == Approx(0.25f));  // (σ(x) − y) / 4 = (1 − 0) / 4
    CHECK(logits.grad()(0, 1) == Approx(-0.25f));
    CHECK(logits.grad()(0, 2) == Approx(0.0f).margin(1e-6));
}

TEST_CASE("bce gradients for every reduction, with weights and a mask", "[ops][loss]") {
    const Matrix<double> y = random_targets(4, 3, 3);
    Matrix<double> w = random_targets(4, 3, 4);
    w.array() += 0.5;
    Mask m = Mask::Constant(4, 3, true);
    m(0, 1) = false;
    m(3, 2) = false;
    for (auto reduction : {Reduction::mean, Reduction::sum, Reduction::none}) {
        for (int variant = 0; variant < 3; ++variant) {
            DYNAMIC_SECTION("reduction " << static_cast<int>(reduction) << " variant " << variant) {
                BceOptions<double> options;
                options.reduction = reduction;
                if (variant >= 1) options.weights = w;
                if (variant >= 2) options.mask = m;
                auto f = [&](const Inputs& in) { return bce(in[0], y, options); };
                auto r = piano::check_gradients(f, {random_tensor(4, 3, 5, /*offset=*/0.0, /*stddev=*/2.0)});
                INFO(r.message);
                CHECK(r.ok);
            }
        }
    }
}

TEST_CASE("bce mean divides by the number of kept entries", "[ops][loss]") {
    const Tensor<double> x = random_tensor(3, 4, 6);
    const Matrix<double> y = random_targets(3, 4, 7);
    BceOptions<double> options;
    options.weights = Matrix<double>::Constant(3, 4, 2.0);
    options.mask = Mask::Constant(3, 4, false);
    options.mask.row(1).setConstant(true);  // 4 kept entries
    const Matrix<double> per_entry = bce(x, y, {{}, {}, Reduction::none}).value();
    const double expected = 2.0 * per_entry.row(1).sum() / 4.0;  // not divided by Σw = 8
    CHECK(bce(x, y, options).item() == Approx(expected));
    options.reduction = Reduction::none;
    const Matrix<double> masked = bce(x, y, options).value();
    CHECK(masked.row(0).isZero(0));
    CHECK(masked.row(1).isApprox(2.0 * per_entry.row(1)));
}

TEST_CASE("bce with every entry masked is 0 with zero gradient", "[ops][loss]") {
    Tensor<double> x = random_tensor(2, 3, 8).set_requires_grad(true);
    Matrix<double> y = random_targets(2, 3, 9);
    y(0, 0) = 7.0;  // padding may hold anything: masked entries are not checked
    BceOptions<double> options;
    options.mask = Mask::Constant(2, 3, false);
    for (auto reduction : {Reduction::mean, Reduction::sum}) {
        options.reduction = reduction;
        x.zero_grad();
        Tensor<double> l = bce(x, y, options);
        CHECK(l.item() == 0.0);
        l.backward();
        CHECK(x.grad().isZero(0));
    }
    Tensor<double> empty = bce(Tensor<double>::zeros(0, 3, true), Matrix<double>(0, 3));
    CHECK(empty.item() == 0.0);
}

TEST_CASE("bce ignores NaN padding under the mask", "[ops][loss]") {
    Matrix<double> x(1, 2), y(1, 2);
    x << 0.5, std::nan("");
    y << 1.0, std::nan("");
    Tensor<double> logits(x, true);
    BceOptions<double> options;
    options.mask = Mask::Constant(1, 2, true);
    options.mask(0, 1) = false;
    Tensor<double> l = bce(logits, y, options);
    CHECK(l.item() == Approx(naive_bce(0.5, 1.0)));
    l.backward();
    CHECK(logits.grad().allFinite());
    CHECK(logits.grad()(0, 1) == 0.0);
}

TEST_CASE("bce rejects shapes that differ from the logits", "[ops][loss][errors]") {
    const Tensor<double> x = Tensor<double>::zeros(2, 3);
    const Matrix<double> y = Matrix<double>::Zero(2, 3);
    CHECK_THROWS_AS(bce(x, Matrix<double>(3, 2)), piano::ShapeError);
    CHECK_THROWS_WITH(bce(x, Matrix<double>(3, 2)), Catch::StartsWith("binary_cross_entropy_with_logits") &&
                                                        Catch::Contains("targets") && Catch::Contains("[3,2]") &&
                                                        Catch::Contains("[2,3]"));
    CHECK_THROWS_WITH(bce(x, y, {Matrix<double>::Ones(2, 1), {}, Reduction::mean}),
                      Catch::Contains("weights") && Catch::Contains("[2,1]") && Catch::Contains("[2,3]"));
    CHECK_THROWS_WITH(bce(x, y, {{}, Mask::Constant(1, 3, true), Reduction::sum}),
                      Catch::Contains("mask") && Catch::Contains("[1,3]") && Catch::Contains("[2,3]"));
}

TEST_CASE("bce rejects kept targets outside [0,1]", "[ops][loss][errors]") {
    const Tensor<double> x = Tensor<double>::zeros(2, 3);
    Matrix<double> y = Matrix<double>::Zero(2, 3);
    y(1, 2) = 3.0;  // a raw purchase label, not a click bit
    CHECK_THROWS_AS(bce(x, y), std::invalid_argument);
    CHECK_THROWS_WITH(bce(x, y), Catch::StartsWith("binary_cross_entropy_with_logits") &&
                                     Catch::Contains("(1,2)") && Catch::Contains("is 3"));
}
