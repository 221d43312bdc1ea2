// piano/data/jdsearch.hpp: reading JDsearch files (real ones, and the simulator's).
//
// Requests file, one request per line, 7 tab-separated fields (docs/data.md has every byte):
//   query  candidate_wid_list  candidate_label_list  history_qry_list  history_wid_list
//   history_type_list  history_time_list  [candidate_dense_list]
// Products file, 13 tab-separated fields:
//   wid name brand_id brand_name cate_id_1 cate_name_1 ... cate_id_4 cate_name_4 shop_id
//
// Three layers, from bytes to model input:
//   parse_request_line / read_products   one line -> a raw record of string ids
//   for_each_request                     a file, streamed line by line -> raw records
//   map_request, load_jdsearch*, load_requests_file
//                                        raw records + vocabularies -> Request (rows)
// Files are streamed: memory holds one line at a time plus what the caller keeps, so a
// pass over a file of any size costs one line of memory. Loading a split keeps its
// Requests (that is the point), and the products file is kept as a wid -> fields table.
//
// A malformed line throws DataError "FILE:LINE: field NAME: problem". With
// LoadOptions::skip_malformed the line is skipped instead and counted in ReadStats.
//
// The candidate order: every pass measures how label-sorted the lists are (ReadStats::order);
// the loaders then keep the logged order or shuffle each list, as LoadOptions::candidate_order
// says and candidate_order.hpp explains. JDsearch's public log is label-sorted.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "piano/core/error.hpp"
#include "piano/data/candidate_order.hpp"
#include "piano/data/recipe.hpp"
#include "piano/data/lines.hpp"
#include "piano/data/request.hpp"
#include "piano/data/shuffle.hpp"
#include "piano/data/vocabulary.hpp"

