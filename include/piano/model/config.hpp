// piano/model/config.hpp: every width, count and switch of PIANO and its baselines.
//
// A config converts to and from an ordered string map, which is how checkpoints store it
// and how a config file (`key = value` lines, `#` comments) is read. Unknown keys and
// malformed values are ConfigErrors naming the key, so a typo never passes silently.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <istream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <utility>

#include "piano/core/error.hpp"
#include "piano/data/vocabulary.hpp"

namespace piano {

/// How the loss terms are combined: fixed weights, or learned uncertainty weighting
/// (Kendall et al. 2018: Σ_k exp(-s_k) L_k + s_k with one learned s_k per term).
enum class LossWeighting { fixed, uncertainty };

/// What the logged first-stage position may do (docs/architecture.md, "Positions").
/// In logged data the position decides how likely a candidate was examined at all; a
/// score that sees it learns that bias and, when reranking, copies the logged order. So
/// the position only explains examination during training, through a learned term e_pos
/// per position that the rerank score never sees:
///   pal    P(click) = σ(e_pos) · σ(a_i)   (PAL, Guo et al. 2019: examination times relevance)
///   logit  P(click) = σ(a_i + e_pos)       (a shallow position tower on the click logit,
///                                           Zhao et al. 2019)
///   none   the position is not used at all
enum class PositionModel { none, pal, logit };
inline constexpr const char* kPositionModelNames[3] = {"none", "pal", "logit"};

namespace detail::config_values {

// The value parsers of every `key = value` config (PianoConfig, TrainOptions): each names
// the key in its ConfigError.
inline long parse_long(const std::string& key, const std::string& value, long minimum) {
    std::size_t used = 0;
    long v = 0;
    try {
        v = std::stol(value, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != value.size()) {
        throw ConfigError("config key '" + key + "': expected an integer, got '" + value + "'");
    }
    if (v < minimum) {
        throw ConfigError("config key '" + key + "': " + value + " is below the minimum " + std::to_string(minimum));
    }
    return v;
}
// The whole range of unsigned long, which to_map writes (a seed of 2^64 - 1, say). Only
// digits: std::stoul alone would read "-1" as 2^64 - 1.
inline unsigned long parse_unsigned(const std::string& key, const std::string& value) {
    std::size_t used = 0;
    unsigned long v = 0;
    if (!value.empty() && value.find_first_not_of("0123456789") == std::string::npos) {
        try {
            v = std::stoul(value, &used);
        } catch (const std::exception&) {
            throw ConfigError("config key '" + key + "': " + value + " is above the maximum " +
                              std::to_string(std::numeric_limits<unsigned long>::max()));
        }
    }
    if (used == 0 || used != value.size()) {
        throw ConfigError("config key '" + key + "': expected an integer >= 0, got '" + value + "'");
    }
    return v;
}
// strtod, not std::stod: stod refuses a subnormal number (strtod's ERANGE on underflow),
// which to_map writes for a tiny value. An overflow becomes inf and fails the range check.
inline double parse_double(const std::string& key, const std::string& value, double lo, double hi) {
    const char* begin = value.c_str();
    char* end = nullptr;
    const double v = std::strtod(begin, &end);
    const auto used = static_cast<std::size_t>(end - begin);
    if (value.empty() || used != value.size()) {
        throw ConfigError("config key '" + key + "': expected a number, got '" + value + "'");
    }
    if (!(v >= lo && v <= hi)) {
        throw ConfigError("config key '" + key + "': " + value + " is outside [" + std::to_string(lo) + ", " +
                          std::to_string(hi) + "]");
    }
    return v;
}
inline bool parse_bool(const std::string& key, const std::string& value) {
    if (value == "1" || value == "true") return true;
    if (value == "0" || value == "false") return false;
    throw ConfigError("config key '" + key + "': expected true/false or 1/0, got '" + value + "'");
}

/// `key = value` lines (blank lines and `#` comments ignored) from `in` as a map; a line
/// without '=' is a ConfigError naming `path` (the stream's name) and the line.
inline std::map<std::string, std::string> read_key_values(std::istream& in, const std::string& path) {
    std::map<std::string, std::string> m;
    std::string line;
    long line_number = 0;
    auto trim = [](std::string s) {
        const auto b = s.find_first_not_of(" \t\r");
        const auto e = s.find_last_not_of(" \t\r");
        return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
    };
    while (std::getline(in, line)) {
        ++line_number;
        const std::string content = trim(line.substr(0, line.find('#')));
        if (content.empty()) continue;
        const auto eq = content.find('=');
        if (eq == std::string::npos) {
            throw ConfigError(path + ":" + std::to_string(line_number) + ": expected 'key = value', got '" + content + "'");
        }
        m[trim(content.substr(0, eq))] = trim(content.substr(eq + 1));
    }
    return m;
}

/// `v` as to_map writes it: 17 significant digits, so that reading it back is exact.
template <typename V>
std::string text(V v) {
    std::ostringstream s;
    s.precision(17);
    s << v;
    return s.str();
}

}  // namespace detail::config_values

struct PianoConfig {
    // Widths and depths.
    long d_model = 64;        // d: every token's width
    long heads = 4;           // attention heads in QDIR and in the list encoder
    long layers = 2;          // transformer layers over [IAN ; candidates]
    long ffn_dim = 256;       // the encoder's feed-forward width (4d)
    double dropout = 0.1;

