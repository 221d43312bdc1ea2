// common.cpp: the definitions behind common.hpp.
#include "common.hpp"

#include <algorithm>
#include <iostream>
#include <limits>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <piano/data/letor.hpp>
#include <piano/data/simulator.hpp>
#include <piano/io/checkpoint.hpp>
#include <piano/metrics/random_order.hpp>
#include <piano/model/factory.hpp>

namespace piano_cli {

int report_failure(const std::exception& e) {
    std::string line;
    bool line_start = false;
    for (const char* c = e.what(); *c; ++c) {
        if (*c == '\n') {
            line += !line.empty() && line.back() == ':' ? " " : "; ";
            line_start = true;
        } else if (!(line_start && *c == ' ')) {
            line += *c;
            line_start = false;
        }
    }
    // One write, so that the line stays whole when mpirun interleaves the ranks' output.
    std::cerr << ("piano: error: " + line + "\n") << std::flush;
    return exit_code_of(e);
}

int exit_code_of(const std::exception& e) {
    if (dynamic_cast<const UsageError*>(&e)) return kUsageError;
    if (dynamic_cast<const piano::DataError*>(&e)) return kDataError;
    if (dynamic_cast<const piano::CheckpointError*>(&e)) return kCheckpointError;
    if (dynamic_cast<const piano::ConfigError*>(&e)) return kConfigError;
    if (dynamic_cast<const piano::ShapeError*>(&e)) return kShapeError;
    if (dynamic_cast<const piano::TrainingError*>(&e)) return kTrainingError;
    return kOtherError;
}

void set_threads(long threads) {
#ifdef _OPENMP
    omp_set_num_threads(static_cast<int>(threads));
#else
    if (threads > 1) std::cerr << "piano: built without OpenMP; --threads " << threads << " runs on one thread\n";
#endif
}

void check_model_name(const std::string& name) {
    const auto& known = piano::model_names();
    if (std::find(known.begin(), known.end(), name) != known.end()) return;
    std::string list;
    for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
    throw piano::ConfigError("unknown model '" + name + "' (known: " + list + ")");
}

std::vector<Option> training_options() {
    const piano::TrainOptions defaults;
    const std::map<std::string, std::string> text = piano::training_to_map(defaults);
    return {{"config", "tiny|reference|FILE", "reference",
             "a preset, or a run file (model and training keys over reference, docs/cli.md)"},
            {"epochs", "N", text.at("epochs"), "training epochs (fewer when early stopping fires)"},
            {"batch-size", "N", text.at("batch_size"), "requests per training batch"},
            {"lr", "RATE", text.at("learning_rate"), "Adam learning rate"},
            {"patience", "N", text.at("patience"),
             "epochs without a better validation " + defaults.early_stopping_metric + " before stopping; 0 = never"},
            {"threads", "N", "1", "OpenMP threads"},
            {"seed", "N", text.at("batch_order_seed"), "seed of the initialisation, dropout and batch order"},
            {"format", "jdsearch|letor", "jdsearch", "data directory format (docs/data.md)"},
            {"candidate-order", "auto|as_logged|shuffle", "auto",
             "keep or shuffle each logged list; auto shuffles a label-sorted log (docs/data.md)"}};
}

piano::RunConfig run_config_from_args(const Args& args, const std::string& out_dir) {
    const std::string spec = args.str("config");
    piano::RunConfig run;
    if (spec == "tiny") run.model = piano::PianoConfig::tiny();
    else if (spec != "reference") run = piano::read_run_config_file(spec, run);
    piano::TrainOptions& o = run.training;
    if (args.given("epochs")) o.epochs = static_cast<int>(args.integer("epochs", 1, 100000));
    if (args.given("batch-size")) o.batch_size = static_cast<std::size_t>(args.integer("batch-size", 1, 1000000));
    if (args.given("lr")) o.learning_rate = args.real("lr", 1e-9, 10.0);
    if (args.given("patience")) o.patience = static_cast<int>(args.integer("patience", 0, 100000));
    if (args.given("seed")) {
        const auto seed = static_cast<std::uint64_t>(args.integer("seed", 0, std::numeric_limits<long>::max()));
        run.model.seed = seed;
        o.seed = seed;
    }
    o.threads = static_cast<int>(args.integer("threads", 1, 1024));
    o.out_dir = out_dir;
    return run;
}

piano::data::JdsearchDataset load_data(const Args& args, const piano::PianoConfig& config) {
    using piano::data::CandidateOrder;
    const std::string dir = args.str("data");
    if (!fs::is_directory(dir)) throw piano::DataError(dir, 0, "directory", "does not exist");
    piano::data::DataRecipe asked;
    asked.format = piano::data::data_format_from_string(args.str("format"));
    asked.candidate_order = piano::data::candidate_order_from_string(args.str("candidate-order"));
    asked.labels = piano::data::data_label_defaults(asked.format);
    const piano::data::LoadOptions options = piano::load_options_for(config, asked);
    piano::data::JdsearchDataset data = asked.format == piano::data::DataFormat::letor
                                            ? piano::data::load_letor(piano::data::letor_dir_files(dir), options)
                                            : piano::data::load_jdsearch_dir(dir, options);
    if (data.train.empty()) throw piano::DataError(dir, 0, "train", "the training split holds no request");

    const bool shuffled = data.recipe.candidate_order == CandidateOrder::shuffle;
    std::cout << "candidate order: " << data.train_stats.order.summary() << "; "
              << (shuffled ? "lists shuffled (seed " + std::to_string(data.recipe.order_seed) + "), models get no position"
                           : std::string("kept as logged (a first-stage order)"))
              << '\n';
    if (shuffled && asked.candidate_order == CandidateOrder::automatic)
        std::cerr << "piano: warning: " << dir
                  << " lists its candidates label-sorted far beyond chance; that order gives the labels away, so "
                     "each list is shuffled (--candidate-order as_logged keeps it)\n";
    return data;
}

Fitted fit(const std::string& name, const piano::PianoConfig& config, const piano::data::JdsearchDataset& data,
           const piano::TrainOptions& options, std::ostream& log) {
    return piano::fit<float>(name, config, data, options, log);
}

TrainedModel load_trained(const std::string& model_dir) { return piano::load_model_dir<float>(model_dir); }

std::vector<piano::data::Request> load_test_split(const std::string& dir, const TrainedModel& trained) {
    if (!fs::is_directory(dir)) throw piano::DataError(dir, 0, "directory", "does not exist");
    const piano::data::LoadOptions options = trained.load_options();
    if (trained.data.recipe.format == piano::data::DataFormat::letor) {
        const piano::data::JdsearchFiles files = piano::data::letor_dir_files(dir);
        if (files.test.empty()) throw piano::DataError(dir, 0, "test", "no test.txt");
        const auto width = static_cast<std::size_t>(trained.model->config().dense_features);
        return piano::data::load_letor_file(files.test, width, options).requests;
    }
    const piano::data::JdsearchFiles files = piano::data::jdsearch_dir_files(dir);
    if (!files.test.empty()) {
        const auto products = piano::data::read_products(files.products, options);
        return piano::data::load_requests_file(files.test, products, trained.data.vocab, options).requests;
    }
    if (files.requests.empty()) throw piano::DataError(dir, 0, "test", "no test.txt and no requests.txt to split");
    piano::data::JdsearchDataset data = piano::data::load_jdsearch(files, options);
    for (std::size_t t = 0; t < data.vocab.tables.size(); ++t)
        if (data.vocab.tables[t].size() != trained.data.vocab.tables[t].size())
            throw piano::DataError(files.requests, 0, piano::data::kTableNames[t],
                                   "the training split's vocabulary differs from the model's; the file changed "
                                   "since training");
    return std::move(data.test);
}

std::pair<std::string, piano::metrics::MetricTable> first_stage_row(const std::vector<piano::data::Request>& requests) {
    std::vector<piano::metrics::RequestPrediction> predictions;
    predictions.reserve(requests.size());
    for (const auto& r : requests) {
        std::vector<int> click, conv;
        for (const auto& c : r.candidates) {
            click.push_back(c.click);
            conv.push_back(c.conv);
        }
        predictions.push_back(piano::metrics::first_stage_prediction(std::move(click), std::move(conv)));
    }
    const bool logged = std::all_of(requests.begin(), requests.end(), [](const auto& r) { return r.first_stage_order; });
    if (logged) return {"first-stage", piano::metrics::evaluate(predictions)};
    return {"random order", piano::metrics::random_order_expectation(predictions)};
}

piano::metrics::MetricTable evaluate_model(Model& model, const std::vector<piano::data::Request>& requests,
                                           std::vector<std::vector<std::size_t>>* orders) {
    const std::vector<piano::metrics::RequestPrediction> predictions = piano::predict(model, requests);
    if (orders) {
        orders->clear();
        for (const auto& p : predictions) orders->push_back(piano::metrics::rerank_order(p.score));
    }
    return piano::metrics::evaluate(predictions);
}

std::optional<piano::metrics::MetricTable> evaluate_oracle(const std::string& data_dir,
                                                           const std::vector<piano::data::Request>& test) {
    const fs::path path = fs::path(data_dir) / "truth.txt";
    if (!fs::exists(path)) return std::nullopt;
    const std::vector<piano::data::TruthRow> truth = piano::data::read_truth(path);
    if (truth.size() != test.size())
        throw piano::DataError(path.string(), 0, "line",
                               std::to_string(truth.size()) + " rows for " + std::to_string(test.size()) +
                                   " test requests");
    std::vector<piano::metrics::RequestPrediction> predictions(test.size());
    for (std::size_t k = 0; k < test.size(); ++k) {
        const auto& candidates = test[k].candidates;
        if (truth[k].p_click.size() != candidates.size())
            throw piano::DataError(path.string(), static_cast<long>(k + 1), "p_click",
                                   std::to_string(truth[k].p_click.size()) + " probabilities for " +
                                       std::to_string(candidates.size()) + " candidates");
        piano::metrics::RequestPrediction& p = predictions[k];
        p.p_ctr = truth[k].p_click;
        p.p_cvr = truth[k].p_conv;
        p.p_ctcvr = truth[k].pctcvr();
        p.score = p.p_ctcvr;
        double no_click = 1.0, no_conv = 1.0;
        for (std::size_t i = 0; i < candidates.size(); ++i) {
            no_click *= 1.0 - p.p_ctr[i];
            no_conv *= 1.0 - p.p_ctcvr[i];
            p.click.push_back(candidates[i].click);
            p.conv.push_back(candidates[i].conv);
        }
        p.p_list_ctr = 1.0 - no_click;
        p.p_list_cvr = 1.0 - no_conv;
    }
    return piano::metrics::evaluate(predictions);
}

std::optional<piano::metrics::OnlineEvaluator> online_evaluator(const std::string& data_dir,
                                                                const std::vector<piano::data::Request>& test) {
    const fs::path dir(data_dir);
    if (!fs::exists(dir / "online_truth.txt") || !fs::exists(dir / "click_model.txt")) return std::nullopt;
    piano::metrics::OnlineEvaluator evaluator = piano::metrics::OnlineEvaluator::from_dir(data_dir);
    const std::string file = (dir / "online_truth.txt").string();
    if (evaluator.requests() != test.size())
        throw piano::DataError(file, 0, "line",
                               std::to_string(evaluator.requests()) + " rows for " + std::to_string(test.size()) +
                                   " test requests");
    const auto first_stage = evaluator.first_stage_orders();
    for (std::size_t k = 0; k < test.size(); ++k)
        if (first_stage[k].size() != test[k].candidates.size())
            throw piano::DataError(file, static_cast<long>(k + 1), "attraction",
                                   std::to_string(first_stage[k].size()) + " probabilities for " +
                                       std::to_string(test[k].candidates.size()) + " candidates");
    return evaluator;
}

}  // namespace piano_cli
