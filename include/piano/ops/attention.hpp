// piano/ops/attention.hpp: fused multi-head scaled dot-product attention over ragged batches.
//
// Queries [Rq,d] and keys/values [Rk,d] stack the rows of S segments (lists) without
// padding, as in piano/ops/segment.hpp; segment s's queries attend to segment s's keys
// only. For segment s (nq queries, nk keys) and head h (columns h·dh .. (h+1)·dh - 1 of
// every input, dh = d / heads):
//     P_h = softmax_over_keys(scale · Q_h K_hᵀ, key mask)       [nq, nk]
//     C_h = (P_h ⊙ M_h) V_h                                      [nq, dh]
// and the output holds C_h in the same columns: [Rq, d]. M is the dropout mask (all ones
// without dropout). A segment with no key, or with every key masked, has nothing to
// attend to: its output rows are exact zeros.
//
// One node for the whole batch, all heads: the forward keeps P (Σ_s heads·nq·nk scalars)
// for the backward, and nothing else. Per segment and head, the backward is
//     dV_h += (P⊙M)ᵀ G_h,   dP = (G_h V_hᵀ) ⊙ M,
//     dS = P ⊙ (dP - rowsum(dP ⊙ P)),   dQ_h += scale · dS K_h,   dK_h += scale · dSᵀ Q_h.
// Segments are independent, so they run in parallel (piano/core/parallel.hpp); each writes
// only its own rows, and nothing depends on the thread count.
//
// Dropout (AttentionDropout) needs no stored mask and no sequential generator: entry e of
// the stacked probabilities (segment after segment, head after head, row-major, the
// layout of the `probabilities` output) is dropped when a hash of (seed, e) falls below p.
// Any thread can decide any entry, and the backward decides it again the same way.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/core/parallel.hpp"
#include "piano/core/tensor.hpp"
#include "piano/ops/dropout.hpp"
#include "piano/ops/segment.hpp"

