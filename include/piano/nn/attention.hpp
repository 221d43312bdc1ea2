// piano/nn/attention.hpp: multi-head scaled dot-product attention over ragged batches.
//
// A ragged batch stacks the rows of S lists without padding (see piano/ops/segment.hpp):
// queries [Rq,d] with query_offsets (S+1 entries) and keys/values [Rk,·] with key_offsets
// (S+1 entries). Segment s's queries attend to segment s's keys only, so lists never see
// each other and no compute is spent on padding.
//
// Per segment s (nq queries, nk keys) and head h (d_head = d_model / heads columns):
//     Q = query W_q + b_q,  K = key W_k + b_k,  V = value W_v + b_v      (whole batch at once)
//     P_h = softmax_over_keys( Q_h K_hᵀ / √d_head , key mask )           [nq, nk]
//     C_h = dropout(P_h) V_h                                              [nq, d_head]
//     out = [C_1 … C_heads] W_o + b_o                                     [nq, d_model]
// where X_h is columns [h·d_head, (h+1)·d_head) of X restricted to the segment's rows.
//
// The projections are four `linear` nodes over the whole batch; everything per segment
// and head (scores, masked softmax, dropout, mixing) is one fused `segment_attention`
// node (piano/ops/attention.hpp), which runs the segments in parallel. Its dropout mask
// is drawn from one seed per call, taken from the module's own generator.
#pragma once

#include <cmath>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/nn/dropout.hpp"
#include "piano/nn/linear.hpp"
#include "piano/nn/module.hpp"
#include "piano/ops/attention.hpp"
#include "piano/ops/elementwise.hpp"
#include "piano/ops/indexing.hpp"
#include "piano/ops/matmul.hpp"
#include "piano/ops/segment.hpp"
#include "piano/ops/softmax.hpp"

namespace piano {

/// The attention probabilities of one forward call, for inspection (they carry no graph).
///
/// segments[s] is [heads * nq_s, nk_s] for a segment with nq_s queries and nk_s keys: the
/// per-head [nq_s, nk_s] matrices stacked head after head, so row h * nq_s + i is head h's
/// distribution of query i over the segment's keys. They are the softmax outputs before
/// dropout. A row sums to 1 when the segment has at least one unmasked key; masked keys
/// have weight 0; a segment with no key, or with every key masked, has all-zero rows.
template <typename T>
struct AttentionWeights {
    Index heads = 0;
    std::vector<Matrix<T>> segments;

    /// The number of queries of segment s.
    Index queries(std::size_t s) const { return segments.at(s).rows() / heads; }

    /// Head h's weights in segment s: [nq_s, nk_s].
    Matrix<T> head(std::size_t s, Index h) const {
        const Index nq = queries(s);
        return segments.at(s).middleRows(h * nq, nq);
    }

    /// The heads' average in segment s: [nq_s, nk_s] (what PyTorch reports by default).
    Matrix<T> mean_over_heads(std::size_t s) const {
        Matrix<T> mean = head(s, 0);
        for (Index h = 1; h < heads; ++h) mean += head(s, h);
        return mean / static_cast<T>(heads);
    }
};

/// Multi-head attention on ragged batches (the math at the top of this header).
///
/// Children, in this order: "w_q", "w_k", "w_v", "w_o" (Linear with bias; parameters
/// "w_q.weight" [d_model, d_model], "w_q.bias" [1, d_model], ...; w_v.weight is
/// [value_features, d_model]) and "dropout" (on the attention probabilities, active in
/// training mode only; no parameters).
template <typename T>
class MultiHeadAttention : public Module<T> {
public:
    /// Requires: d_model and heads positive, d_model % heads == 0 (else
    /// std::invalid_argument naming both), 0 <= dropout < 1. value_features is the width
    /// of the value input; 0 means d_model (QDIR's values [v ; k] are wider than d_model).
    MultiHeadAttention(Index d_model, Index heads, std::mt19937_64& rng, T dropout = T(0), Index value_features = 0)
        : d_model_(d_model), heads_(heads), value_features_(value_features == 0 ? d_model : value_features) {
        if (d_model < 1 || heads < 1 || d_model % heads != 0) {
            throw std::invalid_argument("MultiHeadAttention: d_model " + std::to_string(d_model) +
                                        " must be a positive multiple of heads " + std::to_string(heads));
        }
        d_head_ = d_model / heads;
        w_q_ = this->register_module("w_q", std::make_shared<Linear<T>>(d_model, d_model, rng));
        w_k_ = this->register_module("w_k", std::make_shared<Linear<T>>(d_model, d_model, rng));
        w_v_ = this->register_module("w_v", std::make_shared<Linear<T>>(value_features_, d_model, rng));
        w_o_ = this->register_module("w_o", std::make_shared<Linear<T>>(d_model, d_model, rng));
        dropout_ = this->register_module("dropout", std::make_shared<Dropout<T>>(dropout, rng()));
    }

