// piano train: one model on one data set, saved as a directory that eval and rerank read.
#include <iostream>
#include <string>

#include "commands.hpp"
#include "common.hpp"

namespace piano_cli {

CommandSpec train_spec() {
    CommandSpec spec{"train",
                     "train one model on a data directory and save it with its vocabularies",
                     "outputs (in --out, the model folder that eval and rerank read, docs/cli.md):\n"
                     "  model.txt       piano version and model kind\n"
                     "  best.ckpt       the weights of the epoch with the best validation ndcg@10, and the config\n"
                     "  vocab/          the vocabularies of the training split\n"
                     "  products.txt    metadata of the products the vocabularies know\n"
                     "  data.txt        how the data was read (format, candidate order, label scale)\n"
                     "  train_log.csv   one row per epoch: losses, validation metrics, seconds\n"
                     "  config.txt      the run's model and training keys: --config config.txt repeats it\n"
                     "Each embedding table gets the rows its vocabulary needs, at most the config's *_rows\n"
                     "(rarer ids share hashed rows).\n",
                     {{"data", "DIR", "", "data directory (products.txt and train.txt or requests.txt)", true},
                      {"model", "NAME", "piano", "piano, piano-noqdir, piano-noian, prm, din or dnn"},
                      {"out", "DIR", "", "directory for the trained model", true},
                      {"overwrite", "", "", "replace a trained model already in --out"}}};
    for (Option& o : training_options()) spec.options.push_back(std::move(o));
    return spec;
}

int run_train(const Args& args) {
    const std::string name = args.str("model");
    check_model_name(name);
    const piano::RunConfig run = run_config_from_args(args, args.str("out"));
    const piano::PianoConfig& config = run.model;
    const piano::TrainOptions& options = run.training;
    set_threads(options.threads);
    const fs::path out = options.out_dir;
    if (!args.flag("overwrite") && (fs::exists(out / piano::ModelDirFiles::manifest) ||
                                    fs::exists(out / piano::ModelDirFiles::weights)))
        throw UsageError("train: " + out.string() + " already holds a trained model; pass --overwrite to replace it");

    std::cout << "loading " << args.str("data") << " ...\n";
    const piano::data::JdsearchDataset data = load_data(args, config);
    std::cout << "train " << data.train.size() << ", valid " << data.valid.size() << ", test " << data.test.size()
              << " requests; training " << name << '\n';
    fs::create_directories(out);
    piano::save_run_config(out / "config.txt", run);
    const Fitted fitted = fit(name, config, data, options, std::cout);

    std::cout << "best epoch " << fitted.result.best_epoch << " of " << fitted.result.epochs.size() << " in "
              << fitted.seconds << " s; model saved to " << options.out_dir << "\n"
              << "next: piano eval --data " << args.str("data") << " --model " << options.out_dir << '\n';
    return kOk;
}

}  // namespace piano_cli
