// piano/data/letor.hpp: reading LETOR / SVMlight ranking files.
//
// The format of LETOR 4.0, MSLR and the ranking demos of XGBoost and LightGBM: one
// candidate per line, whitespace-separated,
//
//     <label> qid:<query> <index>:<value> <index>:<value> ... [# comment]
//
//   label   graded relevance, a number in [0, max_label] (MQ2008: 0, 1, 2; MSLR: 0..4)
//   qid     the query; the lines of one query are contiguous and form one list
//   features  1-based indices, strictly increasing, at most kMaxLetorFeatures; an absent
//             index is 0 (sparse lines)
//   comment   everything from `#` on is ignored (LETOR puts the document id there); a
//             line that is only a comment, or blank, is skipped
//
// Each query becomes a Request with no query terms, no history and no ids (every field
// is the unknown row), whose candidates carry the D features as `dense`, D = the largest
// index of the training file. click = label >= 1, conv = label >= conv_threshold, as for
// JDsearch. Files are streamed: memory holds one query's lines at a time.
//
// A malformed line throws DataError "FILE:LINE: field NAME: problem" with NAME one of
// label, qid, feature, line; with LoadOptions::skip_malformed it is skipped and counted.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "piano/core/error.hpp"
#include "piano/data/candidate_order.hpp"
#include "piano/data/jdsearch.hpp"
#include "piano/data/request.hpp"

namespace piano::data {

/// One query of a LETOR file, features still sparse.
struct LetorList {
    std::string qid;
    SourcePos source;  // the query's first line
    std::vector<float> labels;                                          // [L]
    std::vector<std::vector<std::pair<std::size_t, float>>> features;  // [L] (1-based index, value), increasing
};

namespace letor_detail {

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/// The whitespace-separated tokens of `line` before any `#`.
inline std::vector<std::string_view> tokens(std::string_view line) {
    line = line.substr(0, line.find('#'));
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && is_space(line[i])) ++i;
        const std::size_t begin = i;
        while (i < line.size() && !is_space(line[i])) ++i;
        if (i > begin) out.push_back(line.substr(begin, i - begin));
    }
    return out;
}

template <typename Number>
bool parse_whole(std::string_view text, Number& value) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace letor_detail

/// The largest feature index a line may use. Public sets use at most a few hundred (MQ2008
/// 46, MSLR 136, Yahoo 700); the cap keeps one bad index from sizing every candidate's
/// dense vector to gigabytes.
inline constexpr std::size_t kMaxLetorFeatures = 100000;

/// One line: a candidate of query `qid`.
struct LetorLine {
    float label = 0.0f;
    std::string qid;
    std::vector<std::pair<std::size_t, float>> features;  // (1-based index, value), increasing
};

/// Parses one line (without its newline). `where` names the line in errors.
inline LetorLine parse_letor_line(std::string_view line, const SourcePos& where, const LoadOptions& options = {}) {
    using detail::fail;
    using detail::quoted;
    const std::vector<std::string_view> t = letor_detail::tokens(line);
    if (t.size() < 2) fail(where, "line", "expected '<label> qid:<query> <index>:<value> ...', found " + quoted(line));

    LetorLine out;
    double label = 0.0;
    if (!letor_detail::parse_whole(t[0], label) || !std::isfinite(label))
        fail(where, "label", quoted(t[0]) + " is not a number");
    if (label < 0.0 || label > options.max_label)
        fail(where, "label", quoted(t[0]) + " is outside [0, max_label = " + detail::number(options.max_label) + "]");
    out.label = static_cast<float>(label);

    if (t[1].substr(0, 4) != "qid:" || t[1].size() == 4)
        fail(where, "qid", "expected 'qid:<query>' as the second token, found " + quoted(t[1]));
    out.qid = std::string(t[1].substr(4));

    out.features.reserve(t.size() - 2);
    for (std::size_t k = 2; k < t.size(); ++k) {
        const std::string_view pair = t[k];
        const std::size_t colon = pair.find(':');
        std::size_t index = 0;
        float value = 0.0f;
        if (colon == std::string_view::npos) fail(where, "feature", quoted(pair) + " is not '<index>:<value>'");
        if (!letor_detail::parse_whole(pair.substr(0, colon), index) || index == 0)
            fail(where, "feature", quoted(pair) + ": the index is not an integer >= 1");
        if (index > kMaxLetorFeatures)
            fail(where, "feature",
                 quoted(pair) + ": index above the limit of " + std::to_string(kMaxLetorFeatures) + " features");
        if (!letor_detail::parse_whole(pair.substr(colon + 1), value) || !std::isfinite(value))
            fail(where, "feature", quoted(pair) + ": the value is not a finite number");
        if (!out.features.empty() && index <= out.features.back().first)
            fail(where, "feature",
                 quoted(pair) + ": index " + std::to_string(index) + " after index " +
                     std::to_string(out.features.back().first) + " (indices must increase)");
        out.features.emplace_back(index, value);
    }
    return out;
}

