// random_order_expectation: the closed forms against the mean over every order of a list.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "piano/metrics/evaluate.hpp"
#include "piano/metrics/random_order.hpp"

using piano::metrics::MetricTable;
using piano::metrics::RequestPrediction;

TEST_CASE("random_order_expectation equals the mean over all orders of each list", "[metrics][order]") {
    // Lists short enough to enumerate (6! = 720 orders), with clicks, conversions, a list
    // without clicks, one fully clicked and one longer than 5 so the cut at k shows.
    const std::vector<std::pair<std::vector<int>, std::vector<int>>> lists = {
        {{1, 0, 0, 1, 0, 0}, {1, 0, 0, 0, 0, 0}},
        {{0, 0, 1}, {0, 0, 0}},
        {{0, 0, 0, 0}, {0, 0, 0, 0}},
        {{1, 1}, {0, 1}},
        {{0, 1, 1, 1, 0, 1}, {0, 0, 1, 1, 0, 0}},
    };
    std::vector<RequestPrediction> labels;
    for (const auto& [click, conv] : lists) labels.push_back(piano::metrics::first_stage_prediction(click, conv));
    const MetricTable expected = piano::metrics::random_order_expectation(labels);

    // The mean of each list's metrics over its L! orders, then averaged over lists as
    // evaluate() does (one list at a time, so the exclusions are per list too).
    double ndcg5 = 0.0, ndcg10 = 0.0, map10 = 0.0, clicks10 = 0.0, conv10 = 0.0, gauc = 0.0, gauc_weight = 0.0;
    std::size_t ranked = 0, with_both = 0;
    for (const RequestPrediction& list : labels) {
        const std::size_t L = list.click.size();
        std::vector<std::size_t> perm(L);
        std::iota(perm.begin(), perm.end(), std::size_t{0});
        MetricTable sum;
        sum.ndcg_5 = sum.ndcg_10 = sum.map_10 = sum.clicks_10 = sum.conv_10 = sum.gauc_ctr = 0.0;
        double orders = 0.0;
        do {
            // score = -rank puts candidate perm[r] at rank r.
            RequestPrediction p = list;
            for (std::size_t r = 0; r < L; ++r) p.score[perm[r]] = -static_cast<double>(r);
            const MetricTable t = piano::metrics::evaluate({p});
            if (t.requests_without_click == 0) {
                sum.ndcg_5 += t.ndcg_5;
                sum.ndcg_10 += t.ndcg_10;
                sum.map_10 += t.map_10;
            }
            if (t.gauc_requests_skipped == 0) sum.gauc_ctr += t.gauc_ctr;
            sum.clicks_10 += t.clicks_10;
            sum.conv_10 += t.conv_10;
            orders += 1.0;
        } while (std::next_permutation(perm.begin(), perm.end()));
        const bool any_click = std::count(list.click.begin(), list.click.end(), 1) > 0;
        const bool both = any_click && std::count(list.click.begin(), list.click.end(), 0) > 0;
        if (any_click) {
            ++ranked;
            ndcg5 += sum.ndcg_5 / orders;
            ndcg10 += sum.ndcg_10 / orders;
            map10 += sum.map_10 / orders;
        }
        if (both) {
            ++with_both;
            gauc += static_cast<double>(L) * sum.gauc_ctr / orders;
            gauc_weight += static_cast<double>(L);
        }
        clicks10 += sum.clicks_10 / orders;
        conv10 += sum.conv_10 / orders;
    }
    const double n = static_cast<double>(lists.size());
    CHECK(expected.requests == lists.size());
    CHECK(expected.requests_without_click == lists.size() - ranked);
    CHECK(expected.gauc_requests_skipped == lists.size() - with_both);
    CHECK(expected.ndcg_5 == Approx(ndcg5 / static_cast<double>(ranked)).epsilon(1e-12));
    CHECK(expected.ndcg_10 == Approx(ndcg10 / static_cast<double>(ranked)).epsilon(1e-12));
    CHECK(expected.map_10 == Approx(map10 / static_cast<double>(ranked)).epsilon(1e-12));
    CHECK(expected.clicks_10 == Approx(clicks10 / n).epsilon(1e-12));
    CHECK(expected.conv_10 == Approx(conv10 / n).epsilon(1e-12));
    CHECK(expected.gauc_ctr == Approx(gauc / gauc_weight).epsilon(1e-12));
    CHECK(std::isnan(expected.auc_ctr));
    CHECK(std::isnan(expected.list_auc_ctr));
}

TEST_CASE("random_order_expectation refuses labels it cannot read", "[metrics][order]") {
    CHECK_THROWS_AS(piano::metrics::random_order_expectation({piano::metrics::first_stage_prediction({2}, {0})}),
                    std::invalid_argument);
    RequestPrediction empty;
    CHECK_THROWS_AS(piano::metrics::random_order_expectation({empty}), std::invalid_argument);
}
