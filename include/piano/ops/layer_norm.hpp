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

#include <cmath>
#include <string>
#include <utility>

#include "piano/core/compiled.hpp"
#include "piano/core/parallel.hpp"
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
    const auto gain_row = gain.value().row(0).array();
    const auto bias_row = bias.value().row(0).array();
    Column mu(R), rstd(R);  // [R,1] each: the row statistics, saved for backward
    Matrix<T> y(R, C);
    // Row by row, in fixed blocks of rows run in parallel (rows are independent).
    detail::parallel_rows(R, detail::kRowBlock, 8.0 * static_cast<double>(C), [&](Index r0, Index rows) {
        for (Index r = r0; r < r0 + rows; ++r) {
            const auto xr = X.row(r).array();
            const T m = xr.sum() / static_cast<T>(C);
            // Two passes (mean first, then squares of the centred values): the one-pass
            // E[x²] - μ² loses every digit when |μ| is large next to σ.
            const T variance = (xr - m).square().sum() / static_cast<T>(C);
            const T rs = T(1) / std::sqrt(variance + eps);
            y.row(r).array() = (xr - m) * rs * gain_row + bias_row;
            mu(r) = m;
            rstd(r) = rs;
        }
    });

    // Saved for backward: the row statistics ([R,1] each), not x̂ ([R,C]); x̂ is cheap to rebuild.
    return detail::make_result<T>(
        std::move(y), "layer_norm", {x.node(), gain.node(), bias.node()},
        [mu = std::move(mu), rstd = std::move(rstd)](Node<T>& self) {
            // layer_norm(x [R,C], gain [1,C], bias [1,C]) -> [R,C]; G = dL/dy is [R,C].
            const Matrix<T>& G = self.grad;
            Node<T>& nx = *self.inputs[0];
            Node<T>& ngain = *self.inputs[1];
            Node<T>& nbias = *self.inputs[2];
            const Matrix<T>& X = nx.value;
            const Index R = X.rows(), C = X.cols();
            const auto gain_row = ngain.value.row(0).array();
            const bool want_x = nx.requires_grad;
            const bool want_params = ngain.requires_grad || nbias.requires_grad;
            const bool fresh = want_x && nx.begin_grad_write();
            // y = x̂ ⊙ gain + bias, with gain and bias repeated down the rows: their gradients
            // are sums over the rows, formed per fixed block of rows and then added in block
            // order, so that the sum does not depend on the thread count.
            const Index blocks = (R + detail::kRowBlock - 1) / detail::kRowBlock;
            Matrix<T> partial_bias, partial_gain;
            if (want_params) {
                partial_bias = Matrix<T>::Zero(blocks, C);
                partial_gain = Matrix<T>::Zero(blocks, C);
            }
            // Per block, x̂ and d of the row at hand: two rows of one scratch matrix made once
            // per call, not two arrays allocated per block. Its rows start on 64-byte
            // boundaries (a whole number of 16-float packets per row), as a freshly allocated
            // array would, so the row sums below vectorise alike.
            using RowArray = Eigen::Array<T, 1, Eigen::Dynamic>;
            const Index stride = (C + 15) / 16 * 16;
            Matrix<T> scratch(2 * blocks, stride);
            detail::parallel_rows(R, detail::kRowBlock, 12.0 * static_cast<double>(C), [&](Index r0, Index rows) {
                const Index k = r0 / detail::kRowBlock;
                Eigen::Map<RowArray> xhat(scratch.row(2 * k).data(), C), d(scratch.row(2 * k + 1).data(), C);
                for (Index r = r0; r < r0 + rows; ++r) {
                    xhat = (X.row(r).array() - mu(r)) * rstd(r);
                    const auto g = G.row(r).array();
                    if (want_params) {
                        partial_bias.row(k).array() += g;
                        partial_gain.row(k).array() += g * xhat;
                    }
                    if (!want_x) continue;
                    // Through x̂: with d = G ⊙ gain = dL/dx̂, and μ and r depending on the whole row,
                    //   dx = r (d - mean(d) - x̂ ⊙ mean(d ⊙ x̂))     (means over the row's C entries)
                    // The two means remove the parts of d along the directions normalisation
                    // takes out: a shift of the row (μ) and a scaling of it (σ).
                    d = g * gain_row;
                    const T mean_d = d.sum() / static_cast<T>(C);
                    const T mean_d_xhat = (d * xhat).sum() / static_cast<T>(C);
                    if (fresh) {
                        nx.grad.row(r).array() = ((d - mean_d) - xhat * mean_d_xhat) * rstd(r);
                    } else {
                        nx.grad.row(r).array() += ((d - mean_d) - xhat * mean_d_xhat) * rstd(r);
                    }
                }
            });
            if (nbias.requires_grad) nbias.accumulate_grad(Matrix<T>(partial_bias.colwise().sum()));  // [1,C]
            if (ngain.requires_grad) ngain.accumulate_grad(Matrix<T>(partial_gain.colwise().sum()));  // [1,C]
        });
}

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(Tensor<float> layer_norm<float>(const Tensor<float>&, const Tensor<float>&, const Tensor<float>&,
                                                  float));

}  // namespace piano
