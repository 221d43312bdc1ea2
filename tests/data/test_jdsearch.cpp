// The JDsearch reader: the real sample, the project's fixtures, malformed lines, vocabularies.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "piano/data/jdsearch.hpp"

#include <support/test_helpers.hpp>

namespace fs = std::filesystem;
using namespace piano::data;
using piano::testing::TempDir;

namespace {

const std::string kFixtures = std::string(PIANO_TEST_FIXTURES) + "/jdsearch/";

/// The DataError that streaming `file` throws (or a failed check when it throws none).
piano::DataError first_error(const std::string& file) {
    try {
        for_each_request(file, [](const RawRequest&) {});
    } catch (const piano::DataError& e) {
        return e;
    }
    FAIL("no DataError from " << file);
    throw;  // unreachable: FAIL throws
}

/// The source line of each request.
std::vector<long> source_lines(const std::vector<Request>& requests) {
    std::vector<long> lines;
    for (const Request& r : requests) lines.push_back(r.source.line);
    return lines;
}

/// A file of the real JDsearch sample (../shared/data/jdsearch-sample), for [shared] tests.
std::string sample(const std::string& name) { return piano::testing::shared_data("jdsearch-sample/" + name); }

}  // namespace

TEST_CASE("the real JDsearch sample loads exactly", "[data][shared]") {
    JdsearchFiles files;
    files.products = sample("product_meta_data_sample.txt");
    files.train = sample("user_behavior_data_sample.txt");
    const JdsearchDataset data = load_jdsearch(files);

    REQUIRE(data.train.size() == 3);
    CHECK(data.valid.empty());
    CHECK(data.test.empty());
    CHECK(data.products_stats.records == 409);
    CHECK(data.requests_stats.records == 3);
    CHECK(data.requests_stats.skipped == 0);
    CHECK(data.dense_dim == 0);

    const std::size_t L[] = {90, 89, 83}, H[] = {182, 46, 2}, T[] = {4, 2, 3};
    const int clicks[] = {1, 2, 2}, no_query[] = {94, 33, 2}, no_metadata[] = {12, 3, 0};
    for (std::size_t i = 0; i < 3; ++i) {
        const Request& r = data.train[i];
        CHECK(r.source.line == static_cast<long>(i) + 2);  // line 1 is the header
        CHECK(r.candidates.size() == L[i]);
        CHECK(r.history.size() == H[i]);
        CHECK(r.query.size() == T[i]);
        int n_click = 0, n_no_query = 0, n_no_metadata = 0;
        for (const Candidate& c : r.candidates) {
            n_click += c.click;
            CHECK(c.conv == 0);  // the sample's labels are 0.0 and 1.0 only
            CHECK(c.fields.item != kUnknownRow);
            CHECK(c.fields.brand != kUnknownRow);  // every candidate has metadata
        }
        for (const HistoryEvent& e : r.history) {
            if (!e.has_query) {
                ++n_no_query;
                CHECK(e.query.empty());
            }
            if (e.fields.brand == kUnknownRow && e.fields.cate1 == kUnknownRow && e.fields.shop == kUnknownRow)
                ++n_no_metadata;
            CHECK(e.fields.item != kUnknownRow);
        }
        CHECK(n_click == clicks[i]);
        CHECK(n_no_query == no_query[i]);
        CHECK(n_no_metadata == no_metadata[i]);
    }
    // history_time_list of request 3 is 0_27_49660: gaps to the search are 27+49660 and 49660.
    CHECK(data.train[2].history[0].gap == 49687);
    CHECK(data.train[2].history[1].gap == 49660);
    CHECK(data.train[0].history.front().gap == 30299133);
    CHECK(data.train[0].history.back().gap == 175658);
    CHECK(data.train[0].history.front().type == Behavior::purchase);  // ORD
    CHECK(data.train[0].history[2].type == Behavior::cart);           // CART
}

