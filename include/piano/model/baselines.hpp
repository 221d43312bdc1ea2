// piano/model/baselines.hpp: the models PIANO is compared with (SPEC "Baselines").
//
// All share FeatureEncoder (q [B,d], c [ΣL,d], v [ΣH,d]) and the trainer, so they differ
// only in what they build on top:
//   DnnModel   pointwise MLP on [c_i ; q], CTR only
//   DinModel   DIN-style target attention: each candidate attends over the history
//              values; pointwise MLP on [c_i ; q ; u_i ; c_i ⊙ u_i], CTR and CVR heads
//   PrmModel   PRM: a transformer over the list of Linear([c_i ; q ; p]),
//              p = mean history value (the personal vector); trained with the listwise
//              softmax loss on clicks only. PRM's paper adds a position embedding to the
//              input; here, as for every model, the logged position only explains
//              examination in training (PositionModel in config.hpp)
// The first-stage order needs no model (metrics::first_stage_prediction), and the PIANO
// ablations are PianoModel with use_qdir or use_ian off.
#pragma once

#include <memory>
#include <random>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/model/encoders.hpp"
#include "piano/model/reranker.hpp"
#include "piano/nn/attention.hpp"
#include "piano/nn/embedding.hpp"
#include "piano/nn/mlp.hpp"
#include "piano/nn/transformer.hpp"
#include "piano/ops/indexing.hpp"
#include "piano/ops/segment.hpp"

namespace piano {

namespace detail {
/// Pointwise models score each candidate alone: no listwise term.
inline PianoConfig pointwise(PianoConfig c) {
    c.listwise_loss = false;
    return c;
}
}  // namespace detail

/// Children: "features", "mlp" ([2d -> 2d -> d -> 1]).
template <typename T>
class DnnModel : public Reranker<T> {
public:
    explicit DnnModel(const PianoConfig& config) : Reranker<T>(detail::pointwise(config)) {
        std::mt19937_64 rng(config.seed);
        const Index d = config.d_model;
        features_ = this->register_module("features", std::make_shared<FeatureEncoder<T>>(config, rng));
        mlp_ = this->register_module("mlp", std::make_shared<MLP<T>>(std::vector<Index>{2 * d, 2 * d, d, 1}, rng,
                                                                      Activation::relu, static_cast<T>(config.dropout)));
        this->register_loss_weights();
    }
    std::string kind() const override { return "dnn"; }

protected:
    ModelOutputs<T> forward_scores(const data::Batch& batch, bool /*want_attention*/) override {
        ModelOutputs<T> out;
        const Tensor<T> q = repeat_segments(features_->query(batch), batch.cand_offsets);  // [ΣL, d]
        out.ctr_logit = mlp_->forward(concat_cols<T>({features_->candidates(batch), q}));  // [ΣL, 1]
        return out;
    }

private:
    std::shared_ptr<FeatureEncoder<T>> features_;
    std::shared_ptr<MLP<T>> mlp_;
};

/// Children: "features", "target_attention" (MultiHeadAttention: candidates attend over
/// the request's history values), "ctr", "cvr" (MLPs on [c ; q ; u ; c ⊙ u], 4d wide).
template <typename T>
class DinModel : public Reranker<T> {
public:
    explicit DinModel(const PianoConfig& config) : Reranker<T>(detail::pointwise(config)) {
        std::mt19937_64 rng(config.seed);
        const Index d = config.d_model;
        const T p = static_cast<T>(config.dropout);
        features_ = this->register_module("features", std::make_shared<FeatureEncoder<T>>(config, rng));
        attention_ = this->register_module("target_attention",
                                           std::make_shared<MultiHeadAttention<T>>(d, config.heads, rng, p));
        ctr_ = this->register_module("ctr", std::make_shared<MLP<T>>(std::vector<Index>{4 * d, 2 * d, d, 1}, rng,
                                                                      Activation::relu, p));
        cvr_ = this->register_module("cvr", std::make_shared<MLP<T>>(std::vector<Index>{4 * d, 2 * d, d, 1}, rng,
                                                                      Activation::relu, p));
        this->register_loss_weights();
    }
    std::string kind() const override { return "din"; }

protected:
    ModelOutputs<T> forward_scores(const data::Batch& batch, bool /*want_attention*/) override {
        ModelOutputs<T> out;
        const Tensor<T> c = features_->candidates(batch);  // [ΣL, d]
        const Tensor<T> v = features_->history_values(batch);  // [ΣH, d]
        const Tensor<T> q = repeat_segments(features_->query(batch), batch.cand_offsets);
        // u_i: candidate i's view of its own request's history (zero without history).
        const Tensor<T> u = attention_->forward(c, v, v, batch.cand_offsets, batch.hist_offsets);
        const Tensor<T> in = concat_cols<T>({c, q, u, c * u});  // [ΣL, 4d]
        out.ctr_logit = ctr_->forward(in);
        out.cvr_logit = cvr_->forward(in);
        return out;
    }

private:
    std::shared_ptr<FeatureEncoder<T>> features_;
    std::shared_ptr<MultiHeadAttention<T>> attention_;
    std::shared_ptr<MLP<T>> ctr_, cvr_;
};

/// Children: "features", "input" (Linear 3d -> d), "encoder", "score" (MLP).
template <typename T>
class PrmModel : public Reranker<T> {
public:
    explicit PrmModel(const PianoConfig& config) : Reranker<T>(listwise_only(config)) {
        std::mt19937_64 rng(config.seed);
        const Index d = config.d_model;
        const T p = static_cast<T>(config.dropout);
        features_ = this->register_module("features", std::make_shared<FeatureEncoder<T>>(config, rng));
        input_ = this->register_module("input", std::make_shared<Linear<T>>(3 * d, d, rng));
        encoder_ = this->register_module("encoder", std::make_shared<TransformerEncoder<T>>(
                                                        config.layers, d, config.heads, config.ffn_dim, p, rng));
        score_ = this->register_module("score", std::make_shared<MLP<T>>(std::vector<Index>{d, d, 1}, rng));
        this->register_loss_weights();
    }
    std::string kind() const override { return "prm"; }

protected:
    ModelOutputs<T> forward_scores(const data::Batch& batch, bool /*want_attention*/) override {
        ModelOutputs<T> out;
        const Tensor<T> q = repeat_segments(features_->query(batch), batch.cand_offsets);
        const Tensor<T> personal =
            repeat_segments(segment_mean(features_->history_values(batch), batch.hist_offsets), batch.cand_offsets);
        const Tensor<T> x = input_->forward(concat_cols<T>({features_->candidates(batch), q, personal}));
        out.ctr_logit = score_->forward(encoder_->forward(x, batch.cand_offsets));  // [ΣL, 1]
        return out;
    }

private:
    static PianoConfig listwise_only(PianoConfig c) {
        c.listwise_loss = true;
        c.weight_ctr = 0.0;
        c.weight_listwise = 1.0;
        return c;
    }
    std::shared_ptr<FeatureEncoder<T>> features_;
    std::shared_ptr<Linear<T>> input_;
    std::shared_ptr<TransformerEncoder<T>> encoder_;
    std::shared_ptr<MLP<T>> score_;
};

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(class DnnModel<float>);
PIANO_INSTANTIATE(class DinModel<float>);
PIANO_INSTANTIATE(class PrmModel<float>);

}  // namespace piano
