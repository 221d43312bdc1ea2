// piano/model/reranker.hpp: the interface PIANO and every baseline implement.
//
// A Reranker maps a Batch to logits. Everything else, the losses, the trainer, the
// metrics and inference (rerank), is written once against this interface, so every model
// is trained and evaluated by the same code.
#pragma once

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "piano/data/batch.hpp"
#include "piano/metrics/ranking.hpp"
#include "piano/model/config.hpp"
#include "piano/nn/attention.hpp"
#include "piano/nn/module.hpp"

namespace piano {

/// What a forward pass produces. Undefined tensors mark quantities a model does not
/// predict (the DNN has no CVR head; models without an IAN have no list heads).
template <typename T>
struct ModelOutputs {
    Tensor<T> ctr_logit;       // [ΣL, 1]  pCTR_i  = σ(ctr_logit_i)
    Tensor<T> cvr_logit;       // [ΣL, 1]  pCVR_i  = σ(cvr_logit_i); pCTCVR_i = pCTR_i · pCVR_i
    Tensor<T> list_ctr_logit;  // [B, 1]   P(the list gets >= 1 click)
    Tensor<T> list_cvr_logit;  // [B, 1]   P(the list gets >= 1 conversion)
    AttentionWeights<T> qdir_weights;  // PIANO only, when asked: one segment per request,
                                       // [heads, 1 + H] (column 0 is the null slot)
};

/// The answer for one request. Vectors are in first-stage order, index i = candidate i.
struct RerankResult {
    std::vector<std::size_t> order;  // candidate indices, best first
    std::vector<double> score;       // s_i = (1-λ) log pCTR_i + λ log pCTCVR_i
    std::vector<double> p_ctr, p_cvr, p_ctcvr;  // p_cvr / p_ctcvr empty without a CVR head
    double p_list_ctr = std::numeric_limits<double>::quiet_NaN();  // NaN without list heads
    double p_list_cvr = std::numeric_limits<double>::quiet_NaN();
};

namespace detail {
// log σ(x) without overflow, in double (inference only, no graph).
inline double log_sigmoid_value(double x) { return std::min(x, 0.0) - std::log1p(std::exp(-std::abs(x))); }
inline double sigmoid_value(double x) { return std::exp(log_sigmoid_value(x)); }
}  // namespace detail

template <typename T>
class Reranker : public Module<T> {
public:
    explicit Reranker(PianoConfig config) : config_(std::move(config)) {}

    /// Requires: a batch of >= 1 request, each with >= 1 candidate.
    /// Ensures: ctr_logit is [ΣL,1]; the other outputs are [ΣL,1] / [B,1] or undefined.
    virtual ModelOutputs<T> forward(const data::Batch& batch, bool want_attention = false) = 0;

    /// The model's name as the CLI and the reports spell it ("piano", "prm", ...).
    virtual std::string kind() const = 0;

    const PianoConfig& config() const { return config_; }

    /// The new order and every prediction for each request of `batch`, building no graph
    /// and in evaluation mode (no dropout); the model's mode is restored afterwards.
    /// The mode is switched only when the model is in training mode, so concurrent calls
    /// on a model already in eval mode touch no shared state.
    std::vector<RerankResult> rerank(const data::Batch& batch) {
        const bool was_training = this->is_training();
        if (was_training) this->eval();
        ModelOutputs<T> out;
        {
            NoGradGuard no_grad;
            out = forward(batch);
        }
        if (was_training) this->train();
        return results_from(out, batch);
    }

    RerankResult rerank(const data::Request& request) { return rerank(data::make_batch({&request})).front(); }

    std::vector<RerankResult> rerank(const std::vector<data::Request>& requests) {
        return rerank(data::make_batch(requests, 0, requests.size()));
    }

    /// Learned loss weights s_k for uncertainty weighting ([1, 4]: ctr, ctcvr, list,
    /// listwise), or undefined with fixed weights.
    const Tensor<T>& loss_log_variances() const { return loss_log_vars_; }

protected:
    /// Subclasses call this last in their constructor (so the parameter is named last).
    void register_loss_weights() {
        if (config_.weighting == LossWeighting::uncertainty) {
            loss_log_vars_ = this->register_parameter("loss_log_vars", Tensor<T>::zeros(1, 4));
        }
    }

    PianoConfig config_;

private:
    std::vector<RerankResult> results_from(const ModelOutputs<T>& out, const data::Batch& batch) const {
        std::vector<RerankResult> results(static_cast<std::size_t>(batch.size()));
        const double lambda = config_.lambda;
        for (Index b = 0; b < batch.size(); ++b) {
            RerankResult& r = results[static_cast<std::size_t>(b)];
            const Index begin = batch.cand_offsets[b], end = batch.cand_offsets[b + 1];
            for (Index i = begin; i < end; ++i) {
                const double a = static_cast<double>(out.ctr_logit.value()(i, 0));
                r.p_ctr.push_back(detail::sigmoid_value(a));
                if (out.cvr_logit.defined()) {
                    const double c = static_cast<double>(out.cvr_logit.value()(i, 0));
                    r.p_cvr.push_back(detail::sigmoid_value(c));
                    r.p_ctcvr.push_back(r.p_ctr.back() * r.p_cvr.back());
                    // (1-λ) log pCTR + λ log(pCTR pCVR) = log pCTR + λ log pCVR, from logits.
                    r.score.push_back(detail::log_sigmoid_value(a) + lambda * detail::log_sigmoid_value(c));
                } else {
                    r.score.push_back(detail::log_sigmoid_value(a));
                }
            }
            if (out.list_ctr_logit.defined()) r.p_list_ctr = detail::sigmoid_value(out.list_ctr_logit.value()(b, 0));
            if (out.list_cvr_logit.defined()) r.p_list_cvr = detail::sigmoid_value(out.list_cvr_logit.value()(b, 0));
            r.order = metrics::rerank_order(r.score);  // best first; ties keep first-stage order
        }
        return results;
    }

    Tensor<T> loss_log_vars_;
};

}  // namespace piano
