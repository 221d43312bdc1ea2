// piano/metrics/auc.hpp: the area under the ROC curve for binary labels.
//
// AUC = P(score of a random positive > score of a random negative), ties counting one
// half. Written as the Mann-Whitney U statistic over the P positives and N negatives:
//
//     AUC = (1 / (P N)) * sum over pairs (i positive, j negative) of
//           [s_i > s_j] + 1/2 [s_i == s_j]
//
// Computed in O(n log n): sort by score, walk the groups of equal scores from the lowest
// up; each positive in a group beats every negative below the group and ties with each
// negative inside it. This is the rank-sum form (sum of the positives' mid-ranks minus
// P(P+1)/2, over P N) without the half-integer ranks.
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <utility>
#include <vector>

#include "piano/metrics/check.hpp"

namespace piano::metrics {

/// True when `labels` holds both classes, i.e. when auc() over them is a number.
/// Requires: every label is 0 or 1 (not checked here; auc() checks).
inline bool auc_defined(const std::vector<int>& labels) {
    const bool has_positive = std::find(labels.begin(), labels.end(), 1) != labels.end();
    const bool has_negative = std::find(labels.begin(), labels.end(), 0) != labels.end();
    return has_positive && has_negative;
}

/// AUC of `scores` against binary `labels` (1 = positive), ties counting one half.
/// Requires: equal lengths, labels 0 or 1, no NaN score (else std::invalid_argument).
/// Ensures: a value in [0, 1]; NaN when only one class is present (including the empty
/// input), because no positive/negative pair exists. Callers that average AUCs (GAUC)
/// test auc_defined() and skip such groups.
inline double auc(const std::vector<double>& scores, const std::vector<int>& labels) {
    detail::require_same_size("auc", "scores", scores.size(), "labels", labels.size());
    detail::require_binary("auc", "labels", labels);
    detail::require_no_nan("auc", "scores", scores);
    if (!auc_defined(labels)) return std::numeric_limits<double>::quiet_NaN();

    std::vector<std::pair<double, int>> pairs(scores.size());
    for (std::size_t i = 0; i < scores.size(); ++i) pairs[i] = {scores[i], labels[i]};
    std::sort(pairs.begin(), pairs.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });

    // Counts are whole numbers (and the tie term a multiple of 1/2), exact in a double up
    // to 2^52, far beyond any evaluation set.
    double wins = 0.0;
    double negatives_below = 0.0;
    double positives = 0.0;
    std::size_t begin = 0;
    while (begin < pairs.size()) {
        std::size_t end = begin;
        double group_positives = 0.0;
        double group_negatives = 0.0;
        while (end < pairs.size() && pairs[end].first == pairs[begin].first) {
            (pairs[end].second == 1 ? group_positives : group_negatives) += 1.0;
            ++end;
        }
        wins += group_positives * (negatives_below + 0.5 * group_negatives);
        negatives_below += group_negatives;
        positives += group_positives;
        begin = end;
    }
    return wins / (positives * negatives_below);
}

}  // namespace piano::metrics
