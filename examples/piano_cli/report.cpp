// piano report: a compare run as Markdown with SVG plots: the metric table, the training
// curves of every model, and QDIR's attention over the history of a few requests whose
// query is ambiguous.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <piano/data/batch.hpp>
#include <piano/metrics/online.hpp>
#include <piano/model/explain.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "../common/svg.hpp"

namespace piano_cli {

namespace {

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw piano::DataError(path.string(), 0, "file", "cannot open");
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::vector<std::string> split(const std::string& line, char sep) {
    std::vector<std::string> parts(1);
    for (char c : line) {
        if (c == sep) parts.emplace_back();
        else if (c != '\r') parts.back() += c;
    }
    return parts;
}

/// `key = value` lines (settings.txt).
std::map<std::string, std::string> read_settings(const fs::path& path) {
    std::map<std::string, std::string> settings;
    std::istringstream in(read_text(path));
    for (std::string line; std::getline(in, line);) {
        const auto eq = line.find(" = ");
        if (eq != std::string::npos) settings[line.substr(0, eq)] = line.substr(eq + 3);
    }
    return settings;
}

/// A CSV file with a header and no quoted fields (compare.csv, online.csv, train_log.csv,
/// timing.csv): the header's names and the rows' fields, each row as long as the header.
struct Csv {
    std::vector<std::string> names;
    std::vector<std::vector<std::string>> rows;

    std::size_t column(const std::string& name) const {
        const auto it = std::find(names.begin(), names.end(), name);
        if (it == names.end()) throw std::runtime_error("report: no column '" + name + "'");
        return static_cast<std::size_t>(it - names.begin());
    }
    /// Row r's field in column `name` as a number; NaN when empty or not a number.
    double number(std::size_t r, const std::string& name) const {
        const std::string& field = rows[r][column(name)];
        char* end = nullptr;
        const double v = std::strtod(field.c_str(), &end);
        return field.empty() || *end ? std::nan("") : v;
    }
};

Csv read_csv(const fs::path& path) {
    std::istringstream in(read_text(path));
    std::string line;
    std::getline(in, line);
    Csv csv;
    csv.names = split(line, ',');
    long line_no = 1;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.empty()) continue;
        csv.rows.push_back(split(line, ','));
        if (csv.rows.back().size() != csv.names.size())
            throw piano::DataError(path.string(), line_no, "line",
                                   std::to_string(csv.rows.back().size()) + " fields, the header has " +
                                       std::to_string(csv.names.size()));
    }
    return csv;
}

/// A CSV file's columns as numbers (train_log.csv), an empty field read as NaN.
std::map<std::string, std::vector<double>> read_columns(const fs::path& path) {
    const Csv csv = read_csv(path);
    std::map<std::string, std::vector<double>> columns;
    for (std::size_t r = 0; r < csv.rows.size(); ++r)
        for (const std::string& name : csv.names) columns[name].push_back(csv.number(r, name));
    return columns;
}

/// Rows that are models (not the reference order or an oracle): the ones whose best value
/// per column is marked.
bool is_model_row(const std::string& name) {
    return name != "first-stage" && name != "random order" && name.rfind("oracle", 0) != 0;
}

/// `x` with `decimals` decimals, "-" for NaN.
std::string fixed(double x, int decimals) { return piano::detail::training::fixed(x, decimals, "-"); }

std::string signed_fixed(double x, int decimals) { return (x >= 0 ? "+" : "") + fixed(x, decimals); }

/// For each column of `columns`, the largest value among model rows (NaN when none).
std::vector<double> best_of_models(const Csv& csv, const std::vector<std::string>& columns) {
    std::vector<double> best(columns.size(), std::nan(""));
    for (std::size_t r = 0; r < csv.rows.size(); ++r) {
        if (!is_model_row(csv.rows[r][0])) continue;
        for (std::size_t c = 0; c < columns.size(); ++c) {
            const double v = csv.number(r, columns[c]);
            if (!std::isnan(v) && (std::isnan(best[c]) || v > best[c])) best[c] = v;
        }
    }
    return best;
}

