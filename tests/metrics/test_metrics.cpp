// Evaluation metrics: hand-computed values, edge cases, and checks against brute force.
#include <catch2/catch.hpp>

#include <piano/metrics/auc.hpp>
#include <piano/metrics/evaluate.hpp>
#include <piano/metrics/ranking.hpp>
#include <piano/metrics/report.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace m = piano::metrics;
using Catch::Matchers::Contains;

namespace {

// AUC by definition: every (positive, negative) pair, 1 for a win and 1/2 for a tie.
double pairwise_auc(const std::vector<double>& s, const std::vector<int>& y) {
    double wins = 0.0, pairs = 0.0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        for (std::size_t j = 0; j < s.size(); ++j) {
            if (y[i] != 1 || y[j] != 0) continue;
            pairs += 1.0;
            wins += s[i] > s[j] ? 1.0 : (s[i] == s[j] ? 0.5 : 0.0);
        }
    }
    return wins / pairs;
}

// DCG@k straight from the formula, over grades in the order given.
double brute_dcg(const std::vector<int>& g, std::size_t k) {
    double dcg = 0.0;
    for (std::size_t i = 0; i < g.size() && i < k; ++i) dcg += (std::pow(2.0, g[i]) - 1.0) / std::log2(i + 2.0);
    return dcg;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// AUC

TEST_CASE("auc on a small list, by hand", "[metrics]") {
    // positives 0.9 and 0.7; negatives 0.8, 0.7, 0.3.
    // 0.9 beats all three (3); 0.7 loses to 0.8, ties 0.7 (1/2), beats 0.3 (1): 1.5.
    // AUC = 4.5 / (2*3) = 0.75.
    CHECK(m::auc({0.9, 0.8, 0.7, 0.7, 0.3}, {1, 0, 1, 0, 0}) == Approx(0.75));
    CHECK(m::auc({0.1, 0.2}, {0, 1}) == 1.0);
    CHECK(m::auc({0.1, 0.2}, {1, 0}) == 0.0);
}

TEST_CASE("auc with all scores tied is one half", "[metrics]") {
    CHECK(m::auc({0.3, 0.3, 0.3, 0.3}, {1, 0, 0, 1}) == 0.5);
}

TEST_CASE("auc with one class only is NaN and auc_defined says so", "[metrics]") {
    CHECK(std::isnan(m::auc({0.1, 0.2, 0.3}, {1, 1, 1})));
    CHECK(std::isnan(m::auc({0.1, 0.2, 0.3}, {0, 0, 0})));
    CHECK(std::isnan(m::auc({}, {})));
    CHECK(std::isnan(m::auc({0.5}, {1})));  // a list of one candidate
    CHECK_FALSE(m::auc_defined({1, 1}));
    CHECK_FALSE(m::auc_defined({}));
    CHECK(m::auc_defined({0, 1}));
}

TEST_CASE("auc accepts infinite scores", "[metrics]") {
    const double inf = std::numeric_limits<double>::infinity();
    // log(0) = -inf for a negative; the positive at -inf ties the negative at -inf.
    // pairs: 0.0 vs -inf win (1); -inf vs -inf tie (1/2). AUC = 1.5 / 2.
    CHECK(m::auc({0.0, -inf, -inf}, {1, 1, 0}) == Approx(0.75));
}

TEST_CASE("auc agrees with the O(n^2) pairwise count on random data with ties", "[metrics]") {
    std::mt19937 rng(7);
    for (int trial = 0; trial < 200; ++trial) {
        const std::size_t n = std::uniform_int_distribution<std::size_t>(1, 60)(rng);
        std::uniform_int_distribution<int> level(0, 5);  // few levels: many ties
        std::bernoulli_distribution positive(0.3);
        std::vector<double> s(n);
        std::vector<int> y(n);
        for (std::size_t i = 0; i < n; ++i) {
            s[i] = 0.1 * level(rng);
            y[i] = positive(rng) ? 1 : 0;
        }
        if (m::auc_defined(y)) {
            CHECK(m::auc(s, y) == Approx(pairwise_auc(s, y)).margin(1e-12));
        } else {
            CHECK(std::isnan(m::auc(s, y)));
        }
    }
}

TEST_CASE("auc refuses bad arguments with a message naming it", "[metrics]") {
    CHECK_THROWS_AS(m::auc({0.1, 0.2, 0.3}, {0, 1, 0, 1}), std::invalid_argument);
    CHECK_THROWS_WITH(m::auc({0.1, 0.2, 0.3}, {0, 1, 0, 1}),
                      Contains("auc") && Contains("3") && Contains("4"));
    CHECK_THROWS_WITH(m::auc({0.1, 0.2}, {0, 2}), Contains("auc") && Contains("labels[1] is 2"));
    CHECK_THROWS_WITH(m::auc({0.1, std::nan("")}, {0, 1}), Contains("auc") && Contains("scores[1] is NaN"));
}

// ---------------------------------------------------------------------------------------
// Order and ranking metrics

TEST_CASE("rerank_order sorts by score descending and keeps first-stage order on ties", "[metrics]") {
    using V = std::vector<std::size_t>;
    CHECK(m::rerank_order({0.1, 0.9, 0.5, 0.3}) == V{1, 2, 3, 0});
    CHECK(m::rerank_order({0.2, 0.2, 0.2, 0.2}) == V{0, 1, 2, 3});
    CHECK(m::rerank_order({0.5, 0.7, 0.5, 0.7}) == V{1, 3, 0, 2});
    CHECK(m::rerank_order({-std::numeric_limits<double>::infinity(), -1.0}) == V{1, 0});
    CHECK(m::rerank_order({4.0}) == V{0});
    CHECK(m::rerank_order({}).empty());
    CHECK_THROWS_WITH(m::rerank_order({0.1, std::nan("")}), Contains("rerank_order"));
}

TEST_CASE("grades: a conversion counts only with a click", "[metrics]") {
    CHECK(m::relevance_grade(0, 0) == 0);
    CHECK(m::relevance_grade(1, 0) == 1);
    CHECK(m::relevance_grade(1, 1) == 2);
    CHECK(m::relevance_grade(0, 1) == 0);  // conv without click: not a conversion
    CHECK_THROWS_WITH(m::relevance_grade(2, 0), Contains("relevance_grade"));
    // scores {0.1, 0.9, 0.5, 0.3} -> order 1, 2, 3, 0.
    CHECK(m::ranked_grades({0.1, 0.9, 0.5, 0.3}, {1, 0, 1, 1}, {0, 1, 1, 0}) == std::vector<int>{0, 2, 1, 1});
    CHECK_THROWS_WITH(m::ranked_grades({0.1, 0.9}, {1, 0, 1}, {0, 0}),
                      Contains("ranked_grades") && Contains("2") && Contains("3"));
}

TEST_CASE("ndcg, map and hits on a small list, by hand", "[metrics]") {
    // Ranked grades 0, 2, 1, 1 (the list above).
    // DCG  = 0/log2(2) + 3/log2(3) + 1/log2(4) + 1/log2(5) = 1.892789 + 0.5 + 0.430677 = 2.823466
    // IDCG (2, 1, 1, 0) = 3/1 + 1/log2(3) + 1/log2(4) = 3 + 0.630930 + 0.5 = 4.130930
    // NDCG@10 = 2.823466 / 4.130930 = 0.683494
    // NDCG@2: DCG = 3/log2(3) = 1.892789, IDCG = 3 + 1/log2(3) = 3.630930 -> 0.521296
    const std::vector<int> ranked{0, 2, 1, 1};
    const double l3 = std::log2(3.0), l5 = std::log2(5.0);
    CHECK(m::dcg_at_k(ranked, 10) == Approx(3 / l3 + 0.5 + 1 / l5));
    CHECK(m::ndcg_at_k(ranked, 10) == Approx((3 / l3 + 0.5 + 1 / l5) / (3 + 1 / l3 + 0.5)));
    CHECK(m::ndcg_at_k(ranked, 10) == Approx(0.683494).epsilon(1e-5));
    CHECK(m::ndcg_at_k(ranked, 2) == Approx((3 / l3) / (3 + 1 / l3)));
    CHECK(m::ndcg_at_k(ranked, 1) == 0.0);  // the top is a non-click, the ideal top a conversion
    // AP@10: relevant at ranks 2, 3, 4; P = 3 = min(10, 3).
    //   (1/2 + 2/3 + 3/4) / 3 = (23/12) / 3 = 23/36 = 0.638889
    // AP@2: relevant at rank 2 only; min(2, 3) = 2.  (1/2) / 2 = 0.25
    CHECK(m::average_precision_at_k(ranked, 10) == Approx(23.0 / 36.0));
    CHECK(m::average_precision_at_k(ranked, 2) == Approx(0.25));
    CHECK(m::hits_at_k(ranked, 2, 1) == 1);
    CHECK(m::hits_at_k(ranked, 2, 2) == 1);
    CHECK(m::hits_at_k(ranked, 10, 1) == 3);
    CHECK(m::hits_at_k(ranked, 10, 2) == 1);
}

TEST_CASE("ranking metrics of a perfect top k are 1 even with more positives than k", "[metrics]") {
    const std::vector<int> ranked{1, 1, 1, 0, 1};
    CHECK(m::ndcg_at_k(ranked, 2) == Approx(1.0));
    CHECK(m::average_precision_at_k(ranked, 2) == Approx(1.0));  // (1/1 + 2/2) / min(2, 4)
}

TEST_CASE("ranking metrics of a list of one candidate", "[metrics]") {
    CHECK(m::ndcg_at_k({1}, 10) == 1.0);
    CHECK(m::ndcg_at_k({2}, 5) == 1.0);
    CHECK(m::average_precision_at_k({1}, 10) == 1.0);
    CHECK(m::hits_at_k({2}, 10, 2) == 1);
}

TEST_CASE("ranking metrics of a list without positives are 0", "[metrics]") {
    CHECK(m::ndcg_at_k({0, 0, 0}, 10) == 0.0);
    CHECK(m::average_precision_at_k({0, 0, 0}, 10) == 0.0);
    CHECK(m::hits_at_k({0, 0, 0}, 10, 1) == 0);
}

TEST_CASE("ranking metrics refuse k = 0", "[metrics]") {
    CHECK_THROWS_WITH(m::ndcg_at_k({1}, 0), Contains("ndcg_at_k") && Contains("k must be at least 1"));
    CHECK_THROWS_WITH(m::average_precision_at_k({1}, 0), Contains("average_precision_at_k"));
    CHECK_THROWS_WITH(m::hits_at_k({1}, 0, 1), Contains("hits_at_k"));
    CHECK_THROWS_WITH(m::dcg_at_k({-1}, 1), Contains("dcg_at_k") && Contains("grade[0] is -1"));
}

TEST_CASE("ndcg agrees with brute force over all orders on random lists", "[metrics]") {
    // New order: repeatedly take the highest remaining score, the first one on ties.
    // IDCG: the best DCG over every permutation of the grades.
    std::mt19937 rng(11);
    for (int trial = 0; trial < 50; ++trial) {
        const std::size_t n = std::uniform_int_distribution<std::size_t>(1, 7)(rng);
        std::vector<double> s(n);
        std::vector<int> click(n), conv(n);
        for (std::size_t i = 0; i < n; ++i) {
            s[i] = std::uniform_int_distribution<int>(0, 3)(rng);
            click[i] = std::uniform_int_distribution<int>(0, 1)(rng);
            conv[i] = click[i] * std::uniform_int_distribution<int>(0, 1)(rng);
        }
        std::vector<int> ranked;
        std::vector<bool> taken(n, false);
        for (std::size_t r = 0; r < n; ++r) {
            std::size_t best = n;
            for (std::size_t i = 0; i < n; ++i) {
                if (!taken[i] && (best == n || s[i] > s[best])) best = i;
            }
            taken[best] = true;
            ranked.push_back(click[best] + conv[best]);
        }
        REQUIRE(m::ranked_grades(s, click, conv) == ranked);
        for (std::size_t k = 1; k <= 8; ++k) {
            std::vector<int> perm = ranked;
            std::sort(perm.begin(), perm.end());
            double idcg = 0.0;
            do {
                idcg = std::max(idcg, brute_dcg(perm, k));
            } while (std::next_permutation(perm.begin(), perm.end()));
            const double expected = idcg > 0.0 ? brute_dcg(ranked, k) / idcg : 0.0;
            CHECK(m::ndcg_at_k(ranked, k) == Approx(expected).margin(1e-12));
        }
    }
}

// ---------------------------------------------------------------------------------------
// evaluate

namespace {

// Four requests whose metrics are worked out by hand in the test below.
std::vector<m::RequestPrediction> hand_requests() {
    m::RequestPrediction a;  // the list of the ranking tests: ranked grades 0, 2, 1, 1
    a.score = {0.1, 0.9, 0.5, 0.3};
    a.click = {1, 0, 1, 1};
    a.conv = {0, 0, 1, 0};
    a.p_ctr = {0.6, 0.2, 0.7, 0.4};
    a.p_ctcvr = {0.1, 0.05, 0.3, 0.2};
    a.p_cvr = {0.2, 0.9, 0.5, 0.6};
    a.p_list_ctr = 0.7;
    a.p_list_cvr = 0.3;

    m::RequestPrediction b;  // no click; conv without click on the second candidate
    b.score = {0.2, 0.4};
    b.click = {0, 0};
    b.conv = {0, 1};
    b.p_ctr = {0.3, 0.5};
    b.p_ctcvr = {0.1, 0.2};
    b.p_cvr = {0.8, 0.05};
    b.p_list_ctr = 0.4;
    b.p_list_cvr = 0.5;

    m::RequestPrediction c;  // one candidate, clicked, no conversion
    c.score = {0.0};
    c.click = {1};
    c.conv = {0};
    c.p_ctr = {0.4};
    c.p_ctcvr = {0.3};
    c.p_cvr = {0.1};
    c.p_list_ctr = 0.4;
    c.p_list_cvr = 0.1;

    m::RequestPrediction d;  // converted candidate ranked first
    d.score = {0.8, 0.2, 0.5};
    d.click = {1, 0, 0};
    d.conv = {1, 0, 0};
    d.p_ctr = {0.9, 0.1, 0.5};
    d.p_ctcvr = {0.4, 0.01, 0.02};
    d.p_cvr = {0.45, 0.1, 0.04};
    d.p_list_ctr = 0.9;
    d.p_list_cvr = 0.6;
    return {a, b, c, d};
}

}  // namespace

TEST_CASE("evaluate on four requests, by hand", "[metrics]") {
    const m::MetricTable t = m::evaluate(hand_requests());

    // auc_ctr, pooled. positives (p_ctr): A .6 .7 .4, C .4, D .9; negatives: A .2, B .3 .5, D .1 .5.
    //   .6 beats 5, .7 beats 5, .4 beats 3 (.2 .3 .1), .4 beats 3, .9 beats 5 -> 21 / 25.
    CHECK(t.auc_ctr == Approx(21.0 / 25.0));
    // auc_ctcvr, label click AND conv: positives A .3, D .4; negatives A .1 .05 .2, B .1 .2
    //   (B's conv without click is a negative), C .3, D .01 .02.
    //   .3 beats 7 and ties C's .3 -> 7.5; .4 beats 8 -> 15.5 / 16.
    CHECK(t.auc_ctcvr == Approx(15.5 / 16.0));
    // auc_cvr on clicked candidates only: A .2(0) .5(1) .6(0), C .1(0), D .45(1).
    //   .5 beats .2 .1 -> 2; .45 beats .2 .1 -> 2; 4 / 6. A's unclicked .9 and B's .8 stay out.
    CHECK(t.auc_cvr == Approx(4.0 / 6.0));
    // gauc_ctr on the rerank score: A's AUC is 0 (its one non-click .9 outranks the clicks),
    //   D's is 1; B (no click) and C (one candidate) skipped. (4*0 + 3*1) / (4 + 3) = 3/7.
    CHECK(t.gauc_ctr == Approx(3.0 / 7.0));
    CHECK(t.gauc_requests_skipped == 2);
    // ndcg over A, C, D (B has no click): A 0.683494 (L=4 < 5), C 1, D 1 (grades 2, 0, 0).
    const double ndcg_a = m::ndcg_at_k({0, 2, 1, 1}, 10);
    CHECK(t.ndcg_5 == Approx((ndcg_a + 2.0) / 3.0));
    CHECK(t.ndcg_10 == Approx((ndcg_a + 2.0) / 3.0));
    CHECK(t.ndcg_10 == Approx(0.894498).epsilon(1e-5));
    // map@10: A 23/36, C 1, D 1.
    CHECK(t.map_10 == Approx((23.0 / 36.0 + 2.0) / 3.0));
    CHECK(t.requests_without_click == 1);
    // clicks@10 over all four: 3 + 0 + 1 + 1 = 5 -> 1.25; conv@10: 1 + 0 + 0 + 1 = 2 -> 0.5
    //   (B's conv without click does not count).
    CHECK(t.clicks_10 == Approx(1.25));
    CHECK(t.conv_10 == Approx(0.5));
    // list_auc_ctr: any click A 1, B 0, C 1, D 1; p .7 .4 .4 .9 -> (1 + 0.5 + 1) / 3.
    CHECK(t.list_auc_ctr == Approx(2.5 / 3.0));
    // list_auc_cvr: any click-with-conv A 1, B 0, C 0, D 1; p .3 .5 .1 .6.
    //   .3 beats .1 -> 1; .6 beats .5 .1 -> 2; 3 / 4.
    CHECK(t.list_auc_cvr == Approx(0.75));
    CHECK(t.requests == 4);
}

TEST_CASE("evaluate leaves absent predictions NaN and still ranks", "[metrics]") {
    std::vector<m::RequestPrediction> first_stage;
    for (const auto& r : hand_requests()) first_stage.push_back(m::first_stage_prediction(r.click, r.conv));
    const m::MetricTable t = m::evaluate(first_stage);
    CHECK(std::isnan(t.auc_ctr));
    CHECK(std::isnan(t.auc_ctcvr));
    CHECK(std::isnan(t.auc_cvr));
    CHECK(std::isnan(t.list_auc_ctr));
    CHECK(std::isnan(t.list_auc_cvr));
    // First-stage order: A's grades 1, 0, 2, 1; click ranks 1, 3, 4 -> AP = (1 + 2/3 + 3/4) / 3.
    // C and D are perfect.
    CHECK(t.map_10 == Approx(((1.0 + 2.0 / 3.0 + 0.75) / 3.0 + 2.0) / 3.0));
    // GAUC: in A only the click at rank 1 is above the non-click at rank 2 -> AUC 1/3;
    // D's is 1 -> (4 * 1/3 + 3 * 1) / 7 = 13/21.
    CHECK(t.gauc_ctr == Approx(13.0 / 21.0));
    CHECK(t.clicks_10 == Approx(1.25));
}

TEST_CASE("evaluate with all scores tied keeps the first-stage order", "[metrics]") {
    auto requests = hand_requests();
    for (auto& r : requests) std::fill(r.score.begin(), r.score.end(), 1.0);
    std::vector<m::RequestPrediction> first_stage;
    for (const auto& r : requests) first_stage.push_back(m::first_stage_prediction(r.click, r.conv));
    const m::MetricTable tied = m::evaluate(requests);
    const m::MetricTable fs = m::evaluate(first_stage);
    CHECK(tied.ndcg_5 == fs.ndcg_5);
    CHECK(tied.map_10 == fs.map_10);
    CHECK(tied.gauc_ctr == 0.5);  // every per-request AUC over tied scores is 1/2
}

TEST_CASE("evaluate of no requests is all NaN", "[metrics]") {
    const m::MetricTable t = m::evaluate({});
    CHECK(std::isnan(t.ndcg_10));
    CHECK(std::isnan(t.clicks_10));
    CHECK(std::isnan(t.gauc_ctr));
    CHECK(t.requests == 0);
}

TEST_CASE("evaluate refuses inconsistent requests, naming the request and the lengths", "[metrics]") {
    auto requests = hand_requests();
    requests[2].click = {1, 0};
    CHECK_THROWS_WITH(m::evaluate(requests),
                      Contains("evaluate: request 2") && Contains("click has 2 entries but score has 1"));

    requests = hand_requests();
    requests[3].p_ctr = {0.1, 0.2};
    CHECK_THROWS_WITH(m::evaluate(requests), Contains("request 3") && Contains("p_ctr has 2 entries but score has 3"));

    requests = hand_requests();
    requests[1].p_cvr.clear();  // given for some requests, absent for others
    CHECK_THROWS_WITH(m::evaluate(requests), Contains("p_cvr is given for request 0 but not for request 1"));

    requests = hand_requests();
    requests[0].p_list_ctr = std::nan("");
    CHECK_THROWS_WITH(m::evaluate(requests), Contains("p_list_ctr is given for request 1 but not for request 0"));

    CHECK_THROWS_WITH(m::evaluate({m::first_stage_prediction({1}, {0}), m::first_stage_prediction({}, {})}),
                      Contains("request 1: score is empty"));

    requests = hand_requests();
    requests[1].p_ctcvr[0] = std::nan("");
    CHECK_THROWS_WITH(m::evaluate(requests), Contains("request 1: p_ctcvr[0] is NaN"));
}

// ---------------------------------------------------------------------------------------
// Reports

TEST_CASE("csv header and rows", "[metrics]") {
    CHECK(m::csv_header() ==
          "model,auc_ctr,auc_ctcvr,auc_cvr,gauc_ctr,ndcg@5,ndcg@10,map@10,clicks@10,conv@10,list_auc_ctr,list_auc_cvr");
    m::MetricTable t;
    t.auc_ctr = 0.75;
    t.clicks_10 = 1.25;
    t.list_auc_cvr = 2.0 / 3.0;
    CHECK(m::csv_row("PIANO", t) == "PIANO,0.750000,,,,,,,1.250000,,,0.666667");
    CHECK(m::csv_row("a,\"b\"", m::MetricTable{}) == "\"a,\"\"b\"\"\",,,,,,,,,,,");
}

TEST_CASE("markdown table with 4 decimals and - for undefined", "[metrics]") {
    m::MetricTable piano;
    piano.auc_ctr = 0.712345;
    piano.ndcg_10 = 0.5;
    piano.requests = 100;
    piano.requests_without_click = 12;
    piano.gauc_requests_skipped = 30;
    const std::string md = m::markdown_table({{"first-stage", m::MetricTable{}}, {"PIANO", piano}});
    CHECK_THAT(md, Contains("| model | auc_ctr | auc_ctcvr | auc_cvr | gauc_ctr | ndcg@5 | ndcg@10 | map@10 | "
                            "clicks@10 | conv@10 | list_auc_ctr | list_auc_cvr |\n"
                            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"));
    CHECK_THAT(md, Contains("| first-stage | - | - | - | - | - | - | - | - | - | - | - |\n"));
    CHECK_THAT(md, Contains("| PIANO | 0.7123 | - | - | - | - | 0.5000 | - | - | - | - | - |\n"));
    CHECK_THAT(md, Contains("- PIANO: 100 requests; 12 without a click (excluded from ndcg@k, map@k); "
                            "30 with one click class only (skipped by gauc_ctr)\n"));
}