/// Streams the lists of a LETOR file, calling fn(const LetorList&) once per query, in file
/// order. A query whose lines are not contiguous, or longer than max_candidates, is
/// malformed. With skip_malformed a bad line is dropped (and counted in `skipped`) and its
/// query keeps its other lines. `records` counts queries.
template <typename Fn>
ReadStats for_each_letor_list(const std::string& path, const LoadOptions& options, Fn&& fn) {
    ReadStats stats;
    LetorList list;
    std::unordered_map<std::string, long> first_line;  // qid -> its first line, to catch a query split in two
    auto flush = [&] {
        if (list.labels.empty()) return;
        stats.order.add(list.labels);
        fn(static_cast<const LetorList&>(list));
        ++stats.records;
        list = LetorList{};
    };
    detail::for_each_data_line(path, "", [&](std::string_view line, long line_no) {
        const std::size_t first = line.find_first_not_of(" \t");
        if (first == std::string_view::npos || line[first] == '#') return;  // a comment line
        const SourcePos where{path, line_no};
        try {
            LetorLine parsed = parse_letor_line(line, where, options);
            if (list.labels.empty() || parsed.qid != list.qid) {
                const auto seen = first_line.find(parsed.qid);
                if (seen != first_line.end())
                    detail::fail(where, "qid",
                                 "query " + detail::quoted(parsed.qid) + " began at line " +
                                     std::to_string(seen->second) +
                                     " and was interrupted; a query's lines must be contiguous");
                flush();
                first_line.emplace(parsed.qid, line_no);
                list.qid = std::move(parsed.qid);
                list.source = where;
            }
            if (list.labels.size() == options.max_candidates)
                detail::fail(where, "qid",
                             "query " + detail::quoted(list.qid) + " has more than max_candidates = " +
                                 std::to_string(options.max_candidates) + " lines");
            list.labels.push_back(parsed.label);
            list.features.push_back(std::move(parsed.features));
        } catch (const DataError& e) {
            if (!options.skip_malformed) throw;
            if (stats.skipped++ == 0) stats.first_error = e.what();
        }
    });
    flush();
    return stats;
}

namespace letor_detail {

/// The largest feature index of a list (its rows' indices increase, so each row's last).
inline std::size_t largest_index(const LetorList& list) {
    std::size_t width = 0;
    for (const auto& row : list.features)
        if (!row.empty()) width = std::max(width, row.back().first);
    return width;
}

}  // namespace letor_detail

/// The largest feature index of a LETOR file (0 when it has none): its dense width.
inline std::size_t letor_feature_count(const std::string& path, const LoadOptions& options = {}) {
    std::size_t width = 0;
    for_each_letor_list(path, options,
                        [&](const LetorList& list) { width = std::max(width, letor_detail::largest_index(list)); });
    return width;
}

