// piano/model/piano_model.hpp: PIANO = encoders + QDIR + candidate tokens + IAN + heads.
//
// Shapes for a batch of B requests with ΣL candidates and ΣH history events (d = d_model):
//
//   q  = QueryEnc(query)                      [B, d]
//   c  = ItemEnc(candidates)                  [ΣL, d]
//   k  = QueryEnc(history queries)            [ΣH, d]     (no_query where absent)
//   v  = ItemEnc(history items) + type + gap  [ΣH, d]
//
//   QDIR, per request, with one query token and 1 + H keys (the learned null slot first):
//     K = [k_0 ; k_1..k_H],  V = [[v_0 ; k_0] ; [v_j ; k_j]]   ([1+H, d] and [1+H, 2d])
//     r = LayerNorm(q + MHA(q, K, V))                          [B, d]   (MHA ends in W_O)
//   (use_qdir = false: r = mean_j v_j, zero without history)
//
//   x_i = MLP([c_i ; q ; r ; c_i ⊙ r ; c_i ⊙ q])              [ΣL, d]
//   (candidate_attention, ours: u_i = MHA(c_i, v, v) over the request's history values,
//    as DIN does, and x_i = MLP([c_i ; q ; r ; c_i ⊙ r ; c_i ⊙ q ; u_i ; c_i ⊙ u_i]))
//   (no position: the logged position only explains examination in training, see
//    PositionModel in config.hpp and Reranker::forward)
//
//   IAN: z = n + Linear([q ; r])                               [B, d]
//     h = Encoder([z ; x_1..x_L]) per request                  [B + ΣL, d]
//     h_0 = h[z's rows]  [B, d],   h_i = h[candidate rows]  [ΣL, d]
//   (use_ian = false: h_i = Encoder([x_1..x_L]), no h_0 and no list heads)
//
//   list heads from h_0:            list_ctr_logit, list_cvr_logit   [B, 1]
//   (detach_list_heads, ours: h_0 as a constant there, so L_list trains the list heads only)
//   item heads from [h_i ; h_0]:    ctr_logit, cvr_logit             [ΣL, 1]
#pragma once

#include <algorithm>
#include <memory>
#include <random>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/model/encoders.hpp"
#include "piano/model/reranker.hpp"
#include "piano/nn/attention.hpp"
#include "piano/nn/embedding.hpp"
#include "piano/nn/layer_norm.hpp"
#include "piano/nn/mlp.hpp"
#include "piano/nn/transformer.hpp"
#include "piano/ops/indexing.hpp"
#include "piano/ops/linear.hpp"
#include "piano/ops/segment.hpp"

