// piano/train/mpi.hpp: the Collective of piano/train/collective.hpp over MPI. The only
// piano header that includes <mpi.h>: build with PIANO_USE_MPI=ON and link MPI (the
// piano::mpi CMake target does both). Every rank runs the same program:
//
//   piano::mpi::Session session(&argc, &argv);          // MPI_Init ... MPI_Finalize
//   piano::mpi::MpiCollective group(MPI_COMM_WORLD);
//   options.collective = &group;                        // then train() or fit(), on every rank
//
// What sum_step() exchanges per step, P parameters of which S are embedding tables:
//   1. one MPI_Allreduce (sum) of 9 + 2P doubles: the loss (total, 4 terms, 4 presence
//      flags) and, per parameter, whether this rank has a dense or a row-sparse gradient;
//   2. one MPI_Allreduce (sum) of every dense gradient, packed into one buffer of T;
//   3. one MPI_Allgather of each rank's S touched-row counts, then two MPI_Allgatherv: the
//      touched rows' ids (int64) and their gradient rows (D values of T each). Every rank
//      then adds the ranks' rows in rank order, so all of them get the same bits.
// Every `check_every` steps (from step 0, which also checks the initialisation) one
// MPI_Allgather of a 64-bit digest of the parameters checks that the ranks still hold one
// model: MPI_Allreduce is not required to give every rank the same bits, and a rank on
// another build or CPU could step differently.
//
// Faults: MPI calls use the communicator's error handler (MPI_ERRORS_ARE_FATAL by
// default), so a failed call ends the job; a rank that dies ends it too (the launcher,
// mpirun, kills the others and names the rank). An error one rank finds alone (a file it
// cannot read) must end the group: abort_group() prints it and calls MPI_Abort, since the
// other ranks would wait for that rank forever. Errors the group finds together
// (check_same_run, diverged parameters) are thrown on every rank as GroupWideError.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "piano/core/error.hpp"
#include "piano/core/tensor.hpp"
#include "piano/optim/optimizer.hpp"  // detail::distinct_rows
#include "piano/train/collective.hpp"
#include "piano/train/trainer.hpp"    // TrainingError

namespace piano::mpi {

/// MPI_Init_thread (funneled) in the constructor (unless MPI is already initialised), MPI_Finalize in the
/// destructor (when this Session initialised it).
class Session {
public:
    Session(int* argc, char*** argv) {
        int initialised = 0;
        MPI_Initialized(&initialised);
        if (!initialised) {
            // Funneled: train() calls MPI from the thread that called it, which may be the
            // master of an OpenMP team (piano/core/parallel.hpp, with_thread_team).
            int provided = 0;
            MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
            owner_ = true;
        }
    }
    ~Session() {
        int finalised = 0;
        MPI_Finalized(&finalised);
        if (owner_ && !finalised) MPI_Finalize();
    }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    /// True when an MPI launcher started this process (Open MPI's mpirun, or a PMI/PMIx
    /// launcher such as MPICH's mpiexec or Slurm's srun), so a program can start MPI only
    /// then and otherwise run as one process without touching MPI at all.
    static bool launched() {
        for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
            if (std::getenv(name)) return true;
        return false;
    }

private:
    bool owner_ = false;
};

/// The ranks' parameters differ (MpiCollective's periodic check).
class DivergedError : public TrainingError, public GroupWideError {
public:
    using TrainingError::TrainingError;
};

/// Ends every rank of `comm` with exit code `code`, after `message` on stderr (prefixed by
/// the rank): for an error found by one rank alone, which the others would wait for.
[[noreturn]] inline void abort_group(MPI_Comm comm, const std::string& message, int code) {
    int rank = 0, ranks = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &ranks);
    // One write, so that the launcher does not interleave it with another rank's output.
    const std::string line =
        "piano: error: rank " + std::to_string(rank) + " of " + std::to_string(ranks) + ": " + message + "\n";
    std::cerr.write(line.data(), static_cast<std::streamsize>(line.size()));
    std::cerr.flush();
    MPI_Abort(comm, code);
    std::abort();  // MPI_Abort does not return; this tells the compiler so
}

