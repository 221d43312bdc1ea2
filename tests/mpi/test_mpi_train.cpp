// Data-parallel training over MPI (piano/train/mpi.hpp), run by CTest as
// `mpirun -np 2 piano_mpi_tests`: the ranks train one tiny model on a simulated log, and
// rank 0 trains the same model again alone, on the whole batches, to compare.
//
// Checked: every rank ends with the same parameters, bit for bit; they equal the
// single-process model's up to rounding, since the parts' sums are added in another
// order than one process adds the whole batch (double: 1e-9 at most; float: see main);
// only rank 0 writes files and the log; ranks given another seed or other data stop with
// a ConfigError naming what differs. The last batch holds one request, so rank 1's part of
// it is empty.
//
// Exit code 0 when every check passed on every rank; each failure is one line on stderr.
#include <piano/data/jdsearch.hpp>
#include <piano/data/simulator.hpp>
#include <piano/io/checkpoint.hpp>
#include <piano/model/factory.hpp>
#include <piano/train/mpi.hpp>
#include <piano/train/trainer.hpp>

#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;
namespace data = piano::data;

namespace {

int failures = 0;
int rank = 0;

void check(bool ok, const std::string& what) {
    if (ok) return;
    ++failures;
    std::cerr << "FAIL (rank " << rank << "): " << what << std::endl;
}

/// A small simulated log; every rank writes and reads its own copy of the same files, as
/// ranks on different machines read the same data set.
data::JdsearchDataset simulated(const fs::path& dir) {
    data::SimulatorOptions o;
    o.users = 60;
    o.songs = 150;
    o.artists = 20;
    o.genres = 4;
    o.requests = 300;
    o.min_list_length = 5;
    o.max_list_length = 9;
    o.max_history = 6;
    o.vocabulary = 300;
    o.valid_fraction = 0.15;
    o.test_fraction = 0.05;
    data::write_jdsearch_files(data::simulate_music_search(o), dir);
    return data::load_jdsearch_dir(dir.string());
}

/// tiny (no dropout, so one process draws nothing the ranks do not), with learned loss
/// weights and the listwise term, so that every kind of LossShare is exercised.
piano::PianoConfig config_for(const data::JdsearchDataset& d) {
    piano::PianoConfig c = piano::sized_to_data(piano::PianoConfig::tiny(), d.vocab, d.dense_dim);
    c.weighting = piano::LossWeighting::uncertainty;
    c.listwise_loss = true;
    return c;
}

constexpr std::size_t kBatch = 16;

/// The training split cut to 16 k + 1 requests: the last batch holds one request, so rank
/// 1's part of it is empty.
std::vector<data::Request> with_a_last_batch_of_one(const std::vector<data::Request>& train) {
    return {train.begin(), train.begin() + static_cast<std::ptrdiff_t>((train.size() - 1) / kBatch * kBatch + 1)};
}

/// The largest and the mean absolute difference between two models' parameters.
template <typename T>
std::pair<double, double> differences(const piano::Reranker<T>& a, const piano::Reranker<T>& b) {
    double worst = 0.0, sum = 0.0, count = 0.0;
    const auto pa = a.named_parameters(), pb = b.named_parameters();
    for (std::size_t i = 0; i < pa.size(); ++i) {
        const auto d = (pa[i].second.value() - pb[i].second.value()).cwiseAbs().template cast<double>();
        worst = std::max(worst, d.maxCoeff());
        sum += d.sum();
        count += static_cast<double>(d.size());
    }
    return {worst, sum / count};
}

/// How close the ranks' model must be to one process's: `largest` and `mean` bound the
/// parameters' absolute differences, `metrics` the epochs' losses and ndcg@10.
struct Tolerance {
    double largest, mean, metrics;
};

template <typename T>
void same_model_as_one_process(const data::JdsearchDataset& d, const std::vector<data::Request>& train,
                               piano::mpi::MpiCollective& group, const fs::path& out,
                               const Tolerance& tolerance) {
    const std::string scalar = sizeof(T) == 4 ? "float" : "double";
    piano::TrainOptions options;
    options.epochs = 2;
    options.patience = 0;
    options.progress = false;
    options.learning_rate = 3e-3;
    options.schedule = "cosine";
    options.warmup_steps = 2;
    options.batch_size = kBatch;
    options.out_dir = out.string();
    options.collective = &group;
    std::ostringstream log;

    auto model = piano::make_model<T>("piano", config_for(d));
    const piano::TrainResult result = piano::train(*model, train, d.valid, options, log);

    // One model on every rank, bit for bit.
    const std::uint64_t mine = piano::digest_parameters(model->named_parameters());
    std::vector<std::uint64_t> all(static_cast<std::size_t>(group.ranks()));
    MPI_Allgather(&mine, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
    check(std::all_of(all.begin(), all.end(), [&](std::uint64_t x) { return x == all[0]; }),
          scalar + ": the ranks ended with different parameters");
    check(fs::exists(out / "best.ckpt") == (rank == 0), scalar + ": best.ckpt written by rank " + std::to_string(rank));
    check(fs::exists(out / "train_log.csv") == (rank == 0), scalar + ": train_log.csv written by rank " + std::to_string(rank));
    check(log.str().empty() == (rank != 0), scalar + ": the log lines belong to rank 0 alone");
    if (rank != 0) return;

    // The same run in one process, on the whole batches.
    piano::TrainOptions alone = options;
    alone.collective = nullptr;
    alone.out_dir.clear();
    auto reference = piano::make_model<T>("piano", config_for(d));
    const piano::TrainResult expected = piano::train(*reference, train, d.valid, alone, log);
    const auto [largest, mean] = differences(*model, *reference);
    std::cout << scalar << ": " << group.ranks() << " ranks vs one process: parameters differ by " << largest
              << " at most (tolerance " << tolerance.largest << "), " << mean << " on average (tolerance "
              << tolerance.mean << "); batch " << options.batch_size << " of " << train.size() << " requests"
              << std::endl;
    check(largest <= tolerance.largest && mean <= tolerance.mean,
          scalar + ": the ranks' model differs from one process's by " + std::to_string(largest));
    check(result.epochs.size() == expected.epochs.size(), scalar + ": another number of epochs");
    for (std::size_t e = 0; e < std::min(result.epochs.size(), expected.epochs.size()); ++e) {
        const piano::EpochRecord &got = result.epochs[e], &want = expected.epochs[e];
        check(got.steps == want.steps, scalar + ": another number of steps");
        check(std::abs(got.train_loss - want.train_loss) <= tolerance.metrics,
              scalar + ": epoch loss " + std::to_string(got.train_loss) + " vs " + std::to_string(want.train_loss));
        for (int k = 0; k < 4; ++k)
            check(std::isnan(got.terms[k]) == std::isnan(want.terms[k]) &&
                      !(std::abs(got.terms[k] - want.terms[k]) > tolerance.metrics),
                  scalar + ": epoch loss term " + std::to_string(k));
        check(std::abs(got.valid.ndcg_10 - want.valid.ndcg_10) <= tolerance.metrics, scalar + ": validation ndcg@10");
    }
    // The checkpoint rank 0 wrote holds the model the ranks share.
    const piano::Checkpoint<T> saved = piano::load_checkpoint<T>(out / "best.ckpt");
    const auto parameters = model->named_parameters();
    check(saved.parameters.size() == parameters.size(), scalar + ": best.ckpt holds another number of parameters");
    for (std::size_t i = 0; i < std::min(saved.parameters.size(), parameters.size()); ++i)
        check(saved.parameters[i].second == parameters[i].second.value(),
              scalar + ": best.ckpt's " + parameters[i].first + " is not the ranks' model");
}

/// Ranks given different runs stop together, before the first step, naming the difference.
void mismatches_are_refused(const data::JdsearchDataset& d, piano::mpi::MpiCollective& group) {
    piano::TrainOptions options;
    options.epochs = 1;
    options.progress = false;
    options.collective = &group;
    const auto refused = [&](const piano::TrainOptions& o, const std::vector<data::Request>& train,
                             const std::string& expected) {
        auto model = piano::make_model<float>("piano", config_for(d));
        std::ostringstream log;
        try {
            piano::train(*model, train, d.valid, o, log);
            check(false, "a mismatched run (" + expected + ") trained");
        } catch (const piano::MismatchedRunError& e) {
            const std::string message = e.what();
            check(message.find(expected + ": rank 1 differs from rank 0") != std::string::npos,
                  "the mismatch message does not name " + expected + ": " + message);
            if (rank == 0) std::cout << "refused as expected: " << message << std::endl;
        }
    };
    piano::TrainOptions other_seed = options;
    if (rank == 1) other_seed.seed = 2;
    refused(other_seed, d.train, "training options");
    std::vector<data::Request> other_data = d.train;
    if (rank == 1) other_data.pop_back();
    refused(options, other_data, "training data");
}

}  // namespace

int main(int argc, char** argv) {
    piano::mpi::Session session(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    try {
        piano::mpi::MpiCollective group(MPI_COMM_WORLD, 1);  // check the parameters at every step
        if (group.ranks() < 2) {
            std::cerr << "piano_mpi_tests: run it with 2 or more ranks (mpirun -np 2)" << std::endl;
            return 1;
        }
        const fs::path work = fs::temp_directory_path() / ("piano_mpi_test_" + std::to_string(::getpid()));
        fs::remove_all(work);
        fs::create_directories(work);
        const data::JdsearchDataset d = simulated(work / "data");
        // double: the sums differ from one process's in the last bits only. float: Adam
        // divides by sqrt(v), so a coordinate whose gradient is at the level of float
        // rounding can step by up to the learning rate (3e-3) in either direction; a few of
        // them move that far, the rest stay at the level of rounding.
        const std::vector<data::Request> train = with_a_last_batch_of_one(d.train);
        same_model_as_one_process<double>(d, train, group, work / "double", {1e-9, 1e-11, 1e-9});
        same_model_as_one_process<float>(d, train, group, work / "float", {2e-2, 2e-5, 1e-3});
        mismatches_are_refused(d, group);
        fs::remove_all(work);
    } catch (const std::exception& e) {
        piano::mpi::abort_group(MPI_COMM_WORLD, e.what(), 1);
    }
    int total = 0;
    MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) std::cout << (total == 0 ? "all checks passed" : std::to_string(total) + " checks failed") << std::endl;
    return total == 0 ? 0 : 1;
}