TEST_CASE("the sample streams record by record with string ids", "[data][shared]") {
    std::vector<std::size_t> candidates;
    std::string first_wid;
    const ReadStats stats = for_each_request(sample("user_behavior_data_sample.txt"), [&](const RawRequest& r) {
        if (candidates.empty()) first_wid = r.candidates.front().item;
        candidates.push_back(r.candidates.size());
    });
    CHECK(stats.records == 3);
    CHECK(candidates == std::vector<std::size_t>{90, 89, 83});
    CHECK(first_wid == "36098226");
}

TEST_CASE("a file in JDsearch's exact byte layout loads exactly", "[data]") {
    // layout/: header lines, \030 between terms, `-1` history queries, H+1 time gaps, an
    // empty history, candidates and history items without a product row, empty metadata.
    JdsearchFiles files;
    files.products = kFixtures + "layout/products.txt";
    files.train = kFixtures + "layout/requests.txt";
    const JdsearchDataset data = load_jdsearch(files);
    REQUIRE(data.train.size() == 3);
    CHECK(data.products_stats.records == 5);
    CHECK(data.requests_stats.records == 3);
    CHECK(data.requests_stats.skipped == 0);

    const std::size_t L[] = {5, 4, 3}, H[] = {4, 1, 0}, T[] = {3, 1, 2};
    const int clicks[] = {1, 2, 0}, convs[] = {0, 1, 0};
    for (std::size_t i = 0; i < 3; ++i) {
        const Request& r = data.train[i];
        INFO("request " << i);
        CHECK(r.source.line == static_cast<long>(i) + 2);  // line 1 is the header
        CHECK(r.candidates.size() == L[i]);
        CHECK(r.history.size() == H[i]);
        CHECK(r.query.size() == T[i]);
        int n_click = 0, n_conv = 0;
        for (const Candidate& c : r.candidates) {
            n_click += c.click;
            n_conv += c.conv;
            CHECK(c.fields.item != kUnknownRow);
        }
        CHECK(n_click == clicks[i]);
        CHECK(n_conv == convs[i]);
    }
    const Request& first = data.train[0];
    // Candidate 2 (41000009) has no product row: its metadata rows are the unknown row.
    CHECK(first.candidates[2].fields.brand == kUnknownRow);
    CHECK(first.candidates[2].fields.cate1 == kUnknownRow);
    // Candidate 4 (41000004) has a product row with an empty brand and shop.
    CHECK(first.candidates[4].fields.brand == kUnknownRow);
    CHECK(first.candidates[4].fields.shop == kUnknownRow);
    CHECK(first.candidates[4].fields.cate1 != kUnknownRow);
    CHECK(first.candidates[0].fields.cate4 != kUnknownRow);
    // History: two terms, `-1`, `-1`, one term; types CLICK ORD CART FLW.
    CHECK(first.history[0].has_query);
    CHECK(first.history[0].query.size() == 2);
    CHECK_FALSE(first.history[1].has_query);
    CHECK(first.history[1].query.empty());
    CHECK_FALSE(first.history[2].has_query);
    CHECK(first.history[3].query.size() == 1);
    CHECK(first.history[0].type == Behavior::click);
    CHECK(first.history[1].type == Behavior::purchase);
    CHECK(first.history[2].type == Behavior::cart);
    CHECK(first.history[3].type == Behavior::follow);
    // Time list 0_120_35_9000_4500: each event's gap to the search is the sum after it.
    CHECK(first.history[0].gap == 120 + 35 + 9000 + 4500);
    CHECK(first.history[1].gap == 35 + 9000 + 4500);
    CHECK(first.history[2].gap == 9000 + 4500);
    CHECK(first.history[3].gap == 4500);
    CHECK(data.train[1].history[0].gap == 86400);
    // The history item 41000008 has no product row either.
    CHECK(first.history[1].fields.brand == kUnknownRow);
    // The same term id means the same row in the query and in a history query.
    CHECK(first.query[0] == first.history[0].query[0]);
    CHECK(data.train[2].query[0] == first.query[0]);
}

