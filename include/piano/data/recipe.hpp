// piano/data/recipe.hpp: how a dataset was read, so that a trained model's later readers
// (eval, rerank) read new files the same way.
//
// Saved beside the model as `data.txt`, one `key = value` per line:
//   format = jdsearch | letor
//   candidate_order = as_logged | shuffle      (as applied to the training data, never auto)
//   order_seed = N
//   conv_threshold = X                         (a label >= X is a conversion)
//   max_label = X                              (a larger label is malformed)
// A file without the last two (written before they were recorded) gets the format's
// defaults (data_label_defaults).
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

#include "piano/core/error.hpp"
#include "piano/data/candidate_order.hpp"

namespace piano::data {

enum class DataFormat : std::uint8_t { jdsearch, letor };

inline const char* to_string(DataFormat format) { return format == DataFormat::letor ? "letor" : "jdsearch"; }

/// "jdsearch" or "letor" (ConfigError otherwise).
inline DataFormat data_format_from_string(const std::string& name) {
    if (name == "jdsearch") return DataFormat::jdsearch;
    if (name == "letor") return DataFormat::letor;
    throw ConfigError("data format '" + name + "' is unknown (expected jdsearch or letor)");
}

/// The label scale of a format: conversions from `conv_threshold` on, labels up to
/// `max_label`. JDsearch's are 0..3 with 3 a purchase; LETOR's relevance grades go up to 4
/// (MSLR's scale) and count as conversions from 2 on.
struct LabelScale {
    double conv_threshold;
    double max_label;
};
inline LabelScale data_label_defaults(DataFormat format) {
    return format == DataFormat::letor ? LabelScale{2.0, 4.0} : LabelScale{3.0, 3.0};
}

struct DataRecipe {
    DataFormat format = DataFormat::jdsearch;
    CandidateOrder candidate_order = CandidateOrder::as_logged;
    std::uint64_t order_seed = 1;
    LabelScale labels = data_label_defaults(DataFormat::jdsearch);

    void save(const std::string& path) const {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.precision(17);
        out << "format = " << to_string(format) << "\ncandidate_order = " << to_string(candidate_order)
            << "\norder_seed = " << order_seed << "\nconv_threshold = " << labels.conv_threshold
            << "\nmax_label = " << labels.max_label << '\n';
        if (!out.flush()) throw DataError(path, 0, "file", "cannot write");
    }

    /// Reads a file written by save(); an unknown key or value is a DataError naming it.
    static DataRecipe load(const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw DataError(path, 0, "file", "cannot open");
        DataRecipe r;
        bool conv_threshold_read = false, max_label_read = false;
        std::string line;
        long line_no = 0;
        while (std::getline(in, line)) {
            ++line_no;
            if (line.empty()) continue;
            const std::size_t eq = line.find(" = ");
            if (eq == std::string::npos) throw DataError(path, line_no, "line", "expected 'key = value'");
            const std::string key = line.substr(0, eq), value = line.substr(eq + 3);
            try {
                if (key == "format") {
                    r.format = data_format_from_string(value);
                } else if (key == "candidate_order") {
                    r.candidate_order = candidate_order_from_string(value);
                    if (r.candidate_order == CandidateOrder::automatic)
                        throw ConfigError("'auto' is decided at training time, a saved order is never auto");
                } else if (key == "order_seed") {
                    r.order_seed = std::stoull(value);
                } else if (key == "conv_threshold") {
                    r.labels.conv_threshold = std::stod(value);
                    conv_threshold_read = true;
                } else if (key == "max_label") {
                    r.labels.max_label = std::stod(value);
                    max_label_read = true;
                } else {
                    throw ConfigError(
                        "unknown key (expected format, candidate_order, order_seed, conv_threshold or max_label)");
                }
            } catch (const std::exception& e) {
                throw DataError(path, line_no, key, e.what());
            }
        }
        const LabelScale defaults = data_label_defaults(r.format);
        if (!conv_threshold_read) r.labels.conv_threshold = defaults.conv_threshold;
        if (!max_label_read) r.labels.max_label = defaults.max_label;
        return r;
    }
};

}  // namespace piano::data
