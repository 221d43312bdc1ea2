// The elementwise unary ops: gradients, hand-computed values, stability at ±1000, errors.
#include <catch2/catch.hpp>

#include <piano/core/gradcheck.hpp>
#include <piano/ops/unary.hpp>

#include <support/test_helpers.hpp>

#include <cmath>
#include <functional>
#include <string>

using piano::Matrix;
using piano::Tensor;
using piano::testing::random_tensor;
using piano::testing::row;
using Inputs = std::vector<Tensor<double>>;

namespace {
// Entries at least `gap` away from 0, for ops with a kink there (relu) or that need a sign.
Tensor<double> away_from_zero(piano::Index r, piano::Index c, unsigned seed, double gap = 0.2) {
    Tensor<double> t = random_tensor(r, c, seed);
    t.mutable_value() = t.value().unaryExpr([gap](double v) { return v >= 0 ? v + gap : v - gap; });
    return t;
}

// Entries in [0.5, 2.5]: inside the domain of log, sqrt and fractional powers.
Tensor<double> positive(piano::Index r, piano::Index c, unsigned seed) {
    Tensor<double> t = random_tensor(r, c, seed);
    t.mutable_value() = t.value().unaryExpr([](double v) { return 1.5 + std::tanh(v); });
    return t;
}

struct UnaryCase {
    std::string name;
    std::function<Tensor<double>(const Tensor<double>&)> op;
    Tensor<double> input;
};
}  // namespace

TEST_CASE("unary ops pass the gradient check", "[ops][unary]") {
    const UnaryCase cases[] = {
        {"neg", [](const Tensor<double>& x) { return piano::neg(x); }, random_tensor(3, 4, 1)},
        {"operator-", [](const Tensor<double>& x) { return -x; }, random_tensor(3, 4, 2)},
        {"exp", [](const Tensor<double>& x) { return piano::exp(x); }, random_tensor(3, 4, 3)},
        {"log", [](const Tensor<double>& x) { return piano::log(x); }, positive(3, 4, 4)},
        {"sqrt", [](const Tensor<double>& x) { return piano::sqrt(x); }, positive(3, 4, 5)},
        {"pow 2.5", [](const Tensor<double>& x) { return piano::pow(x, 2.5); }, positive(3, 4, 6)},
        {"pow -1.5", [](const Tensor<double>& x) { return piano::pow(x, -1.5); }, positive(3, 4, 7)},
        {"pow 3 (negative base)", [](const Tensor<double>& x) { return piano::pow(x, 3.0); }, random_tensor(3, 4, 8)},
        {"tanh", [](const Tensor<double>& x) { return piano::tanh(x); }, random_tensor(3, 4, 9)},
        {"sigmoid", [](const Tensor<double>& x) { return piano::sigmoid(x); }, random_tensor(3, 4, 10)},
        {"log_sigmoid", [](const Tensor<double>& x) { return piano::log_sigmoid(x); }, random_tensor(3, 4, 11)},
        {"relu", [](const Tensor<double>& x) { return piano::relu(x); }, away_from_zero(3, 4, 12)},
        {"gelu", [](const Tensor<double>& x) { return piano::gelu(x); }, random_tensor(3, 4, 13)},
        {"softplus", [](const Tensor<double>& x) { return piano::softplus(x); }, random_tensor(3, 4, 14)},
    };
    for (const auto& test : cases) {
        DYNAMIC_SECTION(test.name) {
            auto f = [&](const Inputs& in) { return test.op(in[0]); };
            auto r = piano::check_gradients(f, {test.input});
            INFO(r.message);
            CHECK(r.ok);
        }
    }
}

TEST_CASE("sigmoid, log_sigmoid and softplus are checked on large inputs too", "[ops][unary]") {
    // Both branches of the stable forms, well into the tails.
    Tensor<double> x = row({-30.0, -8.0, -2.5, 2.5, 8.0, 30.0});
    for (auto op : {piano::sigmoid<double>, piano::log_sigmoid<double>, piano::softplus<double>}) {
        auto f = [&](const Inputs& in) { return op(in[0]); };
        auto r = piano::check_gradients(f, {x});
        INFO(r.message);
        CHECK(r.ok);
    }
}

TEST_CASE("unary ops compute hand-checked values", "[ops][unary]") {
    const double ln3 = std::log(3.0);
    auto at = [](const Tensor<double>& t, piano::Index c) { return t.value()(0, c); };

    Tensor<double> n = piano::neg(row({1.0, -2.0}));
    CHECK(at(n, 0) == -1.0);
    CHECK(at(n, 1) == 2.0);
    CHECK(at(-row({3.0}), 0) == -3.0);

    CHECK(at(piano::exp(row({std::log(2.0)})), 0) == Approx(2.0));
    CHECK(at(piano::log(row({std::exp(2.0)})), 0) == Approx(2.0));
    CHECK(at(piano::sqrt(row({9.0})), 0) == Approx(3.0));
    CHECK(at(piano::pow(row({2.0}), 3.0), 0) == Approx(8.0));
    CHECK(at(piano::pow(row({4.0}), 0.5), 0) == Approx(2.0));
    CHECK(at(piano::tanh(row({0.0})), 0) == 0.0);
    CHECK(at(piano::tanh(row({ln3})), 0) == Approx(0.8));  // (3 - 1/3) / (3 + 1/3)

    Tensor<double> s = piano::sigmoid(row({0.0, ln3, -ln3}));
    CHECK(at(s, 0) == 0.5);
    CHECK(at(s, 1) == Approx(0.75));  // 1 / (1 + 1/3)
    CHECK(at(s, 2) == Approx(0.25));

    Tensor<double> ls = piano::log_sigmoid(row({0.0, ln3, -ln3}));
    CHECK(at(ls, 0) == Approx(std::log(0.5)));
    CHECK(at(ls, 1) == Approx(std::log(0.75)));
    CHECK(at(ls, 2) == Approx(std::log(0.25)));

    Tensor<double> re = piano::relu(row({-1.0, 0.0, 2.0}));
    CHECK(at(re, 0) == 0.0);
    CHECK(at(re, 1) == 0.0);
    CHECK(at(re, 2) == 2.0);

    // gelu(1) = 0.5 (1 + tanh(√(2/π) · 1.044715)) = 0.5 (1 + tanh(0.833562...)) = 0.841192
    Tensor<double> g = piano::gelu(row({0.0, 1.0, -1.0}));
    CHECK(at(g, 0) == 0.0);
    CHECK(at(g, 1) == Approx(0.841192).epsilon(1e-6));
    CHECK(at(g, 2) == Approx(0.841192 - 1.0).epsilon(1e-5));  // gelu(-x) = gelu(x) - x

    Tensor<double> sp = piano::softplus(row({0.0, ln3, -ln3}));
    CHECK(at(sp, 0) == Approx(std::log(2.0)));
    CHECK(at(sp, 1) == Approx(std::log(4.0)));        // log(1 + 3)
    CHECK(at(sp, 2) == Approx(std::log(4.0 / 3.0)));  // log(1 + 1/3)
}

