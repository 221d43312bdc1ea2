// piano compare: every model trained on the same data with the same options, one table.
//
// At small widths a training step holds too little work to split across cores, so
// --jobs N trains N models at once instead, each on its own thread with its own model,
// and their epoch lines are printed prefixed with the model's name. Results do not depend
// on --jobs: every model's training is deterministic on its own.
#include <algorithm>
#include <exception>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <streambuf>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <piano/metrics/report.hpp>
#include <piano/model/factory.hpp>

#include "commands.hpp"
#include "common.hpp"

namespace piano_cli {

namespace {

using Row = std::pair<std::string, piano::metrics::MetricTable>;

void write_text(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) throw std::runtime_error("cannot write " + path.string());
}

std::string csv_of(const std::vector<Row>& rows) {
    std::string csv = piano::metrics::csv_header() + "\n";
    for (const auto& [name, table] : rows) csv += piano::metrics::csv_row(name, table) + "\n";
    return csv;
}

/// A stream buffer that writes whole lines to `out`, each prefixed, under a shared mutex,
/// so the logs of models trained side by side interleave by line, never within one.
class PrefixedLines : public std::streambuf {
public:
    PrefixedLines(std::string prefix, std::ostream& out, std::mutex& mutex)
        : prefix_(std::move(prefix)), out_(out), mutex_(mutex) {}

protected:
    int overflow(int c) override {
        if (c == traits_type::eof()) return traits_type::not_eof(c);
        line_ += static_cast<char>(c);
        if (c == '\n') {
            const std::lock_guard<std::mutex> lock(mutex_);
            out_ << prefix_ << line_ << std::flush;
            line_.clear();
        }
        return c;
    }

private:
    std::string prefix_, line_;
    std::ostream& out_;
    std::mutex& mutex_;
};

/// What training one model produced (or the exception that stopped it).
struct Outcome {
    std::optional<piano::metrics::MetricTable> test;
    std::vector<std::vector<std::size_t>> orders;  // the model's new order of each test request
    std::size_t epochs = 0;
    int best_epoch = -1;
    double seconds = 0.0;
    std::exception_ptr error;
};

}  // namespace

CommandSpec compare_spec() {
    CommandSpec spec{"compare",
                     "train every model on the same data and print one metric table",
                     "rows, in this order: first-stage, dnn, din, prm, piano-noqdir, piano-noian, piano, and\n"
                     "oracle when the data holds truth.txt. Every model gets the same data, config, seed and\n"
                     "options. For simulated data the online table comes first: each order valued under the\n"
                     "simulator's true user model (docs/metrics.md, \"Online evaluation\"). Outputs (in --out):\n"
                     "  compare.csv     the offline table (model,auc_ctr,...,list_auc_cvr), rewritten as models finish\n"
                     "  online.csv      the online table (simulated data only)\n"
                     "  head_to_head.csv  PIANO's lift minus each other model's, 95% paired intervals (simulated data)\n"
                     "  compare.md      the online table (simulated data) and the offline table in Markdown\n"
                     "  settings.txt    the options and data sizes of the run\n"
                     "  config.txt      the run's model and training keys: --config config.txt repeats it\n"
                     "  timing.csv      model,seconds,epochs,best_epoch\n"
                     "  <model>/        each model's folder (as piano train writes it), for eval and rerank\n",
                     {{"data", "DIR", "", "data directory", true},
                      {"out", "DIR", "", "directory for the results", true},
                      {"models", "LIST", "", "comma-separated models to train (default: all)"},
                      {"jobs", "N", "1", "models trained at the same time (one core each)"}}};
    for (Option& o : training_options()) spec.options.push_back(std::move(o));
    return spec;
}

