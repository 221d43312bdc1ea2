// piano/nn/module.hpp: the base class of every layer and model.
//
// A Module owns named parameters (leaf tensors that require grad) and named child modules.
// Names are what checkpoints and optimizer state key on, so they must be stable and
// unambiguous: `named_parameters()` walks the tree in registration order and joins names
// with dots ("encoder.layers.0.attn.w_q.weight"). That is why a registered name may not
// be empty or contain a dot, and may be registered only once per module.
//
// Modules are ordinary classes chosen at run time (no network-as-a-template-type); a
// child is held by shared_ptr so the parent can keep a typed member pointing to it.
#pragma once

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/core/tensor.hpp"

namespace piano {

template <typename T>
class Module {
public:
    using NamedParameter = std::pair<std::string, Tensor<T>>;

    Module() = default;
    virtual ~Module() = default;
    // Copying would silently share or split parameters: a module is made once and held.
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    /// Every parameter of this module and its children, in registration order, with
    /// dotted names. Requires: nothing. Ensures: names are unique.
    std::vector<NamedParameter> named_parameters() const {
        std::vector<NamedParameter> out;
        collect("", out);
        return out;
    }

    std::vector<Tensor<T>> parameters() const {
        std::vector<Tensor<T>> out;
        for (auto& [name, p] : named_parameters()) out.push_back(p);
        return out;
    }

    /// The total number of scalars in all parameters.
    Index parameter_count() const {
        Index n = 0;
        for (const auto& [name, p] : named_parameters()) n += p.size();
        return n;
    }

    /// Training mode (dropout active) for this module and all children.
    void train(bool on = true) {
        training_ = on;
        for (auto& [name, child] : children_) child->train(on);
    }
    /// Evaluation mode: dropout is the identity. Same as train(false).
    void eval() { train(false); }
    bool is_training() const { return training_; }

    void zero_grad() {
        for (auto& [name, p] : named_parameters()) p.zero_grad();
    }

    /// The hyperparameters that shaped this module, as checkpoints store them (key ->
    /// value). restore() refuses a checkpoint whose config gives any of these keys another
    /// value. Empty by default: a module without a config is matched by parameters alone.
    virtual std::map<std::string, std::string> config_map() const { return {}; }

    /// The direct children, in registration order.
    const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

protected:
    /// Adds a parameter (made a leaf that requires grad) under `name`; returns the handle.
    Tensor<T> register_parameter(const std::string& name, Tensor<T> parameter) {
        check_name(name);
        parameter.set_requires_grad(true);
        params_.emplace_back(name, parameter);
        return parameter;
    }

    /// Adds a child module under `name`; returns it so the caller can keep a typed pointer.
    template <typename M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
        check_name(name);
        if (!module) throw std::invalid_argument("register_module: module '" + name + "' is null");
        children_.emplace_back(name, module);
        return module;
    }

private:
    void check_name(const std::string& name) const {
        if (name.empty()) throw std::invalid_argument("Module: a parameter or module name must not be empty");
        if (name.find('.') != std::string::npos) {
            throw std::invalid_argument("Module: name '" + name + "' contains a dot; dots separate nested names");
        }
        for (const auto& [existing, p] : params_) {
            if (existing == name) throw std::invalid_argument("Module: name '" + name + "' is already registered");
        }
        for (const auto& [existing, m] : children_) {
            if (existing == name) throw std::invalid_argument("Module: name '" + name + "' is already registered");
        }
    }

    void collect(const std::string& prefix, std::vector<NamedParameter>& out) const {
        for (const auto& [name, p] : params_) out.emplace_back(prefix + name, p);
        for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
    }

    std::vector<NamedParameter> params_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    bool training_ = true;
};

/// An ordered list of child modules named "0", "1", ...: a stack of layers.
template <typename T, typename M>
class ModuleList : public Module<T> {
public:
    void push_back(std::shared_ptr<M> module) {
        items_.push_back(this->register_module(std::to_string(items_.size()), std::move(module)));
    }
    std::size_t size() const { return items_.size(); }
    M& operator[](std::size_t i) { return *items_.at(i); }
    const M& operator[](std::size_t i) const { return *items_.at(i); }
    auto begin() const { return items_.begin(); }
    auto end() const { return items_.end(); }

private:
    std::vector<std::shared_ptr<M>> items_;
};

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(class Module<float>);

}  // namespace piano
