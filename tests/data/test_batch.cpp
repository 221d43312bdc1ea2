// Ragged batches: offsets and content, the seeded epoch order, and the history-match features.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "piano/data/batch.hpp"
#include "piano/data/history_match.hpp"

using namespace piano::data;
using piano::Index;

namespace {

ItemFields item(Row id) {
    ItemFields f;
    f.item = id;
    f.brand = id + 100;
    f.cate1 = id + 200;
    f.cate4 = id + 300;
    f.shop = id + 400;
    return f;
}

Candidate candidate(Row id, int click, int conv, std::vector<float> dense = {}) {
    Candidate c;
    c.fields = item(id);
    c.click = click;
    c.conv = conv;
    c.label = static_cast<float>(click + 2 * conv);
    c.dense = std::move(dense);
    return c;
}

HistoryEvent event(std::vector<Row> query, Row id, Behavior type, std::int64_t gap) {
    HistoryEvent e;
    e.has_query = !query.empty();
    e.query = std::move(query);
    e.fields = item(id);
    e.type = type;
    e.gap = gap;
    return e;
}

/// Three requests: L = 3, 1, 2; H = 2, 0, 1; T = 2, 0, 1.
std::vector<Request> three_requests() {
    std::vector<Request> r(3);
    r[0].query = {5, 6};
    r[0].candidates = {candidate(1, 1, 0), candidate(2, 0, 0), candidate(3, 1, 1)};
    r[0].history = {event({}, 7, Behavior::click, 60), event({5, 8}, 9, Behavior::purchase, 10)};
    r[1].candidates = {candidate(4, 0, 0)};
    r[2].query = {6};
    r[2].candidates = {candidate(0, 0, 0), candidate(5, 1, 0)};
    r[2].history = {event({8}, 0, Behavior::follow, 7)};
    for (std::size_t i = 0; i < r.size(); ++i) r[i].source = {"hand", static_cast<long>(i + 1)};
    return r;
}

std::vector<Index> ids(std::initializer_list<Index> v) { return v; }

}  // namespace

TEST_CASE("make_batch stacks three requests with offsets and no padding", "[data]") {
    const std::vector<Request> r = three_requests();
    const Batch b = make_batch({&r[0], &r[1], &r[2]});

    CHECK(b.size() == 3);
    CHECK(b.num_candidates() == 6);
    CHECK(b.num_history() == 3);
    CHECK(b.requests[1] == &r[1]);

    CHECK(b.query_offsets == ids({0, 2, 2, 3}));
    CHECK(b.query_terms == ids({5, 6, 6}));

    CHECK(b.cand_offsets == ids({0, 3, 4, 6}));
    CHECK(b.cand_fields[0] == ids({1, 2, 3, 4, 0, 5}));  // item
    CHECK(b.cand_fields[1] == ids({101, 102, 103, 104, 100, 105}));  // brand
    CHECK(b.cand_fields[2] == ids({201, 202, 203, 204, 200, 205}));  // cate1
    CHECK(b.cand_fields[3] == ids({0, 0, 0, 0, 0, 0}));              // cate2 left unknown
    CHECK(b.cand_fields[5] == ids({301, 302, 303, 304, 300, 305}));  // cate4
    CHECK(b.cand_fields[6] == ids({401, 402, 403, 404, 400, 405}));  // shop
    CHECK(b.cand_pos == ids({0, 1, 2, 0, 0, 1}));
    CHECK(b.click == std::vector<int>{1, 0, 1, 0, 0, 1});
    CHECK(b.conv == std::vector<int>{0, 0, 1, 0, 0, 0});
    CHECK(b.label == std::vector<float>{1, 0, 3, 0, 0, 1});
    CHECK(b.dense_dim == 0);
    CHECK(b.cand_dense.empty());

    CHECK(b.hist_offsets == ids({0, 2, 2, 3}));
    CHECK(b.hist_fields[0] == ids({7, 9, 0}));
    CHECK(b.hist_fields[6] == ids({407, 409, 400}));
    CHECK(b.hist_type == ids({0, 2, 3}));
    CHECK(b.hist_gap == std::vector<std::int64_t>{60, 10, 7});
    CHECK(b.hist_has_query == std::vector<int>{0, 1, 1});
    CHECK(b.hist_query_offsets == ids({0, 0, 2, 3}));
    CHECK(b.hist_query_terms == ids({5, 8, 8}));

    // A range of a split gives the same batch as the pointers.
    const Batch range = make_batch(r, 1, 3);
    CHECK(range.cand_offsets == ids({0, 1, 3}));
    CHECK(range.cand_fields[0] == ids({4, 0, 5}));
    CHECK_THROWS_AS(make_batch(r, 2, 4), piano::ShapeError);
}

