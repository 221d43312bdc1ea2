// Tutorial chapter 2 (docs/tutorial/02-new-op.md): writing an op.
//
// Adds squared_distance(a, b), the squared Euclidean distance between matching rows, with
// its backward, and tests it the way every library op is tested: against the same
// function built from existing ops, with the central-difference gradient checker, and
// with shapes that must be refused. A second op with a classic backward bug shows what
// the checker reports. Returns non-zero if a claim fails.
#include <piano/core/error.hpp>
#include <piano/core/gradcheck.hpp>
#include <piano/core/tensor.hpp>
#include <piano/ops/elementwise.hpp>
#include <piano/ops/reduce.hpp>

#include <cstdio>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "checks.hpp"

namespace tutorial {

using piano::Matrix;
using piano::Node;
using piano::Tensor;

// [tutorial:op]
/// The squared distance between matching rows: out(r) = Σ_c (a(r,c) − b(r,c))².
/// Shapes: a [R,C], b [R,C] -> [R,1]. ShapeError unless a and b have the same shape.
template <typename T>
Tensor<T> squared_distance(const Tensor<T>& a, const Tensor<T>& b) {
    piano::detail::require_defined(a, "squared_distance");
    piano::detail::require_defined(b, "squared_distance");
    if (a.rows() != b.rows() || a.cols() != b.cols()) {
        piano::detail::throw_shape("squared_distance", "a and b must have the same shape:", a.rows(), a.cols(),
                                   b.rows(), b.cols());
    }
    Matrix<T> diff = a.value() - b.value();                 // [R,C]
    Matrix<T> out = diff.rowwise().squaredNorm();           // [R,1]
    return piano::detail::make_result<T>(
        std::move(out), "squared_distance", {a.node(), b.node()}, [diff = std::move(diff)](Node<T>& self) {
            // squared_distance([R,C], [R,C]) -> [R,1]; G = self.grad is [R,1].
            // d out(r) / d a(r,c) = 2 (a(r,c) − b(r,c)) = −d out(r) / d b(r,c), so
            // dA = 2 G ⊙ diff (G's column repeated over the C columns) and dB = −dA.
            const Matrix<T> dA = T(2) * (diff.array().colwise() * self.grad.col(0).array()).matrix();
            Node<T>& a = *self.inputs[0];
            Node<T>& b = *self.inputs[1];
            if (a.requires_grad) a.accumulate_grad(dA);
            if (b.requires_grad) b.accumulate_grad(-dA);
        });
}
// [tutorial:end]

// [tutorial:buggy-op]
/// x², with a backward that ASSIGNS its gradient instead of adding it: correct only when
/// x is used once. The gradient checker must catch it.
template <typename T>
Tensor<T> square_that_assigns(const Tensor<T>& x) {
    Matrix<T> y = x.value().cwiseProduct(x.value());
    return piano::detail::make_result<T>(std::move(y), "square_that_assigns", {x.node()}, [](Node<T>& self) {
        Node<T>& in = *self.inputs[0];
        in.grad_buffer() = T(2) * self.grad.cwiseProduct(in.value);  // BUG: must be +=
    });
}
// [tutorial:end]

}  // namespace tutorial

int main() {
    using piano::Matrix;
    using piano::Tensor;
    tutorial::Checks check;
    std::mt19937_64 rng(2);

    // [tutorial:compare]
    // The same function from existing ops: row_sum((a − b) ⊙ (a − b)). It must give the
    // same numbers and the same gradients; the new op just does it in one node.
    Tensor<double> a = Tensor<double>::randn(4, 3, rng, 1.0, /*requires_grad=*/true);
    Tensor<double> b = Tensor<double>::randn(4, 3, rng, 1.0, /*requires_grad=*/true);
    const Tensor<double> fused = tutorial::squared_distance(a, b);             // [4,1]
    const Tensor<double> composed = piano::row_sum((a - b) * (a - b));         // [4,1]
    const bool same_value = fused.value().isApprox(composed.value(), 1e-14);

    piano::sum(fused).backward();
    const Matrix<double> fused_da = a.grad(), fused_db = b.grad();
    a.zero_grad();
    b.zero_grad();
    piano::sum(composed).backward();
    const bool same_grad = fused_da.isApprox(a.grad(), 1e-14) && fused_db.isApprox(b.grad(), 1e-14);
    // [tutorial:end]
    check(same_value, "squared_distance gives the values of row_sum((a - b) * (a - b))");
    check(same_grad, "and the same gradients for a and b");

    // [tutorial:gradcheck]
    // The library's gradient checker: central differences on every entry of every input,
    // in double precision, with a random upstream gradient and pre-filled gradient buffers.
    const auto f = [](const std::vector<Tensor<double>>& in) { return tutorial::squared_distance(in[0], in[1]); };
    const piano::GradCheckResult good = piano::check_gradients(
        f, {Tensor<double>::randn(5, 2, rng), Tensor<double>::randn(5, 2, rng)});
    std::printf("squared_distance: max |analytic - numeric| = %.2e\n", good.max_abs_error);
    // [tutorial:end]
    check(good.ok, "check_gradients accepts squared_distance's backward");

    // [tutorial:catch-bug]
    const auto g = [](const std::vector<Tensor<double>>& in) { return tutorial::square_that_assigns(in[0]); };
    const piano::GradCheckResult bad = piano::check_gradients(g, {Tensor<double>::randn(2, 2, rng)});
    std::printf("square_that_assigns:\n%s", bad.message.c_str());
    // [tutorial:end]
    check(!bad.ok, "check_gradients rejects a backward that assigns (=) where it must add (+=)");

    // [tutorial:shapes]
    std::string message;
    try {
        tutorial::squared_distance(Tensor<double>::zeros(4, 3), Tensor<double>::zeros(4, 2));
    } catch (const piano::ShapeError& e) {
        message = e.what();
    }
    std::printf("mismatched shapes: %s\n", message.c_str());
    // [tutorial:end]
    check(message.find("squared_distance") != std::string::npos && message.find("[4,2]") != std::string::npos,
          "mismatched shapes throw ShapeError naming the op and both shapes");

    return check.finish();
}
