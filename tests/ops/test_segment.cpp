// segment_sum, segment_mean, segment_softmax, repeat_segments on ragged batches,
// always with an empty segment in the middle (lengths 2, 0, 3: offsets {0, 2, 2, 5}).
#include <catch2/catch.hpp>

#include <piano/core/gradcheck.hpp>
#include <piano/ops/segment.hpp>

#include <support/test_helpers.hpp>

#include <cmath>

using piano::Index;
using piano::Matrix;
using piano::Tensor;
using piano::testing::check_ok;
using piano::testing::random_tensor;
using Inputs = std::vector<Tensor<double>>;

namespace {
const std::vector<Index> kOffsets{0, 2, 2, 5};

Matrix<double> five_by_two() {
    Matrix<double> m(5, 2);
    m << 1, 2,   //
        3, 4,    // segment 0: rows 0-1
        5, 6,    //
        7, 8,    //
        9, 10;   // segment 2: rows 2-4 (segment 1 is empty)
    return m;
}
}  // namespace

TEST_CASE("segment_sum and segment_mean reduce each list, an empty list gives zeros", "[ops][segment]") {
    const Tensor<double> x(five_by_two());
    const Tensor<double> s = piano::segment_sum(x, kOffsets);
    REQUIRE(s.rows() == 3);
    REQUIRE(s.cols() == 2);
    CHECK(s.value()(0, 0) == 4);
    CHECK(s.value()(0, 1) == 6);
    CHECK(s.value().row(1).isZero(0));
    CHECK(s.value()(2, 0) == 21);
    CHECK(s.value()(2, 1) == 24);

    const Tensor<double> m = piano::segment_mean(x, kOffsets);
    CHECK(m.value()(0, 0) == Approx(2));
    CHECK(m.value()(0, 1) == Approx(3));
    CHECK(m.value().row(1).isZero(0));
    CHECK(m.value()(2, 0) == Approx(7));
    CHECK(m.value()(2, 1) == Approx(8));
}

TEST_CASE("segment_sum and segment_mean gradients", "[ops][segment]") {
    auto sum = [](const Inputs& in) { return piano::segment_sum(in[0], kOffsets); };
    check_ok(piano::check_gradients(sum, {random_tensor(5, 3, 1)}));
    auto mean = [](const Inputs& in) { return piano::segment_mean(in[0], kOffsets); };
    check_ok(piano::check_gradients(mean, {random_tensor(5, 3, 2)}));
    // Empty segments at both ends too.
    auto ends = [](const Inputs& in) { return piano::segment_mean(in[0], {0, 0, 3, 3}); };
    check_ok(piano::check_gradients(ends, {random_tensor(3, 2, 3)}));
}

TEST_CASE("an empty segment's mean passes no gradient", "[ops][segment]") {
    Tensor<double> x(five_by_two(), true);
    Matrix<double> seed = Matrix<double>::Zero(3, 2);
    seed.row(1).setConstant(7.0);  // upstream only on the empty segment
    piano::segment_mean(x, kOffsets).backward(seed);
    CHECK(x.grad().isZero(0));
    CHECK(x.grad().allFinite());
}

TEST_CASE("segment_softmax normalises each list per column", "[ops][segment]") {
    const Tensor<double> y = piano::segment_softmax(Tensor<double>(five_by_two()), kOffsets);
    REQUIRE(y.rows() == 5);
    REQUIRE(y.cols() == 2);
    // Segment 0, column 0: scores 1, 3.
    const double a = std::exp(1.0), b = std::exp(3.0);
    CHECK(y.value()(0, 0) == Approx(a / (a + b)));
    CHECK(y.value()(1, 0) == Approx(b / (a + b)));
    // Segment 2, column 1: scores 6, 8, 10.
    const double d = std::exp(6.0) + std::exp(8.0) + std::exp(10.0);
    CHECK(y.value()(2, 1) == Approx(std::exp(6.0) / d));
    CHECK(y.value()(4, 1) == Approx(std::exp(10.0) / d));
    for (Index c = 0; c < 2; ++c) {
        CHECK(y.value().block(0, c, 2, 1).sum() == Approx(1.0));
        CHECK(y.value().block(2, c, 3, 1).sum() == Approx(1.0));
    }
}