/// One list as a Request: D dense features per candidate (absent indices 0), no ids.
/// An index above D is malformed (DataError naming the list's first line).
inline Request letor_request(const LetorList& list, std::size_t feature_count, const LoadOptions& options) {
    Request r;
    r.source = list.source;
    r.candidates.resize(list.labels.size());
    for (std::size_t i = 0; i < list.labels.size(); ++i) {
        Candidate& c = r.candidates[i];
        c.label = list.labels[i];
        c.click = c.label >= 1.0f ? 1 : 0;
        c.conv = static_cast<double>(c.label) >= options.conv_threshold ? 1 : 0;
        c.dense.assign(feature_count, 0.0f);
        for (const auto& [index, value] : list.features[i]) {
            if (index > feature_count)
                detail::fail(list.source, "feature",
                             "query " + detail::quoted(list.qid) + ": index " + std::to_string(index) +
                                 " beyond the " + std::to_string(feature_count) + " features of the training data");
            c.dense[index - 1] = value;
        }
    }
    return r;
}

/// A LETOR file's requests with `feature_count` features each, in the candidate order
/// `options` asks for (`auto` decides from this file, one more pass).
inline LoadedRequests load_letor_file(const std::string& path, std::size_t feature_count,
                                      const LoadOptions& options = {}) {
    check_options(options);
    LoadedRequests out;
    out.dense_dim = feature_count;
    out.candidate_order = options.candidate_order;
    if (out.candidate_order == CandidateOrder::automatic)
        out.candidate_order = resolve_candidate_order(
            CandidateOrder::automatic, for_each_letor_list(path, options, [](const LetorList&) {}).order);
    out.stats = for_each_letor_list(path, options, [&](const LetorList& list) {
        out.requests.push_back(letor_request(list, feature_count, options));
        apply_candidate_order(out.requests.back(), out.candidate_order, options.order_seed);
    });
    return out;
}

/// `options` with LETOR's labels (data_label_defaults): up to 4 (MSLR's scale), conversions
/// from 2 on, so that the metrics' grades (0 none, 1 click, 2 conversion) are the labels
/// 0, 1, 2 of LETOR 4.0 (a 3 or 4 counts as 2).
inline LoadOptions letor_labels(LoadOptions options) {
    const LabelScale scale = data_label_defaults(DataFormat::letor);
    options.conv_threshold = scale.conv_threshold;
    options.max_label = scale.max_label;
    return options;
}

/// The files of a LETOR data directory: train.txt, and valid.txt and test.txt when present.
inline JdsearchFiles letor_dir_files(const std::string& dir) {
    namespace fs = std::filesystem;
    auto in_dir = [&](const char* name) { return (fs::path(dir) / name).string(); };
    JdsearchFiles files;
    files.train = in_dir("train.txt");
    if (!fs::exists(files.train)) throw DataError(files.train, 0, "file", "missing from the data directory");
    if (fs::exists(in_dir("valid.txt"))) files.valid = in_dir("valid.txt");
    if (fs::exists(in_dir("test.txt"))) files.test = in_dir("test.txt");
    return files;
}

/// Loads train (and valid, test when named) of `files` (products and requests unused):
/// the dense width and, for `auto`, the candidate order come from the training file. The
/// vocabularies hold only their unknown rows: LETOR has no ids.
inline JdsearchDataset load_letor(const JdsearchFiles& files, const LoadOptions& options = {}) {
    check_options(options);
    if (files.train.empty()) throw ConfigError("load_letor: no training file");
    JdsearchDataset data;
    data.vocab = VocabularyBuilders{}.build(options.capacity);
    std::size_t width = 0;
    data.train_stats = for_each_letor_list(
        files.train, options, [&](const LetorList& list) { width = std::max(width, letor_detail::largest_index(list)); });
    data.dense_dim = width;
    data.recipe = {DataFormat::letor, resolve_candidate_order(options.candidate_order, data.train_stats.order),
                   options.order_seed, {options.conv_threshold, options.max_label}};
    LoadOptions resolved = options;
    resolved.candidate_order = data.recipe.candidate_order;
    const std::pair<const std::string*, std::vector<Request>*> splits[] = {
        {&files.train, &data.train}, {&files.valid, &data.valid}, {&files.test, &data.test}};
    for (const auto& [path, split] : splits) {
        if (path->empty()) continue;
        LoadedRequests loaded = load_letor_file(*path, width, resolved);
        *split = std::move(loaded.requests);
        detail::add_stats(data.requests_stats, loaded.stats);
    }
    return data;
}

}  // namespace piano::data