    /// Requires:
    ///   - query [Rq, d_model], key [Rk, d_model], value [Rk, value_features];
    ///   - query_offsets and key_offsets valid segment offsets (S+1 entries each, the same
    ///     S, from 0 to Rq and to Rk; see piano/ops/segment.hpp);
    ///   - key_mask, if given, [Rk, 1] with true = a real key that may be attended to.
    /// Ensures:
    ///   - the result is [Rq, d_model]; its rows in segment s depend only on segment s's
    ///     queries and (unmasked) keys and values;
    ///   - a segment with no key, or all keys masked, gives exact zero rows for its queries
    ///     (nothing to attend to contributes nothing, so a residual passes x through), never NaN;
    ///   - if weights_out is given, it receives the attention probabilities
    ///     (see AttentionWeights).
    /// Self-attention: pass the same tensor and offsets as query, key and value.
    /// Violations throw ShapeError naming the argument and the shapes.
    Tensor<T> forward(const Tensor<T>& query, const Tensor<T>& key, const Tensor<T>& value,
                      const std::vector<Index>& query_offsets, const std::vector<Index>& key_offsets,
                      const Mask* key_mask = nullptr, AttentionWeights<T>* weights_out = nullptr) {
        check_inputs(query, key, value, query_offsets, key_offsets, key_mask);
        const std::size_t S = query_offsets.size() - 1;

        // Scores are scaled by 1/√d_head inside the kernel, folded into the Q K_hᵀ product.
        const T scale = T(1) / std::sqrt(static_cast<T>(d_head_));
        const Tensor<T> q = w_q_->forward(query);  // [Rq,d]
        const Tensor<T> k = w_k_->forward(key);    // [Rk,d]
        const Tensor<T> v = w_v_->forward(value);  // [Rk,d]
        AttentionDropout drop;
        if (dropout_->active()) {
            drop.p = static_cast<double>(dropout_->p());
            drop.seed = dropout_->draw_seed();
        }
        if (weights_out) weights_out->heads = heads_;
        const Tensor<T> context = segment_attention(q, k, v, query_offsets, key_offsets, heads_, scale, key_mask, drop,
                                                    weights_out ? &weights_out->segments : nullptr);  // [Rq,d]
        const Tensor<T> out = w_o_->forward(context);                                             // [Rq,d]

        // Queries with nothing to attend to have zero context; their rows of the result are
        // zeroed too, which W_o alone would leave at b_o.
        Matrix<T> attends = Matrix<T>::Ones(query.rows(), 1);
        bool any_silent = false;
        for (std::size_t s = 0; s < S; ++s) {
            const Index q0 = query_offsets[s], nq = query_offsets[s + 1] - q0;
            const Index k0 = key_offsets[s], nk = key_offsets[s + 1] - k0;
            if (nq == 0) continue;
            const bool any_key = nk > 0 && (!key_mask || key_mask->middleRows(k0, nk).any());
            if (!any_key) {
                attends.middleRows(q0, nq).setZero();
                any_silent = true;
            }
        }
        return any_silent ? out * Tensor<T>(attends) : out;
    }

    Index d_model() const { return d_model_; }
    Index heads() const { return heads_; }
    Index d_head() const { return d_head_; }
    Index value_features() const { return value_features_; }

    Linear<T>& w_q() { return *w_q_; }
    Linear<T>& w_k() { return *w_k_; }
    Linear<T>& w_v() { return *w_v_; }
    Linear<T>& w_o() { return *w_o_; }

private:
    void check_inputs(const Tensor<T>& query, const Tensor<T>& key, const Tensor<T>& value,
                      const std::vector<Index>& query_offsets, const std::vector<Index>& key_offsets,
                      const Mask* key_mask) const {
        const std::string op = "MultiHeadAttention";
        auto require_cols = [&](const char* what, const Tensor<T>& x, Index cols) {
            if (x.cols() != cols) {
                throw ShapeError(op + ": " + what + " " + x.shape() + " must have " + std::to_string(cols) + " columns");
            }
        };
        require_cols("query", query, d_model_);
        require_cols("key", key, d_model_);
        require_cols("value", value, value_features_);
        if (key.rows() != value.rows()) {
            detail::throw_shape(op, "key and value must have the same rows:", key.rows(), key.cols(), value.rows(),
                                value.cols());
        }
        detail::check_offsets_cover("MultiHeadAttention (query_offsets)", query_offsets, query.rows(), query.cols());
        detail::check_offsets_cover("MultiHeadAttention (key_offsets)", key_offsets, key.rows(), key.cols());
        if (query_offsets.size() != key_offsets.size()) {
            throw ShapeError(op + ": query_offsets has " + std::to_string(query_offsets.size()) +
                             " entries but key_offsets has " + std::to_string(key_offsets.size()) +
                             "; both need S+1 for the same S segments");
        }
        if (key_mask && (key_mask->rows() != key.rows() || key_mask->cols() != 1)) {
            throw ShapeError(op + ": key_mask " + shape_string(key_mask->rows(), key_mask->cols()) + " must be " +
                             shape_string(key.rows(), 1) + " for key " + key.shape());
        }
    }

    Index d_model_, heads_, d_head_ = 0, value_features_;
    std::shared_ptr<Linear<T>> w_q_, w_k_, w_v_, w_o_;
    std::shared_ptr<Dropout<T>> dropout_;
};

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(struct AttentionWeights<float>);
PIANO_INSTANTIATE(class MultiHeadAttention<float>);

}  // namespace piano
