// piano/metrics/evaluate.hpp: one model's predictions on a set of requests -> its metric table.
//
// The definitions are in docs/metrics.md; in short:
//   auc_ctr      AUC of p_ctr vs click, pooled over all candidates of all requests
//   auc_ctcvr    AUC of p_ctcvr vs (click AND conv), pooled over all candidates
//   auc_cvr      AUC of p_cvr vs conv, pooled over clicked candidates only (ESMM)
//   gauc_ctr     per-request AUC of the rerank score vs click, weighted by the request's
//                number of candidates, over requests having both classes (DIN)
//   ndcg@5/@10, map@10   means over requests with at least one click
//   clicks@10, conv@10   means over all requests
//   list_auc_*   AUC over requests of p_list_ctr vs (>= 1 click), p_list_cvr vs (>= 1
//                click with conversion)
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "piano/metrics/auc.hpp"
#include "piano/metrics/check.hpp"
#include "piano/metrics/ranking.hpp"

namespace piano::metrics {

/// What a model says about one request, with the request's labels.
///
/// Every per-candidate vector is in FIRST-STAGE order (entry i is the i-th candidate the
/// first-stage ranker returned). `score` orders the list (rerank_order); the
/// probabilities feed the AUCs. A model that does not predict a quantity leaves its
/// vector empty (or its list probability NaN): the first-stage order predicts nothing,
/// the DNN baseline no CVR. The metrics that need it are then NaN, shown as "-".
struct RequestPrediction {
    std::vector<double> score;    ///< rerank score s_i, required (one per candidate)
    std::vector<double> p_ctr;    ///< predicted P(click), or empty
    std::vector<double> p_cvr;    ///< predicted P(conv | click), or empty
    std::vector<double> p_ctcvr;  ///< predicted P(click and conv), or empty
    double p_list_ctr = std::numeric_limits<double>::quiet_NaN();  ///< P(list gets >= 1 click), or NaN
    double p_list_cvr = std::numeric_limits<double>::quiet_NaN();  ///< P(list gets >= 1 conv), or NaN
    std::vector<int> click;       ///< label, 0 or 1
    std::vector<int> conv;        ///< label, 0 or 1; counts only where click is 1
};

/// The first-stage order as a "model": score_i = -i keeps the list as it came (and gives
/// GAUC a strict order to judge), and it predicts no probability.
inline RequestPrediction first_stage_prediction(std::vector<int> click, std::vector<int> conv) {
    RequestPrediction p;
    p.score.resize(click.size());
    for (std::size_t i = 0; i < click.size(); ++i) p.score[i] = -static_cast<double>(i);
    p.click = std::move(click);
    p.conv = std::move(conv);
    return p;
}

/// One model's metrics. A metric is NaN when the model does not predict what it needs,
/// or when it is undefined on the data (an AUC over one class, no request qualifying).
struct MetricTable {
    static constexpr double nan = std::numeric_limits<double>::quiet_NaN();
    double auc_ctr = nan;
    double auc_ctcvr = nan;
    double auc_cvr = nan;
    double gauc_ctr = nan;
    double ndcg_5 = nan;
    double ndcg_10 = nan;
    double map_10 = nan;
    double clicks_10 = nan;
    double conv_10 = nan;
    double list_auc_ctr = nan;
    double list_auc_cvr = nan;
    std::size_t requests = 0;                ///< requests evaluated
    std::size_t requests_without_click = 0;  ///< excluded from ndcg@k and map@k
    std::size_t gauc_requests_skipped = 0;   ///< one click class only, left out of gauc_ctr
};

namespace detail {

// A quantity is predicted for every request or for none; a mix is a bug in the caller
// (a model cannot predict CVR for some lists only), so it throws instead of guessing.
template <typename IsPresent>
bool presence(const std::vector<RequestPrediction>& requests, const char* name, IsPresent is_present) {
    if (requests.empty()) return false;
    const bool first = is_present(requests.front());
    for (std::size_t r = 1; r < requests.size(); ++r) {
        if (is_present(requests[r]) != first) {
            throw std::invalid_argument(std::string("evaluate: ") + name + " is given for request " +
                                        std::to_string(first ? 0 : r) + " but not for request " +
                                        std::to_string(first ? r : 0));
        }
    }
    return first;
}

/// The ranking columns of `t` from their sums over requests: ndcg@k and map@10 are means
/// over the requests with a click, clicks@10 and conv@10 over all (t.requests and
/// t.requests_without_click must be set). Left NaN when no request qualifies.
inline void set_ranking_means(MetricTable& t, double ndcg5_sum, double ndcg10_sum, double map10_sum,
                              double clicks10_sum, double conv10_sum) {
    const std::size_t ranked = t.requests - t.requests_without_click;
    if (ranked > 0) {
        t.ndcg_5 = ndcg5_sum / static_cast<double>(ranked);
        t.ndcg_10 = ndcg10_sum / static_cast<double>(ranked);
        t.map_10 = map10_sum / static_cast<double>(ranked);
    }
    if (t.requests > 0) {
        t.clicks_10 = clicks10_sum / static_cast<double>(t.requests);
        t.conv_10 = conv10_sum / static_cast<double>(t.requests);
    }
}

inline void check_request(const RequestPrediction& p, std::size_t index, bool has_ctr, bool has_cvr, bool has_ctcvr) {
    const std::string where = "evaluate: request " + std::to_string(index);
    if (p.score.empty()) throw std::invalid_argument(where + ": score is empty (a list has at least one candidate)");
    const std::size_t n = p.score.size();
    require_same_size(where, "click", p.click.size(), "score", n);
    require_same_size(where, "conv", p.conv.size(), "score", n);
    require_binary(where, "click", p.click);
    require_binary(where, "conv", p.conv);
    require_no_nan(where, "score", p.score);
    if (has_ctr) require_same_size(where, "p_ctr", p.p_ctr.size(), "score", n);
    if (has_cvr) require_same_size(where, "p_cvr", p.p_cvr.size(), "score", n);
    if (has_ctcvr) require_same_size(where, "p_ctcvr", p.p_ctcvr.size(), "score", n);
    require_no_nan(where, "p_ctr", p.p_ctr);
    require_no_nan(where, "p_cvr", p.p_cvr);
    require_no_nan(where, "p_ctcvr", p.p_ctcvr);
}

}  // namespace detail

/// The metric table of one model over `requests` (definitions: docs/metrics.md).
/// Requires: every request has L >= 1 candidates, labels of length L with values 0 or 1,
/// no NaN score; each probability vector empty in all requests or of length L in all;
/// each list probability NaN in all requests or in none. Otherwise std::invalid_argument
/// naming the request and the field.
/// Ensures: ranking metrics always computed (NaN only when no request qualifies, e.g. no
/// requests at all); AUCs NaN when the prediction is absent or the labels hold one class.
inline MetricTable evaluate(const std::vector<RequestPrediction>& requests) {
    const bool has_ctr = detail::presence(requests, "p_ctr", [](const auto& p) { return !p.p_ctr.empty(); });
    const bool has_cvr = detail::presence(requests, "p_cvr", [](const auto& p) { return !p.p_cvr.empty(); });
    const bool has_ctcvr = detail::presence(requests, "p_ctcvr", [](const auto& p) { return !p.p_ctcvr.empty(); });
    const bool has_list_ctr =
        detail::presence(requests, "p_list_ctr", [](const auto& p) { return !std::isnan(p.p_list_ctr); });
    const bool has_list_cvr =
        detail::presence(requests, "p_list_cvr", [](const auto& p) { return !std::isnan(p.p_list_cvr); });

    // Pooled (score, label) pairs for the AUCs.
    std::vector<double> ctr_score, ctcvr_score, cvr_score, list_ctr_score, list_cvr_score;
    std::vector<int> ctr_label, ctcvr_label, cvr_label, list_ctr_label, list_cvr_label;

    MetricTable t;
    t.requests = requests.size();
    double gauc_sum = 0.0, gauc_weight = 0.0;
    double ndcg5_sum = 0.0, ndcg10_sum = 0.0, map10_sum = 0.0;
    double clicks10_sum = 0.0, conv10_sum = 0.0;

    for (std::size_t r = 0; r < requests.size(); ++r) {
        const RequestPrediction& p = requests[r];
        detail::check_request(p, r, has_ctr, has_cvr, has_ctcvr);
        const std::size_t n = p.score.size();

        bool any_click = false, any_conversion = false;
        for (std::size_t i = 0; i < n; ++i) {
            const int converted = p.click[i] * p.conv[i];  // conv counts only with a click
            any_click = any_click || p.click[i] == 1;
            any_conversion = any_conversion || converted == 1;
            if (has_ctr) {
                ctr_score.push_back(p.p_ctr[i]);
                ctr_label.push_back(p.click[i]);
            }
            if (has_ctcvr) {
                ctcvr_score.push_back(p.p_ctcvr[i]);
                ctcvr_label.push_back(converted);
            }
            if (has_cvr && p.click[i] == 1) {  // ESMM: CVR is judged on the clicked space
                cvr_score.push_back(p.p_cvr[i]);
                cvr_label.push_back(p.conv[i]);
            }
        }

        // DIN's GAUC: sum_u w_u AUC_u / sum_u w_u with w_u the list length, over lists
        // whose AUC exists.
        if (auc_defined(p.click)) {
            gauc_sum += static_cast<double>(n) * auc(p.score, p.click);
            gauc_weight += static_cast<double>(n);
        } else {
            ++t.gauc_requests_skipped;
        }

        const std::vector<int> ranked = ranked_grades(p.score, p.click, p.conv);
        if (any_click) {
            ndcg5_sum += ndcg_at_k(ranked, 5);
            ndcg10_sum += ndcg_at_k(ranked, 10);
            map10_sum += average_precision_at_k(ranked, 10);
        } else {
            ++t.requests_without_click;
        }
        clicks10_sum += static_cast<double>(hits_at_k(ranked, 10, 1));
        conv10_sum += static_cast<double>(hits_at_k(ranked, 10, 2));

        if (has_list_ctr) {
            list_ctr_score.push_back(p.p_list_ctr);
            list_ctr_label.push_back(any_click ? 1 : 0);
        }
        if (has_list_cvr) {
            list_cvr_score.push_back(p.p_list_cvr);
            list_cvr_label.push_back(any_conversion ? 1 : 0);
        }
    }

    if (has_ctr) t.auc_ctr = auc(ctr_score, ctr_label);
    if (has_ctcvr) t.auc_ctcvr = auc(ctcvr_score, ctcvr_label);
    if (has_cvr) t.auc_cvr = auc(cvr_score, cvr_label);
    if (has_list_ctr) t.list_auc_ctr = auc(list_ctr_score, list_ctr_label);
    if (has_list_cvr) t.list_auc_cvr = auc(list_cvr_score, list_cvr_label);
    if (gauc_weight > 0.0) t.gauc_ctr = gauc_sum / gauc_weight;

    detail::set_ranking_means(t, ndcg5_sum, ndcg10_sum, map10_sum, clicks10_sum, conv10_sum);
    return t;
}

}  // namespace piano::metrics
