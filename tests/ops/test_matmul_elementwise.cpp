// matmul (all transpose combinations) and the broadcasting binary ops.
#include <catch2/catch.hpp>

#include <piano/core/gradcheck.hpp>
#include <piano/ops/elementwise.hpp>
#include <piano/ops/matmul.hpp>

#include <support/test_helpers.hpp>

using piano::Matrix;
using piano::Tensor;
using piano::testing::random_tensor;
using Inputs = std::vector<Tensor<double>>;

TEST_CASE("matmul gradients for every transpose combination", "[ops][matmul]") {
    for (bool ta : {false, true}) {
        for (bool tb : {false, true}) {
            DYNAMIC_SECTION("transpose_a=" << ta << " transpose_b=" << tb) {
                Tensor<double> a = ta ? random_tensor(4, 3, 1) : random_tensor(3, 4, 1);
                Tensor<double> b = tb ? random_tensor(2, 4, 2) : random_tensor(4, 2, 2);
                auto f = [&](const Inputs& in) { return piano::matmul(in[0], in[1], ta, tb); };
                auto r = piano::check_gradients(f, {a, b});
                INFO(r.message);
                CHECK(r.ok);
            }
        }
    }
}

TEST_CASE("matmul computes the product", "[ops][matmul]") {
    Matrix<double> a(2, 2), b(2, 1);
    a << 1, 2, 3, 4;
    b << 5, 6;
    Tensor<double> c = piano::matmul(Tensor<double>(a), Tensor<double>(b));
    CHECK(c.value()(0, 0) == Approx(17));
    CHECK(c.value()(1, 0) == Approx(39));
    Tensor<double> ct = piano::matmul(Tensor<double>(a), Tensor<double>(a), true, false);  // a^T a
    CHECK(ct.value()(0, 1) == Approx(1 * 2 + 3 * 4));
}

TEST_CASE("matmul rejects mismatched inner dimensions, naming both shapes", "[ops][matmul][errors]") {
    Tensor<double> a = Tensor<double>::zeros(2, 3), b = Tensor<double>::zeros(4, 5);
    CHECK_THROWS_AS(piano::matmul(a, b), piano::ShapeError);
    CHECK_THROWS_WITH(piano::matmul(a, b), Catch::Contains("matmul") && Catch::Contains("[2,3]") && Catch::Contains("[4,5]"));
    CHECK_THROWS_WITH(piano::matmul(a, b, true, false), Catch::Contains("A^T"));
}

TEST_CASE("binary ops broadcast rows, columns and scalars", "[ops][elementwise]") {
    using piano::detail::BinaryOp;
    const std::pair<piano::Index, piano::Index> shapes[] = {{3, 4}, {1, 4}, {3, 1}, {1, 1}};
    for (auto kind : {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div}) {
        for (auto [rb, cb] : shapes) {
            DYNAMIC_SECTION("op " << static_cast<int>(kind) << " with b of shape [" << rb << "," << cb << "]") {
                Tensor<double> a = random_tensor(3, 4, 3);
                // Keep divisors away from zero so the finite differences are well behaved.
                Tensor<double> b = random_tensor(rb, cb, 4, kind == BinaryOp::div ? 3.0 : 0.0);
                auto f = [&](const Inputs& in) { return piano::detail::binary(in[0], in[1], kind); };
                auto r = piano::check_gradients(f, {a, b});
                INFO(r.message);
                CHECK(r.ok);
                auto g = [&](const Inputs& in) { return piano::detail::binary(in[1], in[0], kind); };  // broadcast on the left
                auto r2 = piano::check_gradients(g, {a, b});
                INFO(r2.message);
                CHECK(r2.ok);
            }
        }
    }
}

TEST_CASE("a column times a row broadcasts to the outer product", "[ops][elementwise]") {
    auto f = [](const Inputs& in) { return in[0] * in[1]; };
    auto r = piano::check_gradients(f, {random_tensor(3, 1, 5), random_tensor(1, 2, 6)});
    INFO(r.message);
    CHECK(r.ok);
    Tensor<double> outer = random_tensor(3, 1, 5) * random_tensor(1, 2, 6);
    CHECK(outer.rows() == 3);
    CHECK(outer.cols() == 2);
}

TEST_CASE("binary ops reject shapes that do not broadcast", "[ops][elementwise][errors]") {
    Tensor<double> a = Tensor<double>::zeros(3, 4), b = Tensor<double>::zeros(2, 4);
    CHECK_THROWS_AS(a + b, piano::ShapeError);
    CHECK_THROWS_WITH(a + b, Catch::Contains("add") && Catch::Contains("[3,4]") && Catch::Contains("[2,4]"));
    CHECK_THROWS_WITH(a * Tensor<double>::zeros(3, 2), Catch::Contains("mul") && Catch::Contains("[3,2]"));
    CHECK_THROWS_WITH(a - Tensor<double>::zeros(4, 4), Catch::StartsWith("sub"));
    CHECK_THROWS_WITH(a / Tensor<double>::zeros(1, 5), Catch::StartsWith("div"));
}
