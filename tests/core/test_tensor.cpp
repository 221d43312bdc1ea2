// The graph machinery: accumulation, topological order, release, no-grad, anomaly mode.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include <piano/core/gradcheck.hpp>
#include <piano/ops/elementwise.hpp>
#include <piano/ops/matmul.hpp>

using piano::Matrix;
using piano::Tensor;

namespace {
Matrix<double> mat(std::initializer_list<std::initializer_list<double>> rows) {
    Matrix<double> m(static_cast<piano::Index>(rows.size()), static_cast<piano::Index>(rows.begin()->size()));
    piano::Index r = 0;
    for (const auto& row : rows) {
        piano::Index c = 0;
        for (double v : row) m(r, c++) = v;
        ++r;
    }
    return m;
}
}  // namespace

TEST_CASE("a node used twice receives the sum of both gradients", "[core]") {
    Tensor<double> x(mat({{3.0}}), true);
    Tensor<double> y = x * x + x;  // dy/dx = 2x + 1 = 7
    y.backward();
    CHECK(x.grad()(0, 0) == Approx(7.0));
}

TEST_CASE("gradients accumulate across backward calls until zero_grad", "[core]") {
    Tensor<double> x(mat({{2.0}}), true);
    (x * 3.0).backward();
    (x * 3.0).backward();
    CHECK(x.grad()(0, 0) == Approx(6.0));
    x.zero_grad();
    CHECK(x.grad()(0, 0) == 0.0);
}

TEST_CASE("backward walks a deep chain without recursion", "[core]") {
    Tensor<double> x(mat({{1.0}}), true);
    Tensor<double> y = x;
    for (int i = 0; i < 100000; ++i) y = y + 0.0;  // 100k nodes deep
    y.backward();
    CHECK(x.grad()(0, 0) == Approx(1.0));
}

TEST_CASE("a node shared by thousands of consumers is walked once", "[core]") {
    // h = 2x feeds 5000 products h * c_i, summed: dy/dx = 2 Σ c_i. The walk's visited set
    // grows many times over; were h visited twice, its gradient would pass on twice.
    Tensor<double> x(mat({{1.5}}), true);
    const Tensor<double> h = x * 2.0;
    Tensor<double> y = h * 0.0;
    double sum_c = 0.0;
    for (int i = 1; i <= 5000; ++i) {
        const double c = 1.0 / i;
        y = y + h * c;
        sum_c += c;
    }
    y.backward();
    CHECK(x.grad()(0, 0) == Approx(2.0 * sum_c).epsilon(1e-12));
}

TEST_CASE("the graph is released after backward unless retained", "[core]") {
    Tensor<double> x(mat({{2.0}}), true);
    Tensor<double> y = x * x;
    y.backward(/*retain_graph=*/true);
    CHECK(y.node()->inputs.size() == 2);
    y.backward();  // a second pass works because the graph was retained
    CHECK(x.grad()(0, 0) == Approx(8.0));
    CHECK(y.node()->inputs.empty());
    CHECK_FALSE(static_cast<bool>(y.node()->backward_fn));
    CHECK(x.has_grad());  // leaves keep their gradient
}

TEST_CASE("NoGradGuard records no graph and allocates no gradient", "[core]") {
    Tensor<double> w(mat({{1.0, 2.0}}), true);
    Tensor<double> x(mat({{3.0}, {4.0}}));
    {
        piano::NoGradGuard guard;
        CHECK_FALSE(piano::is_grad_enabled());
        Tensor<double> y = piano::matmul(w, x);
        CHECK_FALSE(y.requires_grad());
        CHECK(y.node()->inputs.empty());
        CHECK(y.item() == Approx(11.0));
        CHECK_THROWS_WITH(y.backward(), Catch::Contains("does not require grad"));
    }
    CHECK(piano::is_grad_enabled());
    CHECK_FALSE(w.has_grad());
}

TEST_CASE("detach cuts the graph", "[core]") {
    Tensor<double> x(mat({{2.0}}), true);
    Tensor<double> y = (x * x).detach();
    CHECK_FALSE(y.requires_grad());
    Tensor<double> z = x * y;  // y is a constant 4 here
    z.backward();
    CHECK(x.grad()(0, 0) == Approx(4.0));
}

TEST_CASE("backward without a seed needs a [1,1] tensor", "[core]") {
    Tensor<double> x(mat({{1.0, 2.0}}), true);
    Tensor<double> y = x * 2.0;
    CHECK_THROWS_AS(y.backward(), piano::ShapeError);
    CHECK_THROWS_WITH(y.backward(), Catch::Contains("[1,2]"));
    CHECK_THROWS_WITH(y.backward(Matrix<double>::Ones(2, 2)), Catch::Contains("[2,2]") && Catch::Contains("[1,2]"));
}

TEST_CASE("anomaly detection names the op that made a NaN", "[core]") {
    piano::set_anomaly_detection(true);
    Tensor<double> x(mat({{0.0}}), true);
    CHECK_THROWS_AS(x / x, piano::AnomalyError);
    CHECK_THROWS_WITH(x / x, Catch::Contains("div"));
    piano::set_anomaly_detection(false);
    CHECK_NOTHROW(x / x);
}

TEST_CASE("anomaly detection also checks gradients in backward", "[core]") {
    Tensor<double> x(mat({{0.0}}), true);
    Tensor<double> one(mat({{1.0}}));
    Tensor<double> y = one / x;  // forward makes Inf; build it with anomaly mode off
    piano::set_anomaly_detection(true);
    CHECK_THROWS_WITH(y.backward(), Catch::Contains("backward of div"));
    piano::set_anomaly_detection(false);
}