namespace piano {

/// Dropout on the attention probabilities of segment_attention (see the top of this header).
/// p = 0 means none. A caller draws a fresh seed per call from its own generator.
struct AttentionDropout {
    double p = 0.0;          // drop probability, in [0, 1)
    std::uint64_t seed = 0;  // the mask is a function of (seed, entry) alone
};

namespace detail {

/// Per-thread scratch storage that outlives a call: the per-segment, per-head temporaries
/// of segment_attention (one [nq, nk] block, row sums) would otherwise be allocated anew
/// for every segment and head of every call. Slot tells apart buffers that are live at the
/// same time. Grows to the largest request seen and keeps it; contents are undefined.
template <typename T, int Slot>
T* thread_scratch(Index count) {
    thread_local std::vector<T> buffer;
    if (buffer.size() < static_cast<std::size_t>(count)) buffer.resize(static_cast<std::size_t>(count));
    return buffer.data();
}

/// The dropout factors of `count` consecutive entries starting at entry `first` of the
/// stacked probabilities: detail::dropout_factors, the Dropout module's counter-based mask.
template <typename T>
void attention_dropout_factors(const AttentionDropout& d, std::uint64_t first, Index count, T* out) {
    dropout_factors(d.p, d.seed, first, count, out);
}

/// In place: every row of the row-major [nq, nk] block at p becomes the softmax of its
/// entries over the kept columns (masked columns, listed in `masked`, become 0; at least
/// one column is kept). Written for short rows (a few dozen keys), where per-row
/// reductions cost more than the arithmetic: without a mask and when the block's scores
/// span less than 60, every row is shifted by the block's largest score (softmax does not
/// change; e^-60 is still a normal number, so no row underflows or loses precision) and
/// the block is exponentiated in one vectorised pass; otherwise each row is shifted by its
/// own largest kept score. Row sums come from one matrix-vector product (with a vector of
/// ones, both in thread_scratch).
template <typename T>
void softmax_rows_inplace(T* p, Index nq, Index nk, const std::vector<Index>& masked) {
    using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
    using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;
    Eigen::Map<Array> flat(p, nq * nk);
    Eigen::Map<Matrix<T>> block(p, nq, nk);
    if (masked.empty() && flat.maxCoeff() - flat.minCoeff() < T(60)) {
        flat = (flat - flat.maxCoeff()).exp();
    } else {
        for (Index j : masked) block.col(j).setConstant(std::numeric_limits<T>::lowest());
        for (Index i = 0; i < nq; ++i) {
            T* r = p + i * nk;
            T top = r[0];
            for (Index j = 1; j < nk; ++j) top = r[j] > top ? r[j] : top;
            for (Index j = 0; j < nk; ++j) r[j] -= top;
        }
        flat = flat.exp();
        for (Index j : masked) block.col(j).setZero();
    }
    Eigen::Map<Vector> ones(thread_scratch<T, 1>(nk), nk), sums(thread_scratch<T, 2>(nq), nq);
    ones.setOnes();
    sums.noalias() = block * ones;  // [nq], each >= 1
    for (Index i = 0; i < nq; ++i) {
        T* r = p + i * nk;
        const T inv = T(1) / sums(i);
        for (Index j = 0; j < nk; ++j) r[j] *= inv;
    }
}

/// In place, the softmax backward of a row-major [nq, nk] block: dp := scale · P ⊙ (dp -
/// rowsum(dp ⊙ P)), the row sums from one matrix-vector product (see above). Uses
/// thread_scratch slots 1 to 3.
template <typename T>
void softmax_backward_inplace(T* dp, const T* prob, Index nq, Index nk, T scale) {
    using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;
    Eigen::Map<const Matrix<T>> P(prob, nq, nk);
    Eigen::Map<const Matrix<T>> D(dp, nq, nk);
    Eigen::Map<Matrix<T>> product(thread_scratch<T, 3>(nq * nk), nq, nk);
    product = D.cwiseProduct(P);
    Eigen::Map<Vector> ones(thread_scratch<T, 1>(nk), nk), dots(thread_scratch<T, 2>(nq), nq);
    ones.setOnes();
    dots.noalias() = product * ones;  // [nq]
    for (Index i = 0; i < nq; ++i) {
        T* d = dp + i * nk;
        const T* pr = prob + i * nk;
        const T dot = dots(i);
        for (Index j = 0; j < nk; ++j) d[j] = pr[j] * (d[j] - dot) * scale;
    }
}

// Where segment s lives: its query rows, key rows, and its first entry in P.
struct AttentionSegment {
    Index q0, nq, k0, nk;
    std::uint64_t base;  // first entry of the segment in the stacked probabilities
    bool silent;         // no query, or nothing to attend to
};

}  // namespace detail

/// Fused ragged multi-head attention (the math at the top of this header).
/// Requires: q [Rq,d], k [Rk,d], v [Rk,d], heads >= 1 dividing d; q_offsets and k_offsets
/// valid segment offsets with the same S+1 entries, covering Rq and Rk rows; key_mask, if
/// given, [Rk,1] (true = a real key); 0 <= dropout.p < 1.
/// Ensures: the result is [Rq,d]; rows of silent segments are exact zeros (no NaN). If
/// probabilities is given, it receives S matrices, segment s's being [heads·nq_s, nk_s]:
/// head h's [nq_s, nk_s] softmax (before dropout) at rows h·nq_s .. (h+1)·nq_s - 1, all
/// zeros for a silent segment.
/// Violations throw ShapeError naming the argument and the shapes.
template <typename T>
Tensor<T> segment_attention(const Tensor<T>& q, const Tensor<T>& k, const Tensor<T>& v,
                            const std::vector<Index>& q_offsets, const std::vector<Index>& k_offsets, Index heads,
                            typename Tensor<T>::Scalar scale, const Mask* key_mask = nullptr,
                            AttentionDropout dropout = {}, std::vector<Matrix<T>>* probabilities = nullptr) {
    const std::string op = "segment_attention";
    detail::require_defined(q, "segment_attention");
    detail::require_defined(k, "segment_attention");
    detail::require_defined(v, "segment_attention");
    const Index d = q.cols();
    if (heads < 1 || d % heads != 0) {
        throw ShapeError(op + ": the width " + std::to_string(d) + " of q " + q.shape() +
                         " is not a positive multiple of heads " + std::to_string(heads));
    }
    if (k.cols() != d) detail::throw_shape(op, "q and k must have the same columns:", q.rows(), d, k.rows(), k.cols());
    if (v.rows() != k.rows() || v.cols() != d) {
        detail::throw_shape(op, "v must have k's shape:", v.rows(), v.cols(), k.rows(), k.cols());
    }
    detail::check_offsets_cover("segment_attention (q_offsets)", q_offsets, q.rows(), q.cols());
    detail::check_offsets_cover("segment_attention (k_offsets)", k_offsets, k.rows(), k.cols());
    if (q_offsets.size() != k_offsets.size()) {
        throw ShapeError(op + ": q_offsets has " + std::to_string(q_offsets.size()) + " entries but k_offsets has " +
                         std::to_string(k_offsets.size()) + "; both need S+1 for the same S segments");
    }
    if (key_mask && (key_mask->rows() != k.rows() || key_mask->cols() != 1)) {
        throw ShapeError(op + ": key_mask " + shape_string(key_mask->rows(), key_mask->cols()) + " must be " +
                         shape_string(k.rows(), 1) + " for k " + k.shape());
    }
    if (!(dropout.p >= 0.0 && dropout.p < 1.0)) {
        throw std::invalid_argument(op + ": dropout p must be in [0, 1), got " + std::to_string(dropout.p));
    }

    const Index dh = d / heads;
    const std::size_t S = q_offsets.size() - 1;
    std::vector<detail::AttentionSegment> segs(S);
    std::uint64_t total = 0;
    double work = 0;
    for (std::size_t s = 0; s < S; ++s) {
        auto& g = segs[s];
        g.q0 = q_offsets[s];
        g.nq = q_offsets[s + 1] - g.q0;
        g.k0 = k_offsets[s];
        g.nk = k_offsets[s + 1] - g.k0;
        g.base = total;
        bool any_key = g.nk > 0;
        if (key_mask && any_key) any_key = key_mask->middleRows(g.k0, g.nk).any();
        g.silent = g.nq == 0 || !any_key;
        // A corrupt offset list could make nq * nk wrap around and under-allocate P.
        total += static_cast<std::uint64_t>(
            detail::checked_size_product(heads, detail::checked_size_product(g.nq, g.nk, op), op));
        work += 2.0 * static_cast<double>(g.nq) * static_cast<double>(g.nk) * static_cast<double>(d);
    }

    const Matrix<T>& Q = q.value();
    const Matrix<T>& K = k.value();
    const Matrix<T>& V = v.value();
    const bool drop = dropout.p > 0;
    Matrix<T> P(1, static_cast<Index>(total));  // the stacked probabilities, flat
    Matrix<T> out(q.rows(), d);
    detail::parallel_for(static_cast<Index>(S), work, [&](Index si) {
        const auto& g = segs[static_cast<std::size_t>(si)];
        T* p_seg = P.data() + g.base;
        if (g.silent) {
            std::fill(p_seg, p_seg + heads * g.nq * g.nk, T(0));
            out.middleRows(g.q0, g.nq).setZero();
            return;
        }
        // P ⊙ M for one head, with dropout [nq, nk] (slot 0; softmax_rows_inplace uses 1, 2).
        Eigen::Map<Matrix<T>> mixed(drop ? detail::thread_scratch<T, 0>(g.nq * g.nk) : nullptr, g.nq, g.nk);
        thread_local std::vector<Index> masked;  // this segment's masked keys, as columns
        masked.clear();
        if (key_mask) {
            for (Index j = 0; j < g.nk; ++j) {
                if (!(*key_mask)(g.k0 + j, 0)) masked.push_back(j);
            }
        }
        for (Index h = 0; h < heads; ++h) {
            const Index c0 = h * dh;
            Eigen::Map<Matrix<T>> ph(p_seg + h * g.nq * g.nk, g.nq, g.nk);
            if (g.nq == 1) {
                // One query (QDIR): the scaled query row in scratch, which is what Eigen would
                // otherwise allocate for the product of an expression.
                Eigen::Map<Matrix<T>> query(detail::thread_scratch<T, 7>(dh), 1, dh);
                query = scale * Q.block(g.q0, c0, 1, dh);
                ph.noalias() = query * K.block(g.k0, c0, g.nk, dh).transpose();
            } else {
                ph.noalias() = (scale * Q.block(g.q0, c0, g.nq, dh)) * K.block(g.k0, c0, g.nk, dh).transpose();
            }
            detail::softmax_rows_inplace(ph.data(), g.nq, g.nk, masked);  // masked softmax over the keys
            auto c = out.block(g.q0, c0, g.nq, dh);
            if (drop) {
                detail::attention_dropout_factors(dropout, g.base + static_cast<std::uint64_t>(h * g.nq * g.nk),
                                                  g.nq * g.nk, mixed.data());
                mixed.array() *= ph.array();
                c.noalias() = mixed * V.block(g.k0, c0, g.nk, dh);
            } else {
                c.noalias() = ph * V.block(g.k0, c0, g.nk, dh);
            }
        }
    });

    if (probabilities) {
        probabilities->assign(S, Matrix<T>());
        for (std::size_t s = 0; s < S; ++s) {
            const auto& g = segs[s];
            (*probabilities)[s] = Eigen::Map<const Matrix<T>>(P.data() + g.base, heads * g.nq, g.nk);
        }
    }

    return detail::make_result<T>(
        std::move(out), "segment_attention", {q.node(), k.node(), v.node()},
        [segs = std::move(segs), P = std::move(P), heads, dh, scale, dropout, work](Node<T>& self) {
            // segment_attention(q [Rq,d], k [Rk,d], v [Rk,d]) -> [Rq,d]; G = dL/dout is [Rq,d].
            Node<T>& nq = *self.inputs[0];
            Node<T>& nk = *self.inputs[1];
            Node<T>& nv = *self.inputs[2];
            const Matrix<T>& G = self.grad;
            const Matrix<T>& Q = nq.value;
            const Matrix<T>& K = nk.value;
            const Matrix<T>& V = nv.value;
            // Local gradients, then one accumulation each: q, k and v may be one node
            // (self-attention), whose rows different segments could share.
            Matrix<T> dq = detail::parallel_zeros<T>(Q.rows(), Q.cols());
            Matrix<T> dk = detail::parallel_zeros<T>(K.rows(), K.cols());
            Matrix<T> dv = detail::parallel_zeros<T>(V.rows(), V.cols());
            const bool drop = dropout.p > 0;
            detail::parallel_for(static_cast<Index>(segs.size()), 2 * work, [&](Index si) {
                const auto& g = segs[static_cast<std::size_t>(si)];
                if (g.silent) return;
                // [nq, nk] each, in thread_scratch slots apart from softmax_backward_inplace's 1-3.
                Eigen::Map<Matrix<T>> dp(detail::thread_scratch<T, 4>(g.nq * g.nk), g.nq, g.nk);
                Eigen::Map<Matrix<T>> mask(drop ? detail::thread_scratch<T, 5>(g.nq * g.nk) : nullptr, g.nq, g.nk);
                Eigen::Map<Matrix<T>> mixed(drop ? detail::thread_scratch<T, 6>(g.nq * g.nk) : nullptr, g.nq, g.nk);
                for (Index h = 0; h < heads; ++h) {
                    const Index c0 = h * dh;
                    const Eigen::Map<const Matrix<T>> ph(P.data() + g.base + h * g.nq * g.nk, g.nq, g.nk);
                    const auto gh = G.block(g.q0, c0, g.nq, dh);
                    const auto vh = V.block(g.k0, c0, g.nk, dh);
                    dp.noalias() = gh * vh.transpose();  // d(P⊙M) = G_h V_hᵀ   [nq,nk]
                    if (drop) {
                        detail::attention_dropout_factors(dropout, g.base + static_cast<std::uint64_t>(h * g.nq * g.nk),
                                                          g.nq * g.nk, mask.data());
                        mixed.array() = ph.array() * mask.array();
                        dv.block(g.k0, c0, g.nk, dh).noalias() += mixed.transpose() * gh;  // [nk,dh]
                        dp.array() *= mask.array();
                    } else {
                        dv.block(g.k0, c0, g.nk, dh).noalias() += ph.transpose() * gh;  // [nk,dh]
                    }
                    // Softmax backward, row by row: dS = P ⊙ (dP - Σ_j dP_j P_j), times scale.
                    detail::softmax_backward_inplace(dp.data(), ph.data(), g.nq, g.nk, scale);
                    dq.block(g.q0, c0, g.nq, dh).noalias() += dp * K.block(g.k0, c0, g.nk, dh);              // [nq,dh]
                    dk.block(g.k0, c0, g.nk, dh).noalias() += dp.transpose() * Q.block(g.q0, c0, g.nq, dh);  // [nk,dh]
                }
            });
            if (nq.requires_grad) nq.accumulate_grad(std::move(dq));
            if (nk.requires_grad) nk.accumulate_grad(std::move(dk));
            if (nv.requires_grad) nv.accumulate_grad(std::move(dv));
        });
}

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(Tensor<float> segment_attention<float>(const Tensor<float>&, const Tensor<float>&,
                                                         const Tensor<float>&, const std::vector<Index>&,
                                                         const std::vector<Index>&, Index, float, const Mask*,
                                                         AttentionDropout, std::vector<Matrix<float>>*));

}  // namespace piano