namespace piano::data {

struct LoadOptions {
    // conv = label >= conv_threshold (>= 1, so that conv implies click); a label above
    // max_label (>= conv_threshold) is malformed. JDsearch's scale by default (recipe.hpp).
    double conv_threshold = data_label_defaults(DataFormat::jdsearch).conv_threshold;
    double max_label = data_label_defaults(DataFormat::jdsearch).max_label;
    std::size_t max_candidates = 1000; // a longer list is malformed (DataError), never cut
    std::size_t max_history = 0;       // 0 keeps every event; else only the most recent ones
    bool skip_malformed = false;       // skip and count malformed lines instead of throwing
    // New traffic has no labels yet: with this, an empty candidate_label_list gives every
    // candidate label 0 (a list of the wrong length is still malformed).
    bool labels_optional = false;
    // Used only when one requests file is split: each line goes to train, valid or test by
    // a seeded shuffle of the line numbers; test gets what train and valid leave.
    double train_fraction = 0.8;
    double valid_fraction = 0.1;
    std::uint64_t split_seed = 1;
    TableCapacities capacity;  // rows per embedding table; 0 = one row per training id
    // Keep the logged candidate order, shuffle it, or decide from the training file
    // (candidate_order.hpp); order_seed seeds the shuffle of every list.
    CandidateOrder candidate_order = CandidateOrder::automatic;
    std::uint64_t order_seed = 1;
};

/// What a pass over one file found: good records, skipped malformed lines (only with
/// skip_malformed) and the first skipped line's message, to show the user a sample.
struct ReadStats {
    std::size_t records = 0;
    std::size_t skipped = 0;
    std::string first_error;
    OrderStats order;  // how label-sorted the good records' candidate lists are
};

// ---------------------------------------------------------------- raw records (string ids)

struct RawHistoryEvent {
    std::vector<std::string> query;  // term ids; empty when has_query is false
    bool has_query = false;
    std::string item;
    Behavior type = Behavior::click;
    std::int64_t gap = 0;  // time from this event to the current search, >= 0
};

struct RawCandidate {
    std::string item;
    float label = 0.0f;
    std::vector<float> dense;  // [D], D = 0 without a candidate_dense_list field
};

struct RawRequest {
    std::vector<std::string> query;       // term ids, possibly none
    std::vector<RawHistoryEvent> history;  // oldest first
    std::vector<RawCandidate> candidates;
    SourcePos source;
};

/// A product's metadata; an empty string is a missing field (maps to row 0).
struct RawProduct {
    std::string brand;
    std::array<std::string, 4> cate;  // cate_id_1 .. cate_id_4
    std::string shop;
    // name, brand_name, cate_name_1 .. cate_name_4 (kProductTextColumns), each split into
    // its terms: what a query's terms are matched against (query_match).
    std::array<std::vector<std::string>, kProductTextCount> text;
};

/// wid -> metadata. Products absent from it keep row 0 in every field but their item id.
using ProductTable = std::unordered_map<std::string, RawProduct>;

// The format, written once: the reader below and the simulator's writer both use these.
// The separators: fields, list elements, terms (and dense values).
inline constexpr char kFieldSep = '\t';
inline constexpr char kListSep = '_';
inline constexpr char kTermSep = '\030';

/// The columns of each file, in order; a file's header line is its names joined by tabs.
/// A requests line may add an 8th column, candidate_dense_list, which no header names.
inline constexpr const char* kRequestFields[] = {"query",           "candidate_wid_list", "candidate_label_list",
                                                 "history_qry_list", "history_wid_list",   "history_type_list",
                                                 "history_time_list"};
inline constexpr const char* kProductFields[] = {"wid",         "name",      "brand_id",    "brand_name", "cate_id_1",
                                                 "cate_name_1", "cate_id_2", "cate_name_2", "cate_id_3",  "cate_name_3",
                                                 "cate_id_4",   "cate_name_4", "shop_id"};
/// The columns of kProductFields that hold RawProduct::text, in its order.
inline constexpr std::size_t kProductTextColumns[kProductTextCount] = {1, 3, 5, 7, 9, 11};
inline constexpr std::size_t kRequestFieldCount = std::size(kRequestFields);
inline constexpr std::size_t kProductFieldCount = std::size(kProductFields);

/// The header line of a file with `fields`, without its line end.
template <std::size_t N>
std::string header_line(const char* const (&fields)[N]) {
    std::string line;
    for (std::size_t k = 0; k < N; ++k) line += (k ? std::string(1, kFieldSep) : std::string()) + fields[k];
    return line;
}

namespace detail {

/// What line 1 starts with when it is a header: the first column's name and a tab.
template <std::size_t N>
std::string header_prefix(const char* const (&fields)[N]) {
    return std::string(fields[0]) + kFieldSep;
}

/// Every piece between separators, empty ones included: "a__b" -> {a, "", b}; "" -> {""}.
inline std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> parts;
    std::size_t begin = 0;
    for (std::size_t i = 0; i <= s.size(); ++i) {
        if (i == s.size() || s[i] == sep) {
            parts.push_back(s.substr(begin, i - begin));
            begin = i + 1;
        }
    }
    return parts;
}

/// A list field: empty text is the empty list (H = 0), otherwise as split().
inline std::vector<std::string_view> split_list(std::string_view s, char sep) {
    if (s.empty()) return {};
    return split(s, sep);
}

inline std::string quoted(std::string_view s) {
    constexpr std::size_t kShown = 40;  // enough to recognise a value, short enough for a message
    return "'" + std::string(s.substr(0, kShown)) + (s.size() > kShown ? "...'" : "'");
}

/// A number as a person writes it: 3, 2.5 (std::to_string would give 3.000000).
inline std::string number(double value) {
    std::ostringstream out;
    out << value;
    return out.str();
}

inline std::string element(std::size_t k) { return "element [" + std::to_string(k) + "] "; }

/// Throws DataError for `where` and field `field`.
[[noreturn]] inline void fail(const SourcePos& where, const std::string& field, const std::string& problem) {
    throw DataError(where.file, where.line, field, problem);
}

/// Term ids joined by \030. "" and "-1" are no terms; an empty term between separators is malformed.
inline std::vector<std::string> parse_terms(std::string_view text, const SourcePos& where, const std::string& field,
                                            const std::string& context) {
    std::vector<std::string> terms;
    if (text.empty() || text == "-1") return terms;
    for (std::string_view term : split(text, kTermSep)) {
        if (term.empty()) fail(where, field, context + "empty term in " + quoted(text));
        terms.emplace_back(term);
    }
    return terms;
}

inline float parse_label(std::string_view text, const SourcePos& where, std::size_t k, double max_label) {
    double value = 0.0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value))
        fail(where, "candidate_label_list", element(k) + quoted(text) + " is not a number");
    if (value < 0.0) fail(where, "candidate_label_list", element(k) + quoted(text) + " is negative");
    // A label past the scale (a 7 in 0..3 data) is a corrupt or foreign file, not a strong
    // conversion: reading it as one would train on garbage without a word.
    if (value > max_label)
        fail(where, "candidate_label_list",
             element(k) + quoted(text) + " is above max_label = " + number(max_label) +
                 " (labels: 0 none, 1 click, 2 cart, 3 purchase)");
    return static_cast<float>(value);
}