int run_compare(const Args& args) {
    // The models in table order; --models picks a subset but never reorders it.
    std::vector<std::string> models;
    const std::vector<std::string> asked = args.list("models");
    for (const std::string& name : asked)
        if (name != "first-stage" && name != "oracle") check_model_name(name);
    for (const std::string& name : piano::model_names())
        if (asked.empty() || std::find(asked.begin(), asked.end(), name) != asked.end()) models.push_back(name);

    const std::string data_dir = args.str("data");
    const fs::path out = args.str("out");
    piano::RunConfig run = run_config_from_args(args, "");
    const piano::PianoConfig& config = run.model;
    // No more jobs than models, and at least one (--models may name only the fixed rows).
    const auto jobs = static_cast<std::size_t>(
        std::max<long>(1, std::min<long>(args.integer("jobs", 1, 64), static_cast<long>(models.size()))));
    piano::TrainOptions& base = run.training;
    base.threads = std::max(1, base.threads / static_cast<int>(jobs));  // the cores are shared by the jobs
    set_threads(base.threads);
    fs::create_directories(out);
    piano::save_run_config(out / "config.txt", run);

    std::cout << "loading " << data_dir << " ...\n";
    const piano::data::JdsearchDataset data = load_data(args, config);
    if (data.test.empty()) throw piano::DataError(data_dir, 0, "test", "compare needs a test split");
    std::cout << "train " << data.train.size() << ", valid " << data.valid.size() << ", test " << data.test.size()
              << " requests\n";

    std::string settings = "data = " + data_dir + "\nconfig = " + args.str("config") + " (d_model " +
                           std::to_string(config.d_model) + ", heads " + std::to_string(config.heads) + ", layers " +
                           std::to_string(config.layers) + ", ffn_dim " + std::to_string(config.ffn_dim) + ")\n";
    const std::map<std::string, std::string> training = piano::training_to_map(base);
    for (const char* key : {"epochs", "batch_size", "learning_rate", "patience", "batch_order_seed"})
        settings += std::string(key) + " = " + training.at(key) + "\n";
    settings += "threads = " + std::to_string(base.threads) + "\njobs = " + std::to_string(jobs) + "\n";
    if (!data.valid.empty()) {
        const auto [reference, table] = first_stage_row(data.valid);
        settings += kValidReferencePrefix + reference + " = " + std::to_string(table.ndcg_10) + "\n";
    }
    std::string model_list;
    for (const auto& m : models) model_list += (model_list.empty() ? "" : ",") + m;
    settings += "models = " + model_list + "\n";
    settings += "requests = train " + std::to_string(data.train.size()) + ", valid " +
                std::to_string(data.valid.size()) + ", test " + std::to_string(data.test.size()) + "\n";
    write_text(out / "settings.txt", settings);

    const Row first_stage = first_stage_row(data.test);
    std::vector<Outcome> outcomes(models.size());
    std::mutex mutex;  // guards std::cout, `outcomes` and the files rewritten as models finish

    // Rows of the models finished so far, in table order, so a run cut short keeps them.
    auto finished_rows = [&] {
        std::vector<Row> rows{first_stage};
        for (std::size_t k = 0; k < models.size(); ++k)
            if (outcomes[k].test) rows.emplace_back(models[k], *outcomes[k].test);
        return rows;
    };
    auto train_one = [&](std::size_t k, std::size_t ordinal) {
        const std::string& name = models[k];
        PrefixedLines buffer("[" + name + "] ", std::cout, mutex);
        std::ostream prefixed(&buffer);
        // One job may draw the trainer's progress bar on a terminal; parallel jobs print lines.
        std::ostream& log = jobs > 1 ? prefixed : std::cout;
        {
            const std::lock_guard<std::mutex> lock(mutex);
            std::cout << "\n[" << ordinal << "/" << models.size() << "] training " << name << std::endl;
        }
        piano::TrainOptions options = base;
        options.out_dir = (out / name).string();
        Fitted fitted = fit(name, config, data, options, log);
        std::vector<std::vector<std::size_t>> orders;
        const piano::metrics::MetricTable test = evaluate_model(*fitted.trained.model, data.test, &orders);

        const std::lock_guard<std::mutex> lock(mutex);
        Outcome& o = outcomes[k];
        o.test = test;
        o.orders = std::move(orders);
        o.epochs = fitted.result.epochs.size();
        o.best_epoch = fitted.result.best_epoch;
        o.seconds = fitted.seconds;
        std::cout << name << ": test ndcg@10 " << test.ndcg_10 << ", trained in " << fitted.seconds << " s"
                  << std::endl;
        std::string timing = "model,seconds,epochs,best_epoch\n";
        for (std::size_t j = 0; j < models.size(); ++j)
            if (outcomes[j].test)
                timing += models[j] + "," + std::to_string(outcomes[j].seconds) + "," +
                          std::to_string(outcomes[j].epochs) + "," + std::to_string(outcomes[j].best_epoch) + "\n";
        write_text(out / "timing.csv", timing);
        write_text(out / "compare.csv", csv_of(finished_rows()));
    };

    // Workers take the next untrained model until none is left or one has failed; the
    // error stays with its model and is rethrown below, after every worker has stopped.
    // They go from the end of the table: PIANO's variants train slowest, and starting
    // them first lets the jobs finish at about the same time.
    std::size_t next = 0;
    bool failed = false;
    auto worker = [&] {
        for (;;) {
            std::size_t k, ordinal;
            {
                const std::lock_guard<std::mutex> lock(mutex);
                if (next == models.size() || failed) return;
                ordinal = ++next;
                k = models.size() - ordinal;
            }
            try {
                train_one(k, ordinal);
            } catch (...) {
                const std::lock_guard<std::mutex> lock(mutex);
                outcomes[k].error = std::current_exception();
                failed = true;
            }
        }
    };
    std::vector<std::thread> threads;
    for (std::size_t j = 1; j < jobs; ++j) threads.emplace_back(worker);
    worker();
    for (std::thread& t : threads) t.join();
    for (const Outcome& o : outcomes)
        if (o.error) std::rethrow_exception(o.error);

    std::vector<Row> rows = finished_rows();
    if (auto table = evaluate_oracle(data_dir, data.test)) rows.emplace_back("oracle", *table);
    std::string markdown = piano::metrics::markdown_table(rows);
    write_text(out / "compare.csv", csv_of(rows));
    if (const auto evaluator = online_evaluator(data_dir, data.test)) {
        std::vector<std::pair<std::string, std::vector<std::vector<std::size_t>>>> orders;
        for (std::size_t k = 0; k < models.size(); ++k) orders.emplace_back(models[k], outcomes[k].orders);
        const std::vector<piano::metrics::OnlineRow> online = piano::metrics::online_table(*evaluator, orders);
        write_text(out / "online.csv", piano::metrics::online_csv(online));
        std::string head_to_head;
        if (orders.size() > 1 && std::any_of(orders.begin(), orders.end(), [](const auto& o) { return o.first == "piano"; })) {
            const auto differences = piano::metrics::head_to_head(*evaluator, "piano", orders);
            write_text(out / "head_to_head.csv", piano::metrics::online_difference_csv(differences));
            head_to_head = "\nPIANO against each model (its lift minus theirs, in points of the first stage's value; "
                           "95% paired bootstrap intervals: one that holds 0 is within chance):\n\n" +
                           piano::metrics::online_difference_markdown(differences);
        }
        markdown = "Online, under the simulator's " +
                   std::string(piano::data::ClickModel::name(evaluator->click_model().kind)) +
                   " click model (expected per test request; 95% paired bootstrap intervals; lift against "
                   "the first stage):\n\n" +
                   piano::metrics::online_markdown(online) + head_to_head + "\nOffline, on the logged labels:\n\n" +
                   markdown;
    }
    write_text(out / "compare.md", markdown);
    std::cout << "\n" << markdown << "\nwrote " << (out / "compare.csv").string() << '\n';
    return kOk;
}

}  // namespace piano_cli
