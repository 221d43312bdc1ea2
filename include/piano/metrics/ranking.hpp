// piano/metrics/ranking.hpp: the new order of a list and the metrics of its top k.
//
// A model scores the candidates of one request in their first-stage order; the new order
// sorts them by score, highest first, ties kept in first-stage order (SPEC, "Heads").
// The metrics here read the relevance grades of the candidates in that new order:
//
//     grade g = 0 no click, 1 click, 2 click and conversion
//
// A conversion counts only together with a click (SPEC: conv implies click, as in ESMM's
// entire space, and the CTCVR label is click AND conv). A record with conv = 1 and
// click = 0 is therefore grade 0 here, a negative for CTCVR and outside the CVR AUC: the
// same reading the training loss L_ctcvr makes, so metrics and loss cannot disagree.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "piano/metrics/check.hpp"

namespace piano::metrics {

/// Indices of `scores` in the new order: by score descending, equal scores keeping their
/// first-stage (index) order. So all-equal scores give 0, 1, ..., L-1.
/// Requires: no NaN score. -inf is allowed (log of a zero probability) and sorts last.
inline std::vector<std::size_t> rerank_order(const std::vector<double>& scores) {
    detail::require_no_nan("rerank_order", "scores", scores);
    std::vector<std::size_t> order(scores.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&scores](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
    return order;
}

/// The relevance grade of one candidate: 2 for click and conversion, 1 for a click only,
/// 0 otherwise (a conversion without a click included, see the file comment).
/// Requires: click and conv are 0 or 1.
inline int relevance_grade(int click, int conv) {
    if ((click != 0 && click != 1) || (conv != 0 && conv != 1)) {
        throw std::invalid_argument("relevance_grade: click is " + std::to_string(click) + " and conv is " +
                                    std::to_string(conv) + ", expected 0 or 1 each");
    }
    return click == 1 ? 1 + conv : 0;
}

/// The grades of a list's candidates in the new order of `scores`.
/// Requires: scores, click and conv of one length; labels 0 or 1; no NaN score.
inline std::vector<int> ranked_grades(const std::vector<double>& scores, const std::vector<int>& click,
                                      const std::vector<int>& conv) {
    detail::require_same_size("ranked_grades", "scores", scores.size(), "click", click.size());
    detail::require_same_size("ranked_grades", "scores", scores.size(), "conv", conv.size());
    detail::require_binary("ranked_grades", "click", click);
    detail::require_binary("ranked_grades", "conv", conv);
    const std::vector<std::size_t> order = rerank_order(scores);
    std::vector<int> grades(order.size());
    for (std::size_t r = 0; r < order.size(); ++r) grades[r] = relevance_grade(click[order[r]], conv[order[r]]);
    return grades;
}

namespace detail {

inline void require_grades(const std::string& where, const std::vector<int>& ranked) {
    for (std::size_t i = 0; i < ranked.size(); ++i) {
        if (ranked[i] < 0) {
            throw std::invalid_argument(where + ": grade[" + std::to_string(i) + "] is " +
                                        std::to_string(ranked[i]) + ", expected 0 or more");
        }
    }
}

}  // namespace detail

/// DCG@k = sum_{i=1}^{min(k,L)} (2^{g_i} - 1) / log2(i + 1), with g_i the grade at 1-based
/// rank i of `ranked` (grades already in the order being judged).
/// Requires: k >= 1, grades >= 0.
inline double dcg_at_k(const std::vector<int>& ranked, std::size_t k) {
    detail::require_positive_k("dcg_at_k", k);
    detail::require_grades("dcg_at_k", ranked);
    double dcg = 0.0;
    const std::size_t n = std::min(k, ranked.size());
    for (std::size_t i = 1; i <= n; ++i) {
        dcg += (std::exp2(static_cast<double>(ranked[i - 1])) - 1.0) / std::log2(static_cast<double>(i) + 1.0);
    }
    return dcg;
}

/// NDCG@k = DCG@k / IDCG@k, where IDCG@k is DCG@k of the same grades sorted descending
/// (the ideal order of this list's labels, truncated at k).
/// Ensures: a value in [0, 1]; 0 when the list has no positive grade (IDCG = 0). Such a
/// list says nothing about the ranking, so evaluate() excludes it from the mean and
/// counts it (SPEC: "scores 0 and is excluded").
/// Requires: k >= 1, grades >= 0.
inline double ndcg_at_k(const std::vector<int>& ranked, std::size_t k) {
    detail::require_positive_k("ndcg_at_k", k);
    std::vector<int> ideal = ranked;
    std::sort(ideal.begin(), ideal.end(), std::greater<int>());
    const double idcg = dcg_at_k(ideal, k);
    return idcg > 0.0 ? dcg_at_k(ranked, k) / idcg : 0.0;
}

/// AP@k over clicks (a candidate is relevant when its grade is >= 1):
///
///     AP@k = 1 / min(k, P) * sum_{i=1}^{min(k,L)} rel_i * Precision@i,
///     Precision@i = (relevant among ranks 1..i) / i,
///
/// with P the relevant candidates in the whole list. Normalising by min(k, P) rather
/// than P makes a perfect top k score 1 even when P > k.
/// Ensures: a value in [0, 1]; 0 when P = 0 (evaluate() excludes such lists, as for NDCG).
/// Requires: k >= 1, grades >= 0.
inline double average_precision_at_k(const std::vector<int>& ranked, std::size_t k) {
    detail::require_positive_k("average_precision_at_k", k);
    detail::require_grades("average_precision_at_k", ranked);
    const auto positives = static_cast<std::size_t>(
        std::count_if(ranked.begin(), ranked.end(), [](int g) { return g >= 1; }));
    if (positives == 0) return 0.0;
    double sum = 0.0;
    std::size_t hits = 0;
    const std::size_t n = std::min(k, ranked.size());
    for (std::size_t i = 1; i <= n; ++i) {
        if (ranked[i - 1] >= 1) {
            ++hits;
            sum += static_cast<double>(hits) / static_cast<double>(i);
        }
    }
    return sum / static_cast<double>(std::min(k, positives));
}

/// The number of candidates among the top k of `ranked` whose grade is at least
/// `min_grade`: Clicks@k with min_grade 1, Conversions@k with min_grade 2.
/// Requires: k >= 1.
inline std::size_t hits_at_k(const std::vector<int>& ranked, std::size_t k, int min_grade) {
    detail::require_positive_k("hits_at_k", k);
    const auto top = ranked.begin() + static_cast<std::ptrdiff_t>(std::min(k, ranked.size()));
    return static_cast<std::size_t>(std::count_if(ranked.begin(), top, [min_grade](int g) { return g >= min_grade; }));
}

}  // namespace piano::metrics