/// compare.csv as Markdown: every metric with its change against the first row (the
/// first-stage order, or a random order), the best model's value per column in bold.
std::string offline_table(const Csv& csv) {
    const std::vector<std::string> metrics(csv.names.begin() + 1, csv.names.end());
    const std::vector<double> best = best_of_models(csv, metrics);
    std::string md = "| model |", rule = "|---|";
    for (const std::string& m : metrics) md += " " + m + " |", rule += "---:|";
    md += "\n" + rule + "\n";
    for (std::size_t r = 0; r < csv.rows.size(); ++r) {
        md += "| " + csv.rows[r][0] + " |";
        for (std::size_t c = 0; c < metrics.size(); ++c) {
            const double v = csv.number(r, metrics[c]), reference = csv.number(0, metrics[c]);
            std::string cell = fixed(v, 4);
            if (is_model_row(csv.rows[r][0]) && v == best[c]) cell = "**" + cell + "**";
            if (r > 0 && !std::isnan(v) && !std::isnan(reference)) cell += " (" + signed_fixed(v - reference, 4) + ")";
            md += " " + cell + " |";
        }
        md += "\n";
    }
    return md;
}

/// online.csv as Markdown: expected clicks and conversions per request with their lift over
/// the first stage and its 95% interval, P(>= 1 click / conversion), the gap closed; the
/// best model's value per column in bold.
std::string online_table(const Csv& csv) {
    enum class Kind { value, lift, share };  // a number; a signed % with its interval; a %
    struct Column {
        const char* header;
        const char* name;
        Kind kind;
        int decimals;
    };
    const Column columns[] = {{"clicks / request", "clicks", Kind::value, 3},
                              {"lift", "lift_clicks", Kind::lift, 2},
                              {"conversions / request", "conversions", Kind::value, 3},
                              {"lift", "lift_conversions", Kind::lift, 2},
                              {"P(>= 1 click)", "p_click", Kind::value, 4},
                              {"P(>= 1 conv)", "p_conversion", Kind::value, 4},
                              {"gap closed, clicks", "gap_closed_clicks", Kind::share, 1},
                              {"gap closed, conv", "gap_closed_conversions", Kind::share, 1}};
    std::vector<std::string> names;
    for (const Column& c : columns) names.push_back(c.name);
    const std::vector<double> best = best_of_models(csv, names);
    std::string md = "| order |", rule = "|---|";
    for (const Column& c : columns) md += std::string(" ") + c.header + " |", rule += "---:|";
    md += "\n" + rule + "\n";
    for (std::size_t r = 0; r < csv.rows.size(); ++r) {
        md += "| " + csv.rows[r][0] + " |";
        for (std::size_t c = 0; c < names.size(); ++c) {
            const Column& col = columns[c];
            const double v = csv.number(r, col.name);
            std::string cell = col.kind == Kind::value  ? fixed(v, col.decimals)
                               : col.kind == Kind::lift ? signed_fixed(100 * v, col.decimals) + "%"
                                                        : fixed(100 * v, col.decimals) + "%";
            if (is_model_row(csv.rows[r][0]) && v == best[c]) cell = "**" + cell + "**";
            if (col.kind == Kind::lift && r > 0)
                cell += " [" + signed_fixed(100 * csv.number(r, names[c] + "_low"), 1) + ", " +
                        signed_fixed(100 * csv.number(r, names[c] + "_high"), 1) + "]";
            md += " " + cell + " |";
        }
        md += "\n";
    }
    return md;
}

/// head_to_head.csv as Markdown, in the library's own table (metrics::online_difference_markdown):
/// PIANO's lift minus each other model's, with the 95% paired interval, per online measure.
std::string head_to_head_table(const Csv& csv) {
    std::vector<piano::metrics::OnlineDifference> rows(csv.rows.size());
    for (std::size_t r = 0; r < rows.size(); ++r) {
        rows[r].name = csv.rows[r][0];
        rows[r].against = csv.rows[r][1];
        for (int m = 0; m < 4; ++m) {
            const std::string name = std::string("lift_difference_") + piano::metrics::kOnlineMeasures[m].name;
            rows[r].lift_difference[m] = {csv.number(r, name), csv.number(r, name + "_low"),
                                          csv.number(r, name + "_high")};
        }
    }
    return piano::metrics::online_difference_markdown(rows);
}

/// One chart of `column` from every model's train_log.csv, against the epoch, with
/// horizontal `references`. A model whose log has no value in the column is left out.
std::string curve_chart(const std::vector<std::string>& models, const fs::path& compare_dir, const std::string& column,
                        const std::string& title, std::vector<svg::Reference> references) {
    svg::LineChart chart;
    chart.title = title;
    chart.references = std::move(references);
    chart.x_label = "epoch";
    chart.y_label = column;
    for (const std::string& model : models) {
        const fs::path log = compare_dir / model / "train_log.csv";
        if (!fs::exists(log)) continue;
        auto columns = read_columns(log);
        const std::vector<double>& y = columns[column];
        if (std::any_of(y.begin(), y.end(), [](double v) { return !std::isnan(v); }))
            chart.series.push_back({model, columns["epoch"], y});
    }
    return svg::render(chart);
}

