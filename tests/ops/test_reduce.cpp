// Reductions: sum and mean over everything, each row, each column.
#include <catch2/catch.hpp>

#include <piano/core/gradcheck.hpp>
#include <piano/ops/reduce.hpp>

#include <support/test_helpers.hpp>

#include <functional>
#include <string>

using piano::Matrix;
using piano::Tensor;
using piano::testing::random_tensor;
using Inputs = std::vector<Tensor<double>>;

namespace {
// [[1, 2, 3], [4, 5, 6]]
Tensor<double> one_to_six() {
    Matrix<double> m(2, 3);
    m << 1, 2, 3, 4, 5, 6;
    return Tensor<double>(m);
}
}  // namespace

TEST_CASE("reductions pass the gradient check", "[ops][reduce]") {
    using Op = std::function<Tensor<double>(const Tensor<double>&)>;
    const std::pair<std::string, Op> ops[] = {
        {"sum", [](const Tensor<double>& x) { return piano::sum(x); }},
        {"mean", [](const Tensor<double>& x) { return piano::mean(x); }},
        {"row_sum", [](const Tensor<double>& x) { return piano::row_sum(x); }},
        {"row_mean", [](const Tensor<double>& x) { return piano::row_mean(x); }},
        {"col_sum", [](const Tensor<double>& x) { return piano::col_sum(x); }},
        {"col_mean", [](const Tensor<double>& x) { return piano::col_mean(x); }},
    };
    // A named pair, not a structured binding: C++17 lets no lambda capture a binding
    // (GCC accepts it, clang does not).
    for (const auto& named : ops) {
        const Op& op = named.second;
        DYNAMIC_SECTION(named.first) {
            auto f = [&op](const Inputs& in) { return op(in[0]); };
            auto r = piano::check_gradients(f, {random_tensor(3, 4, 1)});
            INFO(r.message);
            CHECK(r.ok);
        }
    }
}

TEST_CASE("reductions compute hand-checked values and shapes", "[ops][reduce]") {
    const Tensor<double> x = one_to_six();

    Tensor<double> s = piano::sum(x);
    CHECK(s.shape() == "[1,1]");
    CHECK(s.item() == 21.0);
    CHECK(piano::mean(x).item() == Approx(3.5));

    Tensor<double> rs = piano::row_sum(x);
    CHECK(rs.shape() == "[2,1]");
    CHECK(rs.value()(0, 0) == 6.0);
    CHECK(rs.value()(1, 0) == 15.0);
    Tensor<double> rm = piano::row_mean(x);
    CHECK(rm.shape() == "[2,1]");
    CHECK(rm.value()(0, 0) == Approx(2.0));
    CHECK(rm.value()(1, 0) == Approx(5.0));

    Tensor<double> cs = piano::col_sum(x);
    CHECK(cs.shape() == "[1,3]");
    CHECK(cs.value()(0, 0) == 5.0);
    CHECK(cs.value()(0, 1) == 7.0);
    CHECK(cs.value()(0, 2) == 9.0);
    Tensor<double> cm = piano::col_mean(x);
    CHECK(cm.shape() == "[1,3]");
    CHECK(cm.value()(0, 0) == Approx(2.5));
    CHECK(cm.value()(0, 2) == Approx(4.5));
}

TEST_CASE("reductions backpropagate hand-checked gradients", "[ops][reduce]") {
    Tensor<double> x(one_to_six().value(), true);
    piano::mean(x).backward();  // each of the 6 entries gets 1/6
    CHECK(x.grad().isApproxToConstant(1.0 / 6.0));

    Tensor<double> y(one_to_six().value(), true);
    Matrix<double> g(2, 1);
    g << 2.0, 3.0;
    piano::row_mean(y).backward(g);  // row r gets g_r / 3
    CHECK(y.grad().row(0).isApproxToConstant(2.0 / 3.0));
    CHECK(y.grad().row(1).isApproxToConstant(1.0));

    Tensor<double> z(one_to_six().value(), true);
    Matrix<double> h(1, 3);
    h << 1.0, 2.0, 4.0;
    piano::col_mean(z).backward(h);  // column c gets h_c / 2
    CHECK(z.grad().col(2).isApproxToConstant(2.0));
    CHECK(z.grad().col(0).isApproxToConstant(0.5));
}

TEST_CASE("sums of empty tensors are zero", "[ops][reduce]") {
    CHECK(piano::sum(Tensor<double>::zeros(0, 3)).item() == 0.0);
    Tensor<double> rs = piano::row_sum(Tensor<double>::ones(2, 0));
    CHECK(rs.shape() == "[2,1]");
    CHECK(rs.value().isZero());
    Tensor<double> cs = piano::col_sum(Tensor<double>::ones(0, 3));
    CHECK(cs.shape() == "[1,3]");
    CHECK(cs.value().isZero());
    CHECK(piano::row_mean(Tensor<double>::ones(0, 3)).shape() == "[0,1]");  // no rows: no means to take
    CHECK(piano::col_mean(Tensor<double>::ones(2, 0)).shape() == "[1,0]");
}

TEST_CASE("means over nothing throw, naming the op and the shape", "[ops][reduce][errors]") {
    CHECK_THROWS_AS(piano::mean(Tensor<double>::zeros(0, 3)), piano::ShapeError);
    CHECK_THROWS_WITH(piano::mean(Tensor<double>::zeros(0, 3)), Catch::StartsWith("mean") && Catch::Contains("[0,3]"));
    CHECK_THROWS_WITH(piano::mean(Tensor<double>::zeros(2, 0)), Catch::StartsWith("mean") && Catch::Contains("[2,0]"));
    CHECK_THROWS_AS(piano::row_mean(Tensor<double>::zeros(2, 0)), piano::ShapeError);
    CHECK_THROWS_WITH(piano::row_mean(Tensor<double>::zeros(2, 0)),
                      Catch::StartsWith("row_mean") && Catch::Contains("[2,0]"));
    CHECK_THROWS_AS(piano::col_mean(Tensor<double>::zeros(0, 3)), piano::ShapeError);
    CHECK_THROWS_WITH(piano::col_mean(Tensor<double>::zeros(0, 3)),
                      Catch::StartsWith("col_mean") && Catch::Contains("[0,3]"));
}
