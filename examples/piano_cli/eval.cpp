// piano eval: a trained model's metrics on a data directory's test split, beside the
// first-stage order and (for simulated data) the oracle.
#include <cmath>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <piano/metrics/report.hpp>

#include "commands.hpp"
#include "common.hpp"

namespace piano_cli {

CommandSpec eval_spec() {
    return {"eval",
            "evaluate a trained model on the test split of a data directory",
            "prints the metric table (docs/metrics.md) with rows first-stage, the model and, when the\n"
            "directory holds truth.txt (simulated data), the oracle. For simulated data it prints first\n"
            "the online table: what the simulated users would do shown the model's new orders. The\n"
            "test split is test.txt, or for a single requests.txt the same split train drew. It warns\n"
            "in one line on stderr when over 30% of the test candidates are items the model never saw,\n"
            "and when the model's orders are worth less than the first-stage order (online clicks for\n"
            "simulated data, else ndcg@10).\n",
            {{"data", "DIR", "", "data directory", true},
             {"model", "DIR", "", "a trained model's folder (what piano train --out wrote)", true},
             {"csv", "FILE", "", "also write the table as CSV to FILE"},
             {"lambda", "X", "", "serve at this λ of s_i = (1-λ) log pCTR + λ log pCTCVR (default: the model's)"},
             {"threads", "N", "1", "OpenMP threads"}}};
}

namespace {

/// One line on stderr when many test candidates are items the model never saw in training
/// (row 0): their scores then rest on metadata and context alone.
void warn_unknown_items(const std::vector<piano::data::Request>& test) {
    constexpr double kWarnAbove = 0.3;
    std::size_t unknown = 0, total = 0;
    for (const auto& r : test)
        for (const auto& c : r.candidates) {
            ++total;
            if (c.fields.item == piano::data::kUnknownRow) ++unknown;
        }
    const double share = total == 0 ? 0.0 : static_cast<double>(unknown) / static_cast<double>(total);
    if (share > kWarnAbove)
        std::cerr << "piano: warning: " << unknown << " of " << total << " test candidates (" << std::lround(100 * share)
                  << "%) are items the model never saw in training\n";
}

/// One line on stderr when the model's new orders are worth less than the order it was
/// given: online (expected clicks) when the data came from the simulator, else ndcg@10
/// against the logged first-stage order (a random order is no ranker to lose to).
void warn_if_behind_first_stage(const std::string& name,
                                const std::pair<std::string, piano::metrics::MetricTable>& first_stage,
                                const piano::metrics::MetricTable& model, std::optional<double> online_click_lift) {
    if (online_click_lift) {
        if (*online_click_lift < 0)
            std::cerr << "piano: warning: " << name << "'s orders would get " << std::fabs(100 * *online_click_lift)
                      << "% fewer expected clicks than the first-stage order\n";
        return;
    }
    if (first_stage.first == "first-stage" && model.ndcg_10 < first_stage.second.ndcg_10)
        std::cerr << "piano: warning: " << name << " is behind the first-stage order on ndcg@10 (" << model.ndcg_10
                  << " < " << first_stage.second.ndcg_10 << ")\n";
}

}  // namespace

int run_eval(const Args& args) {
    set_threads(args.integer("threads", 1, 1024));
    TrainedModel trained = load_trained(args.str("model"));
    if (args.has("lambda")) trained.model->set_score_lambda(args.real("lambda", 0.0, 1.0));
    const std::vector<piano::data::Request> test = load_test_split(args.str("data"), trained);
    if (test.empty()) throw piano::DataError(args.str("data"), 0, "test", "the test split holds no request");

    std::vector<std::pair<std::string, piano::metrics::MetricTable>> rows;
    rows.push_back(first_stage_row(test));
    std::vector<std::vector<std::size_t>> orders;
    rows.emplace_back(trained.kind(), evaluate_model(*trained.model, test, &orders));
    if (auto table = evaluate_oracle(args.str("data"), test)) rows.emplace_back("oracle", *table);

    warn_unknown_items(test);
    std::optional<double> online_click_lift;
    if (const auto evaluator = online_evaluator(args.str("data"), test)) {
        const std::vector<piano::metrics::OnlineRow> online =
            piano::metrics::online_table(*evaluator, {{trained.kind(), orders}});
        for (const auto& row : online)
            if (row.name == trained.kind()) online_click_lift = row.lift[0].value;
        std::cout << "Online (" << piano::data::ClickModel::name(evaluator->click_model().kind)
                  << " click model, expected per request, 95% paired bootstrap intervals):\n\n"
                  << piano::metrics::online_markdown(online) << "\nOffline (logged labels):\n\n";
    }
    warn_if_behind_first_stage(trained.kind(), rows[0], rows[1].second, online_click_lift);
    std::cout << piano::metrics::markdown_table(rows);
    if (args.has("csv")) {
        std::ofstream csv(args.str("csv"));
        csv << piano::metrics::csv_header() << '\n';
        for (const auto& [name, table] : rows) csv << piano::metrics::csv_row(name, table) << '\n';
        if (!csv.flush()) throw std::runtime_error("cannot write " + args.str("csv"));
    }
    return kOk;
}

}  // namespace piano_cli
