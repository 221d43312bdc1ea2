// piano/optim/sgd.hpp: stochastic gradient descent with momentum, Nesterov momentum and
// L2 weight decay; the update is PyTorch's torch.optim.SGD (with dampening 0).
#pragma once

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/core/error.hpp"
#include "piano/core/tensor.hpp"
#include "piano/optim/optimizer.hpp"

namespace piano {

struct SGDOptions {
    double learning_rate = 0.01;  // lr >= 0
    double momentum = 0.0;        // mu in [0, 1); 0 means plain SGD and no state
    bool nesterov = false;        // needs momentum > 0
    double weight_decay = 0.0;    // lambda >= 0, L2: added to the gradient
};

/// SGD, step t, for each parameter p with gradient g (all elementwise):
///   d = g + lambda p                                (L2 weight decay)
///   b = mu b + d        (b starts at 0, so the first step has b = d, as PyTorch)
///   p = p - lr (d + mu b)   with Nesterov,   p = p - lr b   without,   p = p - lr d   if mu = 0
/// Requires: options in range (ConfigError otherwise), names unique (std::invalid_argument).
/// Ensures: parameters without a gradient are left alone, momentum included. Every row is
/// updated, also for a row-sparse embedding gradient (untouched rows keep moving with their
/// momentum, as in PyTorch); Adam's lazy mode is the sparse alternative.
/// State: one slot "momentum" (b) per parameter when mu > 0, none when mu = 0.
template <typename T>
class SGD : public Optimizer<T> {
public:
    using typename Optimizer<T>::NamedParameter;

    SGD(std::vector<NamedParameter> parameters, const SGDOptions& options)
        : Optimizer<T>(std::move(parameters), options.learning_rate), options_(options) {
        detail::require_at_least("sgd", "learning_rate", options.learning_rate);
        if (!(options.momentum >= 0 && options.momentum < 1)) throw ConfigError("sgd: momentum must be in [0, 1)");
        detail::require_at_least("sgd", "weight_decay", options.weight_decay);
        if (options.nesterov && options.momentum == 0) throw ConfigError("sgd: nesterov needs momentum > 0");
        detail::check_optimizer_parameters(name(), this->parameters_);
        slots_ = detail::zero_slots(this->parameters_, slot_names().size());
    }

    void step() override {
        NoGradGuard no_grad;
        const T lr = static_cast<T>(this->learning_rate_);
        const T mu = static_cast<T>(options_.momentum);
        const T lambda = static_cast<T>(options_.weight_decay);
        for (std::size_t i = 0; i < this->parameters_.size(); ++i) {
            Tensor<T>& p = this->parameters_[i].second;
            if (!p.has_grad()) continue;
            Matrix<T>& value = p.mutable_value();
            Matrix<T> d = p.grad();
            if (options_.weight_decay != 0) d += lambda * value;
            if (options_.momentum == 0) {
                value -= lr * d;
                continue;
            }
            Matrix<T>& b = slots_[i][0];
            b = mu * b + d;
            if (options_.nesterov) {
                value -= lr * (d + mu * b);
            } else {
                value -= lr * b;
            }
        }
        ++this->step_;
    }

    std::string name() const override { return "sgd"; }

    OptimizerState<T> state() const override { return detail::export_slots(this->step_, this->parameters_, slots_); }

    void load_state(const OptimizerState<T>& state) override {
        slots_ = detail::import_slots(name(), slot_names(), this->parameters_, state);
        this->step_ = state.step;
    }

    const SGDOptions& options() const { return options_; }

    /// The slots state() stores per parameter, in order: {"momentum"}, or {} when mu = 0.
    std::vector<std::string> slot_names() const {
        return options_.momentum == 0 ? std::vector<std::string>{} : std::vector<std::string>{"momentum"};
    }

private:
    SGDOptions options_;
    std::vector<std::vector<Matrix<T>>> slots_;  // slots_[i]: the slots of parameters_[i]
};

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(class SGD<float>);

}  // namespace piano
