// The model at the edges of its input: the longest lists and histories the loader lets
// through, a list of one, an empty query with no history, ids past every table, negative
// rows. Each test states what must happen: it works (finite losses, finite gradients, a
// permutation), or it fails with an error naming the problem.
#include <catch2/catch.hpp>

#include <piano/model/factory.hpp>
#include <piano/model/losses.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

using piano::PianoConfig;
namespace data = piano::data;

namespace limits_test {

// A request of L candidates and H history events with ids inside tiny()'s tables; every
// third event has no query, the first candidate is clicked and converted.
data::Request request(std::size_t list_length, std::size_t history_length, std::size_t query_terms = 2) {
    data::Request r;
    for (std::size_t t = 0; t < query_terms; ++t) r.query.push_back(static_cast<data::Row>(1 + t));
    for (std::size_t j = 0; j < history_length; ++j) {
        data::HistoryEvent e;
        e.has_query = j % 3 != 2;
        if (e.has_query) e.query.push_back(static_cast<data::Row>(1 + j % 150));
        e.fields.item = static_cast<data::Row>(1 + j % 400);
        e.fields.brand = static_cast<data::Row>(1 + j % 90);
        e.type = static_cast<data::Behavior>(j % data::kBehaviorCount);
        e.gap = static_cast<std::int64_t>(j) * 977;
        r.history.push_back(e);
    }
    for (std::size_t i = 0; i < list_length; ++i) {
        data::Candidate c;
        c.fields.item = static_cast<data::Row>(1 + (7 * i) % 400);
        c.fields.cate1 = static_cast<data::Row>(1 + i % 90);
        c.click = c.conv = i == 0 ? 1 : 0;
        c.label = i == 0 ? 3.0f : 0.0f;
        r.candidates.push_back(c);
    }
    return r;
}

// tiny() with the listwise term on, so every loss term sees the request.
PianoConfig config() {
    PianoConfig c = PianoConfig::tiny();
    c.listwise_loss = true;
    return c;
}

// What a forward + backward of `r` through `name` produced.
struct Pass {
    double loss = 0.0;
    bool gradients_finite = true;
    std::size_t parameters_with_gradient = 0;
    piano::RerankResult rerank;
};

Pass train_pass(const std::string& name, const data::Request& r) {
    const PianoConfig c = config();
    auto model = piano::make_model<double>(name, c);
    const data::Batch batch = data::make_batch({&r});
    auto loss = piano::multi_task_loss(model->forward(batch), batch, c, model->loss_log_variances());
    loss.total.backward();
    Pass p;
    p.loss = loss.total.value()(0, 0);
    for (const auto& [parameter, t] : model->named_parameters()) {
        if (!t.has_grad()) continue;
        ++p.parameters_with_gradient;
        p.gradients_finite = p.gradients_finite && t.grad().allFinite();
    }
    p.rerank = model->rerank(r);
    return p;
}

// True when `order` holds 0..n-1 once each.
bool is_permutation_of_n(std::vector<std::size_t> order, std::size_t n) {
    std::vector<std::size_t> expected(n);
    std::iota(expected.begin(), expected.end(), std::size_t{0});
    std::sort(order.begin(), order.end());
    return order == expected;
}

void check_works(const std::string& name, const data::Request& r) {
    INFO("model " << name);
    const Pass p = train_pass(name, r);
    CHECK(std::isfinite(p.loss));
    CHECK(p.parameters_with_gradient > 0);
    CHECK(p.gradients_finite);
    CHECK(is_permutation_of_n(p.rerank.order, r.candidates.size()));
    for (double s : p.rerank.score) CHECK(std::isfinite(s));
}

}  // namespace limits_test

TEST_CASE("200 candidates and 5000 history events: every model trains and reranks", "[model][limits]") {
    // JDsearch's longest list and a long-time user's history.
    // Expected: works; positions past max_positions share the last position's row.
    const data::Request r = limits_test::request(200, 5000);
    for (const std::string& name : piano::model_names()) limits_test::check_works(name, r);
}