TEST_CASE("the layout fixture has the real sample's header lines byte for byte", "[data][shared]") {
    using piano::testing::lines_of;
    CHECK(lines_of(sample("user_behavior_data_sample.txt")).front() ==
          lines_of(kFixtures + "layout/requests.txt").front());
    CHECK(lines_of(sample("product_meta_data_sample.txt")).front() ==
          lines_of(kFixtures + "layout/products.txt").front());
}

TEST_CASE("a file in JDsearch's exact byte layout streams with string ids", "[data]") {
    std::vector<std::size_t> candidates;
    std::vector<std::string> first_wids, first_terms;
    const ReadStats stats = for_each_request(kFixtures + "layout/requests.txt", [&](const RawRequest& r) {
        candidates.push_back(r.candidates.size());
        first_wids.push_back(r.candidates.front().item);
        first_terms.push_back(r.query.empty() ? std::string() : r.query.front());
    });
    CHECK(stats.records == 3);
    CHECK(candidates == std::vector<std::size_t>{5, 4, 3});
    CHECK(first_wids == std::vector<std::string>{"41000001", "41000005", "41000003"});
    CHECK(first_terms == std::vector<std::string>{"72000001", "72000006", "72000001"});
}

TEST_CASE("a fixed-split directory maps ids to rows built from train only", "[data]") {
    const JdsearchDataset data = load_jdsearch_dir(kFixtures + "tiny");
    REQUIRE(data.train.size() == 2);
    REQUIRE(data.valid.size() == 1);
    REQUIRE(data.test.size() == 1);
    const Vocabularies& v = data.vocab;

    // Rows by count, ties by first appearance (history before candidates within a line).
    CHECK(v[Table::term].row("t1") == 1);
    CHECK(v[Table::term].row("t2") == 2);
    CHECK(v[Table::term].row("t3") == 3);
    CHECK(v[Table::term].rows() == 4);
    CHECK(v[Table::item].row("103") == 1);
    CHECK(v[Table::item].row("101") == 2);
    CHECK(v[Table::item].row("102") == 3);
    CHECK(v[Table::item].row("104") == 4);
    CHECK(v[Table::item].row("105") == kUnknownRow);  // has metadata but never in train
    CHECK(v[Table::brand].row("b3") == kUnknownRow);
    CHECK(v[Table::item].id_of(2) == "101");

    const Request& r0 = data.train[0];
    CHECK(r0.query == std::vector<Row>{1, 2});
    const ItemFields& c101 = r0.candidates[0].fields;
    CHECK(c101.item == 2);
    CHECK(c101.brand == v[Table::brand].row("b1"));
    CHECK(c101.cate1 == v[Table::category].row("c1"));
    CHECK(c101.cate4 == v[Table::category].row("c1111"));
    CHECK(c101.shop == v[Table::shop].row("s1"));
    CHECK(c101.brand != kUnknownRow);
    CHECK(c101.cate4 != kUnknownRow);
    const ItemFields& c102 = r0.candidates[1].fields;  // empty brand, cate3 and cate4
    CHECK(c102.brand == kUnknownRow);
    CHECK(c102.cate2 == v[Table::category].row("c12"));
    CHECK(c102.cate3 == kUnknownRow);
    CHECK(c102.shop == v[Table::shop].row("s2"));
    const ItemFields& c104 = r0.candidates[2].fields;  // no metadata row at all
    CHECK(c104.item == 4);
    for (int k = 1; k < ItemFields::kCount; ++k) CHECK(c104[k] == kUnknownRow);

    // labels 1.0 0.0 3.0 -> click 1 0 1, conv 0 0 1
    CHECK(r0.candidates[0].click == 1);
    CHECK(r0.candidates[0].conv == 0);
    CHECK(r0.candidates[1].click == 0);
    CHECK(r0.candidates[2].click == 1);
    CHECK(r0.candidates[2].conv == 1);
    CHECK(r0.candidates[2].label == 3.0f);

    // history -1_t1^Xt3, 103_101, CLICK_ORD, times 0_50_10
    REQUIRE(r0.history.size() == 2);
    CHECK_FALSE(r0.history[0].has_query);
    CHECK(r0.history[0].query.empty());
    CHECK(r0.history[0].type == Behavior::click);
    CHECK(r0.history[0].gap == 60);
    CHECK(r0.history[0].fields.item == 1);
    CHECK(r0.history[1].has_query);
    CHECK(r0.history[1].query == std::vector<Row>{1, 3});
    CHECK(r0.history[1].type == Behavior::purchase);
    CHECK(r0.history[1].gap == 10);
    CHECK(data.train[1].history.empty());  // empty history lists, time list "5"

    // valid: unseen ids -> row 0, seen ones keep their row
    const Request& rv = data.valid[0];
    CHECK(rv.query == std::vector<Row>{kUnknownRow, 1});
    CHECK(rv.candidates[0].fields.item == kUnknownRow);
    CHECK(rv.candidates[1].fields.item == 2);
    CHECK(rv.history[0].has_query);
    CHECK(rv.history[0].query == std::vector<Row>{kUnknownRow});
    CHECK(rv.history[0].fields.item == kUnknownRow);
    CHECK(rv.history[0].type == Behavior::follow);

    // test: an empty query field is a query of no terms
    const Request& rt = data.test[0];
    CHECK(rt.query.empty());
    CHECK(rt.history[0].type == Behavior::cart);
    CHECK(rt.history[0].gap == 3);
    CHECK(rt.candidates[0].conv == 1);
}

