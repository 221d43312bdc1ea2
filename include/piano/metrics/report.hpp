// piano/metrics/report.hpp: metric tables as CSV rows and as a Markdown table.
//
// One list of columns drives both formats, so their order cannot drift apart:
//   model,auc_ctr,auc_ctcvr,auc_cvr,gauc_ctr,ndcg@5,ndcg@10,map@10,clicks@10,conv@10,list_auc_ctr,list_auc_cvr
// CSV: 6 decimals, an undefined metric is an empty field (read back as NaN by pandas,
// R and spreadsheets). Markdown: 4 decimals, an undefined metric is "-".
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <locale>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "piano/metrics/evaluate.hpp"

namespace piano::metrics {

/// A column of the reports: its header name and the MetricTable field it shows.
struct MetricColumn {
    const char* name;
    double MetricTable::*field;
};

/// The metric columns, in report order.
inline const std::array<MetricColumn, 11>& metric_columns() {
    static const std::array<MetricColumn, 11> columns{{
        {"auc_ctr", &MetricTable::auc_ctr},
        {"auc_ctcvr", &MetricTable::auc_ctcvr},
        {"auc_cvr", &MetricTable::auc_cvr},
        {"gauc_ctr", &MetricTable::gauc_ctr},
        {"ndcg@5", &MetricTable::ndcg_5},
        {"ndcg@10", &MetricTable::ndcg_10},
        {"map@10", &MetricTable::map_10},
        {"clicks@10", &MetricTable::clicks_10},
        {"conv@10", &MetricTable::conv_10},
        {"list_auc_ctr", &MetricTable::list_auc_ctr},
        {"list_auc_cvr", &MetricTable::list_auc_cvr},
    }};
    return columns;
}

namespace detail {

// Fixed-point with the classic locale, so a German or French global locale cannot turn
// the decimal point into a comma inside a CSV field.
inline std::string fixed(double value, int decimals) {
    std::ostringstream out;
    out.imbue(std::locale::classic());
    out.setf(std::ios::fixed);
    out.precision(decimals);
    out << value;
    return out.str();
}

// RFC 4180: a field holding a comma, a quote or a line break is quoted, quotes doubled.
inline std::string csv_field(const std::string& text) {
    if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
    std::string quoted = "\"";
    for (char c : text) {
        if (c == '"') quoted += '"';
        quoted += c;
    }
    return quoted + "\"";
}

// A '|' inside a Markdown cell would end the cell.
inline std::string markdown_cell(const std::string& text) {
    std::string escaped;
    for (char c : text) {
        if (c == '|') escaped += '\\';
        escaped += c;
    }
    return escaped;
}

}  // namespace detail

/// "model,auc_ctr,...,list_auc_cvr" (no line break).
inline std::string csv_header() {
    std::string header = "model";
    for (const MetricColumn& c : metric_columns()) header += std::string(",") + c.name;
    return header;
}

/// One CSV line (no line break): the model name (quoted if it needs to be), then each
/// metric with 6 decimals, or an empty field when it is NaN.
inline std::string csv_row(const std::string& model, const MetricTable& table) {
    std::string row = detail::csv_field(model);
    for (const MetricColumn& c : metric_columns()) {
        const double v = table.*c.field;
        row += ',';
        if (!std::isnan(v)) row += detail::fixed(v, 6);
    }
    return row;
}

/// A Markdown table with one row per model (4 decimals, "-" when undefined), followed by
/// one line per model saying how many requests the ranking metrics and GAUC left out.
inline std::string markdown_table(const std::vector<std::pair<std::string, MetricTable>>& models) {
    std::string out = "| model |";
    std::string rule = "|---|";
    for (const MetricColumn& c : metric_columns()) {
        out += std::string(" ") + c.name + " |";
        rule += "---:|";
    }
    out += "\n" + rule + "\n";
    for (const auto& [name, table] : models) {
        out += "| " + detail::markdown_cell(name) + " |";
        for (const MetricColumn& c : metric_columns()) {
            const double v = table.*c.field;
            out += " " + (std::isnan(v) ? std::string("-") : detail::fixed(v, 4)) + " |";
        }
        out += "\n";
    }
    if (!models.empty()) out += "\n";
    for (const auto& [name, table] : models) {
        out += "- " + name + ": " + std::to_string(table.requests) + " requests; " +
               std::to_string(table.requests_without_click) + " without a click (excluded from ndcg@k, map@k); " +
               std::to_string(table.gauc_requests_skipped) + " with one click class only (skipped by gauc_ctr)\n";
    }
    return out;
}

}  // namespace piano::metrics