namespace piano {

namespace detail {

/// Row indices that interleave one "head" row per request with the request's own rows:
/// for request b, head row b then rows body_offset + offsets[b] .. offsets[b+1]-1 of a
/// tensor that stacks [heads (n_heads rows) ; body]. Returns the gather indices and the
/// new segment offsets (request b's segment holds 1 + its body rows).
inline std::pair<std::vector<Index>, std::vector<Index>> interleave_head_rows(const std::vector<Index>& offsets) {
    const std::size_t B = offsets.size() - 1;
    std::vector<Index> rows;
    std::vector<Index> new_offsets(B + 1, 0);
    rows.reserve(B + static_cast<std::size_t>(offsets.back()));
    for (std::size_t b = 0; b < B; ++b) {
        rows.push_back(static_cast<Index>(b));
        for (Index i = offsets[b]; i < offsets[b + 1]; ++i) rows.push_back(static_cast<Index>(B) + i);
        new_offsets[b + 1] = static_cast<Index>(rows.size());
    }
    return {rows, new_offsets};
}

/// The first layer of `mlp` on inputs [a_i ; s_seg(i)] (a per-row part a [N, ·] and a
/// per-segment part s [S, ·] repeated down each segment) without forming them:
///     [a_i ; s_seg(i)] W + b = (a_i W_a + b) + (s W_s)_seg(i)
/// with W_a, W_s the rows of W (listed in a_rows, s_rows) that multiply each part. The
/// per-segment product is formed once per segment instead of once per row: [c ; q ; r ; ...]
/// repeats q and r over a request's L candidates. The same sum as the one product, up to
/// rounding.
template <typename T>
Tensor<T> first_layer_split(const MLP<T>& mlp, const Tensor<T>& a, const std::vector<Index>& a_rows,
                            const Tensor<T>& s, const std::vector<Index>& s_rows, const std::vector<Index>& offsets) {
    const Linear<T>& first = mlp.first_layer();
    const Tensor<T> per_row = linear(a, gather_rows(first.weight, a_rows), first.bias);  // [N, h]
    const Tensor<T> per_segment = linear(s, gather_rows(first.weight, s_rows));         // [S, h]
    return per_row + repeat_segments(per_segment, offsets);
}

/// The integers [begin, end), for the row lists of first_layer_split.
inline std::vector<Index> index_range(Index begin, Index end) {
    std::vector<Index> out;
    for (Index i = begin; i < end; ++i) out.push_back(i);
    return out;
}

}  // namespace detail

/// Children: "features", "qdir" (MultiHeadAttention, value width 2d) and "qdir_norm"
/// (when use_qdir), "target_attention" (when candidate_attention), "token_mlp", "ian_proj"
/// (when use_ian), "encoder",
/// "list_ctr", "list_cvr" (when use_ian), "item_ctr", "item_cvr"; parameters "null_key"
/// [1,d], "null_value" [1,2d] (when use_qdir), "ian" [1,d] (when use_ian), and
/// "loss_log_vars" with uncertainty weighting.
template <typename T>
class PianoModel : public Reranker<T> {
public:
    explicit PianoModel(const PianoConfig& config) : Reranker<T>(config) {
        std::mt19937_64 rng(config.seed);
        const Index d = config.d_model;
        const T p = static_cast<T>(config.dropout);
        features_ = this->register_module("features", std::make_shared<FeatureEncoder<T>>(config, rng));
        if (config.use_qdir) {
            qdir_ = this->register_module("qdir", std::make_shared<MultiHeadAttention<T>>(d, config.heads, rng, p, 2 * d));
            qdir_norm_ = this->register_module("qdir_norm", std::make_shared<LayerNorm<T>>(d));
            null_key_ = this->register_parameter("null_key", Tensor<T>(init::normal<T>(1, d, rng, 0.1)));
            null_value_ = this->register_parameter("null_value", Tensor<T>(init::normal<T>(1, 2 * d, rng, 0.1)));
        }
        if (config.candidate_attention) {
            target_attention_ = this->register_module("target_attention",
                                                      std::make_shared<MultiHeadAttention<T>>(d, config.heads, rng, p));
        }
        const Index token_in = config.candidate_attention ? 7 * d : 5 * d;
        token_mlp_ = this->register_module(
            "token_mlp", std::make_shared<MLP<T>>(std::vector<Index>{token_in, 2 * d, d}, rng, Activation::gelu, p));
        if (config.use_ian) {
            ian_ = this->register_parameter("ian", Tensor<T>(init::normal<T>(1, d, rng, 0.1)));
            ian_proj_ = this->register_module("ian_proj", std::make_shared<Linear<T>>(2 * d, d, rng));
        }
        encoder_ = this->register_module("encoder", std::make_shared<TransformerEncoder<T>>(
                                                        config.layers, d, config.heads, config.ffn_dim, p, rng));
        if (config.use_ian) {
            list_ctr_ = this->register_module("list_ctr", std::make_shared<MLP<T>>(std::vector<Index>{d, d, 1}, rng));
            list_cvr_ = this->register_module("list_cvr", std::make_shared<MLP<T>>(std::vector<Index>{d, d, 1}, rng));
        }
        const Index head_in = config.use_ian ? 2 * d : d;
        item_ctr_ = this->register_module("item_ctr", std::make_shared<MLP<T>>(std::vector<Index>{head_in, d, 1}, rng));
        item_cvr_ = this->register_module("item_cvr", std::make_shared<MLP<T>>(std::vector<Index>{head_in, d, 1}, rng));
        this->register_loss_weights();
    }

