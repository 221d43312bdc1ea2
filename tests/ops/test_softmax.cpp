// Row-wise softmax and log-softmax, with and without masks.
#include <catch2/catch.hpp>

#include <piano/core/gradcheck.hpp>
#include <piano/ops/softmax.hpp>

#include <support/test_helpers.hpp>

#include <cmath>
#include <random>

using piano::Mask;
using piano::Matrix;
using piano::Tensor;
using piano::testing::row;
using Inputs = std::vector<Tensor<double>>;

namespace {
// N(0, 2²) logits: wide enough that softmax rows range from near-uniform to peaked.
Tensor<double> random_logits(piano::Index r, piano::Index c, unsigned seed) {
    return piano::testing::random_tensor(r, c, seed, /*offset=*/0.0, /*stddev=*/2.0);
}

// A [3,4] mask with a fully kept row, a partly kept row and a fully dropped row.
Mask full_mask() {
    Mask m(3, 4);
    m << true, true, true, true,  //
        false, true, false, true,  //
        false, false, false, false;
    return m;
}

// A [1,4] mask shared by every row.
Mask shared_mask() {
    Mask m(1, 4);
    m << true, false, true, true;
    return m;
}
}  // namespace

TEST_CASE("softmax and log_softmax pass the gradient check", "[ops][softmax]") {
    const Tensor<double> x = random_logits(3, 4, 1);
    SECTION("softmax") {
        auto r = piano::check_gradients([](const Inputs& in) { return piano::softmax(in[0]); }, {x});
        INFO(r.message);
        CHECK(r.ok);
    }
    SECTION("log_softmax") {
        auto r = piano::check_gradients([](const Inputs& in) { return piano::log_softmax(in[0]); }, {x});
        INFO(r.message);
        CHECK(r.ok);
    }
}

TEST_CASE("masked softmax and log_softmax pass the gradient check", "[ops][softmax][mask]") {
    const Tensor<double> x = random_logits(3, 4, 2);
    for (const Mask& mask : {shared_mask(), full_mask()}) {
        DYNAMIC_SECTION("mask [" << mask.rows() << "," << mask.cols() << "]") {
            auto f = [&](const Inputs& in) { return piano::softmax(in[0], mask); };
            auto r = piano::check_gradients(f, {x});
            INFO(r.message);
            CHECK(r.ok);
            auto g = [&](const Inputs& in) { return piano::log_softmax(in[0], mask); };
            auto r2 = piano::check_gradients(g, {x});
            INFO(r2.message);
            CHECK(r2.ok);
        }
    }
}

TEST_CASE("softmax computes hand-checked values", "[ops][softmax]") {
    // x = [0, ln 3]: e^x = [1, 3], so softmax = [1/4, 3/4].
    const double ln3 = std::log(3.0);
    Tensor<double> p = piano::softmax(row({0.0, ln3}));
    CHECK(p.value()(0, 0) == Approx(0.25));
    CHECK(p.value()(0, 1) == Approx(0.75));
    Tensor<double> lp = piano::log_softmax(row({0.0, ln3}));
    CHECK(lp.value()(0, 0) == Approx(-std::log(4.0)));
    CHECK(lp.value()(0, 1) == Approx(ln3 - std::log(4.0)));

    // The same distribution with a large dropped entry in the middle: the mask removes it.
    Mask keep(1, 3);
    keep << true, false, true;
    Tensor<double> pm = piano::softmax(row({0.0, 50.0, ln3}), keep);
    CHECK(pm.value()(0, 0) == Approx(0.25));
    CHECK(pm.value()(0, 1) == 0.0);
    CHECK(pm.value()(0, 2) == Approx(0.75));
    Tensor<double> lpm = piano::log_softmax(row({0.0, 50.0, ln3}), keep);
    CHECK(lpm.value()(0, 0) == Approx(-std::log(4.0)));
    CHECK(lpm.value()(0, 1) == 0.0);  // not part of the distribution
    CHECK(lpm.value()(0, 2) == Approx(ln3 - std::log(4.0)));
}

