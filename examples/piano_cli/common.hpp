// common.hpp: what several subcommands share: exit codes, configs, data loading, and the
// rows of the result tables (first stage, a model, the oracle).
//
// A trained model is a folder (piano/io/model_dir.hpp), so eval and rerank can read new
// data later. Every embedding table gets as many rows as its vocabulary needs, at most
// the configured count: the configured `*_rows` cap the vocabulary (rarer ids are hashed
// into the cap, see piano/data/vocabulary.hpp) and the model is then built with the
// vocabulary's row count (piano::sized_to_data), so a small data set does not pay for a
// 100k-row item table.
//
// The definitions live in common.cpp, the one file that instantiates the models, the
// trainer and the checkpoint code, so the other files compile quickly.
#pragma once

#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <piano/data/jdsearch.hpp>
#include <piano/data/recipe.hpp>
#include <piano/metrics/evaluate.hpp>
#include <piano/metrics/online.hpp>
#include <piano/model/config.hpp>
#include <piano/model/reranker.hpp>
#include <piano/train/fit.hpp>
#include <piano/train/run_config.hpp>
#include <piano/train/trainer.hpp>

#include "args.hpp"

namespace piano_cli {

namespace fs = std::filesystem;
using Model = piano::Reranker<float>;
using TrainedModel = piano::TrainedModel<float>;
using Fitted = piano::FitResult<float>;

/// The exit codes of `piano` (docs/cli.md lists them too).
enum ExitCode : int {
    kOk = 0,
    kOtherError = 1,       // anything else (I/O, an internal error)
    kUsageError = 2,       // a bad command line
    kDataError = 3,        // a malformed or missing input file (piano::DataError)
    kCheckpointError = 4,  // a checkpoint that cannot be read or does not fit (piano::CheckpointError)
    kConfigError = 5,      // a bad config value or model name (piano::ConfigError)
    kShapeError = 6,       // data that does not fit the model's shapes (piano::ShapeError)
    kTrainingError = 7,    // the loss or a gradient became NaN or Inf (piano::TrainingError)
};

/// The exit code of a failure, by the exception's type (ExitCode).
int exit_code_of(const std::exception& e);

/// Prints `e` as the one line `piano: error: <message>` on stderr (a message listing
/// several problems on indented lines is joined with "; ") and returns exit_code_of(e).
int report_failure(const std::exception& e);

/// OpenMP threads for everything piano parallelises (and Eigen's products).
void set_threads(long threads);

/// Throws the factory's kind of ConfigError for an unknown name, before any data is read.
void check_model_name(const std::string& name);

// ---------------------------------------------------------------- configs and options

/// The training options train and compare share, with their defaults (TrainOptions's).
std::vector<Option> training_options();
/// --config ("tiny", "reference", or a run file over reference: piano/train/run_config.hpp)
/// with the training flags given on the command line over it (--seed seeds both the
/// model and the batch order), --threads, and options.out_dir = `out_dir`.
piano::RunConfig run_config_from_args(const Args& args, const std::string& out_dir);

// ---------------------------------------------------------------- data and models

/// Loads --data for training in --format, with the tables capped by `config` and the
/// candidate order --candidate-order asks for. Prints one line on how label-sorted the
/// training lists are and what was done about it (a warning too when `auto` shuffled).
piano::data::JdsearchDataset load_data(const Args& args, const piano::PianoConfig& config);

/// piano::fit of the float model `name` into the folder options.out_dir.
Fitted fit(const std::string& name, const piano::PianoConfig& config, const piano::data::JdsearchDataset& data,
           const piano::TrainOptions& options, std::ostream& log);

/// piano::load_model_dir of a float model.
TrainedModel load_trained(const std::string& model_dir);

/// The test split of a data directory, mapped with a trained model's vocabularies.
/// With train/valid/test files, test.txt is read as it is. With one requests.txt, the
/// split is drawn again exactly as at training time, and the vocabularies it rebuilds must
/// be the model's, or the file changed since training (DataError).
std::vector<piano::data::Request> load_test_split(const std::string& dir, const TrainedModel& trained);

// ---------------------------------------------------------------- rows of the tables

/// The settings.txt key (this prefix, then the reference row's name) under which compare
/// records the validation ndcg@10 of the order the models are given; report draws it as
/// a dashed line on the validation curves.
inline constexpr const char* kValidReferencePrefix = "valid ndcg@10 of ";

/// The first-stage row: the logged order as a ranker, or, when the requests' order was
/// shuffled (no first-stage information), "random order" with its exact expectation.
std::pair<std::string, piano::metrics::MetricTable> first_stage_row(const std::vector<piano::data::Request>& requests);
/// The model's metric table; with `orders`, also its new order of every request.
piano::metrics::MetricTable evaluate_model(Model& model, const std::vector<piano::data::Request>& requests,
                                           std::vector<std::vector<std::size_t>>* orders = nullptr);

/// The simulator's oracle when `data_dir` holds truth.txt (row k = test request k):
/// candidates ordered by their true pCTCVR. Its list probabilities assume independent
/// clicks, which is how the simulator draws them: P(>= 1 click) = 1 - Π_i (1 - pCTR_i),
/// and the same for conversions with pCTCVR_i.
std::optional<piano::metrics::MetricTable> evaluate_oracle(const std::string& data_dir,
                                                           const std::vector<piano::data::Request>& test);

/// The online evaluation (piano/metrics/online.hpp) when `data_dir` came from the
/// simulator (it holds online_truth.txt and click_model.txt), checked against the test
/// split: one row per request, each as long as its list.
std::optional<piano::metrics::OnlineEvaluator> online_evaluator(const std::string& data_dir,
                                                                const std::vector<piano::data::Request>& test);


}  // namespace piano_cli