TEST_CASE("segment_softmax does not overflow on large scores", "[ops][segment]") {
    Matrix<float> x(2, 1);
    x << 1000.0f, 999.0f;
    const Tensor<float> y = piano::segment_softmax(Tensor<float>(x), {0, 2});
    CHECK(y.value().allFinite());
    CHECK(y.value()(0, 0) == Approx(1.0 / (1.0 + std::exp(-1.0))));
}

TEST_CASE("segment_softmax gradient", "[ops][segment]") {
    auto f = [](const Inputs& in) { return piano::segment_softmax(in[0], kOffsets); };
    check_ok(piano::check_gradients(f, {random_tensor(5, 3, 4)}));
    auto single = [](const Inputs& in) { return piano::segment_softmax(in[0], {0, 1, 1, 4}); };
    check_ok(piano::check_gradients(single, {random_tensor(4, 2, 5)}));
}

TEST_CASE("repeat_segments copies each row over its segment", "[ops][segment]") {
    Matrix<double> v(3, 2);
    v << 1, 2, 3, 4, 5, 6;
    const Tensor<double> y = piano::repeat_segments(Tensor<double>(v), kOffsets);
    REQUIRE(y.rows() == 5);
    REQUIRE(y.cols() == 2);
    CHECK(y.value()(0, 0) == 1);
    CHECK(y.value()(1, 1) == 2);
    for (Index r = 2; r < 5; ++r) {
        CHECK(y.value()(r, 0) == 5);
        CHECK(y.value()(r, 1) == 6);
    }
}

TEST_CASE("repeat_segments gradient, and it is the adjoint of segment_sum", "[ops][segment]") {
    auto f = [](const Inputs& in) { return piano::repeat_segments(in[0], kOffsets); };
    check_ok(piano::check_gradients(f, {random_tensor(3, 2, 6)}));

    // <repeat(v), g> == <v, segment_sum(g)> for any v [S,C], g [R,C].
    const Matrix<double> v = random_tensor(3, 2, 7).value(), g = random_tensor(5, 2, 8).value();
    const double left = piano::repeat_segments(Tensor<double>(v), kOffsets).value().cwiseProduct(g).sum();
    const double right = v.cwiseProduct(piano::segment_sum(Tensor<double>(g), kOffsets).value()).sum();
    CHECK(left == Approx(right));
}

TEST_CASE("segment ops reject malformed offsets", "[ops][segment][errors]") {
    const Tensor<double> x = Tensor<double>::zeros(5, 2);
    CHECK_THROWS_AS(piano::segment_sum(x, {0, 2, 4}), piano::ShapeError);
    CHECK_THROWS_WITH(piano::segment_sum(x, {0, 2, 4}), Catch::StartsWith("segment_sum") &&
                                                             Catch::Contains("last offset is 4") &&
                                                             Catch::Contains("[5,2]"));
    CHECK_THROWS_WITH(piano::segment_mean(x, {1, 5}),
                      Catch::StartsWith("segment_mean") && Catch::Contains("offsets[0] is 1"));
    CHECK_THROWS_WITH(piano::segment_softmax(x, {0, 3, 2, 5}),
                      Catch::StartsWith("segment_softmax") && Catch::Contains("offsets[2] = 2") &&
                          Catch::Contains("non-decreasing"));
    CHECK_THROWS_WITH(piano::segment_sum(x, {}), Catch::StartsWith("segment_sum") && Catch::Contains("empty"));

    const Tensor<double> v = Tensor<double>::zeros(3, 2);
    CHECK_THROWS_AS(piano::repeat_segments(v, {0, 5}), piano::ShapeError);
    CHECK_THROWS_WITH(piano::repeat_segments(v, {0, 5}), Catch::StartsWith("repeat_segments") &&
                                                              Catch::Contains("[3,2]") &&
                                                              Catch::Contains("needs 4 entries, got 2"));
    CHECK_THROWS_WITH(piano::repeat_segments(v, {0, 4, 3, 6}), Catch::Contains("offsets[2] = 3"));
}