inline float parse_dense_value(std::string_view text, const SourcePos& where, std::size_t k) {
    float value = 0.0f;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value))
        fail(where, "candidate_dense_list", element(k) + "value " + quoted(text) + " is not a finite number");
    return value;
}

inline std::int64_t parse_time(std::string_view text, const SourcePos& where, std::size_t k) {
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size())
        fail(where, "history_time_list", element(k) + quoted(text) + " is not an integer");
    if (value < 0) fail(where, "history_time_list", element(k) + quoted(text) + " is negative");
    return value;
}

inline Behavior parse_behavior(std::string_view text, const SourcePos& where, std::size_t k) {
    for (int b = 0; b < kBehaviorCount; ++b)
        if (text == kBehaviorCodes[b]) return static_cast<Behavior>(b);
    fail(where, "history_type_list", element(k) + "unknown behaviour " + quoted(text) + " (expected CLICK, CART, ORD or FLW)");
}


}  // namespace detail

/// Throws ConfigError for options that cannot work.
inline void check_options(const LoadOptions& o) {
    if (!(o.conv_threshold >= 1.0))
        throw ConfigError("LoadOptions: conv_threshold must be >= 1 (conv implies click), got " +
                          std::to_string(o.conv_threshold));
    if (!(o.max_label >= o.conv_threshold))
        throw ConfigError("LoadOptions: max_label must be >= conv_threshold (else no label is a conversion), got " +
                          std::to_string(o.max_label) + " and " + std::to_string(o.conv_threshold));
    if (o.max_candidates == 0) throw ConfigError("LoadOptions: max_candidates must be >= 1");
    const bool fractions_ok = o.train_fraction >= 0.0 && o.valid_fraction >= 0.0 &&
                              o.train_fraction + o.valid_fraction <= 1.0 + 1e-12;
    if (!fractions_ok)
        throw ConfigError("LoadOptions: train_fraction and valid_fraction must be >= 0 with a sum <= 1, got " +
                          std::to_string(o.train_fraction) + " and " + std::to_string(o.valid_fraction));
}

