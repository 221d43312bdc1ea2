// piano/train/fit.hpp: a model trained from a loaded data set into its model folder, in
// one call. What the CLI's `piano train` does, as a library function:
//
//   data::JdsearchDataset data = data::load_jdsearch_dir("data/sim");
//   TrainOptions options;  options.out_dir = "models/piano";
//   FitResult<float> fitted = fit<float>("piano", PianoConfig::reference(), data, options, std::cout);
//   // later, in a service:
//   TrainedModel<float> served = load_model_dir<float>("models/piano");
//   RerankResult r = served.rerank(raw_request);   // string ids in, new order out
#pragma once

#include <chrono>
#include <ostream>
#include <string>

#include "piano/data/jdsearch.hpp"
#include "piano/io/model_dir.hpp"
#include "piano/model/config.hpp"
#include "piano/model/factory.hpp"
#include "piano/train/trainer.hpp"

namespace piano {

template <typename T>
struct FitResult {
    TrainedModel<T> trained;  // the best epoch's model, in evaluation mode, with its data
    TrainResult result;       // the per-epoch record (train())
    double seconds = 0.0;     // wall time of fit(), loading excluded
};

/// Builds the model `kind` (factory.hpp) from `config` sized to the data's vocabularies
/// (sized_to_data), trains it on data.train, validating on data.valid (train()), and, when
/// options.out_dir is set, writes the model folder there (io/model_dir.hpp): its data
/// files first, so that every best.ckpt train() writes is already a loadable model.
/// Throws ConfigError for an unknown kind before anything is written or trained.
/// Data parallel (options.collective): every rank calls fit with the same data and gets
/// the same model; rank 0 alone writes the folder.
template <typename T>
FitResult<T> fit(const std::string& kind, const PianoConfig& config, const data::JdsearchDataset& data,
                 const TrainOptions& options, std::ostream& log) {
    const auto start = std::chrono::steady_clock::now();
    FitResult<T> fitted;
    fitted.trained.model = make_model<T>(kind, sized_to_data(config, data.vocab, data.dense_dim));
    fitted.trained.data = {data.vocab, products_known_to(data.products, data.vocab), data.recipe};
    fitted.trained.written_by = kVersion;
    // In a group of ranks (options.collective) rank 0 writes the folder, as train() does.
    if (!options.out_dir.empty() && (!options.collective || options.collective->rank() == 0))
        save_model_data(options.out_dir, fitted.trained.kind(), detail::checkpoint::scalar_name<T>(),
                        fitted.trained.data);
    fitted.result = train(*fitted.trained.model, data.train, data.valid, options, log);
    fitted.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return fitted;
}

}  // namespace piano
