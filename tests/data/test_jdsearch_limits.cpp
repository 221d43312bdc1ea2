// The JDsearch reader at the edges of its input: the longest list and a long history, a
// list of one, an empty query, no history, labels outside 0..3, 0-byte files, one products
// line at a time. Each test states what must happen: the line loads as written, or it is
// a DataError naming the file, line, field and problem.
#include <catch2/catch.hpp>

#include <array>
#include <fstream>
#include <string>
#include <vector>

#include "piano/data/jdsearch.hpp"

#include <support/test_helpers.hpp>

using namespace piano::data;
using piano::testing::TempDir;

namespace jdsearch_limits {

// A requests line with L candidates w0..w{L-1} (labels: the first 3, the rest 0) and H
// history events h0..h{H-1} (queries: q<j>, every fourth one -1; types cycle through the
// four codes; every time step 10, the last gap 5).
std::string line_of(std::size_t L, std::size_t H, const std::string& query = "q1") {
    std::string wids, labels, queries, items, types, times = "0";
    const char* codes[] = {"CLICK", "CART", "ORD", "FLW"};
    for (std::size_t i = 0; i < L; ++i) {
        wids += (i ? "_w" : "w") + std::to_string(i);
        labels += std::string(i ? "_" : "") + (i == 0 ? "3.0" : "0.0");
    }
    for (std::size_t j = 0; j < H; ++j) {
        const std::string sep = j ? "_" : "";
        queries += sep + (j % 4 == 3 ? std::string("-1") : "q" + std::to_string(j));
        items += sep + "h" + std::to_string(j);
        types += sep + codes[j % 4];
        times += j + 1 < H ? "_10" : "_5";
    }
    if (H == 0) times = "5";  // H + 1 = 1 number: the gap before this search
    return query + "\t" + wids + "\t" + labels + "\t" + queries + "\t" + items + "\t" + types + "\t" + times;
}

void write_file(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

// The DataError that parsing `line` throws (a failed check when it throws none).
piano::DataError parse_error(const std::string& line, const LoadOptions& options = {}) {
    try {
        parse_request_line(line, {"limits.txt", 4}, options);
    } catch (const piano::DataError& e) {
        return e;
    }
    FAIL("no DataError for " << line);
    throw;  // unreachable: FAIL throws
}

}  // namespace jdsearch_limits

TEST_CASE("a request of 1000 candidates and 5000 history events loads whole, and 1001 is malformed", "[data][limits]") {
    // Expected: works. 1000 is max_candidates' default (JDsearch's longest list is 200;
    // piano is measured up to 1000); histories are not limited by default (max_history = 0).
    TempDir dir("limits");
    jdsearch_limits::write_file(dir / "requests.txt", jdsearch_limits::line_of(1000, 5000) + "\n");
    const LoadedRequests loaded = load_requests_file((dir / "requests.txt").string(), ProductTable{}, Vocabularies{});
    REQUIRE(loaded.requests.size() == 1);
    const Request& r = loaded.requests[0];
    CHECK(r.candidates.size() == 1000);
    REQUIRE(r.history.size() == 5000);
    CHECK(r.candidates[0].conv == 1);
    CHECK(r.history.back().gap == 5);                  // t_H
    CHECK(r.history.front().gap == 5 + 10 * 4999);     // t_1 + ... + t_H
    CHECK(r.history[3].has_query == false);            // the "-1" of every fourth event
    CHECK(r.history[5].type == Behavior::cart);

    // Expected: a DataError naming the field and the limit; the list is never cut.
    const piano::DataError e = jdsearch_limits::parse_error(jdsearch_limits::line_of(1001, 3));
    CHECK(e.field() == "candidate_wid_list");
    CHECK(e.line() == 4);
    CHECK_THAT(e.what(), Catch::Contains("1001 candidates, more than max_candidates = 1000"));
}

TEST_CASE("one candidate, an empty query and no history load as such", "[data][limits]") {
    // Expected: works: L = 1, T = 0 (empty query field), H = 0 (empty history fields and
    // one time, the gap before the search).
    const RawRequest r = parse_request_line(jdsearch_limits::line_of(1, 0, ""), {"limits.txt", 1});
    CHECK(r.query.empty());
    CHECK(r.history.empty());
    REQUIRE(r.candidates.size() == 1);
    CHECK(r.candidates[0].item == "w0");
    CHECK(r.candidates[0].label == 3.0f);
    // "-1" is JDsearch's spelling of no query, for the current query as for history ones.
    CHECK(parse_request_line(jdsearch_limits::line_of(1, 0, "-1"), {"limits.txt", 1}).query.empty());
}

TEST_CASE("labels outside 0..3 are malformed, naming the element", "[data][limits]") {
    // Expected: a DataError in candidate_label_list naming the element and the problem.
    // JDsearch labels are 0 none, 1 click, 2 cart, 3 purchase; a 7 is a corrupt file, not
    // a strong conversion.
    const std::string good = jdsearch_limits::line_of(3, 1);  // labels 3.0_0.0_0.0
    auto with_label = [&](const std::string& label) {
        std::string line = good;
        const std::size_t at = line.find("_0.0_0.0");
        return line.replace(at + 1, 3, label);  // the second label
    };
    const struct {
        const char* label;
        const char* problem;
    } cases[] = {{"-1.0", "element [1] '-1.0' is negative"},
                 {"7.0", "element [1] '7.0' is above max_label = 3 (labels: 0 none, 1 click, 2 cart, 3 purchase)"},
                 {"3.5", "element [1] '3.5' is above max_label = 3"},
                 {"nan", "element [1] 'nan' is not a number"},
                 {"inf", "element [1] 'inf' is not a number"},
                 {"1e999", "element [1] '1e999' is not a number"}};
    for (const auto& c : cases) {
        INFO(c.label);
        const piano::DataError e = jdsearch_limits::parse_error(with_label(c.label));
        CHECK(e.field() == "candidate_label_list");
        CHECK_THAT(e.what(), Catch::Contains(c.problem));
    }
    // Expected: works at the ends of the scale, and past 3 when max_label says so.
    CHECK(parse_request_line(with_label("3"), {"limits.txt", 1}).candidates[1].label == 3.0f);
    CHECK(parse_request_line(with_label("0"), {"limits.txt", 1}).candidates[1].label == 0.0f);
    LoadOptions graded;
    graded.max_label = 5.0;
    CHECK(parse_request_line(with_label("5.0"), {"limits.txt", 1}, graded).candidates[1].label == 5.0f);
    // Expected: a ConfigError when no label could be a conversion.
    graded.conv_threshold = 6.0;
    CHECK_THROWS_WITH(check_options(graded), Catch::Contains("max_label must be >= conv_threshold"));
}

TEST_CASE("0-byte and header-only files are empty inputs, not errors", "[data][limits]") {
    // Expected: works: no records, nothing skipped. (0-byte files in a data directory:
    // "an empty data directory is an empty dataset" in test_jdsearch.cpp.)
    TempDir dir("limits");
    jdsearch_limits::write_file(dir / "empty.txt", "");
    jdsearch_limits::write_file(dir / "header.txt", "query\tcandidate_wid_list\tcandidate_label_list\thistory_qry_list\t"
                                   "history_wid_list\thistory_type_list\thistory_time_list\r\n");
    jdsearch_limits::write_file(dir / "products.txt", "");
    for (const char* name : {"empty.txt", "header.txt"}) {
        INFO(name);
        const LoadedRequests loaded = load_requests_file((dir / name).string(), ProductTable{}, Vocabularies{});
        CHECK(loaded.requests.empty());
        CHECK(loaded.stats.records == 0);
        CHECK(loaded.stats.skipped == 0);
    }
    ReadStats stats;
    CHECK(read_products((dir / "products.txt").string(), {}, &stats).empty());
    CHECK(stats.records == 0);
}

TEST_CASE("parse_product_line: fields, missing values, CRLF and malformed lines", "[data][limits]") {
    const SourcePos where{"products.txt", 9};
    // Expected: works; empty fields are missing values; a CRLF end is not part of shop_id.
    const auto [wid, p] = parse_product_line("7\tname\tb1\tartist\tc1\tg\t\t\tc3\tg3\t\t\ts2\r", where);
    CHECK(wid == "7");
    CHECK(p.brand == "b1");
    CHECK(p.cate[0] == "c1");
    CHECK(p.cate[1].empty());
    CHECK(p.cate[2] == "c3");
    CHECK(p.shop == "s2");
    // The texts, split into terms: name, brand_name, cate_name_1..4.
    using Terms = std::vector<std::string>;
    const std::array<Terms, piano::data::kProductTextCount> texts = {Terms{"name"}, Terms{"artist"}, Terms{"g"},
                                                                     Terms{},       Terms{"g3"},     Terms{}};
    CHECK(p.text == texts);
    // product_line writes what parse_product_line reads, terms joined by \030.
    RawProduct q = p;
    q.text[0] = {"blue", "moon"};
    const auto [wid2, back] = parse_product_line(product_line("8", q), where);
    CHECK(wid2 == "8");
    CHECK(back.text == q.text);
    CHECK(back.brand == q.brand);
    CHECK(back.cate == q.cate);
    CHECK(back.shop == q.shop);
    CHECK_THROWS_WITH(parse_product_line("7\ta\030\030b\t\t\t\t\t\t\t\t\t\t\ts", where),
                      Catch::Contains("field name: empty term"));
    // Expected: DataErrors naming the line and the field.
    try {
        parse_product_line("7\tname\tb1", where);
        FAIL("no DataError");
    } catch (const piano::DataError& e) {
        CHECK(e.line() == 9);
        CHECK(e.field() == "line");
        CHECK_THAT(e.what(), Catch::Contains("expected 13 tab-separated fields, found 3"));
    }
    CHECK_THROWS_WITH(parse_product_line("\tn\t\t\t\t\t\t\t\t\t\t\ts", where), Catch::Contains("field wid: is empty"));
}

TEST_CASE("query_match: the share of the query's terms in each product text, by hand", "[data]") {
    RawProduct p;
    p.text[0] = {"a", "x"};  // name
    p.text[1] = {"b"};       // brand_name
    p.text[2] = {"a", "b"};  // cate_name_1
    const std::array<float, piano::data::kProductTextCount> shares = query_match({"a", "b"}, p);
    CHECK(shares[0] == Approx(0.5));
    CHECK(shares[1] == Approx(0.5));
    CHECK(shares[2] == Approx(1.0));
    for (std::size_t t = 3; t < shares.size(); ++t) CHECK(shares[t] == 0.0f);
    for (float share : query_match({}, p)) CHECK(share == 0.0f);
    // map_request fills it per candidate; a product the table lacks gets zeros.
    ProductTable products;
    products["7"] = p;
    RawRequest raw;
    raw.query = {"b", "z"};
    raw.candidates = {RawCandidate{"7", 1.0f, {}}, RawCandidate{"9", 0.0f, {}}};
    const piano::data::Vocabularies vocab;
    const Request r = map_request(raw, products, vocab);
    CHECK(r.candidates[0].query_match[1] == Approx(0.5));
    CHECK(r.candidates[0].query_match[2] == Approx(0.5));
    CHECK(r.candidates[0].query_match[0] == 0.0f);
    for (float share : r.candidates[1].query_match) CHECK(share == 0.0f);
}