/// Parses one request line (without its newline; a trailing `\r` is allowed) into string
/// ids. `where` names the line in errors. History gaps: `history_time_list` holds H+1
/// numbers t_0..t_H, t_k the time between event k-1 and event k (t_0 = 0, nothing before
/// the first event) and t_H the time between the last event and this search, so event j
/// happened gap_j = t_{j+1} + ... + t_H before the search.
inline RawRequest parse_request_line(std::string_view line, const SourcePos& where, const LoadOptions& options = {}) {
    using namespace detail;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::vector<std::string_view> f = split(line, kFieldSep);
    if (f.size() != kRequestFieldCount && f.size() != kRequestFieldCount + 1)
        fail(where, "line",
             "expected 7 tab-separated fields (8 with candidate_dense_list), found " + std::to_string(f.size()));

    RawRequest r;
    r.source = where;
    r.query = parse_terms(f[0], where, "query", "");

    // candidates: [L] wids and [L] labels, 1 <= L <= max_candidates
    const auto wids = split_list(f[1], kListSep);
    const auto labels = split_list(f[2], kListSep);
    const std::size_t L = wids.size();
    if (L == 0) fail(where, "candidate_wid_list", "no candidates");
    if (L > options.max_candidates)
        fail(where, "candidate_wid_list",
             std::to_string(L) + " candidates, more than max_candidates = " + std::to_string(options.max_candidates));
    const bool unlabelled = labels.empty() && options.labels_optional;
    if (labels.size() != L && !unlabelled)
        fail(where, "candidate_label_list",
             std::to_string(labels.size()) + " labels for " + std::to_string(L) + " candidates in candidate_wid_list");
    r.candidates.resize(L);
    for (std::size_t k = 0; k < L; ++k) {
        if (wids[k].empty()) fail(where, "candidate_wid_list", element(k) + "is empty");
        r.candidates[k].item = std::string(wids[k]);
        r.candidates[k].label = unlabelled ? 0.0f : parse_label(labels[k], where, k, options.max_label);
    }

    // optional dense features: [L] elements of D values joined by \030, D the same for all
    if (f.size() == kRequestFieldCount + 1 && !f[7].empty()) {
        const auto rows = split(f[7], kListSep);
        if (rows.size() != L)
            fail(where, "candidate_dense_list",
                 std::to_string(rows.size()) + " feature vectors for " + std::to_string(L) + " candidates");
        for (std::size_t k = 0; k < L; ++k) {
            const auto values = split(rows[k], kTermSep);
            for (std::string_view v : values) r.candidates[k].dense.push_back(parse_dense_value(v, where, k));
            if (values.size() != r.candidates[0].dense.size())
                fail(where, "candidate_dense_list",
                     element(k) + "has " + std::to_string(values.size()) + " values, element [0] has " +
                         std::to_string(r.candidates[0].dense.size()));
        }
    }

    // history: [H] queries, wids and types, [H+1] times; the wid list fixes H
    const auto queries = split_list(f[3], kListSep);
    const auto items = split_list(f[4], kListSep);
    const auto types = split_list(f[5], kListSep);
    const auto times = split_list(f[6], kListSep);
    const std::size_t H = items.size();
    const std::string expected = " entries, history_wid_list has " + std::to_string(H);
    if (queries.size() != H) fail(where, "history_qry_list", std::to_string(queries.size()) + expected);
    if (types.size() != H) fail(where, "history_type_list", std::to_string(types.size()) + expected);
    if (times.size() != H + 1)
        fail(where, "history_time_list",
             std::to_string(times.size()) + " entries, expected " + std::to_string(H + 1) +
                 " (one per history event plus the gap before this search)");
    std::vector<std::int64_t> t(H + 1);
    for (std::size_t k = 0; k <= H; ++k) t[k] = parse_time(times[k], where, k);

    r.history.resize(H);
    std::int64_t gap = 0;  // t_{j+1} + ... + t_H, accumulated from the newest event back
    for (std::size_t j = H; j-- > 0;) {
        if (t[j + 1] > std::numeric_limits<std::int64_t>::max() - gap)
            fail(where, "history_time_list", "the gaps overflow a 64-bit sum");
        gap += t[j + 1];
        RawHistoryEvent& e = r.history[j];
        if (items[j].empty()) fail(where, "history_wid_list", element(j) + "is empty");
        if (queries[j].empty()) fail(where, "history_qry_list", element(j) + "is empty (-1 means no query)");
        e.has_query = queries[j] != "-1";
        e.query = parse_terms(queries[j], where, "history_qry_list", element(j));
        e.item = std::string(items[j]);
        e.type = parse_behavior(types[j], where, j);
        e.gap = gap;
    }
    // Gaps are relative to this search, so dropping the oldest events changes no other gap.
    if (options.max_history > 0 && H > options.max_history)
        r.history.erase(r.history.begin(), r.history.begin() + static_cast<std::ptrdiff_t>(H - options.max_history));
    return r;
}

/// Parses one products line (without its newline; a trailing `\r` is allowed) into its
/// wid and metadata. Empty fields are missing values. `where` names the line in errors.
inline std::pair<std::string, RawProduct> parse_product_line(std::string_view line, const SourcePos& where) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto f = detail::split(line, kFieldSep);
    if (f.size() != kProductFieldCount)
        detail::fail(where, "line", "expected 13 tab-separated fields, found " + std::to_string(f.size()));
    if (f[0].empty()) detail::fail(where, "wid", "is empty");
    RawProduct p;
    p.brand = std::string(f[2]);
    for (std::size_t k = 0; k < 4; ++k) p.cate[k] = std::string(f[4 + 2 * k]);
    p.shop = std::string(f[12]);
    for (std::size_t t = 0; t < kProductTextCount; ++t) {
        const std::size_t column = kProductTextColumns[t];
        p.text[t] = detail::parse_terms(f[column], where, kProductFields[column], "");
    }
    return {std::string(f[0]), std::move(p)};
}

