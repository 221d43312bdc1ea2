// piano/optim/clip.hpp: gradient clipping by the global L2 norm.
#pragma once

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/core/error.hpp"
#include "piano/core/tensor.hpp"
#include "piano/optim/optimizer.hpp"  // detail::distinct_rows

namespace piano {

namespace detail {

/// The squared L2 norm of a parameter's gradient, summed in double so that float
/// gradients do not lose the small terms. A row-sparse gradient is zero outside its
/// touched rows, so only those are read (each once).
template <typename T>
double grad_squared_norm(const Tensor<T>& p) {
    const Node<T>& n = *p.node();
    if (!n.grad_is_row_sparse) return n.grad.template cast<double>().squaredNorm();
    double sum = 0.0;
    for (Index r : distinct_rows(n.touched_rows)) sum += n.grad.row(r).template cast<double>().squaredNorm();
    return sum;
}

/// g = g * factor, on the touched rows only for a row-sparse gradient.
template <typename T>
void scale_grad(Tensor<T>& p, T factor) {
    Node<T>& n = *p.node();
    if (!n.grad_is_row_sparse) {
        n.grad *= factor;
        return;
    }
    for (Index r : distinct_rows(n.touched_rows)) n.grad.row(r) *= factor;
}

}  // namespace detail

/// Scales all gradients together so that their global L2 norm is at most max_norm, and
/// returns the norm before clipping:
///   N = sqrt(sum over parameters of ||g||^2);   if N > max_norm: g = g * max_norm / (N + 1e-6)
/// The 1e-6 is PyTorch's (torch.nn.utils.clip_grad_norm_): it keeps the factor finite and
/// lands the clipped norm just under max_norm. The direction of the update is unchanged,
/// only its length. Parameters without a gradient are skipped.
/// Requires: max_norm >= 0 (ConfigError otherwise).
/// Ensures: if N is NaN or infinite, N is returned and no gradient is changed (PyTorch
/// would multiply every gradient by 0 or NaN); the caller decides, e.g. to skip the step.
template <typename T>
double clip_grad_norm(const std::vector<Tensor<T>>& parameters, double max_norm) {
    if (!(max_norm >= 0)) throw ConfigError("clip_grad_norm: max_norm must be >= 0, got " + std::to_string(max_norm));
    double squared = 0.0;
    for (const auto& p : parameters) {
        if (p.has_grad()) squared += detail::grad_squared_norm(p);
    }
    const double norm = std::sqrt(squared);
    if (!std::isfinite(norm)) return norm;
    const double factor = max_norm / (norm + 1e-6);
    if (factor < 1.0) {
        for (auto p : parameters) {
            if (p.has_grad()) detail::scale_grad(p, static_cast<T>(factor));
        }
    }
    return norm;
}

/// The same for named parameters, e.g. `clip_grad_norm(optimizer.parameters(), 1.0)`.
template <typename T>
double clip_grad_norm(const std::vector<std::pair<std::string, Tensor<T>>>& parameters, double max_norm) {
    std::vector<Tensor<T>> tensors;
    tensors.reserve(parameters.size());
    for (const auto& [name, p] : parameters) tensors.push_back(p);
    return clip_grad_norm(tensors, max_norm);
}

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(double clip_grad_norm<float>(const std::vector<Tensor<float>>&, double));
PIANO_INSTANTIATE(double clip_grad_norm<float>(const std::vector<std::pair<std::string, Tensor<float>>>&, double));

}  // namespace piano
