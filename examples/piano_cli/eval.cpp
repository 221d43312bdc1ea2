// piano eval: a trained model's metrics on a data directory's test split, beside the
// first-stage order and (for simulated data) the oracle.
#include <fstream>
#include <iostream>
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
            "test split is test.txt, or for a single requests.txt the same split train drew.\n",
            {{"data", "DIR", "", "data directory", true},
             {"model", "DIR", "", "a trained model's folder (what piano train --out wrote)", true},
             {"csv", "FILE", "", "also write the table as CSV to FILE"},
             {"lambda", "X", "", "serve at this λ of s_i = (1-λ) log pCTR + λ log pCTCVR (default: the model's)"},
             {"threads", "N", "1", "OpenMP threads"}}};
}

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

    if (const auto evaluator = online_evaluator(args.str("data"), test)) {
        std::cout << "Online (" << piano::data::ClickModel::name(evaluator->click_model().kind)
                  << " click model, expected per request, 95% paired bootstrap intervals):\n\n"
                  << piano::metrics::online_markdown(piano::metrics::online_table(*evaluator, {{trained.kind(), orders}}))
                  << "\nOffline (logged labels):\n\n";
    }
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