/// One products line for `wid` (without its newline), for parse_product_line.
inline std::string product_line(const std::string& wid, const RawProduct& p) {
    std::array<std::string, kProductFieldCount> f;
    f[0] = wid;
    f[2] = p.brand;
    for (std::size_t k = 0; k < 4; ++k) f[4 + 2 * k] = p.cate[k];
    f[12] = p.shop;
    for (std::size_t t = 0; t < kProductTextCount; ++t) {
        std::string& text = f[kProductTextColumns[t]];
        for (const std::string& term : p.text[t]) text += (text.empty() ? "" : std::string(1, kTermSep)) + term;
    }
    std::string line = f[0];
    for (std::size_t k = 1; k < f.size(); ++k) line += kFieldSep + f[k];
    return line;
}

/// Per product text (RawProduct::text), the share of the query's terms found in it: the
/// exact query-document match every search ranker starts from. A model could learn which
/// songs a query names from co-occurrence alone, one id at a time; the shared terms say
/// it directly. 0 for an empty query.
inline std::array<float, kProductTextCount> query_match(const std::vector<std::string>& query, const RawProduct& p) {
    std::array<float, kProductTextCount> share{};
    if (query.empty()) return share;
    for (std::size_t t = 0; t < kProductTextCount; ++t) {
        const std::vector<std::string>& text = p.text[t];
        std::size_t found = 0;
        for (const std::string& term : query) found += std::find(text.begin(), text.end(), term) != text.end();
        share[t] = static_cast<float>(static_cast<double>(found) / static_cast<double>(query.size()));
    }
    return share;
}

/// Writes `products` as a products file (header line first, wids in sorted order, so the
/// same table always gives the same bytes), for read_products.
inline void write_products(std::ostream& out, const ProductTable& products) {
    std::vector<const std::string*> wids;
    wids.reserve(products.size());
    for (const auto& entry : products) wids.push_back(&entry.first);
    std::sort(wids.begin(), wids.end(), [](const std::string* a, const std::string* b) { return *a < *b; });
    out << header_line(kProductFields) << '\n';
    for (const std::string* wid : wids) out << product_line(*wid, products.at(*wid)) << '\n';
}

/// Reads the products file into a wid -> fields table. A header line (starting `wid\t`)
/// is skipped; empty fields are missing values; a repeated wid is malformed.
inline ProductTable read_products(const std::string& path, const LoadOptions& options = {},
                                  ReadStats* stats = nullptr) {
    ProductTable products;
    ReadStats local;
    detail::for_each_data_line(path, detail::header_prefix(kProductFields), [&](std::string_view line, long line_no) {
        const SourcePos where{path, line_no};
        try {
            auto [wid, product] = parse_product_line(line, where);
            if (products.count(wid) != 0)
                detail::fail(where, "wid", "product " + detail::quoted(wid) + " appears twice");
            products.emplace(std::move(wid), std::move(product));
            ++local.records;
        } catch (const DataError& e) {
            if (!options.skip_malformed) throw;
            if (local.skipped++ == 0) local.first_error = e.what();
        }
    });
    if (stats) *stats = local;
    return products;
}

namespace detail {

/// The shared loop behind every requests reader: parses each data line of `path` and
/// calls fn(raw, ordinal), ordinal counting data lines (malformed ones included). A
/// DataError from the parse, the dense-width check or fn marks the line malformed. Every
/// request of one file must have the same number of dense features per candidate; the
/// first good line fixes it (returned through `dense_dim`).
template <typename Fn>
ReadStats for_each_parsed(const std::string& path, const LoadOptions& options, std::size_t* dense_dim, Fn&& fn) {
    ReadStats stats;
    bool width_known = false;
    std::size_t width = 0;
    std::size_t ordinal = 0;
    for_each_data_line(path, header_prefix(kRequestFields), [&](std::string_view line, long line_no) {
        const SourcePos where{path, line_no};
        try {
            RawRequest raw = parse_request_line(line, where, options);
            const std::size_t d = raw.candidates.front().dense.size();
            if (width_known && d != width)
                fail(where, "candidate_dense_list",
                     std::to_string(d) + " dense features per candidate, earlier lines of this file have " +
                         std::to_string(width));
            fn(raw, ordinal);
            width_known = true;
            width = d;
            ++stats.records;
            std::vector<float> labels;
            labels.reserve(raw.candidates.size());
            for (const RawCandidate& c : raw.candidates) labels.push_back(c.label);
            stats.order.add(labels);
        } catch (const DataError& e) {
            if (!options.skip_malformed) throw;
            if (stats.skipped++ == 0) stats.first_error = e.what();
        }
        ++ordinal;
    });
    if (dense_dim) *dense_dim = width;
    return stats;
}

}  // namespace detail

