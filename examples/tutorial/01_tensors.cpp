// Tutorial chapter 1 (docs/tutorial/01-tensors.md): tensors and the graph.
//
// Builds y = sum(relu(W x + b)), calls backward(), and checks the gradient it finds twice:
// one entry by hand with the chain rule, every entry by finite differences. Then shows
// that gradients accumulate until they are cleared. Returns non-zero if a claim fails.
#include <piano/core/tensor.hpp>
#include <piano/ops/elementwise.hpp>
#include <piano/ops/matmul.hpp>
#include <piano/ops/reduce.hpp>
#include <piano/ops/unary.hpp>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>

#include "checks.hpp"

namespace {

using piano::Index;
using piano::Matrix;
using piano::Tensor;

// [tutorial:forward]
// y = sum(relu(W x + b)): W [4,3], x [3,1], b [4,1] -> y [1,1].
Tensor<double> forward(const Tensor<double>& W, const Tensor<double>& x, const Tensor<double>& b) {
    const Tensor<double> h = piano::matmul(W, x) + b;  // [4,3] x [3,1] -> [4,1], plus [4,1]
    return piano::sum(piano::relu(h));                 // [4,1] -> [4,1] -> [1,1]
}
// [tutorial:end]

// [tutorial:print-graph]
// Prints the graph below `node`, one op per line, children indented under their consumer.
void print_graph(const piano::Node<double>& node, const std::map<const void*, std::string>& names, int depth = 0) {
    std::string line = node.op + " " + piano::shape_string(node.value.rows(), node.value.cols());
    const auto name = names.find(&node);
    if (name != names.end()) line += "  " + name->second;
    if (node.requires_grad) line += "  (requires grad)";
    std::printf("%*s%s\n", 2 * depth, "", line.c_str());
    for (const auto& input : node.inputs) print_graph(*input, names, depth + 1);
}
// [tutorial:end]

}  // namespace

int main() {
    tutorial::Checks check;

    // [tutorial:leaves]
    // Leaves: the numbers we start from. W and b require grad (we want dy/dW and dy/db);
    // x is data.
    Matrix<double> w_values(4, 3), x_values(3, 1), b_values(4, 1);
    w_values << 0.5, -1.0, 2.0,
                1.5, 1.0, -0.5,
                -1.0, 0.25, 1.0,
                2.0, -0.5, 1.0;
    x_values << 1.0, -2.0, 0.5;
    b_values << 0.1, -0.2, 0.3, 0.5;
    Tensor<double> W(w_values, /*requires_grad=*/true);
    Tensor<double> b(b_values, /*requires_grad=*/true);
    const Tensor<double> x(x_values);
    // [tutorial:end]

    // [tutorial:build]
    Tensor<double> y = forward(W, x, b);
    std::printf("y = %g\n", y.item());
    print_graph(*y.node(), {{W.node().get(), "W"}, {x.node().get(), "x"}, {b.node().get(), "b"}});
    // [tutorial:end]
    check(std::abs(y.item() - 7.6) < 1e-12, "y = relu(3.6) + relu(-0.95) + relu(-0.7) + relu(4.0) = 7.6");

    // [tutorial:backward]
    y.backward();  // fills W.grad() [4,3] and b.grad() [4,1]; frees the graph
    std::printf("dy/dW =\n");
    for (Index i = 0; i < 4; ++i) {
        std::printf("  %5.2f %5.2f %5.2f\n", W.grad()(i, 0), W.grad()(i, 1), W.grad()(i, 2));
    }
    // [tutorial:end]

    // [tutorial:by-hand]
    // Chain rule for one entry: y = Σ_i relu(h_i) with h_i = Σ_j W(i,j) x_j + b_i, so
    //   dy/dW(i,j) = relu'(h_i) · x_j,   relu'(h) = 1 if h > 0 else 0.
    // h_0 = 3.6 > 0, so dy/dW(0,1) = x_1 = -2; h_1 = -0.95 < 0, so dy/dW(1,1) = 0.
    check(W.grad()(0, 1) == -2.0, "dy/dW(0,1) = x_1 = -2 (h_0 > 0, relu lets the gradient through)");
    check(W.grad()(1, 1) == 0.0, "dy/dW(1,1) = 0 (h_1 < 0, relu blocks it)");
    // [tutorial:end]

    // [tutorial:finite-differences]
    // Nudge one entry by ±eps and watch y: (y(w + eps) - y(w - eps)) / (2 eps) ≈ dy/dw.
    // NoGradGuard: these forward passes record no graph, they only compute numbers.
    auto numeric_gradient = [&](Tensor<double>& leaf, Index r, Index c) {
        const double eps = 1e-6;
        piano::NoGradGuard no_grad;
        double& entry = leaf.mutable_value()(r, c);
        const double saved = entry;
        entry = saved + eps;
        const double y_plus = forward(W, x, b).item();
        entry = saved - eps;
        const double y_minus = forward(W, x, b).item();
        entry = saved;
        return (y_plus - y_minus) / (2 * eps);
    };
    double worst = 0.0;
    for (Index r = 0; r < 4; ++r) {
        for (Index c = 0; c < 3; ++c) worst = std::max(worst, std::abs(numeric_gradient(W, r, c) - W.grad()(r, c)));
        worst = std::max(worst, std::abs(numeric_gradient(b, r, 0) - b.grad()(r, 0)));
    }
    std::printf("largest |backward - finite difference| over W and b: %.2e\n", worst);
    // [tutorial:end]
    check(worst < 1e-8, "backward agrees with finite differences on all 16 entries of W and b");

    // [tutorial:accumulate]
    // Gradients add up across backward calls until they are cleared: a second pass
    // doubles them. Training loops therefore call zero_grad() after every update.
    const Matrix<double> first = W.grad();
    forward(W, x, b).backward();
    const bool doubled = W.grad() == 2.0 * first;
    W.zero_grad();
    b.zero_grad();
    const bool cleared = W.grad().isZero();
    // [tutorial:end]
    check(doubled, "a second backward() adds to the gradient instead of replacing it");
    check(cleared, "zero_grad() clears it");

    return check.finish();
}