TEST_CASE("1000 candidates and 2000 history events: PIANO trains and reranks", "[model][limits]") {
    // The loader's largest list (max_candidates = 1000) and the longest history of the
    // cost curves (bench/cost_curves.py), with the default config limits (max_positions).
    // Expected: works.
    limits_test::check_works("piano", limits_test::request(1000, 2000));
}

TEST_CASE("a list of one candidate: every model trains and reranks it", "[model][limits]") {
    // Expected: works; the order is {0}; the listwise softmax over one item costs nothing.
    const data::Request r = limits_test::request(1, 4);
    for (const std::string& name : piano::model_names()) limits_test::check_works(name, r);
    const limits_test::Pass p = limits_test::train_pass("piano", r);
    CHECK(p.rerank.order == std::vector<std::size_t>{0});
}

TEST_CASE("an empty query and zero history: QDIR attends to its null slot only", "[model][limits]") {
    // Expected: works; the query is the learned no-query vector and QDIR's softmax runs
    // over the null slot alone, so every head puts weight 1 on it.
    const data::Request r = limits_test::request(5, 0, 0);
    for (const std::string& name : piano::model_names()) limits_test::check_works(name, r);

    auto model = piano::make_model<double>("piano", limits_test::config());
    const data::Batch batch = data::make_batch({&r});
    const auto out = model->forward(batch, true);
    REQUIRE(out.qdir_weights.segments.size() == 1);
    const auto& w = out.qdir_weights.segments[0];
    REQUIRE(w.cols() == 1);  // [heads, 1 + H] with H = 0
    CHECK(w.rows() == limits_test::config().heads);
    for (piano::Index h = 0; h < w.rows(); ++h) CHECK(w(h, 0) == Approx(1.0));
}

TEST_CASE("ids past every table read the unknown row (items: a hashed row), never out of range", "[model][limits]") {
    // Expected: works. Terms, brands, categories and shops past their table read row 0,
    // so the scores equal those of the same request with every such id set to 0; items
    // past the table are hashed into rows 1..rows-1 (Embedding's hash_buckets).
    const PianoConfig c = limits_test::config();
    data::Request beyond = limits_test::request(6, 5);
    data::Request unknown = beyond;
    const data::Row huge = std::numeric_limits<data::Row>::max();
    auto push_out = [&](data::ItemFields& far, data::ItemFields& zero, data::Row offset) {
        for (int k = 1; k < data::ItemFields::kCount; ++k) {  // every field but the item
            far[k] = huge - offset;
            zero[k] = data::kUnknownRow;
        }
    };
    for (std::size_t j = 0; j < beyond.history.size(); ++j) {
        push_out(beyond.history[j].fields, unknown.history[j].fields, static_cast<data::Row>(j));
        for (auto& t : beyond.history[j].query) t = static_cast<data::Row>(c.term_rows + 1000);
        for (auto& t : unknown.history[j].query) t = data::kUnknownRow;
    }
    for (std::size_t i = 0; i < beyond.candidates.size(); ++i)
        push_out(beyond.candidates[i].fields, unknown.candidates[i].fields, static_cast<data::Row>(i));
    for (auto& t : beyond.query) t = huge;
    for (auto& t : unknown.query) t = data::kUnknownRow;
    for (const std::string& name : piano::model_names()) limits_test::check_works(name, beyond);

    auto model = piano::make_model<double>("piano", c);
    const piano::RerankResult a = model->rerank(beyond);
    const piano::RerankResult b = model->rerank(unknown);
    CHECK(a.score == b.score);

    data::Request far_items = beyond;
    for (auto& cand : far_items.candidates) cand.fields.item = huge;
    const piano::RerankResult hashed = model->rerank(far_items);
    for (double s : hashed.score) CHECK(std::isfinite(s));
}