/// Streams the requests file at `path`, calling fn(const RawRequest&) once per good line,
/// in file order; a header line (starting `query\t`) is skipped. Memory stays at one line.
/// A DataError thrown by fn counts as that line's error (skipped with skip_malformed).
template <typename Fn>
ReadStats for_each_request(const std::string& path, Fn&& fn, const LoadOptions& options = {}) {
    return detail::for_each_parsed(path, options, nullptr,
                                   [&](const RawRequest& raw, std::size_t) { fn(raw); });
}

/// Counts one training request's ids into the builders: query and history terms, candidate
/// and history items, and the metadata fields of those items that have metadata.
inline void count_ids(VocabularyBuilders& b, const RawRequest& r, const ProductTable& products) {
    auto add_item = [&](const std::string& wid) {
        b[Table::item].add(wid);
        const auto it = products.find(wid);
        if (it == products.end()) return;
        b[Table::brand].add(it->second.brand);
        for (const std::string& c : it->second.cate) b[Table::category].add(c);
        b[Table::shop].add(it->second.shop);
    };
    for (const std::string& term : r.query) b[Table::term].add(term);
    for (const RawHistoryEvent& e : r.history) {
        for (const std::string& term : e.query) b[Table::term].add(term);
        add_item(e.item);
    }
    for (const RawCandidate& c : r.candidates) add_item(c.item);
}

/// The rows of product `wid`: its item row, and its metadata rows (0 when it has none).
/// Every non-empty id looked up counts in `counts` when given (Vocabularies::row).
inline ItemFields map_item(const std::string& wid, const ProductTable& products, const Vocabularies& v,
                           IdCounts* counts = nullptr) {
    ItemFields f;
    f.item = v.row(Table::item, wid, counts);
    const auto it = products.find(wid);
    if (it == products.end()) return f;
    const RawProduct& p = it->second;
    f.brand = v.row(Table::brand, p.brand, counts);
    f.cate1 = v.row(Table::category, p.cate[0], counts);
    f.cate2 = v.row(Table::category, p.cate[1], counts);
    f.cate3 = v.row(Table::category, p.cate[2], counts);
    f.cate4 = v.row(Table::category, p.cate[3], counts);
    f.shop = v.row(Table::shop, p.shop, counts);
    return f;
}

/// String ids -> rows; labels -> click (label >= 1) and conv (label >= conv_threshold).
/// With `counts`, every id looked up is counted, known or not (IdCounts).
inline Request map_request(const RawRequest& raw, const ProductTable& products, const Vocabularies& v,
                           const LoadOptions& options = {}, IdCounts* counts = nullptr) {
    auto terms = [&](const std::vector<std::string>& ids) {
        std::vector<Row> rows;
        rows.reserve(ids.size());
        for (const std::string& id : ids) rows.push_back(v.row(Table::term, id, counts));
        return rows;
    };
    Request r;
    r.source = raw.source;
    r.query = terms(raw.query);
    r.history.reserve(raw.history.size());
    for (const RawHistoryEvent& e : raw.history) {
        HistoryEvent h;
        h.query = terms(e.query);
        h.has_query = e.has_query;
        h.fields = map_item(e.item, products, v, counts);
        h.type = e.type;
        h.gap = e.gap;
        r.history.push_back(std::move(h));
    }
    r.candidates.reserve(raw.candidates.size());
    for (const RawCandidate& c : raw.candidates) {
        Candidate m;
        m.fields = map_item(c.item, products, v, counts);
        const auto product = products.find(c.item);
        if (product != products.end()) m.query_match = query_match(raw.query, product->second);
        m.dense = c.dense;
        m.label = c.label;
        m.click = c.label >= 1.0f ? 1 : 0;
        m.conv = static_cast<double>(c.label) >= options.conv_threshold ? 1 : 0;
        r.candidates.push_back(std::move(m));
    }
    return r;
}

/// Where a dataset lives. Either `requests` (one file, split by LoadOptions' seed and
/// fractions) or `train` (with optional `valid` and `test`, empty = no such split).
struct JdsearchFiles {
    std::string products;
    std::string requests;
    std::string train;
    std::string valid;
    std::string test;
};

