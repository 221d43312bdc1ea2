// piano/optim/optimizer.hpp: the interface every optimizer implements.
//
// An optimizer is given the model's named parameters once. Its per-parameter state (Adam's
// moments, SGD's momentum) is keyed by parameter name, never by position, so a checkpoint
// written by one build of a model loads into another whose parameters were registered in
// a different order, and a mismatch can be reported by name.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

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

}  // namespace piano
