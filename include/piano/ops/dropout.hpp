// piano/ops/dropout.hpp: inverted dropout.
#pragma once

#include <cstdint>
#include <random>
#include <sstream>
#include <stdexcept>

#include "piano/core/tensor.hpp"

namespace piano {

/// Inverted dropout. In training, each entry is zeroed with probability p and the kept
/// entries are scaled by 1/(1-p), so E[out] = x and evaluation needs no rescaling:
///   out = x ⊙ M,  M[i] = 0 with probability p, else 1/(1-p).
/// Shapes: x [R,C] -> [R,C]. Backward: dx = G ⊙ M, the same mask.
///
/// When !training or p == 0 it returns x itself (the same handle; no node is recorded).
/// p must lie in [0,1), else std::invalid_argument naming the value (checked in both
/// modes, so a bad configuration fails on the first call).
///
/// The mask consumes exactly one rng() draw per entry, in row-major order, and turns it
/// into a uniform number with plain arithmetic rather than a std:: distribution (whose
/// algorithm differs between standard libraries): the same rng state gives the same mask
/// on every platform. p is not deduced, so dropout(x_float, 0.1, rng, true) compiles.
template <typename T>
Tensor<T> dropout(const Tensor<T>& x, typename Tensor<T>::Scalar p, std::mt19937_64& rng, bool training) {
    if (!(p >= T(0) && p < T(1))) {  // written so that NaN is rejected too
        std::ostringstream message;
        message << "dropout: p must be in [0, 1), got " << p;
        throw std::invalid_argument(message.str());
    }
    if (!training || p == T(0)) return x;

    const Matrix<T>& X = x.value();
    const T scale = T(1) / (T(1) - p);
    Matrix<T> mask(X.rows(), X.cols());
    for (Index i = 0; i < mask.size(); ++i) {
        // The top 53 bits of a 64-bit draw, times 2^-53: uniform on [0,1) at double precision.
        const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
        mask.data()[i] = u < static_cast<double>(p) ? T(0) : scale;
    }
    Matrix<T> out = X.cwiseProduct(mask);
    return detail::make_result<T>(std::move(out), "dropout", {x.node()}, [mask = std::move(mask)](Node<T>& self) {
        // dropout([R,C]) -> [R,C]; dx = G ⊙ M
        Node<T>& nx = *self.inputs[0];
        if (nx.requires_grad) nx.accumulate_grad(self.grad.cwiseProduct(mask));
    });
}

}  // namespace piano
