// The fused kernels: linear, segment_attention, embedding_sum, embedding_mean. Each is
// checked against finite differences, against the plain ops it replaces, for its shape
// errors, and for results that do not depend on the number of OpenMP threads.
#include <catch2/catch.hpp>

#include <piano/core/gradcheck.hpp>
#include <piano/ops/attention.hpp>
#include <piano/ops/dropout.hpp>
#include <piano/ops/elementwise.hpp>
#include <piano/ops/indexing.hpp>
#include <piano/ops/linear.hpp>
#include <piano/ops/matmul.hpp>
#include <piano/ops/reduce.hpp>
#include <piano/ops/segment.hpp>
#include <piano/ops/softmax.hpp>

#include <cmath>
#include <functional>
#include <random>

#ifdef _OPENMP
#include <omp.h>
#endif

using piano::Index;
using piano::Mask;
using piano::Matrix;
using piano::Tensor;

namespace fused_test {

using Inputs = std::vector<Tensor<double>>;

Tensor<double> noise(Index r, Index c, unsigned seed, double stddev = 1.0) {
    std::mt19937_64 rng(seed);
    return Tensor<double>::randn(r, c, rng, stddev);
}

Tensor<float> noise_f(Index r, Index c, unsigned seed) {
    return Tensor<float>(noise(r, c, seed).value().cast<float>());
}

void require_ok(const piano::GradCheckResult& r) {
    INFO(r.message);
    CHECK(r.ok);
}

double max_diff(const Matrix<double>& a, const Matrix<double>& b) {
    REQUIRE(a.rows() == b.rows());
    REQUIRE(a.cols() == b.cols());
    return a.size() == 0 ? 0.0 : (a - b).cwiseAbs().maxCoeff();
}

Mask keys(std::initializer_list<bool> flags) {
    Mask m(static_cast<Index>(flags.size()), 1);
    Index i = 0;
    for (bool f : flags) m(i++, 0) = f;
    return m;
}

/// Runs f with 1 and with 2 OpenMP threads (once, without OpenMP) and returns both results.
template <typename F>
std::pair<Matrix<float>, Matrix<float>> with_one_and_two_threads(F&& f) {
#ifdef _OPENMP
    const int before = omp_get_max_threads();
    omp_set_num_threads(1);
    Matrix<float> one = f();
    omp_set_num_threads(2);
    Matrix<float> two = f();
    omp_set_num_threads(before);
    return {one, two};
#else
    Matrix<float> one = f();
    return {one, f()};
#endif
}

/// segment_attention written with the plain ops, segment by segment and head by head (no
/// dropout): the reference the fused kernel must match.
Tensor<double> reference_attention(const Tensor<double>& q, const Tensor<double>& k, const Tensor<double>& v,
                                   const std::vector<Index>& qo, const std::vector<Index>& ko, Index heads,
                                   double scale, const Mask* mask) {
    const Index d = q.cols(), dh = d / heads;
    std::vector<Tensor<double>> rows;
    for (std::size_t s = 0; s + 1 < qo.size(); ++s) {
        const Index q0 = qo[s], nq = qo[s + 1] - q0, k0 = ko[s], nk = ko[s + 1] - k0;
        if (nq == 0) continue;
        Mask kept = Mask::Constant(1, nk, true);
        if (mask) kept = mask->middleRows(k0, nk).transpose();
        if (nk == 0 || !kept.any()) {
            rows.push_back(Tensor<double>::zeros(nq, d));
            continue;
        }
        std::vector<Tensor<double>> per_head;
        for (Index h = 0; h < heads; ++h) {
            const Tensor<double> qs = piano::slice_cols(piano::slice_rows(q, q0, nq), h * dh, dh);
            const Tensor<double> ks = piano::slice_cols(piano::slice_rows(k, k0, nk), h * dh, dh);
            const Tensor<double> vs = piano::slice_cols(piano::slice_rows(v, k0, nk), h * dh, dh);
            const Tensor<double> p = piano::softmax(piano::matmul(qs, ks, false, true) * scale, kept);
            per_head.push_back(piano::matmul(p, vs));
        }
        rows.push_back(piano::concat_cols(per_head));
    }
    return rows.empty() ? Tensor<double>::zeros(0, d) : piano::concat_rows(rows);
}

// A ragged batch of 4 segments: queries 2, 3, 0, 1; keys 3, 2, 1, 0 (the last segment has
// nothing to attend to; the third has no query).
const std::vector<Index> kQ = {0, 2, 5, 5, 6};
const std::vector<Index> kK = {0, 3, 5, 6, 6};

}  // namespace fused_test

