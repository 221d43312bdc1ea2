// piano/model/losses.hpp: the multi-task loss, every term from logits.
//
// With a = ctr_logit, b = cvr_logit (per candidate) and y = click, y' = click ∧ conv:
//   L_ctr      = mean_i BCE(σ(a_i), y_i)
//   L_ctcvr    = mean_i BCE(σ(a_i)σ(b_i), y'_i)        (ESMM: over all candidates, so the
//                CVR head learns without the sample-selection bias of clicked-only data)
//   L_list     = mean_b BCE(σ(list_ctr_b), any click) + BCE(σ(list_cvr_b), any conv)
//   L_listwise = mean over lists with a click of  -Σ_i (y_i / Σ_j y_j) log softmax_i(a)
// Total: Σ_k w_k L_k (fixed weights), or Σ_k exp(-s_k) L_k + s_k with learned s_k
// (uncertainty weighting). A term is present only when the model predicts what it needs.
//
// With an examination term e (out.exam_logit, the logged position's; see PositionModel),
// the logged click is explained as σ(e)σ(a) (pal) or σ(a + e) (logit) in L_ctr, L_ctcvr
// and L_listwise, while the rerank score keeps a alone.
//
// The product probability never goes through log(σ(a)σ(b)) naively:
//   log pCTCVR     = log σ(a) + log σ(b)
//   log(1-pCTCVR)  = log(1 + e^a + e^b) - softplus(a) - softplus(b)
// because 1 - σ(a)σ(b) = (1 + e^a + e^b) / ((1 + e^a)(1 + e^b)); and
// log(1 + e^a + e^b) = logsumexp(a, b, 0) = -log_softmax([a, b, 0])_3.
#pragma once

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/data/batch.hpp"
#include "piano/model/reranker.hpp"
#include "piano/ops/elementwise.hpp"
#include "piano/ops/indexing.hpp"
#include "piano/ops/loss.hpp"
#include "piano/ops/reduce.hpp"
#include "piano/ops/segment.hpp"
#include "piano/ops/softmax.hpp"
#include "piano/ops/unary.hpp"

