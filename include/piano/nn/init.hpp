// piano/nn/init.hpp: seeded weight initialisers.
//
// Every initialiser takes the generator explicitly, so a model built with the same seed
// has the same weights on every machine and thread count.
#pragma once

#include <cmath>
#include <random>

#include "piano/core/tensor.hpp"

namespace piano::init {

/// Uniform(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010):
/// keeps the variance of activations and of gradients about equal across a linear layer.
template <typename T>
Matrix<T> xavier_uniform(Index fan_in, Index fan_out, std::mt19937_64& rng, double gain = 1.0) {
    const double a = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
    std::uniform_real_distribution<double> u(-a, a);
    Matrix<T> w(fan_in, fan_out);
    for (Index i = 0; i < w.size(); ++i) w.data()[i] = static_cast<T>(u(rng));
    return w;
}

/// Normal(0, 2 / fan_in) (He et al., 2015): for layers followed by a ReLU-like activation,
/// which zeroes about half of its inputs.
template <typename T>
Matrix<T> kaiming_normal(Index fan_in, Index fan_out, std::mt19937_64& rng) {
    std::normal_distribution<double> n(0.0, std::sqrt(2.0 / static_cast<double>(fan_in)));
    Matrix<T> w(fan_in, fan_out);
    for (Index i = 0; i < w.size(); ++i) w.data()[i] = static_cast<T>(n(rng));
    return w;
}

/// Normal(0, stddev^2): embedding tables and learned vectors.
template <typename T>
Matrix<T> normal(Index rows, Index cols, std::mt19937_64& rng, double stddev) {
    std::normal_distribution<double> n(0.0, stddev);
    Matrix<T> w(rows, cols);
    for (Index i = 0; i < w.size(); ++i) w.data()[i] = static_cast<T>(n(rng));
    return w;
}

}  // namespace piano::init