using namespace fused_test;

// ---------------------------------------------------------------------------------- linear

TEST_CASE("linear passes the gradient check with and without a bias", "[ops][linear]") {
    auto with_bias = [](const Inputs& in) { return piano::linear(in[0], in[1], in[2]); };
    require_ok(piano::check_gradients(with_bias, {noise(5, 3, 1), noise(3, 4, 2), noise(1, 4, 3)}));
    auto without = [](const Inputs& in) { return piano::linear(in[0], in[1]); };
    require_ok(piano::check_gradients(without, {noise(5, 3, 4), noise(3, 4, 5)}));
    // More rows than one row block (and than one chunk of the weight gradient's sum).
    require_ok(piano::check_gradients(with_bias, {noise(300, 3, 6), noise(3, 2, 7), noise(1, 2, 8)},
                                      {1e-6, 1e-6, 1e-5, 12345, 200}));
}

TEST_CASE("linear equals matmul plus the broadcast bias", "[ops][linear]") {
    const Tensor<double> x = noise(70, 6, 9), w = noise(6, 5, 10), b = noise(1, 5, 11);
    CHECK(max_diff(piano::linear(x, w, b).value(), (piano::matmul(x, w) + b).value()) < 1e-12);
    CHECK(piano::linear(Tensor<double>::zeros(0, 6), w, b).rows() == 0);
}

TEST_CASE("linear rejects mismatched shapes, naming the op and both shapes", "[ops][linear][errors]") {
    const Tensor<double> x = noise(4, 3, 12), w = noise(3, 2, 13);
    CHECK_THROWS_AS(piano::linear(x, noise(4, 2, 14)), piano::ShapeError);
    CHECK_THROWS_WITH(piano::linear(x, noise(4, 2, 14)),
                      Catch::StartsWith("linear") && Catch::Contains("[4,3]") && Catch::Contains("[4,2]"));
    CHECK_THROWS_WITH(piano::linear(x, w, noise(1, 3, 15)), Catch::StartsWith("linear") && Catch::Contains("[1,3]"));
    CHECK_THROWS_WITH(piano::linear(x, w, noise(2, 2, 16)), Catch::Contains("[2,2]"));
}

TEST_CASE("linear's values and gradients do not depend on the thread count", "[ops][linear][threads]") {
    const Tensor<float> x = noise_f(700, 40, 17), w = noise_f(40, 48, 18), b = noise_f(1, 48, 19);
    const Tensor<float> up = noise_f(700, 48, 20);
    auto run = [&] {
        Tensor<float> xx(x.value(), true), ww(w.value(), true), bb(b.value(), true);
        Tensor<float> y = piano::linear(xx, ww, bb);
        y.backward(up.value());
        Matrix<float> all(700 + 40 + 1, 48 + 40);
        all.setZero();
        all.topLeftCorner(700, 48) = y.value();
        all.block(0, 48, 700, 40) = xx.grad();
        all.block(700, 0, 40, 48) = ww.grad();
        all.block(740, 0, 1, 48) = bb.grad();
        return all;
    };
    const auto [one, two] = with_one_and_two_threads(run);
    CHECK(one == two);
}

// ------------------------------------------------------------------------ segment_attention

TEST_CASE("segment_attention passes the gradient check, with a key mask and silent segments", "[ops][attention]") {
    const Mask mask = keys({true, false, true, true, true, true});
    for (const Mask* m : {static_cast<const Mask*>(nullptr), &mask}) {
        auto f = [&](const Inputs& in) {
            return piano::segment_attention(in[0], in[1], in[2], kQ, kK, 2, 0.7, m);
        };
        require_ok(piano::check_gradients(f, {noise(6, 4, 21), noise(6, 4, 22), noise(6, 4, 23)}));
    }
}