namespace piano {

/// The loss of one batch: the total to backpropagate and each term's value (NaN when
/// the term is absent), for logs and for naming the term that went non-finite.
template <typename T>
struct LossBreakdown {
    Tensor<T> total;  // [1,1]
    static constexpr int kTerms = 4;
    static constexpr const char* kNames[kTerms] = {"ctr", "ctcvr", "list", "listwise"};
    bool present[kTerms] = {false, false, false, false};  // which terms this model and config compute
    double terms[kTerms] = {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN(),
                            std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
};

/// BCE(Π_k σ(x_k), y) per entry, from the logits x_1..x_n (n = 1..4), each [N,1] -> [N,1].
/// log p = Σ_k log σ(x_k), and since Π_k (1 + e^{x_k}) = Σ_S e^{Σ_{k∈S} x_k} over every
/// subset S of the factors,
///   1 - p = Σ_{S ≠ all} e^{Σ_{k∈S} x_k} / Π_k (1 + e^{x_k}),
///   log(1 - p) = logsumexp_{S ≠ all}(Σ_{k∈S} x_k) - Σ_k softplus(x_k),
/// with the empty subset contributing e^0 (for n = 2: logsumexp(a, b, 0), as at the top).
template <typename T>
Tensor<T> product_bce_with_logits(const std::vector<Tensor<T>>& logits, const Matrix<T>& y) {
    const std::size_t n = logits.size();
    if (n < 1 || n > 4)
        throw std::invalid_argument("product_bce_with_logits: 1 to 4 factors, got " + std::to_string(n));
    Tensor<T> log_p = log_sigmoid(logits[0]), softplus_sum = softplus(logits[0]);
    for (std::size_t k = 1; k < n; ++k) {
        log_p = log_p + log_sigmoid(logits[k]);
        softplus_sum = softplus_sum + softplus(logits[k]);
    }
    // The proper non-empty subsets by bit mask, then the empty one (a zero column) last.
    std::vector<Tensor<T>> subset_sums;
    for (unsigned mask = 1; mask + 1 < (1u << n); ++mask) {
        Tensor<T> sum_in_subset;
        for (std::size_t k = 0; k < n; ++k) {
            if (!(mask & (1u << k))) continue;
            sum_in_subset = sum_in_subset.defined() ? sum_in_subset + logits[k] : logits[k];
        }
        subset_sums.push_back(sum_in_subset);
    }
    subset_sums.push_back(Tensor<T>::zeros(logits[0].rows(), 1));
    // logsumexp of the columns = -log_softmax(columns) at the zero column.
    const Index last = static_cast<Index>(subset_sums.size()) - 1;
    const Tensor<T> log_sum = neg(slice_cols(log_softmax(concat_cols<T>(subset_sums)), last, 1));
    const Tensor<T> log_not_p = log_sum - softplus_sum;
    const Tensor<T> yt(y), not_y(Matrix<T>((Matrix<T>::Ones(y.rows(), 1) - y)));
    return neg(yt * log_p + not_y * log_not_p);
}

/// BCE(σ(a)σ(b), y) per entry: the two-factor case above. a, b [N,1] -> [N,1].
template <typename T>
Tensor<T> product_bce_with_logits(const Tensor<T>& a, const Tensor<T>& b, const Matrix<T>& y) {
    return product_bce_with_logits<T>(std::vector<Tensor<T>>{a, b}, y);
}

/// Softmax cross-entropy of each list's logits against its click distribution, averaged
/// over lists with at least one click (lists without a click carry no listwise signal).
template <typename T>
Tensor<T> listwise_softmax_loss(const Tensor<T>& logits, const std::vector<int>& click, const std::vector<Index>& offsets) {
    const std::size_t B = offsets.size() - 1;
    // log softmax within each list: a_i - logsumexp(list). The per-list max m is subtracted
    // before exp for stability; it is a constant, so it changes no gradient.
    Matrix<T> list_max(static_cast<Index>(B), 1);
    Matrix<T> target(logits.rows(), 1);
    Index lists_with_click = 0;
    for (std::size_t b = 0; b < B; ++b) {
        const Index begin = offsets[b], end = offsets[b + 1];
        list_max(static_cast<Index>(b), 0) = logits.value().block(begin, 0, end - begin, 1).maxCoeff();
        double clicks = 0;
        for (Index i = begin; i < end; ++i) clicks += click[static_cast<std::size_t>(i)];
        for (Index i = begin; i < end; ++i) {
            target(i, 0) = clicks > 0 ? static_cast<T>(click[static_cast<std::size_t>(i)] / clicks) : T(0);
        }
        lists_with_click += clicks > 0;
    }
    // No list with a click: a zero that is still part of the graph, so that a batch without
    // clicks (LETOR queries without a relevant document) backpropagates zero gradients.
    if (lists_with_click == 0) return sum(logits) * T(0);
    const Tensor<T> m(std::move(list_max));
    const Tensor<T> shifted = logits - repeat_segments(m, offsets);
    const Tensor<T> log_sum = log(segment_sum(exp(shifted), offsets));  // [B,1]
    const Tensor<T> log_softmax_in_list = shifted - repeat_segments(log_sum, offsets);
    return neg(sum(Tensor<T>(std::move(target)) * log_softmax_in_list)) / static_cast<T>(lists_with_click);
}

/// How much of a whole batch's loss one part of it carries, when ranks train on parts of
/// each batch (train/collective.hpp). Each term of the whole batch is a mean over its
/// units: candidates for ctr and ctcvr, requests for list, lists with a click for
/// listwise. A part's mean times (the part's units / the whole's units), summed over the
/// parts, is the whole's mean, and so are the gradients. `regularizer` weighs the s_k that
/// uncertainty weighting adds once per batch: 1 on one part, 0 on the others.
struct LossShare {
    double term[4] = {1.0, 1.0, 1.0, 1.0};
    double regularizer = 1.0;
};

/// The share of `part`, one part of the batch `whole`; `first` for the part that carries
/// the regularizer. A term whose whole batch has no unit (no list with a click) gets 0.
inline LossShare loss_share(const std::vector<const data::Request*>& whole, const data::Batch& part, bool first) {
    const auto count = [](const std::vector<const data::Request*>& requests, double units[3]) {
        units[0] = units[1] = units[2] = 0.0;
        for (const data::Request* r : requests) {
            units[0] += static_cast<double>(r->candidates.size());
            units[1] += 1.0;
            units[2] += std::any_of(r->candidates.begin(), r->candidates.end(),
                                    [](const data::Candidate& c) { return c.click > 0; });
        }
    };
    double whole_units[3], part_units[3];
    count(whole, whole_units);
    count(part.requests, part_units);
    const auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
    LossShare share;
    share.term[0] = share.term[1] = ratio(part_units[0], whole_units[0]);
    share.term[2] = ratio(part_units[1], whole_units[1]);
    share.term[3] = ratio(part_units[2], whole_units[2]);
    share.regularizer = first ? 1.0 : 0.0;
    return share;
}

/// The weighted multi-task loss of `out` on `batch` (see the top of this header).
/// `log_vars` is the model's [1,4] uncertainty parameter, or undefined for fixed weights.
/// With a `share` (batch is a part of a larger batch, LossShare), every term and its
/// value in the breakdown are the part's share; the default share is the whole batch.
template <typename T>
LossBreakdown<T> multi_task_loss(const ModelOutputs<T>& out, const data::Batch& batch, const PianoConfig& config,
                                 const Tensor<T>& log_vars, const LossShare& share = LossShare{}) {
    const Index n = batch.num_candidates();
    const Index B = batch.size();
    Matrix<T> click(n, 1), click_and_conv(n, 1), list_click = Matrix<T>::Zero(B, 1), list_conv = Matrix<T>::Zero(B, 1);
    for (Index b = 0; b < B; ++b) {
        for (Index i = batch.cand_offsets[b]; i < batch.cand_offsets[b + 1]; ++i) {
            const auto s = static_cast<std::size_t>(i);
            click(i, 0) = static_cast<T>(batch.click[s]);
            click_and_conv(i, 0) = static_cast<T>(batch.click[s] && batch.conv[s]);
            list_click(b, 0) = std::max(list_click(b, 0), click(i, 0));
            list_conv(b, 0) = std::max(list_conv(b, 0), click_and_conv(i, 0));
        }
    }

    Tensor<T> term[LossBreakdown<T>::kTerms];
    const double fixed_weight[LossBreakdown<T>::kTerms] = {config.weight_ctr, config.weight_ctcvr, config.weight_list,
                                                           config.weight_listwise};
    // The click factors: σ(a) alone, or with the logged position's examination term (see
    // PositionModel): pal multiplies σ(e) in, logit adds e to a. The listwise softmax gets
    // the log of the same click factor as its logit.
    std::vector<Tensor<T>> click_factors{out.ctr_logit};
    Tensor<T> listwise_logit = out.ctr_logit;
    if (out.exam_logit.defined() && config.position_model == PositionModel::pal) {
        click_factors = {out.exam_logit, out.ctr_logit};
        listwise_logit = out.ctr_logit + log_sigmoid(out.exam_logit);
    } else if (out.exam_logit.defined() && config.position_model == PositionModel::logit) {
        click_factors = {out.ctr_logit + out.exam_logit};
        listwise_logit = click_factors[0];
    }
    if (config.weight_ctr > 0) {
        term[0] = click_factors.size() == 1 ? binary_cross_entropy_with_logits(click_factors[0], click)
                                            : mean(product_bce_with_logits(click_factors, click));
    }
    if (out.cvr_logit.defined()) {
        std::vector<Tensor<T>> factors = click_factors;
        factors.push_back(out.cvr_logit);
        term[1] = mean(product_bce_with_logits(factors, click_and_conv));
    }
    if (out.list_ctr_logit.defined() && config.list_loss) {
        term[2] = binary_cross_entropy_with_logits(out.list_ctr_logit, list_click) +
                  binary_cross_entropy_with_logits(out.list_cvr_logit, list_conv);
    }
    if (config.listwise_loss) term[3] = listwise_softmax_loss(listwise_logit, batch.click, batch.cand_offsets);

    LossBreakdown<T> result;
    for (int k = 0; k < LossBreakdown<T>::kTerms; ++k) {
        if (!term[k].defined()) continue;
        // The whole batch's share leaves the graph as it is (no multiplication by 1).
        if (share.term[k] != 1.0) term[k] = term[k] * static_cast<T>(share.term[k]);
        result.present[k] = true;
        result.terms[k] = static_cast<double>(term[k].item());
        Tensor<T> weighted;
        if (log_vars.defined()) {
            // exp(-s_k) L_k + s_k: a noisier term learns a larger s_k and so a smaller weight.
            const Tensor<T> s = slice_cols(log_vars, k, 1);
            weighted = exp(neg(s)) * term[k] + (share.regularizer != 1.0 ? s * static_cast<T>(share.regularizer) : s);
        } else {
            weighted = term[k] * static_cast<T>(fixed_weight[k]);
        }
        result.total = result.total.defined() ? result.total + weighted : weighted;
    }
    if (!result.total.defined()) {
        throw std::invalid_argument("multi_task_loss: no loss term is active (check the loss weights in the config)");
    }
    return result;
}

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(Tensor<float> product_bce_with_logits<float>(const std::vector<Tensor<float>>&,
                                                               const Matrix<float>&));
PIANO_INSTANTIATE(Tensor<float> product_bce_with_logits<float>(const Tensor<float>&, const Tensor<float>&,
                                                               const Matrix<float>&));
PIANO_INSTANTIATE(Tensor<float> listwise_softmax_loss<float>(const Tensor<float>&, const std::vector<int>&,
                                                             const std::vector<Index>&));
PIANO_INSTANTIATE(LossBreakdown<float> multi_task_loss<float>(const ModelOutputs<float>&, const data::Batch&,
                                                              const PianoConfig&, const Tensor<float>&,
                                                              const LossShare&));

}  // namespace piano
