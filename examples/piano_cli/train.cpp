// piano train: one model on one data set, saved as a directory that eval and rerank read.
// Built with PIANO_USE_MPI, `mpirun -np N piano train ...` trains it on N ranks.
#include <algorithm>
#include <iostream>
#include <string>

#ifdef PIANO_CLI_MPI
#include <piano/train/mpi.hpp>
#endif

#include <piano/train/collective.hpp>
#include <piano/version.hpp>

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

namespace {

/// The training itself, alone (group = nullptr) or as one rank of a group: every rank
/// loads the same data and trains; rank 0 alone writes the folder and config.txt.
int train_model(const Args& args, piano::Collective* group) {
    const std::string name = args.str("model");
    check_model_name(name);
    piano::RunConfig run = run_config_from_args(args, args.str("out"));
    run.training.collective = group;
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
    if (group) {
        // Before anything is written: a rank given another run, or one that could not load
        // its data, ends the job here and leaves the folder in --out as it was.
        group->check_same_run({{"piano version", piano::Digest().text(piano::kVersion).value()},
                               {"model and training keys", piano::Digest().text(name).text(piano::run_config_text(run)).value()},
                               {"training data", piano::digest_requests(data.train)},
                               {"validation data", piano::digest_requests(data.valid)}});
        std::cout << "data parallel: " << group->ranks() << " ranks, each batch of " << options.batch_size
                  << " requests split over them\n";
    }
    if (!group || group->rank() == 0) {
        fs::create_directories(out);
        piano::save_run_config(out / "config.txt", run);
    }
    const Fitted fitted = fit(name, config, data, options, std::cout);

    std::cout << "best epoch " << fitted.result.best_epoch << " of " << fitted.result.epochs.size() << " in "
              << fitted.seconds << " s; model saved to " << options.out_dir << "\n"
              << "next: piano eval --data " << args.str("data") << " --model " << options.out_dir << '\n';
    return kOk;
}

#ifdef PIANO_CLI_MPI
// Steps between the checks that every rank still holds the same parameters: a digest of
// the reference model (34 MB) costs about one step, so every 100th keeps it near 1 %.
constexpr long kCheckEvery = 100;

/// `mpirun -np N piano train ...`: N ranks train one model (docs/distributed.md). An
/// error every rank found together (piano::GroupWideError) ends each rank normally, rank 0
/// printing it; an error on one rank alone ends the whole job through MPI_Abort with the
/// error's exit code, since the other ranks would wait for that rank forever.
int train_distributed(const Args& args) {
    piano::mpi::Session session(nullptr, nullptr);
    piano::mpi::MpiCollective group(MPI_COMM_WORLD, kCheckEvery);
    if (group.ranks() == 1) return train_model(args, nullptr);
    // Rank 0 speaks for the group; the others print only their errors.
    if (group.rank() != 0) std::cout.setstate(std::ios::badbit);
    try {
        const int code = train_model(args, &group);
        const piano::mpi::Traffic& t = group.traffic();
        const double steps = static_cast<double>(std::max(1L, t.steps));
        std::cout << "sent per step by rank 0: " << t.dense_bytes / steps / 1e6 << " MB of dense gradients, "
                  << t.sparse_rows / steps << " touched embedding rows (" << t.sparse_bytes / steps / 1e6 << " MB)\n";
        return code;
    } catch (const std::exception& e) {
        if (!dynamic_cast<const piano::GroupWideError*>(&e)) piano::mpi::abort_group(MPI_COMM_WORLD, e.what(), exit_code_of(e));
        // Every rank found it: rank 0 prints it once and alone ends with its exit code.
        // mpirun aborts the job at the first rank that exits non-zero, so the others wait
        // until rank 0 has printed and then end normally.
        const int code = group.rank() == 0 ? report_failure(e) : kOk;
        MPI_Barrier(MPI_COMM_WORLD);
        return code;
    }
}
#endif

}  // namespace

int run_train(const Args& args) {
#ifdef PIANO_CLI_MPI
    if (piano::mpi::Session::launched()) return train_distributed(args);
#endif
    return train_model(args, nullptr);
}

}  // namespace piano_cli