    std::string kind() const override {
        if (!this->config_.use_qdir) return "piano-noqdir";
        if (!this->config_.use_ian) return "piano-noian";
        return "piano";
    }

protected:
    ModelOutputs<T> forward_scores(const data::Batch& batch, bool want_attention) override {
        ModelOutputs<T> out;
        const Tensor<T> q = features_->query(batch);       // [B, d]
        const Tensor<T> c = features_->candidates(batch);  // [ΣL, d]
        const Tensor<T> v = features_->history_values(batch);  // [ΣH, d]
        const Tensor<T> r = this->config_.use_qdir
                                ? refine_interest(q, features_->history_keys(batch), v, batch,
                                                  want_attention ? &out.qdir_weights : nullptr)
                                : segment_mean(v, batch.hist_offsets);  // [B, d]

        // Candidate tokens: x_i = MLP([c_i ; q ; r ; c_i ⊙ r ; c_i ⊙ q]). The first
        // layer's q and r parts are formed once per request (detail::first_layer_split).
        const Index d = this->config_.d_model;
        const Tensor<T> q_per_cand = repeat_segments(q, batch.cand_offsets);  // [ΣL, d]
        const Tensor<T> r_per_cand = repeat_segments(r, batch.cand_offsets);  // [ΣL, d]
        const bool with_targets = this->config_.candidate_attention;
        std::vector<Index> cand_part_rows = detail::index_range(0, d), request_part_rows = detail::index_range(d, 3 * d);
        for (Index i = 3 * d; i < (with_targets ? 7 : 5) * d; ++i) cand_part_rows.push_back(i);
        std::vector<Tensor<T>> cand_parts{c, c * r_per_cand, c * q_per_cand};
        if (with_targets) {
            // u_i: candidate i's own view of its request's history (zero without history).
            const Tensor<T> u = target_attention_->forward(c, v, v, batch.cand_offsets, batch.hist_offsets);
            cand_parts.push_back(u);
            cand_parts.push_back(c * u);
        }
        const Tensor<T> token_hidden =
            detail::first_layer_split(*token_mlp_, concat_cols<T>(cand_parts), cand_part_rows, concat_cols<T>({q, r}),
                                      request_part_rows, batch.cand_offsets);  // [ΣL, 2d]
        const Tensor<T> x = token_mlp_->forward_from_first(token_hidden);

        if (!this->config_.use_ian) {
            const Tensor<T> h = encoder_->forward(x, batch.cand_offsets);  // [ΣL, d]
            out.ctr_logit = item_ctr_->forward(h);
            out.cvr_logit = item_cvr_->forward(h);
            return out;
        }
        // IAN: the node z sits at position 0 of each request's sequence [z ; x_1..x_L].
        const Tensor<T> z = ian_ + ian_proj_->forward(concat_cols<T>({q, r}));  // [B, d]
        const auto [seq_rows, seq_offsets] = detail::interleave_head_rows(batch.cand_offsets);
        const Tensor<T> h = encoder_->forward(gather_rows(concat_rows<T>({z, x}), seq_rows), seq_offsets);
        std::vector<Index> node_rows, cand_rows;
        for (Index b = 0; b < batch.size(); ++b) {
            node_rows.push_back(seq_offsets[b]);
            for (Index i = seq_offsets[b] + 1; i < seq_offsets[b + 1]; ++i) cand_rows.push_back(i);
        }
        const Tensor<T> h0 = gather_rows(h, node_rows);  // [B, d]
        // Item heads on [h_i ; h_0]: the h_0 part of their first layer once per request.
        const Tensor<T> h_items = gather_rows(h, cand_rows);  // [ΣL, d]
        const std::vector<Index> item_part = detail::index_range(0, d), node_part = detail::index_range(d, 2 * d);
        out.ctr_logit = item_ctr_->forward_from_first(
            detail::first_layer_split(*item_ctr_, h_items, item_part, h0, node_part, batch.cand_offsets));  // [ΣL, 1]
        out.cvr_logit = item_cvr_->forward_from_first(
            detail::first_layer_split(*item_cvr_, h_items, item_part, h0, node_part, batch.cand_offsets));
        // detach_list_heads: the list task reads the IAN state but sends no gradient back into
        // it (measured: a list loss that trains the encoder costs the item ranking).
        const Tensor<T> h0_for_list = this->config_.detach_list_heads ? h0.detach() : h0;
        out.list_ctr_logit = list_ctr_->forward(h0_for_list);  // [B, 1]
        out.list_cvr_logit = list_cvr_->forward(h0_for_list);
        return out;
    }

private:
    // QDIR: r = LayerNorm(q + MHA(q, [k_0 ; k], [[v_0] ; [v ; k]])), one query per request.
    Tensor<T> refine_interest(const Tensor<T>& q, const Tensor<T>& k, const Tensor<T>& v, const data::Batch& batch,
                              AttentionWeights<T>* weights) {
        const auto [key_rows, key_offsets] = detail::interleave_head_rows(batch.hist_offsets);
        std::vector<Index> null_rows(static_cast<std::size_t>(batch.size()), 0);  // the null slot, once per request
        const Tensor<T> keys = gather_rows(concat_rows<T>({gather_rows(null_key_, null_rows), k}), key_rows);
        const Tensor<T> values =
            gather_rows(concat_rows<T>({gather_rows(null_value_, null_rows), concat_cols<T>({v, k})}), key_rows);
        std::vector<Index> query_offsets(static_cast<std::size_t>(batch.size()) + 1);
        for (std::size_t b = 0; b < query_offsets.size(); ++b) query_offsets[b] = static_cast<Index>(b);
        const Tensor<T> attended = qdir_->forward(q, keys, values, query_offsets, key_offsets, nullptr, weights);
        return qdir_norm_->forward(q + attended);
    }

    std::shared_ptr<FeatureEncoder<T>> features_;
    std::shared_ptr<MultiHeadAttention<T>> qdir_, target_attention_;
    std::shared_ptr<LayerNorm<T>> qdir_norm_;
    Tensor<T> null_key_, null_value_, ian_;
    std::shared_ptr<MLP<T>> token_mlp_, list_ctr_, list_cvr_, item_ctr_, item_cvr_;
    std::shared_ptr<Linear<T>> ian_proj_;
    std::shared_ptr<TransformerEncoder<T>> encoder_;
};

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(class PianoModel<float>);

}  // namespace piano