TEST_CASE("gradcheck catches a backward that assigns instead of accumulating", "[core]") {
    // A deliberately wrong op: its backward overwrites the input's gradient.
    auto broken_double = [](const std::vector<Tensor<double>>& in) {
        Matrix<double> v = 2.0 * in[0].value();
        return piano::detail::make_result<double>(std::move(v), "broken", {in[0].node()}, [](piano::Node<double>& self) {
            self.inputs[0]->grad = 2.0 * self.grad;
            self.inputs[0]->has_grad = true;
        });
    };
    auto result = piano::check_gradients(broken_double, {Tensor<double>(mat({{1.0, -2.0}}))});
    CHECK_FALSE(result.ok);
    CHECK_THAT(result.message, Catch::Contains("analytic"));
}

TEST_CASE("a deep graph that is never backpropagated is freed without recursion", "[core]") {
    Tensor<double> x(mat({{1.0}}), true);
    Tensor<double> y = x;
    for (int i = 0; i < 1000000; ++i) y = y + 0.0;
    y = Tensor<double>();  // drops a 1M-node chain
    CHECK_FALSE(y.defined());
}

TEST_CASE("scalars of another arithmetic type convert to the tensor's type", "[core]") {
    Tensor<float> x(Matrix<float>::Constant(1, 1, 2.f));
    CHECK((x * 2).item() == Approx(4.f));
    CHECK((0.5 * x).item() == Approx(1.f));
    CHECK((x - 1.0).item() == Approx(1.f));
}

TEST_CASE("a throwing backward leaves no stale intermediate gradients", "[core]") {
    Tensor<double> x(mat({{0.0}}), true);
    Tensor<double> y = Tensor<double>(mat({{1.0}})) / x;
    Tensor<double> z = y * 2.0;
    piano::set_anomaly_detection(true);
    CHECK_THROWS_AS(z.backward(true), piano::AnomalyError);
    piano::set_anomaly_detection(false);
    CHECK_FALSE(y.has_grad());
    CHECK_FALSE(z.has_grad());
}

TEST_CASE("a second backward through a released graph throws", "[core][autograd_misuse]") {
    Tensor<double> x(mat({{2.0}}), true);
    Tensor<double> y = x * x;
    y.backward();
    CHECK(x.grad()(0, 0) == Approx(4.0));
    CHECK_THROWS_WITH(y.backward(), Catch::Contains("backward through the graph a second time") &&
                                        Catch::Contains("retain_graph"));
    CHECK(x.grad()(0, 0) == Approx(4.0));  // nothing was added
}

TEST_CASE("a new graph built on an intermediate of a released graph throws at backward", "[core][autograd_misuse]") {
    Tensor<double> x(mat({{2.0}}), true);
    Tensor<double> cube = x * x * x;  // d(cube)/dx = 3x^2 = 12
    (cube * 1.0).backward();
    Tensor<double> again = cube * 2.0;  // would need d/dx = 24 through the released cube
    CHECK_THROWS_WITH(again.backward(),
                      "backward: trying to backward through the graph a second time: the intermediate mul [1,1] it "
                      "uses was computed in a graph that an earlier backward() released. Pass retain_graph = true to "
                      "that backward to walk the graph again, or detach() a tensor to use its value as a constant");
    x.zero_grad();
    Tensor<double> kept = x * x * x;
    (kept * 1.0).backward(/*retain_graph=*/true);
    x.zero_grad();
    (kept * 2.0).backward();
    CHECK(x.grad()(0, 0) == Approx(24.0));
    // detach() is the way to use a released value as a constant.
    Tensor<double> constant = cube.detach() * x;
    x.zero_grad();
    constant.backward();
    CHECK(x.grad()(0, 0) == Approx(8.0));
}

TEST_CASE("gradcheck catches a backward that is wrong only when the first gradient arrives", "[core][gradcheck]") {
    // A deliberately wrong op: into an empty buffer it writes zeros instead of its gradient,
    // so pre-filled buffers alone would never show the bug.
    auto broken_double = [](const std::vector<Tensor<double>>& in) {
        Matrix<double> v = 2.0 * in[0].value();
        return piano::detail::make_result<double>(std::move(v), "broken", {in[0].node()}, [](piano::Node<double>& self) {
            piano::Node<double>& x = *self.inputs[0];
            if (x.has_grad) {
                x.grad += 2.0 * self.grad;
            } else {
                x.grad = Matrix<double>::Zero(x.value.rows(), x.value.cols());
                x.has_grad = true;
            }
        });
    };
    auto result = piano::check_gradients(broken_double, {Tensor<double>(mat({{1.0, -2.0}}))});
    CHECK_FALSE(result.ok);
    CHECK_THAT(result.message, Catch::Contains("gradient buffers empty"));
    CHECK_THAT(result.message, !Catch::Contains("gradient buffers pre-filled"));
}

TEST_CASE("core headers include nothing from the layers above core", "[core][layering]") {
    const std::filesystem::path core = std::filesystem::path(PIANO_TEST_FIXTURES) / ".." / ".." / "include" / "piano" / "core";
    int headers = 0;
    for (const auto& entry : std::filesystem::directory_iterator(core)) {
        std::ifstream in(entry.path());
        std::string line;
        while (std::getline(in, line)) {
            if (line.rfind("#include \"piano/", 0) != 0) continue;
            INFO(entry.path().filename().string() << ": " << line);
            CHECK(line.rfind("#include \"piano/core/", 0) == 0);
        }
        ++headers;
    }
    CHECK(headers >= 4);
}
