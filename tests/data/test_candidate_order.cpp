// Candidate order: the label-sorting measure, the seeded per-list shuffle, what `auto`
// decides on the real JDsearch sample and on the simulator's log, and the batch flag.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "piano/data/batch.hpp"
#include "piano/data/candidate_order.hpp"
#include "piano/data/jdsearch.hpp"
#include "piano/data/simulator.hpp"
#include "piano/metrics/random_order.hpp"
#include "piano/model/reranker.hpp"

#include <support/test_helpers.hpp>

using namespace piano::data;

TEST_CASE("chance_label_sorted is one over the number of position sets", "[data][order]") {
    CHECK(chance_label_sorted(4, 2) == Approx(1.0 / 6.0));
    CHECK(chance_label_sorted(90, 1) == Approx(1.0 / 90.0));
    CHECK(chance_label_sorted(89, 2) == Approx(2.0 / (89.0 * 88.0)));
    CHECK(chance_label_sorted(5, 0) == Approx(1.0));
    // Long lists stay finite (C(200, 100) overflows a double).
    const double tiny = chance_label_sorted(200, 100);
    CHECK(tiny >= 0.0);
    CHECK(tiny < 1e-50);
}

TEST_CASE("OrderStats counts lists with both classes and compares with chance", "[data][order]") {
    OrderStats stats;
    stats.add({1, 0, 0, 0});     // sorted, chance 1/4
    stats.add({0, 1, 0, 0});     // not sorted, chance 1/4
    stats.add({0, 0, 0});        // one class: not counted
    stats.add({2, 3});           // one class: not counted
    stats.add({3, 1, 0, 0, 0});  // sorted, graded positives, chance 1/C(5,2)
    CHECK(stats.lists_with_both == 3);
    CHECK(stats.label_sorted == 2);
    CHECK(stats.expected_label_sorted == Approx(0.25 + 0.25 + 0.1));
    CHECK_FALSE(stats.label_sorted_beyond_chance());  // 2 of 3 is below the fraction

    // Many long sorted lists are far beyond chance; the same lists unsorted are not.
    OrderStats sorted, shuffled;
    std::vector<float> labels(50, 0.0f);
    labels[0] = labels[1] = 1.0f;
    for (int k = 0; k < 20; ++k) sorted.add(labels);
    std::swap(labels[1], labels[30]);
    for (int k = 0; k < 20; ++k) shuffled.add(labels);
    CHECK(sorted.label_sorted_beyond_chance());
    CHECK(sorted.log_chance_bound() < std::log(OrderStats::kMaxChance));
    CHECK_FALSE(shuffled.label_sorted_beyond_chance());
    CHECK(resolve_candidate_order(CandidateOrder::automatic, sorted) == CandidateOrder::shuffle);
    CHECK(resolve_candidate_order(CandidateOrder::automatic, shuffled) == CandidateOrder::as_logged);
    CHECK(resolve_candidate_order(CandidateOrder::as_logged, sorted) == CandidateOrder::as_logged);
    CHECK(resolve_candidate_order(CandidateOrder::shuffle, shuffled) == CandidateOrder::shuffle);
    // A couple of short sorted lists could be luck: two lists of 2 sort by chance 1 in 4.
    OrderStats lucky;
    lucky.add({1, 0});
    lucky.add({1, 0});
    CHECK_FALSE(lucky.label_sorted_beyond_chance());
}

TEST_CASE("candidate orders parse by name", "[data][order]") {
    for (CandidateOrder o : {CandidateOrder::as_logged, CandidateOrder::shuffle, CandidateOrder::automatic})
        CHECK(candidate_order_from_string(to_string(o)) == o);
    CHECK_THROWS_AS(candidate_order_from_string("sorted"), piano::ConfigError);
}

TEST_CASE("the shuffle is a permutation fixed by seed and line", "[data][order]") {
    const std::vector<std::size_t> a = candidate_permutation(1, 7, 40);
    std::vector<std::size_t> sorted = a;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::size_t> identity(40);
    std::iota(identity.begin(), identity.end(), std::size_t{0});
    CHECK(sorted == identity);
    CHECK(a != identity);
    CHECK(candidate_permutation(1, 7, 40) == a);
    CHECK(candidate_permutation(2, 7, 40) != a);
    CHECK(candidate_permutation(1, 8, 40) != a);

    Request r;
    r.source = {"f", 7};
    for (std::size_t i = 0; i < 40; ++i) {
        Candidate c;
        c.fields.item = static_cast<Row>(i + 1);
        r.candidates.push_back(c);
    }
    Request logged = r;
    apply_candidate_order(logged, CandidateOrder::as_logged, 1);
    CHECK(logged.first_stage_order);
    CHECK(logged.candidates[3].fields.item == 4);
    apply_candidate_order(r, CandidateOrder::shuffle, 1);
    CHECK_FALSE(r.first_stage_order);
    for (std::size_t k = 0; k < 40; ++k) CHECK(r.candidates[k].fields.item == static_cast<Row>(a[k] + 1));
    CHECK_THROWS_AS(apply_candidate_order(r, CandidateOrder::automatic, 1), piano::ConfigError);
}

