// piano/metrics/random_order.hpp: what a uniformly random order of each list scores, in
// expectation, computed exactly.
//
// When a log's candidate order is not a first-stage order (it was label-sorted and has
// been shuffled, see piano/data/candidate_order.hpp), the "first-stage" row of a table
// would judge a seeded shuffle: one draw of a random ranker. The row to show instead is
// the random ranker itself, averaged over all L! orders of every list. By linearity each
// metric's expectation has a closed form; with g_i the grades of a list of L candidates,
// P its clicks (g >= 1), V its conversions (g = 2) and n = min(k, L):
//
//   E[DCG@k]     = (Σ_i (2^{g_i} - 1) / L) · Σ_{r=1}^{n} 1 / log2(r + 1)
//                  (each rank holds each candidate with probability 1/L);
//   E[NDCG@k]    = E[DCG@k] / IDCG@k (IDCG does not depend on the order);
//   E[AP@k]      = 1/min(k, P) · Σ_{r=1}^{n} E[rel_r · hits_r] / r, where
//                  E[rel_r · hits_r] = P/L · (1 + (r - 1)(P - 1)/(L - 1))
//                  (rank r relevant, then each of the r-1 ranks above it holds one of
//                  the other P-1 relevant among the other L-1);
//   E[Clicks@k]  = n · P / L,   E[Conversions@k] = n · V / L;
//   E[AUC_list]  = 1/2 for a list with both classes (a random strict order ranks each
//                  positive-negative pair either way with probability 1/2), so GAUC = 1/2.
//
// The random order predicts no probability: the AUCs of p_ctr, p_cvr, p_ctcvr and the
// list-level AUCs are undefined (NaN), as for the first-stage row. The same requests are
// excluded and counted as in evaluate(): no click -> out of NDCG and MAP; one click class
// -> out of GAUC.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "piano/metrics/check.hpp"
#include "piano/metrics/evaluate.hpp"
#include "piano/metrics/ranking.hpp"

namespace piano::metrics {

/// The expected metric table of a uniformly random order of every list (file comment).
/// Reads only `click` and `conv` of each request (their scores and probabilities are
/// ignored), so first_stage_prediction's records serve. Same requirements on the labels
/// as evaluate().
inline MetricTable random_order_expectation(const std::vector<RequestPrediction>& requests) {
    MetricTable t;
    t.requests = requests.size();
    double ndcg5_sum = 0.0, ndcg10_sum = 0.0, map10_sum = 0.0, clicks10_sum = 0.0, conv10_sum = 0.0;
    bool any_gauc = false;

    // Σ_{r=1}^{n} 1 / log2(r + 1): the discount of the top n ranks.
    auto discount = [](std::size_t n) {
        double sum = 0.0;
        for (std::size_t r = 1; r <= n; ++r) sum += 1.0 / std::log2(static_cast<double>(r) + 1.0);
        return sum;
    };
    for (std::size_t q = 0; q < requests.size(); ++q) {
        const RequestPrediction& p = requests[q];
        const std::string where = "random_order_expectation: request " + std::to_string(q);
        detail::require_same_size(where, "conv", p.conv.size(), "click", p.click.size());
        detail::require_binary(where, "click", p.click);
        detail::require_binary(where, "conv", p.conv);
        const std::size_t L = p.click.size();
        if (L == 0) throw std::invalid_argument(where + ": click is empty (a list has at least one candidate)");

        std::vector<int> grades(L);
        double gain = 0.0;
        std::size_t P = 0, V = 0;
        for (std::size_t i = 0; i < L; ++i) {
            grades[i] = relevance_grade(p.click[i], p.conv[i]);
            gain += std::exp2(static_cast<double>(grades[i])) - 1.0;
            P += grades[i] >= 1 ? 1 : 0;
            V += grades[i] == 2 ? 1 : 0;
        }
        const double Ld = static_cast<double>(L), Pd = static_cast<double>(P);
        if (P > 0 && P < L) {
            any_gauc = true;
        } else {
            ++t.gauc_requests_skipped;
        }

        if (P == 0) {
            ++t.requests_without_click;
        } else {
            std::sort(grades.begin(), grades.end(), [](int a, int b) { return a > b; });  // the ideal order
            for (const auto& [k, sum] : {std::pair<std::size_t, double*>{5, &ndcg5_sum}, {10, &ndcg10_sum}})
                *sum += gain / Ld * discount(std::min(k, L)) / dcg_at_k(grades, k);
            double ap = 0.0;
            for (std::size_t r = 1; r <= std::min<std::size_t>(10, L); ++r) {
                const double rd = static_cast<double>(r);
                const double others_above = L > 1 ? (rd - 1.0) * (Pd - 1.0) / (Ld - 1.0) : 0.0;
                ap += Pd / Ld * (1.0 + others_above) / rd;
            }
            map10_sum += ap / static_cast<double>(std::min<std::size_t>(10, P));
        }
        const double top = static_cast<double>(std::min<std::size_t>(10, L));
        clicks10_sum += top * Pd / Ld;
        conv10_sum += top * static_cast<double>(V) / Ld;
    }

    if (any_gauc) t.gauc_ctr = 0.5;
    detail::set_ranking_means(t, ndcg5_sum, ndcg10_sum, map10_sum, clicks10_sum, conv10_sum);
    return t;
}

}  // namespace piano::metrics
