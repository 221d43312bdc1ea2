// piano/ops/loss.hpp: binary cross-entropy computed from logits.
#pragma once

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

#include "piano/core/compiled.hpp"
#include "piano/core/tensor.hpp"

namespace piano {

/// How per-entry losses become the result: their mean over the kept entries ([1,1]),
/// their sum ([1,1]), or none (the [R,C] matrix of per-entry losses).
enum class Reduction { mean, sum, none };

/// Options of binary_cross_entropy_with_logits. An empty `weights` means all ones; an
/// empty `mask` means every entry is kept. Non-empty ones must have the logits' shape.
template <typename T>
struct BceOptions {
    Matrix<T> weights;  // w: per-entry weight, e.g. to up-weight rare positives
    Mask mask;          // m: true = the entry counts (a real candidate), false = ignored
    Reduction reduction = Reduction::mean;
};

/// Binary cross-entropy between sigmoid(logits) and targets, from the logits.
///
/// Shapes: logits x [R,C] and targets y [R,C], y in [0,1] (soft labels allowed) -> [1,1]
/// for mean and sum, [R,C] for none. Per entry, with σ the sigmoid:
///   ℓ = −y log σ(x) − (1−y) log(1 − σ(x)) = max(x,0) − x·y + log1p(exp(−|x|)).
/// The right-hand form never forms σ(x) or log of a tiny number, so it is exact and finite
/// for any finite x (at x = ±1000 in float, where log(sigmoid(x)) gives −inf).
///
/// With weights w and mask m (m = 0 or 1), and n = the number of kept entries:
///   sum  = Σ m·w·ℓ
///   mean = Σ m·w·ℓ / n       (divided by the count of kept entries, not by Σ w)
///   none = m·w·ℓ, entrywise  (masked entries are 0)
/// A batch with no kept entries has mean 0 and gradient 0, never 0/0 = NaN. Masked entries
/// are skipped, not multiplied by 0, so padding that holds NaN or out-of-range targets
/// cannot leak into the loss.
///
/// Backward: dℓ/dx = σ(x) − y, so dx = G · m·w·(σ(x) − y), divided by n for mean.
///
/// Errors: targets, weights or mask of another shape than the logits -> ShapeError naming
/// the op and both shapes; a kept target outside [0,1] (e.g. a raw 0..4 label passed
/// instead of a click bit) -> std::invalid_argument naming the entry and its value.
template <typename T>
Tensor<T> binary_cross_entropy_with_logits(const Tensor<T>& logits, const Matrix<T>& targets,
                                           const BceOptions<T>& options = {}) {
    const char* op = "binary_cross_entropy_with_logits";
    const Index R = logits.rows(), C = logits.cols();
    auto check_shape = [&](const char* what, Index r, Index c) {
        if (r != R || c != C) {
            detail::throw_shape(op, std::string(what) + " must have the shape of the logits:", r, c, R, C);
        }
    };
    check_shape("targets", targets.rows(), targets.cols());
    const bool weighted = options.weights.size() > 0;
    const bool masked = options.mask.size() > 0;
    if (weighted) check_shape("weights", options.weights.rows(), options.weights.cols());
    if (masked) check_shape("mask", options.mask.rows(), options.mask.cols());

    // F = m·w per entry (0 where masked): the factor both the loss and its gradient carry.
    // All matrices are row-major with the same shape, so entry k is data()[k] in each.
    const Matrix<T>& X = logits.value();
    Matrix<T> F = Matrix<T>::Zero(R, C);
    Matrix<T> losses = Matrix<T>::Zero(R, C);  // m·w·ℓ
    Index kept = 0;
    for (Index k = 0; k < X.size(); ++k) {
        if (masked && !options.mask.data()[k]) continue;
        ++kept;
        const T x = X.data()[k], y = targets.data()[k];
        if (!(y >= T(0) && y <= T(1))) {  // written so that NaN is rejected too
            std::ostringstream message;
            message << op << ": target at (" << k / C << ',' << k % C << ") is " << y << ", targets must be in [0,1]";
            throw std::invalid_argument(message.str());
        }
        F.data()[k] = weighted ? options.weights.data()[k] : T(1);
        const T l = std::max(x, T(0)) - x * y + std::log1p(std::exp(-std::abs(x)));
        losses.data()[k] = F.data()[k] * l;
    }

    Matrix<T> out;
    switch (options.reduction) {
        case Reduction::none: out = std::move(losses); break;
        case Reduction::sum: out = Matrix<T>::Constant(1, 1, losses.sum()); break;
        case Reduction::mean:
            out = Matrix<T>::Constant(1, 1, kept > 0 ? losses.sum() / static_cast<T>(kept) : T(0));
            // With nothing kept F is all zeros, so the gradient below is 0 without a division.
            if (kept > 0) F /= static_cast<T>(kept);
            break;
    }

    const Reduction reduction = options.reduction;
    return detail::make_result<T>(
        std::move(out), op, {logits.node()}, [Y = Matrix<T>(targets), F = std::move(F), reduction](Node<T>& self) {
            // bce_with_logits([R,C] logits, [R,C] targets) -> [1,1] (mean, sum) or [R,C] (none)
            // dx = G · F ⊙ (σ(x) − y), with F = m·w (/n for mean); G is [1,1] or [R,C].
            Node<T>& nx = *self.inputs[0];
            if (!nx.requires_grad) return;
            const Matrix<T>& X = nx.value;
            Matrix<T> d(X.rows(), X.cols());
            for (Index k = 0; k < X.size(); ++k) {
                const T x = X.data()[k];
                // σ(x) without overflow: exp of a non-positive number only.
                const T e = std::exp(-std::abs(x));
                const T sigmoid = x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
                const T f = F.data()[k];
                // F = 0 (masked) gives exactly 0, even where a padding logit is NaN.
                d.data()[k] = f == T(0) ? T(0) : f * (sigmoid - Y.data()[k]);
            }
            if (reduction == Reduction::none) {
                nx.accumulate_grad(d.cwiseProduct(self.grad));
            } else {
                nx.accumulate_grad(self.grad(0, 0) * d);
            }
        });
}

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(Tensor<float> binary_cross_entropy_with_logits<float>(const Tensor<float>&, const Matrix<float>&,
                                                                        const BceOptions<float>&));

}  // namespace piano