TEST_CASE("a negative row is an error naming the id, not an out-of-range read", "[model][limits]") {
    // Rows come from the vocabularies and are never negative; a hand-built request with one
    // is a caller's bug. Expected: std::invalid_argument "Embedding: id -3 ... is negative".
    data::Request r = limits_test::request(3, 2);
    r.candidates[1].fields.brand = -3;
    auto model = piano::make_model<double>("piano", limits_test::config());
    CHECK_THROWS_AS(model->rerank(r), std::invalid_argument);
    CHECK_THROWS_WITH(model->rerank(r), Catch::Contains("id -3") && Catch::Contains("is negative"));
}

TEST_CASE("dense features the model was not built for are a ShapeError, never ignored", "[model][limits]") {
    // Expected: ShapeError naming both widths, whichever side has more. A model without a
    // dense layer used to drop a batch's features silently and score as if they were absent.
    data::Request with_dense = limits_test::request(3, 2);
    for (auto& c : with_dense.candidates) c.dense = {0.5f};
    auto plain = piano::make_model<double>("piano", limits_test::config());
    CHECK_THROWS_AS(plain->rerank(with_dense), piano::ShapeError);
    CHECK_THROWS_WITH(plain->rerank(with_dense), "FeatureEncoder: the batch has 1 dense features, the model 0");

    PianoConfig two = limits_test::config();
    two.dense_features = 2;
    auto wide = piano::make_model<double>("dnn", two);
    CHECK_THROWS_WITH(wide->rerank(limits_test::request(3, 2)), "FeatureEncoder: the batch has 0 dense features, the model 2");
    data::Request fits = limits_test::request(3, 2);
    for (auto& c : fits.candidates) c.dense = {0.5f, -1.0f};
    const piano::RerankResult r = wide->rerank(fits);  // the width it was built for: works
    REQUIRE(r.score.size() == 3);
    for (double s : r.score) CHECK(std::isfinite(s));
}

TEST_CASE("every model refuses a negative id in every id field of a request", "[model][limits][ids]") {
    // One check in make_batch: a model that never reads a field (DNN has no history query
    // terms, PIANO without QDIR reads no history query) must not accept a bad id there.
    using Edit = void (*)(data::Request&);
    const std::pair<const char*, Edit> edits[] = {
        {"query term 1", [](data::Request& r) { r.query[1] = -2; }},
        {"candidate 2 field shop", [](data::Request& r) { r.candidates[2].fields.shop = -2; }},
        {"history event 0 field item", [](data::Request& r) { r.history[0].fields.item = -2; }},
        {"history event 1 field cate4", [](data::Request& r) { r.history[1].fields.cate4 = -2; }},
        {"history event 0 query term 0", [](data::Request& r) { r.history[0].query[0] = -2; }},
    };
    for (const auto& name : piano::model_names()) {
        auto model = piano::make_model<double>(name, limits_test::config());
        for (const auto& edit : edits) {
            data::Request r = limits_test::request(3, 2);
            edit.second(r);
            INFO(name << ", " << edit.first);
            CHECK_THROWS_AS(model->rerank(r), std::invalid_argument);
            CHECK_THROWS_WITH(model->rerank(r), Catch::Contains(std::string(edit.first) + ": id -2 is negative"));
        }
        data::Request query = limits_test::request(3, 2);
        query.history[0].query[0] = -2;
        CHECK_THROWS_WITH(model->rerank(query), "make_batch: request 0: history event 0 query term 0: id -2 is negative; "
                                                "ids are rows of the embedding tables and must be >= 0");
        data::Request r = limits_test::request(3, 2);
        r.history[1].type = static_cast<data::Behavior>(9);
        INFO(name);
        CHECK_THROWS_WITH(model->rerank(r), Catch::Contains("history event 1 behaviour: id 9 is not a behaviour"));
    }
}