TEST_CASE("conv follows the configured threshold", "[data]") {
    LoadOptions options;
    options.conv_threshold = 2.0;
    const JdsearchDataset data = load_jdsearch_dir(kFixtures + "tiny", options);
    CHECK(data.train[1].candidates[1].label == 2.0f);
    CHECK(data.train[1].candidates[1].conv == 1);
    CHECK(data.train[1].candidates[1].click == 1);

    options.conv_threshold = 0.5;  // conv would not imply click
    CHECK_THROWS_AS(load_jdsearch_dir(kFixtures + "tiny", options), piano::ConfigError);
    options.conv_threshold = 3.0;
    options.train_fraction = 0.7;
    options.valid_fraction = 0.4;
    CHECK_THROWS_AS(load_jdsearch_dir(kFixtures + "tiny", options), piano::ConfigError);
}

TEST_CASE("header lines and CRLF line ends are read as data-free framing", "[data]") {
    LoadOptions options;
    options.train_fraction = 0.6;
    options.valid_fraction = 0.2;
    const JdsearchDataset data = load_jdsearch_dir(kFixtures + "header_crlf", options);
    CHECK(data.products_stats.records == 4);
    CHECK(data.train.size() == 6);
    CHECK(data.valid.size() == 2);
    CHECK(data.test.size() == 2);
    CHECK(data.vocab[Table::shop].row("s1") != kUnknownRow);
    CHECK(data.vocab[Table::shop].row("s1\r") == kUnknownRow);
    for (const auto* split : {&data.train, &data.valid, &data.test})
        for (const Request& r : *split) {
            CHECK(r.source.line >= 2);  // line 1 is the header
            CHECK(r.candidates[0].fields.shop == data.vocab[Table::shop].row("s1"));
        }
}