struct JdsearchDataset {
    std::vector<Request> train, valid, test;
    Vocabularies vocab;          // built from `train` only
    ProductTable products;       // the products file (empty for LETOR): serving maps new requests with it
    std::size_t dense_dim = 0;   // dense features per candidate, the same in every split
    ReadStats products_stats;    // the products file
    ReadStats requests_stats;    // all requests files together
    ReadStats train_stats;       // the pass that decides `auto`: train.txt, or all of requests.txt
    DataRecipe recipe;           // how it was read: the format, the candidate order as applied, its seed
};

/// The files of a data directory: `products.txt` and either `requests.txt` or `train.txt`
/// (with `valid.txt` and `test.txt` when present). Holding both layouts is an error.
inline JdsearchFiles jdsearch_dir_files(const std::string& dir) {
    namespace fs = std::filesystem;
    auto in_dir = [&](const char* name) { return (fs::path(dir) / name).string(); };
    JdsearchFiles files;
    files.products = in_dir("products.txt");
    if (!fs::exists(files.products)) throw DataError(files.products, 0, "file", "missing from the data directory");
    const bool single = fs::exists(in_dir("requests.txt"));
    const bool fixed = fs::exists(in_dir("train.txt"));
    if (single && fixed)
        throw DataError(dir, 0, "directory", "holds both requests.txt and train.txt; keep one layout");
    if (!single && !fixed)
        throw DataError(dir, 0, "directory", "holds neither requests.txt nor train.txt");
    if (single) {
        files.requests = in_dir("requests.txt");
    } else {
        files.train = in_dir("train.txt");
        if (fs::exists(in_dir("valid.txt"))) files.valid = in_dir("valid.txt");
        if (fs::exists(in_dir("test.txt"))) files.test = in_dir("test.txt");
    }
    return files;
}

namespace detail {

enum class Split : std::uint8_t { train, valid, test };

/// The split of each data line of a single requests file: round(N*train_fraction) lines
/// to train, round(N*valid_fraction) to valid, the rest to test, chosen by a shuffle of
/// the line ordinals seeded with split_seed. Needs N, so the file is counted first.
inline std::vector<Split> assign_splits(const std::string& path, const LoadOptions& options) {
    std::size_t n = 0;
    for_each_data_line(path, header_prefix(kRequestFields), [&](std::string_view, long) { ++n; });
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    std::mt19937_64 rng = seeded_generator(options.split_seed, 0);
    seeded_shuffle(order, rng);
    const auto count = [&](double fraction) {
        return static_cast<std::size_t>(std::llround(static_cast<double>(n) * fraction));
    };
    const std::size_t n_train = std::min(n, count(options.train_fraction));
    const std::size_t n_valid = std::min(n - n_train, count(options.valid_fraction));
    std::vector<Split> split(n, Split::test);
    for (std::size_t i = 0; i < n_train; ++i) split[order[i]] = Split::train;
    for (std::size_t i = n_train; i < n_train + n_valid; ++i) split[order[i]] = Split::valid;
    return split;
}

inline void add_stats(ReadStats& total, const ReadStats& part) {
    total.records += part.records;
    total.order.merge(part.order);
    if (total.skipped == 0 && part.skipped > 0) total.first_error = part.first_error;
    total.skipped += part.skipped;
}

}  // namespace detail

