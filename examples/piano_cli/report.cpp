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

/// A CSV file with a header and no quoted fields (train_log.csv, timing.csv): column name
/// -> values, an empty field read as NaN.
std::map<std::string, std::vector<double>> read_columns(const fs::path& path) {
    std::istringstream in(read_text(path));
    std::string line;
    std::getline(in, line);
    const std::vector<std::string> names = split(line, ',');
    std::map<std::string, std::vector<double>> columns;
    long line_no = 1;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.empty()) continue;
        const std::vector<std::string> fields = split(line, ',');
        if (fields.size() != names.size())
            throw piano::DataError(path.string(), line_no, "line",
                                   std::to_string(fields.size()) + " fields, the header has " +
                                       std::to_string(names.size()));
        for (std::size_t k = 0; k < names.size(); ++k) {
            char* end = nullptr;
            const double v = std::strtod(fields[k].c_str(), &end);
            columns[names[k]].push_back(fields[k].empty() || *end ? std::nan("") : v);
        }
    }
    return columns;
}

/// One chart of `column` from every model's train_log.csv, against the epoch.
std::string curve_chart(const std::vector<std::string>& models, const fs::path& compare_dir, const std::string& column,
                        const std::string& title) {
    svg::LineChart chart;
    chart.title = title;
    chart.x_label = "epoch";
    chart.y_label = column;
    for (const std::string& model : models) {
        const fs::path log = compare_dir / model / "train_log.csv";
        if (!fs::exists(log)) continue;
        auto columns = read_columns(log);
        chart.series.push_back({model, columns["epoch"], columns[column]});
    }
    return svg::render(chart);
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

/// Draws QDIR's weights for request `r` into `path`; returns the share of the attention
/// (mean over heads) that went to past searches sharing an eligible term with the query.
double attention_plot(Model& model, const piano::data::Request& r, const piano::data::Vocabularies& vocab,
                      const std::set<piano::data::Row>& eligible, const fs::path& path) {
    model.eval();
    piano::NoGradGuard no_grad;
    const piano::ModelOutputs<float> out = model.forward(piano::data::make_batch({&r}), true);
    const piano::AttentionWeights<float>& w = out.qdir_weights;

    static const char* const kBehavior[] = {"click", "fav", "play", "follow"};
    svg::Heatmap map;
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
    double matched = 0.0;
    const piano::Matrix<float> mean = w.mean_over_heads(0);
    for (piano::Index h = 0; h <= w.heads; ++h) {
        const piano::Matrix<float> row = h < w.heads ? w.head(0, h) : mean;
        map.row_labels.push_back(h < w.heads ? "head " + std::to_string(h + 1) : "mean");
        map.values.emplace_back();
        for (piano::Index j = 0; j < row.cols(); ++j) map.values.back().push_back(row(0, j));
    }
    for (piano::Index j = 1; j < mean.cols(); ++j)
        if (map.highlight_cols[static_cast<std::size_t>(j)]) matched += mean(0, j);
    svg::write_file(path.string(), svg::render(map));
    return matched;
}

}  // namespace

CommandSpec report_spec() {
    return {"report",
            "write a Markdown report with SVG plots from a compare run",
            "outputs (in --out):\n"
            "  report.md           settings, timings, the metric table, the plots below\n"
            "  train_loss.svg      training loss per epoch, one line per model\n"
            "  valid_ndcg10.svg    validation ndcg@10 per epoch, one line per model\n"
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

    std::string md = "# PIANO demo report\n\n";
    md += "Every model was trained by `piano compare` on the same simulated music-search data, with the same "
          "config, seed and options, and evaluated on the test split. Metric definitions: docs/metrics.md.\n\n";
    md += "## Results (test split)\n\n" + read_text(compare_dir / "compare.md") + "\n";

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
                md += "| train " + f[0] + " (" + f[2] + " epochs, best " + f[3] + ") | " +
                      std::to_string(static_cast<long>(std::lround(std::stod(f[1])))) + " |\n";
        }
    }

    svg::write_file((out / "train_loss.svg").string(),
                    curve_chart(models, compare_dir, "train_loss", "Training loss (mean over the epoch's batches)"));
    svg::write_file((out / "valid_ndcg10.svg").string(),
                    curve_chart(models, compare_dir, "ndcg@10", "Validation ndcg@10 after each epoch"));
    md += "\n## Training curves\n\nThe losses differ between models (the DNN has no CVR or list term), so compare "
          "each line's shape rather than its level.\n\n![training loss](train_loss.svg)\n\n"
          "![validation ndcg@10](valid_ndcg10.svg)\n";

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
        for (std::size_t k : pick_requests(test, eligible, static_cast<std::size_t>(wanted))) {
            const std::string name = "attention_" + std::to_string(k) + ".svg";
            const double share = attention_plot(*trained.model, test[k], trained.data.vocab, eligible, out / name);
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