TEST_CASE("a seeded split is deterministic, disjoint and complete", "[data]") {
    LoadOptions options;
    options.train_fraction = 0.5;
    options.valid_fraction = 0.3;
    options.split_seed = 11;
    const JdsearchDataset a = load_jdsearch_dir(kFixtures + "header_crlf", options);
    const JdsearchDataset b = load_jdsearch_dir(kFixtures + "header_crlf", options);
    CHECK(source_lines(a.train) == source_lines(b.train));
    CHECK(source_lines(a.valid) == source_lines(b.valid));
    CHECK(source_lines(a.test) == source_lines(b.test));
    CHECK(a.train.size() == 5);
    CHECK(a.valid.size() == 3);
    CHECK(a.test.size() == 2);

    std::vector<long> all;
    for (const auto* split : {&a.train, &a.valid, &a.test})
        for (long line : source_lines(*split)) all.push_back(line);
    std::sort(all.begin(), all.end());
    CHECK(all == std::vector<long>{2, 3, 4, 5, 6, 7, 8, 9, 10, 11});

    bool some_seed_differs = false;
    for (std::uint64_t seed = 12; seed < 20 && !some_seed_differs; ++seed) {
        options.split_seed = seed;
        some_seed_differs =
            source_lines(load_jdsearch_dir(kFixtures + "header_crlf", options).train) != source_lines(a.train);
    }
    CHECK(some_seed_differs);
}

TEST_CASE("a malformed line names its file, line and field", "[data]") {
    struct Case {
        const char* file;
        long line;
        const char* field;
    };
    const Case cases[] = {
        {"bad_label.txt", 2, "candidate_label_list"},   {"wrong_field_count.txt", 1, "line"},
        {"length_mismatch.txt", 3, "candidate_label_list"}, {"history_length_mismatch.txt", 1, "history_type_list"},
        {"bad_history_type.txt", 3, "history_type_list"}, {"time_list_length.txt", 1, "history_time_list"},
    };
    for (const Case& c : cases) {
        const std::string path = kFixtures + "malformed/" + c.file;
        INFO(path);
        const piano::DataError e = first_error(path);
        CHECK(e.file() == path);
        CHECK(e.line() == c.line);
        CHECK(e.field() == c.field);
        CHECK_THAT(e.what(), Catch::StartsWith(path + ":" + std::to_string(c.line) + ": field " + c.field + ": "));
    }
    CHECK_THAT(first_error(kFixtures + "malformed/bad_label.txt").what(), Catch::Contains("'x.0' is not a number"));
    CHECK_THAT(first_error(kFixtures + "malformed/bad_history_type.txt").what(), Catch::Contains("'VIEW'"));

    try {
        read_products(kFixtures + "malformed/products_wrong_fields.txt");
        FAIL("no DataError");
    } catch (const piano::DataError& e) {
        CHECK(e.line() == 2);
        CHECK(e.field() == "line");
    }
}

TEST_CASE("skip_malformed skips and counts bad lines", "[data]") {
    const std::string path = kFixtures + "malformed/mixed.txt";
    CHECK(first_error(path).line() == 3);

    LoadOptions options;
    options.skip_malformed = true;
    std::vector<long> lines;
    const ReadStats stats = for_each_request(path, [&](const RawRequest& r) { lines.push_back(r.source.line); }, options);
    CHECK(stats.records == 3);
    CHECK(stats.skipped == 2);
    CHECK(lines == std::vector<long>{2, 4, 6});
    CHECK_THAT(stats.first_error, Catch::StartsWith(path + ":3: field candidate_label_list"));

    ReadStats product_stats;
    const ProductTable products =
        read_products(kFixtures + "malformed/products_wrong_fields.txt", options, &product_stats);
    CHECK(products.size() == 2);
    CHECK(product_stats.records == 2);
    CHECK(product_stats.skipped == 1);
}

TEST_CASE("an empty data directory is an empty dataset", "[data]") {
    const JdsearchDataset data = load_jdsearch_dir(kFixtures + "empty");
    CHECK(data.train.empty());
    CHECK(data.valid.empty());
    CHECK(data.test.empty());
    for (const Vocabulary& v : data.vocab.tables) CHECK(v.rows() == 1);

    JdsearchFiles single;  // a 0-byte requests file split by seed
    single.products = kFixtures + "empty/products.txt";
    single.requests = kFixtures + "empty/train.txt";
    CHECK(load_jdsearch(single).train.empty());

    CHECK_THROWS_AS(load_jdsearch_dir(kFixtures + "malformed"), piano::DataError);  // no products.txt
}

