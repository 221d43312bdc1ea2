// piano/nn/layer_norm.hpp: the LayerNorm module (learned gain and bias per column).
#pragma once

#include <stdexcept>
#include <string>

#include "piano/core/compiled.hpp"
#include "piano/nn/module.hpp"
#include "piano/ops/layer_norm.hpp"

namespace piano {

/// Normalises each row to mean 0 and variance 1, then scales and shifts each column:
///   y = (x - μ_row) / √(σ²_row + eps) ⊙ weight + bias     (the layer_norm op)
/// Parameters: `weight` (the gain) [1, dim], initialised to 1; `bias` [1, dim],
/// initialised to 0. So a fresh layer only normalises.
template <typename T>
class LayerNorm : public Module<T> {
public:
    explicit LayerNorm(Index dim, T eps = T(1e-5)) : dim_(dim), eps_(eps) {
        if (dim < 1) throw std::invalid_argument("LayerNorm: dim must be positive, got " + std::to_string(dim));
        weight = this->register_parameter("weight", Tensor<T>::ones(1, dim));
        bias = this->register_parameter("bias", Tensor<T>::zeros(1, dim));
    }

    /// Requires: x is [N, dim]. Ensures: the result is [N, dim]; each row is normalised on
    /// its own, so rows of different lists never mix.
    Tensor<T> forward(const Tensor<T>& x) const {
        if (x.cols() != dim_) {
            throw ShapeError("LayerNorm: input " + x.shape() + " does not have " + std::to_string(dim_) + " columns");
        }
        return layer_norm(x, weight, bias, eps_);
    }

    Index dim() const { return dim_; }
    T eps() const { return eps_; }

    Tensor<T> weight;
    Tensor<T> bias;

private:
    Index dim_;
    T eps_;
};

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(class LayerNorm<float>);

}  // namespace piano