TEST_CASE("softmax rows sum to 1, masked or not", "[ops][softmax]") {
    const Tensor<double> x = random_logits(5, 7, 3);
    CHECK(piano::softmax(x).value().rowwise().sum().isApproxToConstant(1.0));
    CHECK(piano::log_softmax(x).value().array().exp().matrix().rowwise().sum().isApproxToConstant(1.0));
    Mask keep = Mask::Constant(1, 7, true);
    keep(0, 2) = false;
    keep(0, 5) = false;
    Tensor<double> p = piano::softmax(x, keep);
    CHECK(p.value().rowwise().sum().isApproxToConstant(1.0));
    CHECK(p.value().col(2).isZero());
    CHECK(p.value().col(5).isZero());
}

TEST_CASE("softmax is stable for large inputs in float", "[ops][softmax][stability]") {
    Matrix<float> m(2, 3);
    m << 1000.0f, 0.0f, -1000.0f,  //
        1000.0f, 1000.0f, 1000.0f;
    Tensor<float> p = piano::softmax(Tensor<float>(m));
    CHECK(p.value().allFinite());
    CHECK(p.value()(0, 0) == 1.0f);
    CHECK(p.value()(1, 1) == Approx(1.0f / 3.0f));
    Tensor<float> lp = piano::log_softmax(Tensor<float>(m));
    CHECK(lp.value().allFinite());
    CHECK(lp.value()(0, 2) == Approx(-2000.0f));  // log_softmax keeps the tail softmax rounds to 0
}

TEST_CASE("a fully masked row gives zeros and a zero, finite gradient", "[ops][softmax][mask]") {
    const Mask mask = full_mask();  // row 2 is fully masked
    std::mt19937_64 rng(4);
    const Matrix<double> seed = Tensor<double>::randn(3, 4, rng).value();
    for (bool log_output : {false, true}) {
        DYNAMIC_SECTION((log_output ? "log_softmax" : "softmax")) {
            Tensor<double> x(random_logits(3, 4, 5).value(), true);
            Tensor<double> y = log_output ? piano::log_softmax(x, mask) : piano::softmax(x, mask);
            CHECK(y.value().allFinite());
            CHECK(y.value().row(2).isZero(0.0));
            CHECK(y.value()(1, 0) == 0.0);  // a dropped entry of a partly kept row
            y.backward(seed);
            CHECK(x.grad().allFinite());
            CHECK(x.grad().row(2).isZero(0.0));
            CHECK(x.grad()(1, 0) == 0.0);
            CHECK(x.grad()(1, 2) == 0.0);
        }
    }
}

TEST_CASE("softmax rejects a mask of the wrong shape, naming both shapes", "[ops][softmax][errors]") {
    const Tensor<double> x = Tensor<double>::zeros(3, 4);
    const Mask wrong_rows = Mask::Constant(2, 4, true);
    const Mask wrong_cols = Mask::Constant(1, 5, true);
    CHECK_THROWS_AS(piano::softmax(x, wrong_rows), piano::ShapeError);
    CHECK_THROWS_WITH(piano::softmax(x, wrong_rows),
                      Catch::StartsWith("softmax") && Catch::Contains("[2,4]") && Catch::Contains("[3,4]"));
    CHECK_THROWS_WITH(piano::softmax(x, wrong_cols),
                      Catch::StartsWith("softmax") && Catch::Contains("[1,5]") && Catch::Contains("[3,4]"));
    CHECK_THROWS_AS(piano::log_softmax(x, wrong_rows), piano::ShapeError);
    CHECK_THROWS_WITH(piano::log_softmax(x, wrong_rows),
                      Catch::StartsWith("log_softmax") && Catch::Contains("[2,4]") && Catch::Contains("[3,4]"));
    CHECK_THROWS_WITH(piano::log_softmax(x, Mask()),
                      Catch::StartsWith("log_softmax") && Catch::Contains("[0,0]") && Catch::Contains("[3,4]"));
}

TEST_CASE("softmax of rows with no columns is empty", "[ops][softmax]") {
    // The unmasked ops accept every shape: nothing can be wrong with x alone.
    CHECK(piano::softmax(Tensor<double>::zeros(2, 0)).shape() == "[2,0]");
    CHECK(piano::log_softmax(Tensor<double>::zeros(0, 3)).shape() == "[0,3]");
}
