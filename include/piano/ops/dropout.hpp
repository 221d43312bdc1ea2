// piano/ops/dropout.hpp: inverted dropout.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/core/parallel.hpp"
#include "piano/core/tensor.hpp"

namespace piano {

namespace detail {

/// SplitMix64's output function: a bijective 64-bit mix whose outputs for consecutive
/// inputs pass BigCrush (Steele, Lea and Flood, 2014).
inline std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/// The counter-based dropout mask: out[i] is the factor of entry first + i, 0 where
/// dropped, 1/(1-p) where kept. Entry e is dropped when the top 53 bits of
/// splitmix64(seed + e · 0x9E3779B97F4A7C15) are below p · 2^53, so each entry's
/// decision depends on (seed, e) alone: any thread can make it, and a backward can make it
/// again instead of storing the mask.
template <typename T>
void dropout_factors(double p, std::uint64_t seed, std::uint64_t first, Index count, T* out) {
    const auto threshold = static_cast<std::uint64_t>(std::ceil(p * 0x1.0p53));
    const T keep = static_cast<T>(1.0 / (1.0 - p));
    for (Index i = 0; i < count; ++i) {
        const std::uint64_t e = first + static_cast<std::uint64_t>(i);
        out[i] = (splitmix64(seed + e * 0x9E3779B97F4A7C15ull) >> 11) < threshold ? T(0) : keep;
    }
}

}  // namespace detail

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
    // The top 53 bits of a 64-bit draw, k, times 2^-53 are uniform on [0,1) at double
    // precision, and u = k 2^-53 < p exactly when the integer k < ceil(p 2^53): the same
    // mask, compared in integers (p 2^53 is exact in double).
    const auto threshold = static_cast<std::uint64_t>(std::ceil(static_cast<double>(p) * 0x1.0p53));
    Matrix<T> mask(X.rows(), X.cols());
    T* m = mask.data();
    for (Index i = 0; i < mask.size(); ++i) m[i] = (rng() >> 11) < threshold ? T(0) : scale;
    Matrix<T> out = X.cwiseProduct(mask);
    return detail::make_result<T>(std::move(out), "dropout", {x.node()}, [mask = std::move(mask)](Node<T>& self) {
        // dropout([R,C]) -> [R,C]; dx = G ⊙ M
        Node<T>& nx = *self.inputs[0];
        if (nx.requires_grad) nx.accumulate_grad(self.grad.cwiseProduct(mask));
    });
}

/// Inverted dropout with a counter-based mask drawn from `seed` (detail::dropout_factors):
/// out = x ⊙ M, M[k] = 0 or 1/(1-p) for entry k in row-major order, the same formula as the
/// overload above but a different mask. Each entry's decision depends on (seed, k) alone,
/// so the forward runs in parallel pieces and the backward remakes the mask rather than
/// storing it. The Dropout module calls it with one fresh draw of its generator per call.
/// Shapes, modes and errors as the overload above (in eval, or with p == 0, it returns x).
template <typename T>
Tensor<T> dropout(const Tensor<T>& x, typename Tensor<T>::Scalar p, std::uint64_t seed, bool training) {
    if (!(p >= T(0) && p < T(1))) {  // written so that NaN is rejected too
        std::ostringstream message;
        message << "dropout: p must be in [0, 1), got " << p;
        throw std::invalid_argument(message.str());
    }
    if (!training || p == T(0)) return x;
    constexpr Index kPiece = 16384;
    const double pd = static_cast<double>(p);
    const Matrix<T>& X = x.value();
    Matrix<T> out(X.rows(), X.cols());
    detail::parallel_rows(X.size(), kPiece, 8.0, [&](Index b, Index n) {
        detail::dropout_factors(pd, seed, static_cast<std::uint64_t>(b), n, out.data() + b);
        for (Index k = b; k < b + n; ++k) out.data()[k] *= X.data()[k];
    });
    return detail::make_result<T>(std::move(out), "dropout", {x.node()}, [pd, seed, piece = kPiece](Node<T>& self) {
        // dropout([R,C], seed) -> [R,C]; dx = G ⊙ M, M remade from the seed
        Node<T>& nx = *self.inputs[0];
        if (!nx.requires_grad) return;
        const bool fresh = nx.begin_grad_write();
        T* dx = nx.grad.data();
        const T* g = self.grad.data();
        detail::parallel_rows(self.grad.size(), piece, 8.0, [&](Index b, Index n) {
            if (fresh) {
                detail::dropout_factors(pd, seed, static_cast<std::uint64_t>(b), n, dx + b);
                for (Index k = b; k < b + n; ++k) dx[k] *= g[k];
            } else {
                std::vector<T> m(static_cast<std::size_t>(n));
                detail::dropout_factors(pd, seed, static_cast<std::uint64_t>(b), n, m.data());
                for (Index k = 0; k < n; ++k) dx[b + k] += g[b + k] * m[static_cast<std::size_t>(k)];
            }
        });
    });
}

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(Tensor<float> dropout<float>(const Tensor<float>&, float, std::mt19937_64&, bool));
PIANO_INSTANTIATE(Tensor<float> dropout<float>(const Tensor<float>&, float, std::uint64_t, bool));

}  // namespace piano