/// What this rank sent in sum_step, summed over the steps: for the communication volume.
struct Traffic {
    long steps = 0;
    double dense_bytes = 0;   // the dense gradients given to MPI_Allreduce
    double sparse_rows = 0;   // touched embedding rows given to MPI_Allgatherv
    double sparse_bytes = 0;  // their ids (8 bytes) and gradient rows
};

class MpiCollective final : public Collective {
public:
    /// The group of every rank of `comm`. check_every: steps between parameter checks
    /// (0: only at step 0).
    explicit MpiCollective(MPI_Comm comm = MPI_COMM_WORLD, long check_every = 100)
        : comm_(comm), check_every_(check_every) {
        if (check_every < 0) throw ConfigError("MpiCollective: check_every must be >= 0, got " + std::to_string(check_every));
        MPI_Comm_rank(comm_, &rank_);
        MPI_Comm_size(comm_, &ranks_);
    }

    int rank() const override { return rank_; }
    int ranks() const override { return ranks_; }
    const Traffic& traffic() const { return traffic_; }

    void check_same_run(const std::vector<RunDigest>& digests) override {
        // The number of digests first: a rank with another number runs another build.
        const int count = static_cast<int>(digests.size());
        std::vector<int> counts(static_cast<std::size_t>(ranks_));
        MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_);
        for (int r = 0; r < ranks_; ++r)
            if (counts[static_cast<std::size_t>(r)] != count)
                throw MismatchedRunError("the ranks run different piano builds: rank " + std::to_string(r) +
                                  " describes its run in " + std::to_string(counts[static_cast<std::size_t>(r)]) +
                                  " parts, rank " + std::to_string(rank_) + " in " + std::to_string(count));
        const std::size_t n = digests.size();
        std::vector<std::uint64_t> mine(n), all(n * static_cast<std::size_t>(ranks_));
        for (std::size_t i = 0; i < n; ++i) mine[i] = digests[i].digest;
        MPI_Allgather(mine.data(), count, MPI_UINT64_T, all.data(), count, MPI_UINT64_T, comm_);
        std::string problems;
        for (std::size_t i = 0; i < n; ++i) {
            std::string differing;
            for (int r = 1; r < ranks_; ++r)
                if (all[static_cast<std::size_t>(r) * n + i] != all[i])
                    differing += (differing.empty() ? "" : ", ") + std::to_string(r);
            if (!differing.empty())
                problems += (problems.empty() ? "" : "; ") + digests[i].name + ": rank " + differing +
                            " differs from rank 0";
        }
        if (!problems.empty())
            throw MismatchedRunError("the " + std::to_string(ranks_) + " ranks were not given the same run: " + problems +
                              " (every rank must run the same piano version with the same model, options and "
                              "data files)");
    }

    void sum_step(const std::vector<std::pair<std::string, Tensor<float>>>& parameters, StepLoss& loss,
                  long step) override {
        sum(parameters, loss, step);
    }
    void sum_step(const std::vector<std::pair<std::string, Tensor<double>>>& parameters, StepLoss& loss,
                  long step) override {
        sum(parameters, loss, step);
    }