/// Loads a dataset in two streamed passes over the training requests (vocabularies, then
/// mapping) and one over the others. Requests keep file order within each split.
inline JdsearchDataset load_jdsearch(const JdsearchFiles& files, const LoadOptions& options = {}) {
    using detail::Split;
    check_options(options);
    JdsearchDataset data;
    data.products = read_products(files.products, options, &data.products_stats);
    const ProductTable& products = data.products;
    VocabularyBuilders builders;
    auto count = [&](const RawRequest& raw) { count_ids(builders, raw, products); };

    // One dense width for the whole dataset; `first` names the file that fixed it.
    std::string first;
    auto check_width = [&](const std::string& path, std::size_t width, std::size_t records) {
        if (records == 0) return;
        if (first.empty()) {
            first = path;
            data.dense_dim = width;
        } else if (width != data.dense_dim) {
            throw DataError(path, 0, "candidate_dense_list",
                            std::to_string(width) + " dense features per candidate, " + first + " has " +
                                std::to_string(data.dense_dim));
        }
    };

    if (!files.requests.empty()) {
        const std::vector<Split> split = detail::assign_splits(files.requests, options);
        auto split_of = [&](const RawRequest& raw, std::size_t i) {
            if (i >= split.size()) throw DataError(raw.source.file, raw.source.line, "file", "grew while being read");
            return split[i];
        };
        // Pass 1 parses every line (so skipping is the same as in pass 2) but counts train
        // only. The order of the whole file decides `auto`: its splits are one log.
        auto count_train = [&](const RawRequest& raw, std::size_t i) {
            if (split_of(raw, i) == Split::train) count(raw);
        };
        data.train_stats = detail::for_each_parsed(files.requests, options, nullptr, count_train);
        data.vocab = builders.build(options.capacity);
        data.recipe = {DataFormat::jdsearch, resolve_candidate_order(options.candidate_order, data.train_stats.order),
                       options.order_seed, {options.conv_threshold, options.max_label}};
        std::size_t width = 0;
        data.requests_stats = detail::for_each_parsed(
            files.requests, options, &width, [&](const RawRequest& raw, std::size_t i) {
                const Split s = split_of(raw, i);
                Request r = map_request(raw, products, data.vocab, options);
                apply_candidate_order(r, data.recipe.candidate_order, options.order_seed);
                (s == Split::train ? data.train : s == Split::valid ? data.valid : data.test).push_back(std::move(r));
            });
        check_width(files.requests, width, data.requests_stats.records);
        return data;
    }

    if (files.train.empty()) throw ConfigError("load_jdsearch: JdsearchFiles names neither requests nor train");
    data.train_stats =
        detail::for_each_parsed(files.train, options, nullptr, [&](const RawRequest& raw, std::size_t) { count(raw); });
    data.vocab = builders.build(options.capacity);
    data.recipe = {DataFormat::jdsearch, resolve_candidate_order(options.candidate_order, data.train_stats.order),
                   options.order_seed, {options.conv_threshold, options.max_label}};
    const std::pair<const std::string*, std::vector<Request>*> splits[] = {
        {&files.train, &data.train}, {&files.valid, &data.valid}, {&files.test, &data.test}};
    for (const auto& [path, split] : splits) {
        if (path->empty()) continue;
        std::size_t width = 0;
        // A named pointer, not the binding: C++17 lambdas cannot capture structured bindings
        // (clang rejects it; GCC accepts it as an extension).
        std::vector<Request>* out = split;
        const ReadStats stats = detail::for_each_parsed(*path, options, &width, [&](const RawRequest& raw, std::size_t) {
            out->push_back(map_request(raw, products, data.vocab, options));
            apply_candidate_order(out->back(), data.recipe.candidate_order, options.order_seed);
        });
        detail::add_stats(data.requests_stats, stats);
        check_width(*path, width, stats.records);
    }
    return data;
}

/// load_jdsearch on the files of a data directory (see jdsearch_dir_files).
inline JdsearchDataset load_jdsearch_dir(const std::string& dir, const LoadOptions& options = {}) {
    return load_jdsearch(jdsearch_dir_files(dir), options);
}

struct LoadedRequests {
    std::vector<Request> requests;
    std::size_t dense_dim = 0;
    ReadStats stats;
    CandidateOrder candidate_order = CandidateOrder::as_logged;  // as applied
};

/// Reads a requests file against existing vocabularies (a trained model's), e.g. to rerank
/// new traffic: ids the vocabularies do not know map to row 0. Pass the order the model
/// was trained with (as_logged or shuffle); `auto` decides from this file alone, which
/// costs one more pass.
inline LoadedRequests load_requests_file(const std::string& path, const ProductTable& products,
                                         const Vocabularies& vocab, const LoadOptions& options = {}) {
    check_options(options);
    LoadedRequests out;
    out.candidate_order = options.candidate_order;
    if (out.candidate_order == CandidateOrder::automatic) {
        const ReadStats first = detail::for_each_parsed(path, options, nullptr, [](const RawRequest&, std::size_t) {});
        out.candidate_order = resolve_candidate_order(CandidateOrder::automatic, first.order);
    }
    out.stats = detail::for_each_parsed(path, options, &out.dense_dim, [&](const RawRequest& raw, std::size_t) {
        out.requests.push_back(map_request(raw, products, vocab, options));
        apply_candidate_order(out.requests.back(), out.candidate_order, options.order_seed);
    });
    return out;
}

}  // namespace piano::data
