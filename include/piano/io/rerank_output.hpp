// piano/io/rerank_output.hpp: a reranked request written for machines, in one of three
// formats, each line complete on its own so that a consumer can stream it.
//
//   tsv    a header, then one line per request, candidates in the new order, lists
//          comma-separated:  line  p_list_ctr  p_list_cvr  wids  indices  scores  p_ctr  p_cvr  p_ctcvr
//   long   a header, then one line per candidate, in the new order:
//          line  rank  index  wid  score  p_ctr  p_cvr  p_ctcvr  p_list_ctr  p_list_cvr
//   jsonl  one JSON object per request, no header:
//          {"line":7,"p_list_ctr":0.61,"p_list_cvr":0.2,"candidates":[
//            {"rank":1,"index":3,"wid":"812","score":-1.2,"p_ctr":0.41,"p_cvr":0.3,"p_ctcvr":0.123},...]}
//
// `line` is the request's line in its input file, `rank` 1 for the best candidate, `index`
// the candidate's position in the input list (0-based), `wid` its id as given. A value the
// model does not predict (a DNN has no CVR head, a model without IAN no list heads) is an
// empty field in tsv and long and null in jsonl (so is a non-finite number). Numbers carry 9
// significant digits.
#pragma once

#include <cmath>
#include <cstdio>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "piano/core/error.hpp"
#include "piano/model/reranker.hpp"

namespace piano {

enum class RerankFormat { tsv, jsonl, long_table };

/// "tsv", "jsonl" or "long" (ConfigError otherwise).
inline RerankFormat rerank_format_from_string(const std::string& name) {
    if (name == "tsv") return RerankFormat::tsv;
    if (name == "jsonl") return RerankFormat::jsonl;
    if (name == "long") return RerankFormat::long_table;
    throw ConfigError("rerank output format '" + name + "' is unknown (expected tsv, jsonl or long)");
}

namespace detail::rerank_output {

/// `x` with 9 significant digits, or `missing` for NaN (a quantity not predicted) and
/// the infinities (which JSON cannot write).
inline std::string number(double x, const char* missing) {
    if (!std::isfinite(x)) return missing;
    char text[32];
    std::snprintf(text, sizeof text, "%.9g", x);
    return text;
}

/// Element i of an optional per-candidate vector (empty: not predicted).
inline double at(const std::vector<double>& v, std::size_t i) {
    return v.empty() ? std::numeric_limits<double>::quiet_NaN() : v[i];
}

/// `s` as a JSON string literal.
inline std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
            out += escaped;
        } else {
            out += c;
        }
    }
    return out + '"';
}

}  // namespace detail::rerank_output

/// The header line of `format` (with its newline), empty for jsonl.
inline std::string rerank_header(RerankFormat format) {
    switch (format) {
        case RerankFormat::tsv: return "line\tp_list_ctr\tp_list_cvr\twids\tindices\tscores\tp_ctr\tp_cvr\tp_ctcvr\n";
        case RerankFormat::long_table:
            return "line\trank\tindex\twid\tscore\tp_ctr\tp_cvr\tp_ctcvr\tp_list_ctr\tp_list_cvr\n";
        case RerankFormat::jsonl: return "";
    }
    return "";
}

/// Writes one reranked request: `line` its input line, `wids` its candidates' ids in input
/// order (one per candidate of `result`; ShapeError otherwise).
inline void write_rerank(std::ostream& out, RerankFormat format, long line, const std::vector<std::string>& wids,
                         const RerankResult& result) {
    namespace ro = detail::rerank_output;
    if (wids.size() != result.order.size())
        throw ShapeError("write_rerank: " + std::to_string(wids.size()) + " wids for a result of " +
                         std::to_string(result.order.size()) + " candidates");
    const std::string line_text = std::to_string(line);
    if (format == RerankFormat::long_table) {
        const std::string list = ro::number(result.p_list_ctr, "") + '\t' + ro::number(result.p_list_cvr, "");
        for (std::size_t rank = 0; rank < result.order.size(); ++rank) {
            const std::size_t i = result.order[rank];
            out << line_text << '\t' << rank + 1 << '\t' << i << '\t' << wids[i] << '\t' << ro::number(result.score[i], "")
                << '\t' << ro::number(ro::at(result.p_ctr, i), "") << '\t' << ro::number(ro::at(result.p_cvr, i), "")
                << '\t' << ro::number(ro::at(result.p_ctcvr, i), "") << '\t' << list << '\n';
        }
        return;
    }
    if (format == RerankFormat::tsv) {
        std::string columns[6];  // wids, indices, scores, p_ctr, p_cvr, p_ctcvr
        for (std::size_t rank = 0; rank < result.order.size(); ++rank) {
            const std::size_t i = result.order[rank];
            const std::string values[6] = {wids[i],
                                           std::to_string(i),
                                           ro::number(result.score[i], ""),
                                           ro::number(ro::at(result.p_ctr, i), ""),
                                           ro::number(ro::at(result.p_cvr, i), ""),
                                           ro::number(ro::at(result.p_ctcvr, i), "")};
            for (int c = 0; c < 6; ++c) columns[c] += (rank == 0 ? "" : ",") + values[c];
        }
        // A model without a CVR head leaves its columns empty rather than a row of commas.
        if (result.p_cvr.empty()) columns[4].clear();
        if (result.p_ctcvr.empty()) columns[5].clear();
        out << line_text << '\t' << ro::number(result.p_list_ctr, "") << '\t' << ro::number(result.p_list_cvr, "");
        for (const std::string& c : columns) out << '\t' << c;
        out << '\n';
        return;
    }
    out << "{\"line\":" << line_text << ",\"p_list_ctr\":" << ro::number(result.p_list_ctr, "null")
        << ",\"p_list_cvr\":" << ro::number(result.p_list_cvr, "null") << ",\"candidates\":[";
    for (std::size_t rank = 0; rank < result.order.size(); ++rank) {
        const std::size_t i = result.order[rank];
        out << (rank == 0 ? "" : ",") << "{\"rank\":" << rank + 1 << ",\"index\":" << i
            << ",\"wid\":" << ro::json_string(wids[i]) << ",\"score\":" << ro::number(result.score[i], "null")
            << ",\"p_ctr\":" << ro::number(ro::at(result.p_ctr, i), "null")
            << ",\"p_cvr\":" << ro::number(ro::at(result.p_cvr, i), "null")
            << ",\"p_ctcvr\":" << ro::number(ro::at(result.p_ctcvr, i), "null") << '}';
    }
    out << "]}\n";
}

}  // namespace piano