TEST_CASE("segment_attention's gradient check holds with dropout (a fixed seed is a fixed mask)", "[ops][attention]") {
    auto f = [](const Inputs& in) {
        return piano::segment_attention(in[0], in[1], in[2], kQ, kK, 2, 0.5, nullptr, {0.3, 99});
    };
    require_ok(piano::check_gradients(f, {noise(6, 4, 24), noise(6, 4, 25), noise(6, 4, 26)}));
}

TEST_CASE("segment_attention in self-attention (q, k and v one tensor)", "[ops][attention]") {
    const std::vector<Index> offsets = {0, 3, 7};
    auto f = [&](const Inputs& in) { return piano::segment_attention(in[0], in[0], in[0], offsets, offsets, 2, 0.5); };
    require_ok(piano::check_gradients(f, {noise(7, 6, 27)}));
}

TEST_CASE("segment_attention equals slices, matmuls and softmaxes per segment and head", "[ops][attention]") {
    const Tensor<double> q = noise(6, 8, 28), k = noise(6, 8, 29), v = noise(6, 8, 30);
    const Mask mask = keys({true, true, false, false, true, true});
    for (const Mask* m : {static_cast<const Mask*>(nullptr), &mask}) {
        std::vector<Matrix<double>> probabilities;
        const Tensor<double> fused = piano::segment_attention(q, k, v, kQ, kK, 4, 0.35, m, {}, &probabilities);
        CHECK(max_diff(fused.value(), reference_attention(q, k, v, kQ, kK, 4, 0.35, m).value()) < 1e-12);
        REQUIRE(probabilities.size() == 4);
        CHECK(probabilities[0].rows() == 4 * 2);
        CHECK(probabilities[0].cols() == 3);
        CHECK(probabilities[2].rows() == 0);                       // no query
        CHECK(probabilities[3] == Matrix<double>::Zero(4 * 1, 0));  // no key
        for (Index r = 0; r < probabilities[0].rows(); ++r) CHECK(probabilities[0].row(r).sum() == Approx(1.0));
        if (m) CHECK(probabilities[1].col(0).isZero());  // key 3 is masked: segment 1's first key
    }
    // Segment 3 has no key: exact zeros, not NaN.
    CHECK(piano::segment_attention(q, k, v, kQ, kK, 4, 0.35).value().row(5).isZero());
}

TEST_CASE("segment_attention dropout: drops about p, rescales the rest, same seed same mask", "[ops][attention]") {
    const std::vector<Index> offsets = {0, 40};
    const Tensor<double> q = noise(40, 4, 31), k = noise(40, 4, 32);
    const Tensor<double> ones = Tensor<double>::ones(40, 4);
    // With v = 1, each output entry is Σ_j P_ij M_ij: the kept mass, rescaled.
    const Matrix<double> a = piano::segment_attention(q, k, ones, offsets, offsets, 1, 1.0, nullptr, {0.25, 7}).value();
    const Matrix<double> b = piano::segment_attention(q, k, ones, offsets, offsets, 1, 1.0, nullptr, {0.25, 7}).value();
    const Matrix<double> c = piano::segment_attention(q, k, ones, offsets, offsets, 1, 1.0, nullptr, {0.25, 8}).value();
    CHECK(a == b);
    CHECK(a != c);
    CHECK(a.mean() == Approx(1.0).epsilon(0.1));  // E[M] = 1

    // The fraction of dropped factors over many entries.
    std::vector<float> factors(100000);
    piano::detail::attention_dropout_factors(piano::AttentionDropout{0.25, 3}, 0, 100000, factors.data());
    double dropped = 0, wrong_scale = 0;
    for (float f : factors) {
        dropped += f == 0.0f;
        wrong_scale += f != 0.0f && f != static_cast<float>(1.0 / 0.75);
    }
    CHECK(dropped / 100000 == Approx(0.25).margin(0.01));
    CHECK(wrong_scale == 0);
}

