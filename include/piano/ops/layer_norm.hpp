// piano/ops/layer_norm.hpp: layer normalisation over each row.
//
// Each row x of X [R,C] is normalised on its own, then scaled and shifted per column:
//     μ = (1/C) Σ_c x_c                 the row mean
//     σ² = (1/C) Σ_c (x_c - μ)²         the biased variance (divide by C, as PyTorch does)
//     r = 1 / √(σ² + eps)               the reciprocal standard deviation
//     x̂ = (x - μ) r                     mean 0, variance σ²/(σ² + eps) ≈ 1
//     y = x̂ ⊙ gain + bias               gain and bias are [1,C], shared by every row
// eps keeps r finite when a row is constant (σ² = 0).
#pragma once

#include <string>
#include <utility>

#include "piano/core/tensor.hpp"

namespace piano {

namespace detail {

/// ShapeError unless a per-column parameter of layer_norm is [1,C] for x [R,C].
template <typename T>
void check_layer_norm_param(const char* what, const Tensor<T>& p, Index rows, Index cols) {
    if (p.rows() != 1 || p.cols() != cols) {
        throw ShapeError(std::string("layer_norm: ") + what + " " + p.shape() + " must be " + shape_string(1, cols) +
                         " to match x " + shape_string(rows, cols));
    }
}

}  // namespace detail

/// Layer normalisation of each row: x [R,C], gain [1,C], bias [1,C] -> [R,C].
/// ShapeError if gain or bias is not [1,C], or if C = 0 (an empty row has no mean).
/// eps is not deduced, so a double literal works for float tensors.
template <typename T>
Tensor<T> layer_norm(const Tensor<T>& x, const Tensor<T>& gain, const Tensor<T>& bias,
                     typename Tensor<T>::Scalar eps = T(1e-5)) {
    using Column = Eigen::Matrix<T, Eigen::Dynamic, 1>;
    const Index R = x.rows(), C = x.cols();
    detail::check_layer_norm_param("gain", gain, R, C);
    detail::check_layer_norm_param("bias", bias, R, C);
    if (C == 0) throw ShapeError("layer_norm: cannot normalise the empty rows of x " + shape_string(R, C));

    const Matrix<T>& X = x.value();
    const Column mu = X.rowwise().mean();                                    // [R,1]
    const Matrix<T> centered = X.colwise() - mu;                             // [R,C]
    // Two passes (mean first, then squares of the centred values): the one-pass
    // E[x²] - μ² loses every digit when |μ| is large next to σ.
    const Column variance = centered.cwiseAbs2().rowwise().mean();          // [R,1]
    const Column rstd = (variance.array() + eps).sqrt().inverse().matrix();  // [R,1]
    Matrix<T> y = ((centered.array().colwise() * rstd.array()).rowwise() * gain.value().row(0).array()).rowwise() +
                  bias.value().row(0).array();

    // Saved for backward: the row statistics ([R,1] each), not x̂ ([R,C]); x̂ is cheap to rebuild.
    return detail::make_result<T>(
        std::move(y), "layer_norm", {x.node(), gain.node(), bias.node()}, [mu, rstd](Node<T>& self) {
            // layer_norm(x [R,C], gain [1,C], bias [1,C]) -> [R,C]; G = dL/dy is [R,C].
            const Matrix<T>& G = self.grad;
            Node<T>& nx = *self.inputs[0];
            Node<T>& ngain = *self.inputs[1];
            Node<T>& nbias = *self.inputs[2];
            const Matrix<T> xhat = ((nx.value.colwise() - mu).array().colwise() * rstd.array()).matrix();  // [R,C]

            // y = x̂ ⊙ gain + bias, with gain and bias repeated down the rows: their
            // gradients are summed over the rows.
            if (nbias.requires_grad) nbias.accumulate_grad(G.colwise().sum());                   // [1,C]
            if (ngain.requires_grad) ngain.accumulate_grad(G.cwiseProduct(xhat).colwise().sum());  // [1,C]

            if (nx.requires_grad) {
                // Through x̂: with d = G ⊙ gain = dL/dx̂, and μ and r depending on the whole row,
                //   dx = r (d - mean(d) - x̂ ⊙ mean(d ⊙ x̂))     (means over the row's C entries)
                // The two means remove the parts of d along the directions normalisation
                // takes out: a shift of the row (μ) and a scaling of it (σ).
                const Matrix<T> d = (G.array().rowwise() * ngain.value.row(0).array()).matrix();  // [R,C]
                const Column mean_d = d.rowwise().mean();                                         // [R,1]
                const Column mean_d_xhat = d.cwiseProduct(xhat).rowwise().mean();                  // [R,1]
                const Matrix<T> inner = (d.colwise() - mean_d) - (xhat.array().colwise() * mean_d_xhat.array()).matrix();
                nx.accumulate_grad((inner.array().colwise() * rstd.array()).matrix());
            }
        });
}

}  // namespace piano