    // Embedding table sizes (rows, including the reserved unknown row 0).
    long term_rows = 10000;
    long item_rows = 100000;
    long brand_rows = 10000;     // artist / brand
    long category_rows = 5000;   // genre levels (one table shared by the four levels)
    long shop_rows = 5000;       // label / publisher / shop
    long dense_features = 0;     // optional dense features per candidate
    long max_positions = 200;    // logged positions with their own examination term
    long gap_buckets = 16;       // log2 buckets of the time gap of history events

    // Switches for PIANO and its ablations.
    bool use_qdir = true;       // false: r = mean of history values ("piano-noqdir")
    bool use_ian = true;        // false: no IAN token and no list heads ("piano-noian")
    bool list_loss = true;      // list-level CTR/CVR supervision through the IAN
    bool detach_list_heads = true;  // ours: the list heads read h_0 as a constant, so the list
                                    // loss trains them alone, never the shared encoder
    bool listwise_loss = false; // softmax cross-entropy over each list on clicks
    PositionModel position_model = PositionModel::pal;  // training-only examination term
    bool candidate_attention = false;  // ours: each candidate also attends over the history items (DIN-style)
    bool history_match = false;        // ours: every model's candidates see data::history_match's counts
    // ours: every model's candidates see how much of the query their product's names hold
    // (Candidate::query_match); on by default for its online gain (docs/architecture.md)
    bool query_match = true;

    // Score and losses.
    double lambda = 0.5;        // s_i = (1-λ) log pCTR_i + λ log pCTCVR_i
    LossWeighting weighting = LossWeighting::fixed;
    // weight_list 0.1: at 0.5 the list term (two BCEs near their maximum, ~0.8) outweighed the
    // item terms and cost PIANO most of its online gain (docs/architecture.md, "Losses").
    double weight_ctr = 1.0, weight_ctcvr = 1.0, weight_list = 0.1, weight_listwise = 0.5;

    unsigned long seed = 1;     // initialisation and dropout

    /// tests: d=16, 2 heads, 1 layer, small tables.
    static PianoConfig tiny() {
        PianoConfig c;
        c.d_model = 16;
        c.heads = 2;
        c.layers = 1;
        c.ffn_dim = 64;
        c.dropout = 0.0;
        c.term_rows = 200;
        c.item_rows = 500;
        c.brand_rows = 100;
        c.category_rows = 100;
        c.shop_rows = 100;
        c.max_positions = 16;
        c.gap_buckets = 8;
        return c;
    }
    /// benchmarks and the examples' default: d=64, 4 heads, 2 layers, FFN 256, 100k items.
    static PianoConfig reference() { return PianoConfig{}; }