TEST_CASE("the real JDsearch sample is label-sorted and is shuffled", "[data][order][shared]") {
    const std::string sample = piano::testing::shared_data("jdsearch-sample/");
    JdsearchFiles files;
    files.products = sample + "product_meta_data_sample.txt";
    files.train = sample + "user_behavior_data_sample.txt";
    const JdsearchDataset data = load_jdsearch(files);  // candidate_order: auto
    const OrderStats& order = data.train_stats.order;
    CHECK(order.lists_with_both == 3);
    CHECK(order.label_sorted == 3);
    CHECK(order.expected_label_sorted < 0.05);
    CHECK(order.label_sorted_beyond_chance());
    CHECK(data.recipe.candidate_order == CandidateOrder::shuffle);
    REQUIRE(data.train.size() == 3);

    LoadOptions logged;
    logged.candidate_order = CandidateOrder::as_logged;
    const JdsearchDataset as_logged = load_jdsearch(files, logged);
    for (std::size_t k = 0; k < 3; ++k) {
        const Request& r = data.train[k];
        CHECK_FALSE(r.first_stage_order);
        CHECK(as_logged.train[k].first_stage_order);
        // The same candidates, the clicked ones no longer all on top.
        const auto clicks = [](const Request& q) {
            int n = 0;
            for (const Candidate& c : q.candidates) n += c.click;
            return n;
        };
        CHECK(clicks(r) == clicks(as_logged.train[k]));
        CHECK(as_logged.train[k].candidates.front().click == 1);
        const std::vector<std::size_t> perm = candidate_permutation(1, r.source.line, r.candidates.size());
        for (std::size_t i = 0; i < perm.size(); ++i)
            CHECK(r.candidates[i].fields.item == as_logged.train[k].candidates[perm[i]].fields.item);
    }
    OrderStats reshuffled;
    for (const Request& r : data.train) {
        std::vector<float> labels;
        for (const Candidate& c : r.candidates) labels.push_back(c.label);
        reshuffled.add(labels);
    }
    CHECK(reshuffled.label_sorted == 0);

    // The first-stage row is the random order's expectation, not a ranker: the logged
    // order scores a perfect NDCG, the expectation far less.
    std::vector<piano::metrics::RequestPrediction> logged_order, labels;
    for (const Request& r : as_logged.train) {
        std::vector<int> click, conv;
        for (const Candidate& c : r.candidates) {
            click.push_back(c.click);
            conv.push_back(c.conv);
        }
        logged_order.push_back(piano::metrics::first_stage_prediction(click, conv));
        labels.push_back(piano::metrics::first_stage_prediction(click, conv));
    }
    CHECK(piano::metrics::evaluate(logged_order).ndcg_10 == Approx(1.0));
    const piano::metrics::MetricTable random = piano::metrics::random_order_expectation(labels);
    CHECK(random.ndcg_10 < 0.2);
    CHECK(random.gauc_ctr == Approx(0.5));
}

TEST_CASE("auto keeps the simulator's order: it is a real first-stage order", "[data][order]") {
    piano::testing::TempDir dir("order");
    write_jdsearch_files(simulate_music_search(piano::testing::small_world()), dir.path());
    const JdsearchDataset data = load_jdsearch_dir(dir.path().string());
    const OrderStats& order = data.train_stats.order;
    INFO(order.summary());
    CHECK(order.lists_with_both > 100);
    // Position bias puts clicks on top more often than chance, but far from always.
    CHECK(static_cast<double>(order.label_sorted) > order.expected_label_sorted);
    CHECK_FALSE(order.label_sorted_beyond_chance());
    CHECK(data.recipe.candidate_order == CandidateOrder::as_logged);
    for (const Request& r : data.train) REQUIRE(r.first_stage_order);
}

TEST_CASE("make_batch carries the first-stage flag and the query match per request, and slicing cuts them", "[data][order]") {
    std::vector<Request> requests(3);
    for (std::size_t k = 0; k < 3; ++k) {
        requests[k].candidates.resize(k + 1);
        requests[k].first_stage_order = k != 1;
        requests[k].candidates.back().query_match[2] = static_cast<float>(k);  // each list's last candidate
    }
    const Batch batch = make_batch(requests, 0, 3);
    CHECK(batch.first_stage_order == std::vector<int>{1, 0, 1});
    const Batch tail = piano::detail::slice_batch(batch, 1, 3);
    CHECK(tail.first_stage_order == std::vector<int>{0, 1});
    CHECK(tail.num_candidates() == 5);
    // The query-match rows travel with their candidates: [ΣL, 6] row-major.
    const Batch whole_tail = make_batch(requests, 1, 3);
    CHECK(tail.cand_query_match == whole_tail.cand_query_match);
    REQUIRE(tail.cand_query_match.size() == 5 * 6);
    CHECK(tail.cand_query_match[1 * 6 + 2] == 1.0f);
    CHECK(tail.cand_query_match[4 * 6 + 2] == 2.0f);
}