/// Whether any model's train_log.csv has a value in `column` (a loss term it trains).
bool any_value(const std::vector<std::string>& models, const fs::path& compare_dir, const std::string& column) {
    for (const std::string& model : models) {
        const fs::path log = compare_dir / model / "train_log.csv";
        if (!fs::exists(log)) continue;
        const auto columns = read_columns(log);
        const auto it = columns.find(column);
        if (it != columns.end() && std::any_of(it->second.begin(), it->second.end(), [](double v) { return !std::isnan(v); }))
            return true;
    }
    return false;
}

std::string terms_text(const std::vector<piano::data::Row>& rows, const piano::data::Vocabulary& terms) {
    std::string text;
    for (piano::data::Row r : rows) {
        const std::string_view id = terms.id_of(r);
        text += (text.empty() ? "" : " ") + (id.empty() ? std::string("?") : std::string(id));
    }
    return text;
}

/// Test requests worth explaining: the query holds an ambiguous term (any known term when
/// the data has no ambiguous_terms.txt) that the user searched before, so the history says
/// which meaning they intend. Preferred: most such past searches, then a history short
/// enough to read.
std::vector<std::size_t> pick_requests(const std::vector<piano::data::Request>& test,
                                       const std::set<piano::data::Row>& eligible, std::size_t count) {
    std::vector<std::pair<long, std::size_t>> ranked;  // (-matches, index)
    for (std::size_t k = 0; k < test.size(); ++k) {
        const auto& r = test[k];
        if (r.history.size() < 3 || r.history.size() > 16) continue;
        long matches = 0;
        for (const auto& e : r.history) matches += piano::shares_term(r.query, e.query, eligible);
        if (matches > 0) ranked.emplace_back(-matches, k);
    }
    std::sort(ranked.begin(), ranked.end());
    std::vector<std::size_t> picked;
    for (std::size_t i = 0; i < ranked.size() && picked.size() < count; ++i) picked.push_back(ranked[i].second);
    return picked;
}

/// QDIR's weights for request `r`, one row per head and their mean, and the share of the
/// attention (mean over heads) that went to past searches sharing an eligible term with
/// the query.
struct AttentionMap {
    svg::Heatmap map;
    double share = 0.0;
};

AttentionMap attention_map(Model& model, const piano::data::Request& r, const piano::data::Vocabularies& vocab,
                           const std::set<piano::data::Row>& eligible) {
    model.eval();
    piano::NoGradGuard no_grad;
    const piano::ModelOutputs<float> out = model.forward(piano::data::make_batch({&r}), true);
    const piano::AttentionWeights<float>& w = out.qdir_weights;

    static const char* const kBehavior[] = {"click", "fav", "play", "follow"};
    AttentionMap result;
    svg::Heatmap& map = result.map;
    const auto& terms = vocab[piano::data::Table::term];
    map.title = "QDIR attention, " + fs::path(r.source.file).filename().string() + " line " +
                std::to_string(r.source.line) + ": query '" + terms_text(r.query, terms) + "'";
    map.subtitle = "weights in % over the null slot and the past events (oldest first); red: the same term";
    map.col_labels.push_back("(null slot)");
    map.highlight_cols.push_back(false);
    for (const auto& e : r.history) {
        map.col_labels.push_back((e.has_query ? terms_text(e.query, terms) : "(no query)") + " " +
                                 kBehavior[static_cast<int>(e.type)]);
        map.highlight_cols.push_back(piano::shares_term(r.query, e.query, eligible));
    }
    const piano::Matrix<float> mean = w.mean_over_heads(0);
    for (piano::Index h = 0; h <= w.heads; ++h) {
        const piano::Matrix<float> row = h < w.heads ? w.head(0, h) : mean;
        map.row_labels.push_back(h < w.heads ? "head " + std::to_string(h + 1) : "mean");
        map.values.emplace_back();
        for (piano::Index j = 0; j < row.cols(); ++j) map.values.back().push_back(row(0, j));
    }
    for (piano::Index j = 1; j < mean.cols(); ++j)
        if (map.highlight_cols[static_cast<std::size_t>(j)]) result.share += mean(0, j);
    return result;
}

}  // namespace

