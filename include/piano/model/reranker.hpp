// piano/model/reranker.hpp: the interface PIANO and every baseline implement.
//
// A Reranker maps a Batch to logits. Everything else, the losses, the trainer, the
// metrics and inference (rerank), is written once against this interface, so every model
// is trained and evaluated by the same code.
#pragma once

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/core/parallel.hpp"
#include "piano/data/batch.hpp"
#include "piano/metrics/ranking.hpp"
#include "piano/model/config.hpp"
#include "piano/nn/attention.hpp"
#include "piano/nn/embedding.hpp"
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
    Tensor<T> exam_logit;      // [ΣL, 1]  e_pos of each candidate's logged position: explains
                               //          examination in the loss, never reaches the score
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

/// Requests [begin, end) of `batch` as a batch of their own (offsets rebased to 0): what
/// make_batch would give for those requests, without needing the Request objects.
inline data::Batch slice_batch(const data::Batch& batch, Index begin, Index end) {
    auto cut = [](const auto& v, Index from, Index to) {
        using V = std::decay_t<decltype(v)>;
        return V(v.begin() + from, v.begin() + to);
    };
    auto rebase = [](const std::vector<Index>& offsets, Index from, Index to) {
        std::vector<Index> out(offsets.begin() + from, offsets.begin() + to + 1);
        const Index base = out.front();
        for (Index& o : out) o -= base;
        return out;
    };
    data::Batch b;
    if (!batch.requests.empty()) b.requests = cut(batch.requests, begin, end);
    const Index q0 = batch.query_offsets[begin], q1 = batch.query_offsets[end];
    b.query_offsets = rebase(batch.query_offsets, begin, end);
    b.query_terms = cut(batch.query_terms, q0, q1);
    const Index c0 = batch.cand_offsets[begin], c1 = batch.cand_offsets[end];
    const Index n_cand = batch.num_candidates();
    b.cand_offsets = rebase(batch.cand_offsets, begin, end);
    for (std::size_t f = 0; f < b.cand_fields.size(); ++f) b.cand_fields[f] = cut(batch.cand_fields[f], c0, c1);
    b.cand_pos = cut(batch.cand_pos, c0, c1);
    if (!batch.first_stage_order.empty()) b.first_stage_order = cut(batch.first_stage_order, begin, end);
    b.dense_dim = batch.dense_dim;
    b.cand_dense = cut(batch.cand_dense, c0 * batch.dense_dim, c1 * batch.dense_dim);
    b.cand_query_match = cut(batch.cand_query_match, c0 * data::kProductTextCount, c1 * data::kProductTextCount);
    // Labels may be absent at inference; they are cut only when there is one per candidate.
    if (static_cast<Index>(batch.click.size()) == n_cand) b.click = cut(batch.click, c0, c1);
    if (static_cast<Index>(batch.conv.size()) == n_cand) b.conv = cut(batch.conv, c0, c1);
    if (static_cast<Index>(batch.label.size()) == n_cand) b.label = cut(batch.label, c0, c1);
    const Index h0 = batch.hist_offsets[begin], h1 = batch.hist_offsets[end];
    b.hist_offsets = rebase(batch.hist_offsets, begin, end);
    for (std::size_t f = 0; f < b.hist_fields.size(); ++f) b.hist_fields[f] = cut(batch.hist_fields[f], h0, h1);
    b.hist_type = cut(batch.hist_type, h0, h1);
    b.hist_gap = cut(batch.hist_gap, h0, h1);
    b.hist_has_query = cut(batch.hist_has_query, h0, h1);
    b.hist_query_offsets = rebase(batch.hist_query_offsets, h0, h1);
    b.hist_query_terms = cut(batch.hist_query_terms, batch.hist_query_offsets[h0], batch.hist_query_offsets[h1]);
    return b;
}

/// The logged positions, clamped to the last one with a term of its own.
inline std::vector<Index> clamp_positions(const std::vector<Index>& pos, Index max_positions) {
    std::vector<Index> out(pos.size());
    for (std::size_t i = 0; i < pos.size(); ++i) out[i] = std::min(pos[i], max_positions - 1);
    return out;
}

// log σ(x) without overflow, in double (inference only, no graph).
inline double log_sigmoid_value(double x) { return std::min(x, 0.0) - std::log1p(std::exp(-std::abs(x))); }
inline double sigmoid_value(double x) { return std::exp(log_sigmoid_value(x)); }
}  // namespace detail

template <typename T>
class Reranker : public Module<T> {
public:
    /// Registers the child "examination" ([max_positions, 1], zeros: σ(0) = 1/2 everywhere
    /// at first) unless config.position_model is none.
    explicit Reranker(PianoConfig config) : config_(std::move(config)) {
        if (config_.position_model != PositionModel::none) {
            std::mt19937_64 unused(0);
            examination_ = this->register_module(
                "examination", std::make_shared<Embedding<T>>(config_.max_positions, 1, unused));
            examination_->weight.mutable_value().setZero();
        }
    }