TEST_CASE("segment_attention rejects bad shapes, naming the argument", "[ops][attention][errors]") {
    const Tensor<double> x = noise(6, 4, 33);
    CHECK_THROWS_AS(piano::segment_attention(x, x, x, kQ, kK, 3, 1.0), piano::ShapeError);
    CHECK_THROWS_WITH(piano::segment_attention(x, x, x, kQ, kK, 3, 1.0), Catch::Contains("heads 3"));
    CHECK_THROWS_WITH(piano::segment_attention(x, noise(6, 2, 34), x, kQ, kK, 2, 1.0), Catch::Contains("[6,2]"));
    CHECK_THROWS_WITH(piano::segment_attention(x, x, noise(5, 4, 35), kQ, kK, 2, 1.0), Catch::Contains("[5,4]"));
    CHECK_THROWS_WITH(piano::segment_attention(x, x, x, {0, 2, 6}, kK, 2, 1.0), Catch::Contains("k_offsets has 5"));
    CHECK_THROWS_WITH(piano::segment_attention(x, x, x, {0, 2, 5}, {0, 3, 5}, 2, 1.0), Catch::Contains("q_offsets"));
    const Mask wrong = keys({true, true});
    CHECK_THROWS_WITH(piano::segment_attention(x, x, x, kQ, kK, 2, 1.0, &wrong), Catch::Contains("key_mask [2,1]"));
    CHECK_THROWS_AS(piano::segment_attention(x, x, x, kQ, kK, 2, 1.0, nullptr, {1.0, 0}), std::invalid_argument);
}

TEST_CASE("segment_attention does not depend on the thread count", "[ops][attention][threads]") {
    // 40 segments of 30 rows: enough work to run in parallel.
    std::vector<Index> offsets = {0};
    for (int s = 0; s < 40; ++s) offsets.push_back(offsets.back() + 30);
    const Tensor<float> x = noise_f(1200, 64, 36), up = noise_f(1200, 64, 37);
    auto run = [&] {
        Tensor<float> xx(x.value(), true);
        Tensor<float> y = piano::segment_attention(xx, xx, xx, offsets, offsets, 4, 0.25f, nullptr, {0.1, 5});
        y.backward(up.value());
        Matrix<float> both(1200, 128);
        both << y.value(), xx.grad();
        return both;
    };
    const auto [one, two] = with_one_and_two_threads(run);
    CHECK(one == two);
}

// ------------------------------------------------------------------ embedding_sum and _mean

TEST_CASE("embedding_sum adds the lookups of several tables, one table listed twice", "[ops][embedding]") {
    const Tensor<double> a = noise(5, 3, 38), b = noise(4, 3, 39);
    const std::vector<std::vector<Index>> ids = {{4, 0, 4}, {1, 1, 3}, {2, 2, 0}};
    const Tensor<double> y = piano::embedding_sum<double>({a, b, a}, ids);
    const Tensor<double> expected =
        piano::embedding(a, ids[0]) + piano::embedding(b, ids[1]) + piano::embedding(a, ids[2]);
    CHECK(max_diff(y.value(), expected.value()) == 0.0);  // the same additions in the same order
    auto f = [&](const Inputs& in) { return piano::embedding_sum<double>({in[0], in[1], in[0]}, ids); };
    require_ok(piano::check_gradients(f, {noise(5, 3, 40), noise(4, 3, 41)}));
}

TEST_CASE("embedding_sum gradients are row-sparse", "[ops][embedding]") {
    Tensor<double> a(noise(6, 2, 42).value(), true);
    Tensor<double> y = piano::embedding_sum<double>({a, a}, {{1, 5}, {5, 5}});
    piano::sum(y).backward();
    CHECK(a.node()->grad_is_row_sparse);
    CHECK(a.grad().row(5) == Matrix<double>::Constant(1, 2, 3.0));
    CHECK(a.grad().row(1) == Matrix<double>::Constant(1, 2, 1.0));
    CHECK(a.grad().row(0).isZero());
}

TEST_CASE("embedding_sum rejects bad inputs, naming the op", "[ops][embedding][errors]") {
    const Tensor<double> a = noise(5, 3, 43), b = noise(4, 2, 44);
    CHECK_THROWS_WITH(piano::embedding_sum<double>({}, {}), Catch::StartsWith("embedding_sum"));
    CHECK_THROWS_WITH(piano::embedding_sum<double>({a}, {{0}, {1}}), Catch::Contains("1 tables but 2"));
    CHECK_THROWS_WITH(piano::embedding_sum<double>({a, b}, {{0}, {1}}), Catch::Contains("[4,2]"));
    CHECK_THROWS_WITH(piano::embedding_sum<double>({a, a}, {{0}, {1, 2}}), Catch::Contains("list 1 has 2"));
    CHECK_THROWS_AS(piano::embedding_sum<double>({a}, {{5}}), piano::ShapeError);
    CHECK_THROWS_WITH(piano::embedding_sum<double>({a}, {{5}}), Catch::Contains("index 5"));
}

