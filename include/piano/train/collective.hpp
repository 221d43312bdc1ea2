// piano/train/collective.hpp: what train() needs from a group of processes ("ranks") that
// train one model together by data parallelism, without saying how they talk. The MPI
// implementation is piano/train/mpi.hpp, the only header that includes <mpi.h>; without
// a group (TrainOptions::collective = nullptr) train() is the single-process loop.
//
// Every rank holds the whole model and walks the same batch order. Rank r of R trains on
// its part of each batch of B requests, the requests [ceil(B r / R), ceil(B (r+1) / R))
// (data::Batcher::shard), and weighs its loss by its share of the whole batch
// (LossShare, model/losses.hpp), so that the parts' gradients add up to the gradient of
// the whole batch. Per step, after backward and before clipping, sum_step() makes every
// rank's gradients the sums over ranks (dense parameters summed in place, embedding
// tables through their touched rows only) and sums the loss values for the log. Every
// rank then clips and steps on identical gradients, so the parameters stay identical,
// which sum_step() checks every few steps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "piano/core/error.hpp"
#include "piano/core/tensor.hpp"
#include "piano/data/request.hpp"

namespace piano {

/// Marks an error that every rank of a group throws at once, because the group found it
/// together (a mismatched run, parameters that diverged): no rank is left waiting, so a
/// program may end every rank normally, rank 0 alone printing the message, where an error
/// one rank finds alone must abort the whole job.
class GroupWideError {
public:
    virtual ~GroupWideError() = default;
};

/// The ranks were not given the same run (Collective::check_same_run).
class MismatchedRunError : public ConfigError, public GroupWideError {
public:
    using ConfigError::ConfigError;
};

/// One thing every rank must agree on before training, as a name for messages
/// ("training data") and a 64-bit digest of its contents.
struct RunDigest {
    std::string name;
    std::uint64_t digest = 0;
};

/// FNV-1a, 64 bits: a digest of the bytes given, in order. Not cryptographic; it tells
/// ranks that read other files or were given other options apart.
class Digest {
public:
    Digest& bytes(const void* data, std::size_t count) {
        const auto* p = static_cast<const unsigned char*>(data);
        for (std::size_t i = 0; i < count; ++i) {
            state_ ^= p[i];
            state_ *= 1099511628211ULL;
        }
        return *this;
    }
    template <typename Number>
    Digest& number(Number x) {
        return bytes(&x, sizeof x);
    }
    /// The length first, so that ("ab", "c") and ("a", "bc") differ.
    Digest& text(const std::string& s) { return number(s.size()).bytes(s.data(), s.size()); }
    std::uint64_t value() const { return state_; }

private:
    std::uint64_t state_ = 14695981039346656037ULL;
};

/// A digest of everything a model reads of `requests`, in order: ids, labels, dense
/// features, history. Two ranks that loaded different files (or one file differently)
/// get different digests.
inline std::uint64_t digest_requests(const std::vector<data::Request>& requests) {
    Digest d;
    const auto fields = [&d](const data::ItemFields& f) {
        for (int k = 0; k < data::ItemFields::kCount; ++k) d.number(f[k]);
    };
    d.number(requests.size());
    for (const data::Request& r : requests) {
        d.number(r.query.size()).bytes(r.query.data(), r.query.size() * sizeof(data::Row));
        d.number(r.first_stage_order);
        d.number(r.candidates.size());
        for (const data::Candidate& c : r.candidates) {
            fields(c.fields);
            d.number(c.click).number(c.conv).number(c.label);
            d.number(c.dense.size()).bytes(c.dense.data(), c.dense.size() * sizeof(float));
        }
        d.number(r.history.size());
        for (const data::HistoryEvent& e : r.history) {
            fields(e.fields);
            d.number(e.has_query).number(static_cast<int>(e.type)).number(e.gap);
            d.number(e.query.size()).bytes(e.query.data(), e.query.size() * sizeof(data::Row));
        }
    }
    return d.value();
}

/// A digest of the parameters' values, bit for bit, in order: equal on two ranks exactly
/// when they hold the same model.
template <typename T>
std::uint64_t digest_parameters(const std::vector<std::pair<std::string, Tensor<T>>>& parameters) {
    Digest d;
    for (const auto& [name, p] : parameters) {
        d.text(name).number(p.rows()).number(p.cols());
        d.bytes(p.value().data(), static_cast<std::size_t>(p.size()) * sizeof(T));
    }
    return d.value();
}

/// The step's loss as train() logs it: the total and the four terms (ctr, ctcvr, list,
/// listwise; LossBreakdown's order), each already weighed by this rank's share of the
/// batch, so that their sums over ranks are the whole batch's values. A term this rank
/// did not compute (absent from the model, or an empty part) has present = false.
struct StepLoss {
    double total = 0.0;
    bool present[4] = {false, false, false, false};
    double terms[4] = {0.0, 0.0, 0.0, 0.0};
};

/// A group of ranks training one model. Every call is collective: every rank of the group
/// makes it, in the same order, or the group waits (a rank that dies ends the job, as the
/// launcher decides; mpi.hpp). Errors that the group finds together (a mismatched run,
/// diverged parameters) are thrown on every rank, so that no rank is left waiting.
class Collective {
public:
    virtual ~Collective() = default;

    virtual int rank() const = 0;
    virtual int ranks() const = 0;

    /// Before the first step: throws MismatchedRunError on every rank, naming what differs and on
    /// which ranks, unless every rank gives the same digests (model config, options, data,
    /// version: the same run).
    virtual void check_same_run(const std::vector<RunDigest>& digests) = 0;

    /// After backward, before clipping: every gradient in `parameters` becomes its sum over
    /// the ranks, and `loss` its sums (present: on any rank). A parameter has a gradient
    /// afterwards on every rank when it had one on any; a row-sparse gradient (an embedding
    /// table's, Node::grad_is_row_sparse) stays row-sparse, exchanged as its touched rows.
    /// Every few steps (the implementation says how many) it first checks that every rank
    /// holds the same parameters, throwing a TrainingError that is a GroupWideError on every
    /// rank if not. `step` is
    /// the 0-based optimizer step.
    virtual void sum_step(const std::vector<std::pair<std::string, Tensor<float>>>& parameters, StepLoss& loss,
                          long step) = 0;
    virtual void sum_step(const std::vector<std::pair<std::string, Tensor<double>>>& parameters, StepLoss& loss,
                          long step) = 0;
};

}  // namespace piano