CommandSpec report_spec() {
    return {"report",
            "write a Markdown report with SVG plots from a compare run",
            "outputs (in --out):\n"
            "  report.md           the online table (simulated data) and the offline table, each with the best\n"
            "                      model's values in bold and the change against the first stage; settings,\n"
            "                      timings, the plots below\n"
            "  valid_ndcg10.svg    validation ndcg@10 per epoch, one line per model, the first stage dashed\n"
            "  train_loss.svg, loss_<term>.svg   the training loss and each loss term per epoch\n"
            "  attention_K.svg     PIANO's QDIR weights over the history of test request K\n",
            {{"compare", "DIR", "", "the --out directory of piano compare", true},
             {"out", "DIR", "", "directory for report.md and the SVG files", true},
             {"data", "DIR", "", "the data directory (default: the one compare used)"},
             {"attention", "N", "3", "requests to draw QDIR's attention for"},
             {"timings", "FILE", "", "extra `stage seconds` lines to list under Timing (the demo's)"}}};
}

int run_report(const Args& args) {
    const fs::path compare_dir = args.str("compare"), out = args.str("out");
    const auto settings = read_settings(compare_dir / "settings.txt");
    const std::string data_dir = args.has("data") ? args.str("data") : settings.count("data") ? settings.at("data") : "";
    fs::create_directories(out);

    std::vector<std::string> models;
    for (const std::string& m : split(settings.count("models") ? settings.at("models") : "", ','))
        if (fs::exists(compare_dir / m / "train_log.csv")) models.push_back(m);

    std::string models_line;
    for (const std::string& m : models) models_line += (models_line.empty() ? "" : ", ") + m;
    std::string md = "# piano compare: " + (data_dir.empty() ? compare_dir.string() : data_dir) + "\n\n";
    md += "Models " + models_line + ", each trained by `piano compare` on the same data with the same config, seed "
          "and options (below), and evaluated on the test split. Metric definitions: docs/metrics.md. In each "
          "table the best model's value per column is in **bold**.\n\n";
    if (fs::exists(compare_dir / "online.csv"))
        md += "## Online: what the simulated users would do (test split)\n\nExpected per request under the "
              "simulator's true user model; lifts over the first-stage order with their 95% paired bootstrap "
              "intervals.\n\n" +
              online_table(read_csv(compare_dir / "online.csv")) + "\n";
    if (fs::exists(compare_dir / "head_to_head.csv"))
        md += "### PIANO head to head\n\nPIANO's lift minus each model's, in points of the first stage's value, "
              "with 95% paired bootstrap intervals (the same resampled requests for both orders): an interval "
              "that holds 0 is a difference this test set cannot tell from chance.\n\n" +
              head_to_head_table(read_csv(compare_dir / "head_to_head.csv")) + "\n";
    const Csv offline = read_csv(compare_dir / "compare.csv");
    md += "## Offline: the logged labels (test split)\n\nIn brackets, the change against the " +
          (offline.rows.empty() ? std::string("first") : offline.rows.front()[0]) +
          " row. Logged labels favour the logged order, whose top was examined most.\n\n" + offline_table(offline) +
          "\n";

    md += "## Settings\n\n";
    for (const auto& [key, value] : settings) md += "- " + key + ": " + value + "\n";

    md += "\n## Timing\n\n| stage | seconds |\n|---|---:|\n";
    if (args.has("timings")) {
        std::istringstream in(read_text(args.str("timings")));
        for (std::string stage, seconds; in >> stage >> seconds;) md += "| " + stage + " | " + seconds + " |\n";
    }
    if (fs::exists(compare_dir / "timing.csv")) {
        std::istringstream in(read_text(compare_dir / "timing.csv"));
        std::string line;
        std::getline(in, line);
        while (std::getline(in, line)) {
            const auto f = split(line, ',');
            if (f.size() == 4)
                md += "| train " + f[0] + " (" + f[2] + " epochs, best " + f[3] + ") | " + fixed(std::stod(f[1]), 1) +
                      " |\n";
        }
    }

    // The validation ndcg@10 of the order the models are given, which compare records.
    std::vector<svg::Reference> references;
    for (const auto& [key, value] : settings)
        if (key.rfind(kValidReferencePrefix, 0) == 0)
            references.push_back({key.substr(std::string(kValidReferencePrefix).size()), std::stod(value)});
    svg::write_file((out / "valid_ndcg10.svg").string(),
                    curve_chart(models, compare_dir, "ndcg@10", "Validation ndcg@10 after each epoch", references));
    md += "\n## Training curves\n\n![validation ndcg@10](valid_ndcg10.svg)\n\nOne panel per loss term: the "
          "total differs between models (the DNN has no CVR or list term), and each term has its own scale.\n\n";
    const std::pair<const char*, const char*> losses[] = {
        {"train_loss", "Training loss: the weighted total"},  {"loss_ctr", "Loss term ctr (click BCE)"},
        {"loss_ctcvr", "Loss term ctcvr (click and conversion BCE)"}, {"loss_list", "Loss term list (list heads)"},
        {"loss_listwise", "Loss term listwise (softmax over the list)"}};
    for (const auto& [column, title] : losses) {
        if (!any_value(models, compare_dir, column)) continue;
        svg::write_file((out / (std::string(column) + ".svg")).string(),
                        curve_chart(models, compare_dir, column, title, {}));
        md += std::string("![") + title + "](" + column + ".svg)\n\n";
    }

    const fs::path piano_dir = compare_dir / "piano";
    const long wanted = args.integer("attention", 0, 100);
    if (wanted > 0 && fs::exists(piano_dir / piano::ModelDirFiles::manifest) && !data_dir.empty()) {
        TrainedModel trained = load_trained(piano_dir.string());
        const std::vector<piano::data::Request> test = load_test_split(data_dir, trained);
        const auto& terms = trained.data.vocab[piano::data::Table::term];
        std::set<piano::data::Row> eligible;
        const fs::path ambiguous = fs::path(data_dir) / "ambiguous_terms.txt";
        if (fs::exists(ambiguous)) {
            std::istringstream in(read_text(ambiguous));
            for (std::string id; in >> id;) eligible.insert(terms.row(id));
        } else {
            for (std::size_t r = 1; r < terms.rows(); ++r) eligible.insert(static_cast<piano::data::Row>(r));
        }
        md += "\n## QDIR attention\n\nFor test requests whose query holds an ambiguous term the user searched "
              "with before, the weights PIANO's Query-Driven Interest Refiner puts on the null slot and on each "
              "past event (columns, oldest first; red: past searches with the same term). Those past searches "
              "are the only evidence of which meaning the user intends.\n\n";
        const piano::QdirFocus focus = piano::qdir_focus(*trained.model, test, eligible);
        md += "Over all " + std::to_string(focus.requests) + " such test requests, QDIR puts " +
              std::to_string(std::lround(100 * focus.attention)) +
              "% of its attention (mean over heads) on the past searches with the same term; uniform weights "
              "over the null slot and the past events would put " +
              std::to_string(std::lround(100 * focus.uniform)) + "% there.\n\n";
        // One colour scale for every figure, so that their shades compare.
        const std::vector<std::size_t> picked = pick_requests(test, eligible, static_cast<std::size_t>(wanted));
        std::vector<AttentionMap> maps;
        double scale_max = 0.0;
        for (std::size_t k : picked) {
            maps.push_back(attention_map(*trained.model, test[k], trained.data.vocab, eligible));
            for (const auto& row : maps.back().map.values)
                for (double v : row) scale_max = std::max(scale_max, v);
        }
        for (std::size_t i = 0; i < picked.size(); ++i) {
            const std::size_t k = picked[i];
            const std::string name = "attention_" + std::to_string(k) + ".svg";
            maps[i].map.scale_max = scale_max;
            svg::write_file((out / name).string(), svg::render(maps[i].map));
            const double share = maps[i].share;
            long matching = 0;
            for (const auto& e : test[k].history) matching += piano::shares_term(test[k].query, e.query, eligible);
            // Uniform weights over the null slot and the H events: what "no preference" looks like.
            const double uniform = static_cast<double>(matching) / static_cast<double>(test[k].history.size() + 1);
            md += "Test request " + std::to_string(k) + " (line " + std::to_string(test[k].source.line) +
                  " of test.txt): " + std::to_string(std::lround(100 * share)) +
                  "% of the attention (mean over heads) on the " + std::to_string(matching) + " of " +
                  std::to_string(test[k].history.size()) + " past events that searched the same term (uniform "
                  "weights would give " + std::to_string(std::lround(100 * uniform)) + "%).\n\n![" + name + "](" +
                  name + ")\n\n";
        }
    }

    std::ofstream file(out / "report.md", std::ios::binary | std::ios::trunc);
    file << md;
    if (!file.flush()) throw std::runtime_error("cannot write " + (out / "report.md").string());
    std::cout << "wrote " << (out / "report.md").string() << " and " << models.size() << " models' curves\n";
    return kOk;
}

}  // namespace piano_cli
