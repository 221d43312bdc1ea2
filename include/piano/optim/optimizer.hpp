// piano/optim/optimizer.hpp: the interface every optimizer implements.
//
// An optimizer is given the model's named parameters once. Its per-parameter state (Adam's
// moments, SGD's momentum) is keyed by parameter name, never by position, so a checkpoint
// written by one build of a model loads into another whose parameters were registered in
// a different order, and a mismatch can be reported by name.
#pragma once

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/core/error.hpp"
#include "piano/core/tensor.hpp"

namespace piano {

/// What a checkpoint stores of an optimizer: the step count and, per parameter name, the
/// optimizer's state buffers in a fixed order (e.g. Adam: first moment, second moment).
template <typename T>
struct OptimizerState {
    long step = 0;
    std::map<std::string, std::vector<Matrix<T>>> slots;
};

template <typename T>
class Optimizer {
public:
    using NamedParameter = std::pair<std::string, Tensor<T>>;

    explicit Optimizer(std::vector<NamedParameter> parameters, double learning_rate)
        : parameters_(std::move(parameters)), learning_rate_(learning_rate) {}
    virtual ~Optimizer() = default;

    /// Apply one update from the parameters' current gradients (parameters without a
    /// gradient are left alone), then count the step. Runs without recording a graph.
    virtual void step() = 0;

    /// A short name for messages and checkpoints ("sgd", "adam", "adamw").
    virtual std::string name() const = 0;

    /// The state a checkpoint saves, and its inverse. load_state throws CheckpointError
    /// naming the parameter whose state is missing or has the wrong shape.
    virtual OptimizerState<T> state() const = 0;
    virtual void load_state(const OptimizerState<T>& state) = 0;

    void zero_grad() {
        for (auto& [name, p] : parameters_) p.zero_grad();
    }

    double learning_rate() const { return learning_rate_; }
    /// Schedules call this before each step.
    void set_learning_rate(double lr) { learning_rate_ = lr; }
    long steps_taken() const { return step_; }
    const std::vector<NamedParameter>& parameters() const { return parameters_; }

protected:
    std::vector<NamedParameter> parameters_;
    double learning_rate_;
    long step_ = 0;
};

// The state plumbing every optimizer shares: checking parameter names, and saving and
// loading per-name state slots.
namespace detail {

/// std::invalid_argument unless every parameter is a defined tensor with a non-empty name
/// used once: state is keyed by name, so two parameters under one name could not be told
/// apart in a checkpoint.
template <typename T>
void check_optimizer_parameters(const std::string& optimizer,
                                const std::vector<std::pair<std::string, Tensor<T>>>& parameters) {
    std::set<std::string> seen;
    for (const auto& [name, p] : parameters) {
        if (name.empty()) throw std::invalid_argument(optimizer + ": a parameter has an empty name");
        if (!p.defined()) throw std::invalid_argument(optimizer + ": parameter '" + name + "' is an empty tensor handle");
        if (!seen.insert(name).second) {
            throw std::invalid_argument(optimizer + ": parameter name '" + name + "' is given twice");
        }
    }
}

/// For each parameter, one zero matrix of its shape per slot name.
template <typename T>
std::vector<std::vector<Matrix<T>>> zero_slots(const std::vector<std::pair<std::string, Tensor<T>>>& parameters,
                                               std::size_t slot_count) {
    std::vector<std::vector<Matrix<T>>> slots;
    slots.reserve(parameters.size());
    for (const auto& [name, p] : parameters) {
        slots.emplace_back(slot_count, Matrix<T>::Zero(p.rows(), p.cols()));
    }
    return slots;
}

/// The checkpoint form of per-parameter slots (slots[i] belongs to parameters[i]).
template <typename T>
OptimizerState<T> export_slots(long step, const std::vector<std::pair<std::string, Tensor<T>>>& parameters,
                               const std::vector<std::vector<Matrix<T>>>& slots) {
    OptimizerState<T> state;
    state.step = step;
    for (std::size_t i = 0; i < parameters.size(); ++i) state.slots[parameters[i].first] = slots[i];
    return state;
}

/// The slots in `state`, reordered to match `parameters`, after checking all of it: every
/// parameter has exactly the named slots, each of the parameter's shape, and no other name
/// appears. Throws CheckpointError naming the optimizer, the parameter and the slot.
/// Nothing is returned half-checked, so a failed load leaves the optimizer as it was.
template <typename T>
std::vector<std::vector<Matrix<T>>> import_slots(const std::string& optimizer, const std::vector<std::string>& slot_names,
                                                 const std::vector<std::pair<std::string, Tensor<T>>>& parameters,
                                                 const OptimizerState<T>& state) {
    const std::string where = optimizer + " load_state: ";
    if (state.step < 0) throw CheckpointError(where + "step count " + std::to_string(state.step) + " is negative");
    std::string expected;
    for (const auto& s : slot_names) expected += (expected.empty() ? "" : ", ") + s;

    std::set<std::string> known;
    std::vector<std::vector<Matrix<T>>> slots;
    slots.reserve(parameters.size());
    for (const auto& [name, p] : parameters) {
        known.insert(name);
        const auto it = state.slots.find(name);
        if (it == state.slots.end()) throw CheckpointError(where + "no state for parameter '" + name + "'");
        const auto& found = it->second;
        if (found.size() != slot_names.size()) {
            throw CheckpointError(where + "parameter '" + name + "' has " + std::to_string(found.size()) +
                                  " state slots, expected " + std::to_string(slot_names.size()) + " (" + expected +
                                  ")");
        }
        for (std::size_t k = 0; k < found.size(); ++k) {
            if (found[k].rows() != p.rows() || found[k].cols() != p.cols()) {
                throw CheckpointError(where + "parameter '" + name + "' slot " + slot_names[k] + " is " +
                                      shape_string(found[k].rows(), found[k].cols()) + ", the parameter is " +
                                      p.shape());
            }
        }
        slots.push_back(found);
    }
    for (const auto& [name, unused] : state.slots) {
        if (!known.count(name)) {
            throw CheckpointError(where + "state for '" + name + "', which is not a parameter of this optimizer");
        }
    }
    return slots;
}

/// The distinct rows of a row-sparse gradient, ascending. An embedding lists a row once per
/// lookup, but its gradient row already holds the sum, so each row must be used only once.
inline std::vector<Index> distinct_rows(std::vector<Index> rows) {
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    return rows;
}

}  // namespace detail

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(class Optimizer<float>);

}  // namespace piano