    std::map<std::string, std::string> to_map() const {
        std::map<std::string, std::string> m;
        auto put = [&m](const std::string& k, auto v) { m[k] = detail::config_values::text(v); };
        put("d_model", d_model);
        put("heads", heads);
        put("layers", layers);
        put("ffn_dim", ffn_dim);
        put("dropout", dropout);
        put("term_rows", term_rows);
        put("item_rows", item_rows);
        put("brand_rows", brand_rows);
        put("category_rows", category_rows);
        put("shop_rows", shop_rows);
        put("dense_features", dense_features);
        put("max_positions", max_positions);
        put("gap_buckets", gap_buckets);
        put("use_qdir", use_qdir);
        put("use_ian", use_ian);
        put("list_loss", list_loss);
        put("detach_list_heads", detach_list_heads);
        put("listwise_loss", listwise_loss);
        put("candidate_attention", candidate_attention);
        put("history_match", history_match);
        put("query_match", query_match);
        put("lambda", lambda);
        m["weighting"] = weighting == LossWeighting::fixed ? "fixed" : "uncertainty";
        m["position_model"] = kPositionModelNames[static_cast<int>(position_model)];
        put("weight_ctr", weight_ctr);
        put("weight_ctcvr", weight_ctcvr);
        put("weight_list", weight_list);
        put("weight_listwise", weight_listwise);
        put("seed", seed);
        return m;
    }

    /// from_map for the config a model was saved with (a checkpoint's map, a model
    /// folder). Such a map holds every key its writer knew; a key it lacks came later, and
    /// takes the value that rebuilds the saved model, not today's default: query_match
    /// (added on by default after models had been saved without it) is off for a map
    /// without it.
    static PianoConfig from_saved_map(const std::map<std::string, std::string>& m) {
        PianoConfig before_query_match;
        before_query_match.query_match = false;
        return from_map(m, before_query_match);
    }

