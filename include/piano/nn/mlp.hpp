// piano/nn/mlp.hpp: a stack of Linear layers with an activation between them.
#pragma once

#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/nn/dropout.hpp"
#include "piano/nn/linear.hpp"
#include "piano/nn/module.hpp"
#include "piano/ops/unary.hpp"

namespace piano {

/// The nonlinearity between the layers of an MLP. gelu is the tanh form.
enum class Activation { relu, gelu, tanh };

/// `activation` applied entrywise: [R,C] -> [R,C].
template <typename T>
Tensor<T> activate(const Tensor<T>& x, Activation activation) {
    switch (activation) {
        case Activation::relu: return relu(x);
        case Activation::gelu: return gelu(x);
        case Activation::tanh: return tanh(x);
    }
    throw std::invalid_argument("activate: unknown activation");
}

/// A multi-layer perceptron. widths = {in, h_1, ..., h_k, out} gives k+1 Linear layers:
///   h = dropout(act(Linear_0(x))), ..., out = Linear_k(h)
/// so the activation and dropout follow every layer but the last, whose output is left
/// raw (a logit or an embedding that the caller transforms).
///
/// Children: "layers" (a ModuleList of Linear; parameters "layers.0.weight",
/// "layers.0.bias", "layers.1.weight", ...) and "dropout" (a Dropout, no parameters, seeded
/// from rng). Layers followed by relu are He-initialised, the others Xavier-initialised.
template <typename T>
class MLP : public Module<T> {
public:
    /// Requires: widths has at least 2 entries, all positive; 0 <= dropout < 1.
    MLP(const std::vector<Index>& widths, std::mt19937_64& rng, Activation activation = Activation::relu,
        T dropout = T(0))
        : activation_(activation) {
        if (widths.size() < 2) {
            throw std::invalid_argument("MLP: widths needs at least 2 entries (input and output), got " +
                                        std::to_string(widths.size()));
        }
        layers_ = this->register_module("layers", std::make_shared<ModuleList<T, Linear<T>>>());
        for (std::size_t i = 0; i + 1 < widths.size(); ++i) {
            const bool hidden = i + 2 < widths.size();
            const Init init = hidden && activation == Activation::relu ? Init::kaiming : Init::xavier;
            layers_->push_back(std::make_shared<Linear<T>>(widths[i], widths[i + 1], rng, true, init));
        }
        dropout_ = this->register_module("dropout", std::make_shared<Dropout<T>>(dropout, rng()));
    }

    /// Requires: x is [N, widths.front()]. Ensures: the result is [N, widths.back()].
    Tensor<T> forward(const Tensor<T>& x) { return forward_from_first((*layers_)[0].forward(x)); }

    /// The first layer, for a caller that forms its output x W_0 + b_0 itself, from parts
    /// of x (PianoModel computes the parts that repeat down a list once per list).
    const Linear<T>& first_layer() const { return (*layers_)[0]; }

    /// forward(x), given h = first_layer().forward(x) (or the same value formed otherwise):
    /// the activation, dropout and the remaining layers. Requires: h is [N, widths[1]].
    Tensor<T> forward_from_first(const Tensor<T>& h0) {
        Tensor<T> h = h0;
        for (std::size_t i = 1; i < layers_->size(); ++i) {
            h = (*layers_)[i].forward(dropout_->forward(activate(h, activation_)));
        }
        return h;
    }

    Index in_features() const { return (*layers_)[0].in_features(); }
    Index out_features() const { return (*layers_)[layers_->size() - 1].out_features(); }

private:
    Activation activation_;
    std::shared_ptr<ModuleList<T, Linear<T>>> layers_;
    std::shared_ptr<Dropout<T>> dropout_;
};

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(Tensor<float> activate<float>(const Tensor<float>&, Activation));
PIANO_INSTANTIATE(class ModuleList<float, Linear<float>>);
PIANO_INSTANTIATE(class MLP<float>);

}  // namespace piano
