// piano/nn/linear.hpp: y = x W + b.
#pragma once

#include <random>
#include <string>

#include "piano/core/compiled.hpp"
#include "piano/nn/init.hpp"
#include "piano/nn/module.hpp"
#include "piano/ops/elementwise.hpp"
#include "piano/ops/linear.hpp"
#include "piano/ops/matmul.hpp"

namespace piano {

enum class Init { xavier, kaiming };

/// A fully connected layer.
/// Requires: x is [N, in_features]. Ensures: the result is [N, out_features].
/// Parameters: `weight` [in_features, out_features] (stored input-major, so the forward is
/// one row-major product x W with no transpose; PyTorch stores the transpose) and, unless
/// disabled, `bias` [1, out_features], initialised to zero.
template <typename T>
class Linear : public Module<T> {
public:
    Linear(Index in_features, Index out_features, std::mt19937_64& rng, bool with_bias = true,
           Init init = Init::xavier)
        : in_(in_features), out_(out_features) {
        if (in_features <= 0 || out_features <= 0) {
            throw std::invalid_argument("Linear: features must be positive, got " + std::to_string(in_features) +
                                        " -> " + std::to_string(out_features));
        }
        weight = this->register_parameter(
            "weight", Tensor<T>(init == Init::xavier ? init::xavier_uniform<T>(in_, out_, rng)
                                                     : init::kaiming_normal<T>(in_, out_, rng)));
        if (with_bias) bias = this->register_parameter("bias", Tensor<T>::zeros(1, out_));
    }

    Tensor<T> forward(const Tensor<T>& x) const {
        if (x.cols() != in_) {
            throw ShapeError("Linear: input " + x.shape() + " does not have " + std::to_string(in_) +
                             " columns (weight " + weight.shape() + ")");
        }
        return linear(x, weight, bias);  // [N,in] x [in,out] + [1,out] -> [N,out], one fused node
    }

    Index in_features() const { return in_; }
    Index out_features() const { return out_; }

    Tensor<T> weight;
    Tensor<T> bias;  // undefined when built without bias

private:
    Index in_, out_;
};

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(class Linear<float>);

}  // namespace piano