    /// The model's outputs (forward_scores) plus exam_logit, the examination term of each
    /// candidate's logged position, when the model has one and every request of the batch
    /// is in a first-stage order (Batch::first_stage_order; a shuffled list's positions
    /// say nothing, so a batch holding one gets no examination term at all).
    /// Requires: a batch of >= 1 request, each with >= 1 candidate.
    /// Ensures: ctr_logit is [ΣL,1]; the other outputs are [ΣL,1] / [B,1] or undefined.
    ModelOutputs<T> forward(const data::Batch& batch, bool want_attention = false) {
        ModelOutputs<T> out = forward_scores(batch, want_attention);
        const bool positions_known = std::all_of(batch.first_stage_order.begin(), batch.first_stage_order.end(),
                                                 [](int known) { return known != 0; });
        if (examination_ && positions_known)
            out.exam_logit = examination_->forward(detail::clamp_positions(batch.cand_pos, config_.max_positions));
        return out;
    }

    /// The model's name as the CLI and the reports spell it ("piano", "prm", ...).
    virtual std::string kind() const = 0;

    const PianoConfig& config() const { return config_; }

    /// Sets λ of the rerank score s_i = (1-λ) log pCTR_i + λ log pCTCVR_i. λ weighs clicks
    /// against conversions when serving; training never reads it, so a trained model can be
    /// served at another λ without retraining. Throws ConfigError outside [0, 1].
    void set_score_lambda(double lambda) {
        if (!(lambda >= 0.0 && lambda <= 1.0))
            throw ConfigError("set_score_lambda: lambda must be in [0, 1], got " + std::to_string(lambda));
        config_.lambda = lambda;
    }

    /// config().to_map() plus "model" = kind(): what the trainer writes into checkpoints.
    std::map<std::string, std::string> config_map() const override {
        auto m = config_.to_map();
        m["model"] = kind();
        return m;
    }

    /// Requests per piece of rerank's work (see rerank).
    static constexpr Index kRerankPiece = 16;

    /// The new order and every prediction for each request of `batch`, building no graph
    /// and in evaluation mode (no dropout); the model's mode is restored afterwards.
    /// The mode is switched only when the model is in training mode, so concurrent calls
    /// on a model already in eval mode touch no shared state.
    ///
    /// A batch of more than kRerankPiece requests is cut into fixed pieces of kRerankPiece
    /// requests that run through forward() in parallel (OpenMP over requests, one parallel
    /// region per call; inside another parallel region they run one after the other). The
    /// pieces do not depend on the thread count, so neither do the results. forward() must
    /// therefore be safe to call concurrently in evaluation mode without gradients, as every
    /// model here is (it reads the parameters and writes nothing shared). An exception in a
    /// piece is rethrown once all pieces have finished.
    std::vector<RerankResult> rerank(const data::Batch& batch) {
        const bool was_training = this->is_training();
        if (was_training) this->eval();
        const Index pieces = (batch.size() + kRerankPiece - 1) / kRerankPiece;
        std::vector<RerankResult> results;
        std::vector<std::exception_ptr> errors(static_cast<std::size_t>(std::max<Index>(pieces, 1)));
        if (pieces <= 1) {
            try {
                NoGradGuard no_grad;
                results = results_from(forward_scores(batch, false), batch);
            } catch (...) {
                errors[0] = std::current_exception();
            }
        } else {
            results.resize(static_cast<std::size_t>(batch.size()));
            const double work = 1e5 * static_cast<double>(batch.num_candidates());  // always worth threads
            detail::parallel_for(pieces, work, [&](Index k) {
                try {
                    NoGradGuard no_grad;  // on every thread: the flag is thread-local
                    const Index begin = k * kRerankPiece, end = std::min(batch.size(), begin + kRerankPiece);
                    const data::Batch piece = detail::slice_batch(batch, begin, end);
                    std::vector<RerankResult> part = results_from(forward_scores(piece, false), piece);
                    std::move(part.begin(), part.end(), results.begin() + begin);
                } catch (...) {
                    errors[static_cast<std::size_t>(k)] = std::current_exception();
                }
            });
        }
        if (was_training) this->train();
        for (const auto& e : errors) {
            if (e) std::rethrow_exception(e);
        }
        return results;
    }

    RerankResult rerank(const data::Request& request) { return rerank(data::make_batch({&request})).front(); }

    std::vector<RerankResult> rerank(const std::vector<data::Request>& requests) {
        return rerank(data::make_batch(requests, 0, requests.size()));
    }

    /// Learned loss weights s_k for uncertainty weighting ([1, 4]: ctr, ctcvr, list,
    /// listwise), or undefined with fixed weights.
    const Tensor<T>& loss_log_variances() const { return loss_log_vars_; }

protected:
    /// What each model computes from a batch: every output but exam_logit. forward()
    /// calls it; rerank() uses only its scores.
    virtual ModelOutputs<T> forward_scores(const data::Batch& batch, bool want_attention) = 0;

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
    std::shared_ptr<Embedding<T>> examination_;
};

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(class Reranker<float>);

}  // namespace piano