TEST_CASE("parse_request_line: limits, trimming and the newest history kept", "[data]") {
    const std::string line = "q1\030q2\ta_b_c\t0.0_1.0_3.0\t-1_x\th1_h2\tCLICK_FLW\t0_100_20\r";
    const SourcePos where{"line.txt", 7};
    const RawRequest r = parse_request_line(line, where);
    CHECK(r.query == std::vector<std::string>{"q1", "q2"});
    REQUIRE(r.candidates.size() == 3);
    CHECK(r.candidates[2].item == "c");
    CHECK(r.candidates[2].label == 3.0f);
    REQUIRE(r.history.size() == 2);
    CHECK(r.history[0].gap == 120);
    CHECK(r.history[1].gap == 20);  // the `\r` did not reach the last number
    CHECK(r.source.line == 7);

    LoadOptions options;
    options.max_history = 1;
    const RawRequest newest = parse_request_line(line, where, options);
    REQUIRE(newest.history.size() == 1);
    CHECK(newest.history[0].item == "h2");
    CHECK(newest.history[0].gap == 20);

    options.max_candidates = 2;
    try {
        parse_request_line(line, where, options);
        FAIL("no DataError");
    } catch (const piano::DataError& e) {
        CHECK(e.field() == "candidate_wid_list");
        CHECK_THAT(e.what(), Catch::Contains("max_candidates = 2"));
    }
    CHECK_THROWS_AS(parse_request_line("q\t\t\t\t\t\t0", where), piano::DataError);  // no candidates
    CHECK_THROWS_AS(parse_request_line("q\ta\t1.0\t\th1\tCLICK\t0_1", where), piano::DataError);  // empty query element
    CHECK_THROWS_AS(parse_request_line("q\ta\t1.0\t\t\t\t-5", where), piano::DataError);  // negative time
}

TEST_CASE("dense features: one width per file", "[data]") {
    const std::string path = kFixtures + "dense/requests.txt";
    const ProductTable no_products;
    const Vocabularies no_vocab;
    try {
        load_requests_file(path, no_products, no_vocab);
        FAIL("no DataError");
    } catch (const piano::DataError& e) {
        CHECK(e.line() == 2);
        CHECK(e.field() == "candidate_dense_list");
    }
    LoadOptions options;
    options.skip_malformed = true;
    const LoadedRequests loaded = load_requests_file(path, no_products, no_vocab, options);
    CHECK(loaded.stats.skipped == 1);
    CHECK(loaded.dense_dim == 2);
    REQUIRE(loaded.requests.size() == 1);
    CHECK(loaded.requests[0].candidates[0].dense == std::vector<float>{0.5f, -1.0f});
    CHECK(loaded.requests[0].candidates[1].dense == std::vector<float>{2.0f, 0.25f});
    CHECK(loaded.requests[0].candidates[0].fields.item == kUnknownRow);  // empty vocabulary
}

TEST_CASE("load_requests_file reads new traffic against a trained vocabulary", "[data]") {
    const JdsearchDataset data = load_jdsearch_dir(kFixtures + "tiny");
    const ProductTable products = read_products(kFixtures + "tiny/products.txt");
    const LoadedRequests loaded = load_requests_file(kFixtures + "tiny/valid.txt", products, data.vocab);
    REQUIRE(loaded.requests.size() == 1);
    CHECK(loaded.requests[0].query == data.valid[0].query);
    CHECK(loaded.requests[0].candidates[1].fields.brand == data.vocab[Table::brand].row("b1"));
}