private:
    template <typename T>
    static MPI_Datatype type() {
        static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "float or double");
        return std::is_same<T, float>::value ? MPI_FLOAT : MPI_DOUBLE;
    }

    // MPI counts are int: a buffer is reduced in pieces of at most 2^30 entries.
    template <typename T>
    void allreduce_sum(T* data, std::size_t count) const {
        constexpr std::size_t kPiece = std::size_t{1} << 30;
        for (std::size_t at = 0; at < count; at += kPiece)
            MPI_Allreduce(MPI_IN_PLACE, data + at, static_cast<int>(std::min(kPiece, count - at)), type<T>(), MPI_SUM,
                          comm_);
    }

    static int as_count(std::size_t n, const char* what) {
        if (n > static_cast<std::size_t>(INT_MAX))
            throw ShapeError(std::string("MpiCollective: ") + what + " of one step exceed MPI's int count (" +
                             std::to_string(n) + " entries); use a smaller batch");
        return static_cast<int>(n);
    }

    template <typename T>
    void check_parameters(const std::vector<std::pair<std::string, Tensor<T>>>& parameters, long step) const {
        const std::uint64_t mine = digest_parameters(parameters);
        std::vector<std::uint64_t> all(static_cast<std::size_t>(ranks_));
        MPI_Allgather(&mine, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, comm_);
        std::string differing;
        for (int r = 1; r < ranks_; ++r)
            if (all[static_cast<std::size_t>(r)] != all[0]) differing += (differing.empty() ? "" : ", ") + std::to_string(r);
        if (!differing.empty())
            throw DivergedError("step " + std::to_string(step + 1) + ": the parameters of rank " + differing +
                                " differ from rank 0's" + (step == 0 ? " before the first step" : "") +
                                ": the ranks no longer train one model (a rank computed another gradient or "
                                "update; run the same build on every rank)");
    }

    template <typename T>
    void sum(const std::vector<std::pair<std::string, Tensor<T>>>& parameters, StepLoss& loss, long step) {
        if (step == 0 || (check_every_ > 0 && step % check_every_ == 0)) check_parameters(parameters, step);
        const std::size_t P = parameters.size();

        // 1. The loss and which kind of gradient each parameter has on any rank.
        std::vector<double> meta(9 + 2 * P, 0.0);
        meta[0] = loss.total;
        for (int k = 0; k < 4; ++k) {
            if (!loss.present[k]) continue;
            meta[static_cast<std::size_t>(1 + k)] = loss.terms[k];
            meta[static_cast<std::size_t>(5 + k)] = 1.0;
        }
        for (std::size_t i = 0; i < P; ++i) {
            const Node<T>& n = *parameters[i].second.node();
            if (n.has_grad) meta[9 + 2 * i + (n.grad_is_row_sparse ? 1 : 0)] = 1.0;
        }
        allreduce_sum(meta.data(), meta.size());
        loss.total = meta[0];
        for (int k = 0; k < 4; ++k) {
            loss.present[k] = meta[static_cast<std::size_t>(5 + k)] > 0;
            loss.terms[k] = meta[static_cast<std::size_t>(1 + k)];
        }
        // Dense on any rank makes it dense everywhere, as one process would see it.
        std::vector<std::size_t> dense, sparse;
        for (std::size_t i = 0; i < P; ++i) {
            if (meta[9 + 2 * i] > 0) dense.push_back(i);
            else if (meta[10 + 2 * i] > 0) sparse.push_back(i);
        }
        ++traffic_.steps;

        // 2. Dense gradients: one buffer, summed in place.
        std::size_t total = 0;
        for (std::size_t i : dense) total += static_cast<std::size_t>(parameters[i].second.size());
        std::vector<T> buffer(total);
        std::size_t at = 0;
        for (std::size_t i : dense) {
            Tensor<T> p = parameters[i].second;
            const Matrix<T>& g = p.mutable_grad();  // zeros on a rank that had none
            std::copy(g.data(), g.data() + g.size(), buffer.data() + at);
            at += static_cast<std::size_t>(g.size());
        }
        allreduce_sum(buffer.data(), buffer.size());
        at = 0;
        for (std::size_t i : dense) {
            Tensor<T> p = parameters[i].second;
            Matrix<T>& g = p.mutable_grad();
            std::copy(buffer.data() + at, buffer.data() + at + g.size(), g.data());
            at += static_cast<std::size_t>(g.size());
        }
        traffic_.dense_bytes += static_cast<double>(total * sizeof(T));
        if (sparse.empty()) return;

        // 3. Embedding tables: this rank's distinct touched rows [k_s] and their gradient
        //    rows [k_s, D_s], parameter after parameter.
        const std::size_t S = sparse.size(), R = static_cast<std::size_t>(ranks_);
        std::vector<std::vector<Index>> rows(S);
        std::vector<long long> my_counts(S);
        std::vector<std::int64_t> my_ids;
        std::vector<T> my_values;
        for (std::size_t s = 0; s < S; ++s) {
            const Node<T>& n = *parameters[sparse[s]].second.node();
            if (n.has_grad) rows[s] = detail::distinct_rows(n.touched_rows);
            my_counts[s] = static_cast<long long>(rows[s].size());
            for (Index r : rows[s]) {
                my_ids.push_back(static_cast<std::int64_t>(r));
                my_values.insert(my_values.end(), n.grad.row(r).data(), n.grad.row(r).data() + n.grad.cols());
            }
        }
        std::vector<long long> counts(S * R);
        MPI_Allgather(my_counts.data(), static_cast<int>(S), MPI_LONG_LONG, counts.data(), static_cast<int>(S),
                      MPI_LONG_LONG, comm_);
        std::vector<int> id_counts(R), id_displs(R), value_counts(R), value_displs(R);
        std::size_t ids_total = 0, values_total = 0;
        for (std::size_t r = 0; r < R; ++r) {
            std::size_t ids = 0, values = 0;
            for (std::size_t s = 0; s < S; ++s) {
                const auto k = static_cast<std::size_t>(counts[r * S + s]);
                ids += k;
                values += k * static_cast<std::size_t>(parameters[sparse[s]].second.cols());
            }
            id_displs[r] = as_count(ids_total, "the touched rows");
            value_displs[r] = as_count(values_total, "the touched rows' gradients");
            id_counts[r] = as_count(ids, "the touched rows");
            value_counts[r] = as_count(values, "the touched rows' gradients");
            ids_total += ids;
            values_total += values;
        }
        as_count(ids_total, "the touched rows");
        as_count(values_total, "the touched rows' gradients");
        std::vector<std::int64_t> ids(ids_total);
        std::vector<T> values(values_total);
        MPI_Allgatherv(my_ids.data(), static_cast<int>(my_ids.size()), MPI_INT64_T, ids.data(), id_counts.data(),
                       id_displs.data(), MPI_INT64_T, comm_);
        MPI_Allgatherv(my_values.data(), static_cast<int>(my_values.size()), type<T>(), values.data(),
                       value_counts.data(), value_displs.data(), type<T>(), comm_);
        traffic_.sparse_rows += static_cast<double>(my_ids.size());
        traffic_.sparse_bytes += static_cast<double>(my_ids.size() * sizeof(std::int64_t) + my_values.size() * sizeof(T));

        // Every rank rebuilds each table's gradient from zero, adding rank 0's rows, then
        // rank 1's, ...: the same additions in the same order everywhere.
        std::vector<std::size_t> id_at(R), value_at(R);
        for (std::size_t r = 0; r < R; ++r) {
            id_at[r] = static_cast<std::size_t>(id_displs[r]);
            value_at[r] = static_cast<std::size_t>(value_displs[r]);
        }
        for (std::size_t s = 0; s < S; ++s) {
            Tensor<T> p = parameters[sparse[s]].second;
            Node<T>& n = *p.node();
            const Index cols = p.cols();
            p.zero_grad();
            n.accumulate_rows(Matrix<T>(0, cols), {});  // a gradient on every rank, even with no rows
            for (std::size_t r = 0; r < R; ++r) {
                const auto k = static_cast<std::size_t>(counts[r * S + s]);
                std::vector<Index> rank_rows(ids.begin() + static_cast<std::ptrdiff_t>(id_at[r]),
                                             ids.begin() + static_cast<std::ptrdiff_t>(id_at[r] + k));
                Matrix<T> rank_values(static_cast<Index>(k), cols);
                std::copy(values.begin() + static_cast<std::ptrdiff_t>(value_at[r]),
                          values.begin() + static_cast<std::ptrdiff_t>(value_at[r] + k * static_cast<std::size_t>(cols)),
                          rank_values.data());
                n.accumulate_rows(rank_values, rank_rows);
                id_at[r] += k;
                value_at[r] += k * static_cast<std::size_t>(cols);
            }
        }
    }

    MPI_Comm comm_;
    long check_every_;
    int rank_ = 0, ranks_ = 1;
    Traffic traffic_;
};

}  // namespace piano::mpi
