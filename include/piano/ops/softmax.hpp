// piano/ops/softmax.hpp: row-wise softmax and log-softmax, optionally masked.
//
// Each row of x [R,C] is one distribution over its C entries:
//     softmax(x)_rc     = e^(x_rc) / Σ_k e^(x_rk)
//     log_softmax(x)_rc = x_rc - log Σ_k e^(x_rk)
// For stability each row is first shifted by its largest entry m. Both results are
// unchanged by the shift, and afterwards every exponent is <= 0 (no overflow) and the sum
// is >= 1 (its log is finite).
//
// Masks (piano::Mask, true = keep) take entries out of the distribution: the sums run over
// kept entries only. A mask is [R,C] (one row of flags per row of x) or [1,C] (the same
// flags for every row). Dropped entries are not part of the distribution: they output
// exactly 0, in softmax and in log_softmax alike (not -inf), and receive zero gradient.
// A row with nothing kept outputs all zeros and passes no gradient. No mask value can make
// these ops produce NaN or Inf from finite inputs.
#pragma once

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <utility>

#include "piano/core/compiled.hpp"
#include "piano/core/tensor.hpp"

namespace piano {

namespace detail {

/// ShapeError unless the mask is [R,C] or [1,C] for an input of shape [R,C].
inline void check_softmax_mask(const char* op, const Mask& mask, Index rows, Index cols) {
    const bool per_row = mask.rows() == rows && mask.cols() == cols;
    const bool shared = mask.rows() == 1 && mask.cols() == cols;
    if (!per_row && !shared) {
        throw ShapeError(std::string(op) + ": mask " + shape_string(mask.rows(), mask.cols()) + " does not fit input " +
                         shape_string(rows, cols) + "; expected " + shape_string(rows, cols) + " or " +
                         shape_string(1, cols));
    }
}

/// Whether entry (r, c) is part of row r's distribution. No mask keeps everything; a [1,C]
/// mask is shared by every row.
inline bool keeps(const std::optional<Mask>& mask, Index r, Index c) {
    return !mask || (*mask)(mask->rows() == 1 ? 0 : r, c);
}

/// The forward pass of both ops: softmax of each row over its kept entries, or its log
/// when `log_output` is set. Dropped entries and rows with nothing kept stay 0.
template <typename T>
Matrix<T> row_softmax(const Matrix<T>& x, const std::optional<Mask>& mask, bool log_output) {
    const Index R = x.rows(), C = x.cols();
    Matrix<T> y = Matrix<T>::Zero(R, C);
    for (Index r = 0; r < R; ++r) {
        // The shift m: the largest kept entry of the row.
        bool any_kept = false;
        T m = T(0);
        for (Index c = 0; c < C; ++c) {
            if (!keeps(mask, r, c)) continue;
            m = any_kept ? std::max(m, x(r, c)) : x(r, c);
            any_kept = true;
        }
        if (!any_kept) continue;  // nothing to normalise: the row stays all zeros
        T total = T(0);           // Σ e^(x - m) over kept entries, >= 1 since the max gives e^0
        for (Index c = 0; c < C; ++c) {
            if (!keeps(mask, r, c)) continue;
            y(r, c) = std::exp(x(r, c) - m);
            total += y(r, c);
        }
        const T log_total = std::log(total);
        for (Index c = 0; c < C; ++c) {
            if (!keeps(mask, r, c)) continue;
            y(r, c) = log_output ? x(r, c) - m - log_total : y(r, c) / total;
        }
    }
    return y;
}

template <typename T>
Tensor<T> softmax_impl(const Tensor<T>& x, const std::optional<Mask>& mask) {
    Matrix<T> y = row_softmax(x.value(), mask, /*log_output=*/false);
    // No capture is needed: dropped entries have y = 0, which zeroes their gradient below.
    return make_result<T>(std::move(y), "softmax", {x.node()}, [](Node<T>& self) {
        // softmax([R,C]) -> [R,C]. With y the output and G the upstream gradient, per row:
        //   dx_c = Σ_k G_k dy_k/dx_c = Σ_k G_k y_k (δ_kc - y_c) = y_c (G_c - Σ_k G_k y_k)
        // The sum over k is over kept entries only, automatically, since y_k = 0 elsewhere.
        const Matrix<T>& Y = self.value;
        const Matrix<T>& G = self.grad;
        const Eigen::Matrix<T, Eigen::Dynamic, 1> dot = G.cwiseProduct(Y).rowwise().sum();  // [R,1]
        self.inputs[0]->accumulate_grad(Y.cwiseProduct(G.colwise() - dot));
    });
}

template <typename T>
Tensor<T> log_softmax_impl(const Tensor<T>& x, std::optional<Mask> mask) {
    Matrix<T> y = row_softmax(x.value(), mask, /*log_output=*/true);
    return make_result<T>(std::move(y), "log_softmax", {x.node()}, [mask = std::move(mask)](Node<T>& self) {
        // log_softmax([R,C]) -> [R,C]. With p = softmax(x) = e^y, per row:
        //   dx_c = Σ_k G_k (δ_kc - p_c) = G_c - p_c Σ_k G_k
        // With a mask, dropped entries are constants (0) that do not depend on x: their G
        // is left out of Σ_k G_k, and they get no gradient. p = 0 there as well (e^y = e^0
        // would say 1), so a row with nothing kept gets exactly zero.
        const Index R = self.value.rows(), C = self.value.cols();
        Matrix<T> G = self.grad;
        Matrix<T> P = self.value.array().exp().matrix();
        if (mask) {
            for (Index r = 0; r < R; ++r) {
                for (Index c = 0; c < C; ++c) {
                    if (keeps(mask, r, c)) continue;
                    G(r, c) = T(0);
                    P(r, c) = T(0);
                }
            }
        }
        const Eigen::Matrix<T, Eigen::Dynamic, 1> total = G.rowwise().sum();  // [R,1]
        self.inputs[0]->accumulate_grad(G - (P.array().colwise() * total.array()).matrix());
    });
}

}  // namespace detail

/// Softmax of each row: [R,C] -> [R,C], every row sums to 1 (a row with C = 0 is empty).
template <typename T>
Tensor<T> softmax(const Tensor<T>& x) {
    return detail::softmax_impl(x, std::nullopt);
}

/// Softmax of each row over the entries `mask` keeps: [R,C] with mask [R,C] or [1,C] ->
/// [R,C]. Dropped entries are 0; a row with at least one kept entry sums to 1; a row with
/// none is all zeros. ShapeError if the mask has any other shape.
template <typename T>
Tensor<T> softmax(const Tensor<T>& x, const Mask& mask) {
    detail::check_softmax_mask("softmax", mask, x.rows(), x.cols());
    return detail::softmax_impl(x, std::optional<Mask>(mask));
}

/// Log of the softmax of each row: [R,C] -> [R,C], computed as x - m - log Σ e^(x - m)
/// (never as log(softmax(x)), which is -inf once an entry's probability underflows).
template <typename T>
Tensor<T> log_softmax(const Tensor<T>& x) {
    return detail::log_softmax_impl(x, std::nullopt);
}

/// Log-softmax of each row over the entries `mask` keeps: [R,C] with mask [R,C] or [1,C]
/// -> [R,C]. Dropped entries are not part of the distribution and output 0 (not -inf);
/// a row with nothing kept is all zeros. ShapeError if the mask has any other shape.
template <typename T>
Tensor<T> log_softmax(const Tensor<T>& x, const Mask& mask) {
    detail::check_softmax_mask("log_softmax", mask, x.rows(), x.cols());
    return detail::log_softmax_impl(x, std::optional<Mask>(mask));
}

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(Tensor<float> softmax<float>(const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> softmax<float>(const Tensor<float>&, const Mask&));
PIANO_INSTANTIATE(Tensor<float> log_softmax<float>(const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> log_softmax<float>(const Tensor<float>&, const Mask&));

}  // namespace piano