TEST_CASE("vocabulary: frequency order, unseen ids, hashing past capacity", "[data]") {
    CHECK(fnv1a64("") == 0xcbf29ce484222325ULL);
    CHECK(fnv1a64("a") == 0xaf63dc4c8601ec8cULL);

    VocabularyBuilder builder;
    for (const char* id : {"c", "a", "b", "a", "", "b", "a", "d"}) builder.add(id);
    CHECK(builder.size() == 4);  // "" is not an id

    const Vocabulary full = builder.build(0);
    CHECK(full.row("a") == 1);
    CHECK(full.row("b") == 2);
    CHECK(full.row("c") == 3);  // c and d tie; c came first
    CHECK(full.row("d") == 4);
    CHECK(full.row("zz") == kUnknownRow);
    CHECK(full.row("") == kUnknownRow);
    CHECK(full.rows() == 5);

    const Vocabulary capped = builder.build(3);
    CHECK(capped.rows() == 3);
    CHECK(capped.row("a") == 1);
    CHECK(capped.row("b") == 2);
    CHECK(capped.row("c") == static_cast<Row>(1 + fnv1a64("c") % 2));
    CHECK(capped.row("d") == static_cast<Row>(1 + fnv1a64("d") % 2));
    CHECK(capped.row("zz") == kUnknownRow);  // hashing is for training ids only
    CHECK(capped.size() == 4);

    std::stringstream text;
    capped.save(text);
    CHECK(text.str() == "piano-vocabulary 1 max_rows=3\na\nb\nc\nd\n");
    const Vocabulary back = Vocabulary::load(text, "mem");
    for (const char* id : {"a", "b", "c", "d", "zz"}) CHECK(back.row(id) == capped.row(id));
    CHECK(back.max_rows() == 3);

    std::stringstream wrong_version("piano-vocabulary 2 max_rows=0\na\n");
    try {
        Vocabulary::load(wrong_version, "mem");
        FAIL("no DataError");
    } catch (const piano::DataError& e) {
        CHECK(e.field() == "header");
    }
    std::stringstream duplicate("piano-vocabulary 1 max_rows=0\na\nb\na\n");
    try {
        Vocabulary::load(duplicate, "mem");
        FAIL("no DataError");
    } catch (const piano::DataError& e) {
        CHECK(e.line() == 4);
        CHECK(e.field() == "id");
    }
    CHECK_THROWS_AS(builder.build(1), piano::ConfigError);
}

TEST_CASE("capacities hash the loader's long tail, and vocabularies round-trip through a directory", "[data][shared]") {
    LoadOptions options;
    options.capacity.items = 3;
    const JdsearchDataset data = load_jdsearch_dir(kFixtures + "tiny", options);
    const Vocabulary& items = data.vocab[Table::item];
    CHECK(items.rows() == 3);
    CHECK(items.row("103") == 1);
    CHECK(items.row("101") == 2);
    CHECK(items.row("102") >= 1);
    CHECK(items.row("102") < 3);
    CHECK(items.row("999") == kUnknownRow);
    CHECK(data.vocab[Table::term].rows() == 4);  // other tables uncapped

    TempDir dir("jdsearch");
    data.vocab.save_dir(dir.path().string());
    CHECK(fs::exists(dir / "items.vocab"));
    const Vocabularies back = Vocabularies::load_dir(dir.path().string());
    for (int t = 0; t < kTableCount; ++t) {
        const Vocabulary& a = data.vocab.tables[static_cast<std::size_t>(t)];
        const Vocabulary& b = back.tables[static_cast<std::size_t>(t)];
        CHECK(a.rows() == b.rows());
        CHECK(a.size() == b.size());
    }
    for (const char* id : {"101", "102", "103", "104", "999"}) CHECK(back[Table::item].row(id) == items.row(id));

    // A directory of products.txt and requests.txt in JDsearch's exact layout loads whole.
    fs::copy_file(kFixtures + "layout/products.txt", dir / "products.txt");
    fs::copy_file(kFixtures + "layout/requests.txt", dir / "requests.txt");
    LoadOptions all_train;
    all_train.train_fraction = 1.0;
    all_train.valid_fraction = 0.0;
    CHECK(load_jdsearch_dir(dir.path().string(), all_train).train.size() == 3);
}