TEST_CASE("unary ops backpropagate hand-checked gradients", "[ops][unary]") {
    Tensor<double> x(Matrix<double>::Constant(1, 1, 2.0), true);
    piano::pow(x, 3.0).backward();  // 3 x² = 12
    CHECK(x.grad()(0, 0) == Approx(12.0));

    Tensor<double> z(Matrix<double>::Zero(1, 1), true);
    piano::pow(z, 0.0).backward();  // x^0 is constant: gradient 0, not 0 · 0^-1 = NaN
    CHECK(z.grad()(0, 0) == 0.0);

    Tensor<double> k(Matrix<double>::Zero(1, 1), true);
    piano::relu(k).backward();  // the kink takes gradient 0
    CHECK(k.grad()(0, 0) == 0.0);
}

TEST_CASE("sigmoid, log_sigmoid and softplus stay finite at ±1000 in float", "[ops][unary][stability]") {
    Matrix<float> m(1, 2);
    m << -1000.0f, 1000.0f;
    for (auto op : {piano::sigmoid<float>, piano::log_sigmoid<float>, piano::softplus<float>}) {
        Tensor<float> x(m, true);
        Tensor<float> y = op(x);
        CHECK(y.value().allFinite());
        y.backward(Matrix<float>::Ones(1, 2));
        CHECK(x.grad().allFinite());
    }
    CHECK(piano::sigmoid(Tensor<float>(m)).value()(0, 0) == 0.0f);
    CHECK(piano::sigmoid(Tensor<float>(m)).value()(0, 1) == 1.0f);
    CHECK(piano::log_sigmoid(Tensor<float>(m)).value()(0, 0) == -1000.0f);
    CHECK(piano::log_sigmoid(Tensor<float>(m)).value()(0, 1) == 0.0f);
    CHECK(piano::softplus(Tensor<float>(m)).value()(0, 0) == 0.0f);
    CHECK(piano::softplus(Tensor<float>(m)).value()(0, 1) == 1000.0f);
}

TEST_CASE("unary ops keep the input's shape, empty shapes included", "[ops][unary]") {
    for (auto shape : {std::pair<piano::Index, piano::Index>{2, 3}, {0, 3}, {3, 0}}) {
        Tensor<double> x = Tensor<double>::ones(shape.first, shape.second);
        for (const Tensor<double>& y : {piano::neg(x), piano::exp(x), piano::log(x), piano::sqrt(x), piano::pow(x, 2.0),
                                        piano::tanh(x), piano::sigmoid(x), piano::log_sigmoid(x), piano::relu(x),
                                        piano::gelu(x), piano::softplus(x)}) {
            CHECK(y.rows() == shape.first);
            CHECK(y.cols() == shape.second);
        }
    }
}

TEST_CASE("unary ops reject an empty handle, naming the op", "[ops][unary][errors]") {
    // Unary ops accept every shape; the one thing they can be given wrong is no tensor at all.
    const Tensor<double> none;
    CHECK_THROWS_AS(piano::exp(none), std::logic_error);
    CHECK_THROWS_WITH(piano::neg(none), Catch::StartsWith("neg:") && Catch::Contains("empty tensor handle"));
    CHECK_THROWS_WITH(-none, Catch::StartsWith("neg:"));
    CHECK_THROWS_WITH(piano::exp(none), Catch::StartsWith("exp:"));
    CHECK_THROWS_WITH(piano::log(none), Catch::StartsWith("log:"));
    CHECK_THROWS_WITH(piano::sqrt(none), Catch::StartsWith("sqrt:"));
    CHECK_THROWS_WITH(piano::pow(none, 2.0), Catch::StartsWith("pow:"));
    CHECK_THROWS_WITH(piano::tanh(none), Catch::StartsWith("tanh:"));
    CHECK_THROWS_WITH(piano::sigmoid(none), Catch::StartsWith("sigmoid:"));
    CHECK_THROWS_WITH(piano::log_sigmoid(none), Catch::StartsWith("log_sigmoid:"));
    CHECK_THROWS_WITH(piano::relu(none), Catch::StartsWith("relu:"));
    CHECK_THROWS_WITH(piano::gelu(none), Catch::StartsWith("gelu:"));
    CHECK_THROWS_WITH(piano::softplus(none), Catch::StartsWith("softplus:"));
}