TEST_CASE("make_batch: dense rows, empty batches, bad requests", "[data]") {
    std::vector<Request> r = three_requests();
    r[0].candidates = {candidate(1, 0, 0, {1, 2}), candidate(2, 0, 0, {3, 4})};
    r[1].candidates = {candidate(3, 0, 0, {5, 6})};
    const Batch b = make_batch({&r[0], &r[1]});
    CHECK(b.dense_dim == 2);
    CHECK(b.cand_dense == std::vector<float>{1, 2, 3, 4, 5, 6});  // [ΣL=3, D=2] row-major

    const Batch empty = make_batch(std::vector<const Request*>{});
    CHECK(empty.size() == 0);
    CHECK(empty.cand_offsets == ids({0}));
    CHECK(empty.num_candidates() == 0);

    try {
        make_batch({&r[0], &r[2]});  // r[2] has no dense features
        FAIL("no DataError");
    } catch (const piano::DataError& e) {
        CHECK(e.line() == 3);
        CHECK(e.field() == "dense");
    }
    r[1].candidates.clear();
    CHECK_THROWS_AS(make_batch({&r[1]}), piano::DataError);
}

TEST_CASE("Batcher: seeded epochs, every request once, last batch partial", "[data]") {
    std::vector<Request> data(10);
    for (std::size_t i = 0; i < data.size(); ++i) data[i].candidates = {candidate(static_cast<Row>(i), 0, 0)};

    auto epoch_items = [&](Batcher& batcher, std::vector<std::size_t>* sizes) {
        std::vector<Index> items;
        Batch b;
        while (batcher.next(b)) {
            if (sizes) sizes->push_back(static_cast<std::size_t>(b.size()));
            items.insert(items.end(), b.cand_fields[0].begin(), b.cand_fields[0].end());
        }
        return items;
    };

    Batcher a(data, 4, 42);
    CHECK(a.num_batches() == 3);
    std::vector<std::size_t> sizes;
    const std::vector<Index> first = epoch_items(a, &sizes);
    CHECK(sizes == std::vector<std::size_t>{4, 4, 2});
    std::vector<Index> sorted = first;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == ids({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
    Batch after;
    CHECK_FALSE(a.next(after));

    Batcher same(data, 4, 42);
    CHECK(epoch_items(same, nullptr) == first);
    a.start_epoch(1);
    const std::vector<Index> second = epoch_items(a, nullptr);
    CHECK(second != first);
    same.start_epoch(1);  // epoch 1 without having finished epoch 0's replay
    CHECK(epoch_items(same, nullptr) == second);
    Batcher other(data, 4, 43);
    CHECK(epoch_items(other, nullptr) != first);

    // Pinned: mt19937_64, seed_seq and our Fisher-Yates are fully specified, so this
    // order is the same with every compiler and standard library.
    CHECK(Batcher(data, 4, 42).order() == std::vector<std::size_t>{0, 6, 5, 1, 3, 9, 7, 8, 4, 2});

    Batcher in_order(data, 3, 42, /*shuffle=*/false);
    CHECK(epoch_items(in_order, nullptr) == ids({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
    CHECK_THROWS_AS(Batcher(data, 0, 1), piano::ConfigError);
}

TEST_CASE("uniform_below and seeded_shuffle stay in range and are reproducible", "[data]") {
    std::mt19937_64 rng = seeded_generator(3, 0);
    for (std::uint64_t n : {1ULL, 2ULL, 3ULL, 7ULL, 1000003ULL})
        for (int i = 0; i < 200; ++i) CHECK(uniform_below(rng, n) < n);

    std::vector<int> v{0, 1, 2, 3, 4, 5, 6, 7};
    std::mt19937_64 g1 = seeded_generator(7, 0), g2 = seeded_generator(7, 0);
    std::vector<int> w = v;
    seeded_shuffle(v, g1);
    seeded_shuffle(w, g2);
    CHECK(v == w);
    CHECK(v == std::vector<int>{2, 0, 5, 4, 1, 7, 6, 3});  // pinned, as above
    std::vector<int> sorted = v;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("history_match counts each candidate's matches in its user's history, by hand", "[data]") {
    // History (item, brand; every event of genre 50): (1, 10) click, (1, 10) purchase,
    // (2, 10) click, (3, 11) click. H = 4, one purchase.
    const auto fields = [](Row id, Row brand) {
        ItemFields f;
        f.item = id;
        f.brand = brand;
        f.cate1 = 50;
        return f;
    };
    Request r;
    for (auto [id, brand, type] : {std::tuple{1, 10, Behavior::click}, std::tuple{1, 10, Behavior::purchase},
                                   std::tuple{2, 10, Behavior::click}, std::tuple{3, 11, Behavior::click}}) {
        HistoryEvent e;
        e.fields = fields(id, brand);
        e.type = type;
        r.history.push_back(e);
    }
    // Candidates: (1, 10), (3, 11), (4, 11), and one whose item and brand are unknown.
    for (auto [id, brand] : {std::pair{1, 10}, std::pair{3, 11}, std::pair{4, 11}, std::pair{0, 0}}) {
        Candidate c;
        c.fields = fields(id, brand);
        r.candidates.push_back(c);
    }
    Request no_history;
    no_history.candidates = r.candidates;
    const Batch b = make_batch({&r, &no_history});
    const std::vector<float> m = history_match(b);
    const std::size_t F = static_cast<std::size_t>(kHistoryMatchFeatures);
    REQUIRE(m.size() == 8 * F);
    const auto at = [&](std::size_t candidate, const std::string& name) {
        const std::vector<std::string> names = history_match_names();
        const auto k = std::find(names.begin(), names.end(), name);
        REQUIRE(k != names.end());
        return m[candidate * F + static_cast<std::size_t>(k - names.begin())];
    };
    // Items 1,1,2,3: the most frequent item occurs twice.
    CHECK(at(0, "share_item") == Approx(0.5));
    CHECK(at(0, "relative_item") == Approx(1.0));
    CHECK(at(0, "conversion_item") == Approx(1.0));
    CHECK(at(1, "share_item") == Approx(0.25));
    CHECK(at(1, "relative_item") == Approx(0.5));
    CHECK(at(1, "conversion_item") == 0.0f);
    CHECK(at(2, "share_item") == 0.0f);
    // Brands 10,10,10,11.
    CHECK(at(0, "share_brand") == Approx(0.75));
    CHECK(at(0, "conversion_brand") == Approx(1.0));
    CHECK(at(2, "share_brand") == Approx(0.25));
    CHECK(at(2, "relative_brand") == Approx(1.0 / 3.0));
    CHECK(at(2, "conversion_brand") == 0.0f);
    // The unknown row matches nothing, even other unknown rows; every candidate is genre 50.
    for (const char* name : {"share_item", "relative_item", "share_brand", "share_cate2", "share_shop"}) {
        CHECK(at(3, name) == 0.0f);
    }
    for (std::size_t i = 0; i < 4; ++i) {
        CHECK(at(i, "share_cate1") == Approx(1.0));
        CHECK(at(i, "relative_cate1") == Approx(1.0));
        CHECK(at(i, "conversion_cate1") == Approx(1.0));
    }
    // No history: every feature 0.
    for (std::size_t k = 4 * F; k < 8 * F; ++k) CHECK(m[k] == 0.0f);
}