    /// Starts from `base` and overrides every key present in `m`. Throws ConfigError for an
    /// unknown key or a value that does not parse or is out of range.
    static PianoConfig from_map(const std::map<std::string, std::string>& m) { return from_map(m, PianoConfig{}); }
    static PianoConfig from_map(const std::map<std::string, std::string>& m, const PianoConfig& base) {
        using detail::config_values::parse_bool, detail::config_values::parse_double,
            detail::config_values::parse_long, detail::config_values::parse_unsigned;
        PianoConfig c = base;
        for (const auto& [key, value] : m) {
            if (key == "d_model") c.d_model = parse_long(key, value, 1);
            else if (key == "heads") c.heads = parse_long(key, value, 1);
            else if (key == "layers") c.layers = parse_long(key, value, 0);
            else if (key == "ffn_dim") c.ffn_dim = parse_long(key, value, 1);
            else if (key == "dropout") c.dropout = parse_double(key, value, 0.0, 0.999);
            else if (key == "term_rows") c.term_rows = parse_long(key, value, 2);
            else if (key == "item_rows") c.item_rows = parse_long(key, value, 2);
            else if (key == "brand_rows") c.brand_rows = parse_long(key, value, 2);
            else if (key == "category_rows") c.category_rows = parse_long(key, value, 2);
            else if (key == "shop_rows") c.shop_rows = parse_long(key, value, 2);
            else if (key == "dense_features") c.dense_features = parse_long(key, value, 0);
            else if (key == "max_positions") c.max_positions = parse_long(key, value, 1);
            else if (key == "gap_buckets") c.gap_buckets = parse_long(key, value, 1);
            else if (key == "use_qdir") c.use_qdir = parse_bool(key, value);
            else if (key == "use_ian") c.use_ian = parse_bool(key, value);
            else if (key == "list_loss") c.list_loss = parse_bool(key, value);
            else if (key == "detach_list_heads") c.detach_list_heads = parse_bool(key, value);
            else if (key == "listwise_loss") c.listwise_loss = parse_bool(key, value);
            else if (key == "candidate_attention") c.candidate_attention = parse_bool(key, value);
            else if (key == "history_match") c.history_match = parse_bool(key, value);
            else if (key == "query_match") c.query_match = parse_bool(key, value);
            else if (key == "lambda") c.lambda = parse_double(key, value, 0.0, 1.0);
            else if (key == "weighting") {
                if (value == "fixed") c.weighting = LossWeighting::fixed;
                else if (value == "uncertainty") c.weighting = LossWeighting::uncertainty;
                else throw ConfigError("config key 'weighting': expected fixed or uncertainty, got '" + value + "'");
            }
            else if (key == "position_model") {
                bool known = false;
                for (int k = 0; k < 3; ++k) {
                    if (value == kPositionModelNames[k]) {
                        c.position_model = static_cast<PositionModel>(k);
                        known = true;
                    }
                }
                if (!known)
                    throw ConfigError("config key 'position_model': expected none, pal or logit, got '" + value + "'");
            }
            else if (key == "weight_ctr") c.weight_ctr = parse_double(key, value, 0.0, 1e6);
            else if (key == "weight_ctcvr") c.weight_ctcvr = parse_double(key, value, 0.0, 1e6);
            else if (key == "weight_list") c.weight_list = parse_double(key, value, 0.0, 1e6);
            else if (key == "weight_listwise") c.weight_listwise = parse_double(key, value, 0.0, 1e6);
            else if (key == "seed") c.seed = parse_unsigned(key, value);
            else throw ConfigError("unknown config key '" + key + "'");
        }
        if (c.d_model % c.heads != 0) {
            throw ConfigError("config: d_model " + std::to_string(c.d_model) + " is not divisible by heads " +
                              std::to_string(c.heads));
        }
        return c;
    }
};

/// Reads `key = value` lines (blank lines and `#` comments ignored) from `in` on top of
/// `base`. Errors are ConfigErrors naming `path` (the stream's name) and the line.
inline PianoConfig read_config(std::istream& in, const std::string& path, PianoConfig base = PianoConfig{}) {
    const std::map<std::string, std::string> m = detail::config_values::read_key_values(in, path);
    try {
        return PianoConfig::from_map(m, base);
    } catch (const ConfigError& e) {
        throw ConfigError(path + ": " + e.what());
    }
}

/// read_config on the file at `path`. Errors name the file and line.
inline PianoConfig read_config_file(const std::string& path, PianoConfig base = PianoConfig{}) {
    std::ifstream in(path);
    if (!in) throw ConfigError("cannot open config file " + path);
    return read_config(in, path, std::move(base));
}

/// `config` with each embedding table as large as its vocabulary needs (at least 2 rows,
/// the config's minimum, even for a field the data never fills) and the data's dense
/// width. The vocabularies were already capped by the config's *_rows when they were built
/// (data::LoadOptions::capacity), so this only shrinks tables to what the data uses.
inline PianoConfig sized_to_data(PianoConfig config, const data::Vocabularies& vocab, std::size_t dense_dim) {
    using data::Table;
    auto rows = [&](Table t) { return std::max<long>(2, static_cast<long>(vocab[t].rows())); };
    config.term_rows = rows(Table::term);
    config.item_rows = rows(Table::item);
    config.brand_rows = rows(Table::brand);
    config.category_rows = rows(Table::category);
    config.shop_rows = rows(Table::shop);
    config.dense_features = static_cast<long>(dense_dim);
    return config;
}

}  // namespace piano