TEST_CASE("embedding_mean is the mean of each bag, zero for an empty one", "[ops][embedding]") {
    const Tensor<double> table = noise(7, 3, 45);
    const std::vector<Index> ids = {1, 6, 6, 0, 2}, offsets = {0, 3, 3, 5};
    const Tensor<double> y = piano::embedding_mean(table, ids, offsets);
    CHECK(max_diff(y.value(), piano::segment_mean(piano::embedding(table, ids), offsets).value()) == 0.0);
    CHECK(y.value().row(1).isZero());
    auto f = [&](const Inputs& in) { return piano::embedding_mean(in[0], ids, offsets); };
    require_ok(piano::check_gradients(f, {noise(7, 3, 46)}));

    Tensor<double> t(table.value(), true);
    piano::sum(piano::embedding_mean(t, ids, offsets)).backward();
    CHECK(t.node()->grad_is_row_sparse);
    CHECK(t.grad()(6, 0) == Approx(2.0 / 3.0));
}

TEST_CASE("embedding_mean rejects bad ids and offsets, naming the op", "[ops][embedding][errors]") {
    const Tensor<double> table = noise(4, 2, 47);
    CHECK_THROWS_WITH(piano::embedding_mean(table, {0, 4}, {0, 2}),
                      Catch::StartsWith("embedding_mean") && Catch::Contains("index 4"));
    CHECK_THROWS_WITH(piano::embedding_mean(table, {0, 1}, {0, 1}), Catch::Contains("last offset is 1"));
    CHECK_THROWS_WITH(piano::embedding_mean(table, {0, 1}, {0, 2, 1, 2}), Catch::StartsWith("embedding_mean"));
}

// ------------------------------------------------------------------- dropout with a seed

TEST_CASE("seeded dropout: identity in eval, zero or scaled entries, about p dropped", "[ops][dropout]") {
    const Tensor<double> x = noise(3, 4, 48).set_requires_grad(true);
    CHECK(piano::dropout(x, 0.5, std::uint64_t{1}, false).node() == x.node());
    CHECK(piano::dropout(x, 0.0, std::uint64_t{1}, true).node() == x.node());

    const Tensor<double> big = Tensor<double>::constant(200, 100, 2.0);
    const Matrix<double> y = piano::dropout(big, 0.3, std::uint64_t{11}, true).value();
    CHECK(((y.array() == 0.0) || (y.array() == 2.0 / 0.7)).all());
    CHECK(static_cast<double>((y.array() == 0.0).count()) / 20000.0 == Approx(0.3).margin(0.015));
    CHECK(y == piano::dropout(big, 0.3, std::uint64_t{11}, true).value());  // same seed, same mask
    CHECK(y != piano::dropout(big, 0.3, std::uint64_t{12}, true).value());
}

TEST_CASE("seeded dropout passes the gradient check (the backward remakes the mask)", "[ops][dropout]") {
    auto f = [](const Inputs& in) { return piano::dropout(in[0], 0.4, std::uint64_t{21}, true); };
    require_ok(piano::check_gradients(f, {noise(5, 7, 49)}));
}

TEST_CASE("seeded dropout rejects p outside 0 <= p < 1, naming it", "[ops][dropout][errors]") {
    const Tensor<double> x = noise(2, 2, 50);
    CHECK_THROWS_AS(piano::dropout(x, 1.0, std::uint64_t{1}, true), std::invalid_argument);
    CHECK_THROWS_WITH(piano::dropout(x, -0.5, std::uint64_t{1}, false), Catch::Contains("-0.5"));
}

TEST_CASE("seeded dropout does not depend on the thread count", "[ops][dropout][threads]") {
    const Tensor<float> x = noise_f(300, 200, 51), up = noise_f(300, 200, 52);
    auto run = [&] {
        Tensor<float> xx(x.value(), true);
        Tensor<float> y = piano::dropout(xx, 0.2f, std::uint64_t{5}, true);
        y.backward(up.value());
        Matrix<float> both(300, 400);
        both << y.value(), xx.grad();
        return both;
    };
    const auto [one, two] = with_one_and_two_threads(run);
    CHECK(one == two);
}
