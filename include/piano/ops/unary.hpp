// piano/ops/unary.hpp: elementwise functions of one tensor.
//
// Every op here maps each entry on its own, so the output has the input's shape, any
// shape works (empty ones too), and backward is the chain rule entry by entry:
//     dx = G ⊙ f'(x)
// where G = dL/dy is the upstream gradient. Where f'(x) is cheaper to write in terms of
// the output y = f(x) (exp, sqrt, tanh, sigmoid), backward reads the saved output
// instead of recomputing f.
//
// sigmoid, log_sigmoid and softplus are written in forms that never overflow: they are
// finite for every finite input, including ±1000 in float.
//
// Inside namespace piano these templates hide the <cmath> functions of the same names
// for unqualified calls, so library code always writes std::exp, std::log, and so on.
#pragma once

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "piano/core/compiled.hpp"
#include "piano/core/parallel.hpp"
#include "piano/core/tensor.hpp"

namespace piano {

namespace detail {

/// 1 / (1 + e^-x) without overflow. For x >= 0, e^-x <= 1. For x < 0 the equal form
/// e^x / (1 + e^x) is used instead, whose e^x < 1. (The plain form at x = -1000 in float
/// would compute e^1000 = inf; the result happens to be 0, but its derivative is not.)
template <typename T>
T stable_sigmoid(T x) {
    if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
    const T e = std::exp(x);
    return e / (T(1) + e);
}

/// log(1 + e^x) = max(x, 0) + log1p(e^-|x|). The exponent is never positive, so nothing
/// overflows, and log1p keeps precision when e^-|x| is tiny. std::max(x, 0) returns x
/// when x is NaN, so a NaN input stays visible.
template <typename T>
T stable_softplus(T x) {
    return std::max(x, T(0)) + std::log1p(std::exp(-std::abs(x)));
}

}  // namespace detail

/// -x.
template <typename T>
Tensor<T> neg(const Tensor<T>& x) {
    detail::require_defined(x, "neg");
    return detail::make_result<T>(-x.value(), "neg", {x.node()}, [](Node<T>& self) {
        // neg([R,C]) -> [R,C]; d(-x)/dx = -1
        self.inputs[0]->accumulate_grad(-self.grad);
    });
}

/// -x, the same as neg(x).
template <typename T>
Tensor<T> operator-(const Tensor<T>& x) {
    return neg(x);
}

/// e^x. Overflows to inf for x above about 88 (float) or 709 (double).
template <typename T>
Tensor<T> exp(const Tensor<T>& x) {
    detail::require_defined(x, "exp");
    Matrix<T> y = x.value().array().exp().matrix();
    return detail::make_result<T>(std::move(y), "exp", {x.node()}, [](Node<T>& self) {
        // exp([R,C]) -> [R,C]; d(e^x)/dx = e^x = y, the saved output
        self.inputs[0]->accumulate_grad(self.grad.cwiseProduct(self.value));
    });
}

/// Natural logarithm. Defined for x > 0: log(0) = -inf and log(x < 0) = NaN, as in
/// std::log (anomaly detection reports either).
template <typename T>
Tensor<T> log(const Tensor<T>& x) {
    detail::require_defined(x, "log");
    Matrix<T> y = x.value().array().log().matrix();
    return detail::make_result<T>(std::move(y), "log", {x.node()}, [](Node<T>& self) {
        // log([R,C]) -> [R,C]; d(log x)/dx = 1 / x
        self.inputs[0]->accumulate_grad(self.grad.cwiseQuotient(self.inputs[0]->value));
    });
}

/// Square root. Defined for x >= 0; its gradient is infinite at x = 0.
template <typename T>
Tensor<T> sqrt(const Tensor<T>& x) {
    detail::require_defined(x, "sqrt");
    Matrix<T> y = x.value().array().sqrt().matrix();
    return detail::make_result<T>(std::move(y), "sqrt", {x.node()}, [](Node<T>& self) {
        // sqrt([R,C]) -> [R,C]; d(√x)/dx = 1 / (2√x) = 1 / (2y)
        self.inputs[0]->accumulate_grad(self.grad.cwiseQuotient(T(2) * self.value));
    });
}

/// x^p for a constant exponent p. As std::pow: a negative base with a non-integer
/// exponent gives NaN. The exponent is not deduced, so `pow(x, 2)` works for any T.
template <typename T>
Tensor<T> pow(const Tensor<T>& x, typename Tensor<T>::Scalar exponent) {
    detail::require_defined(x, "pow");
    Matrix<T> y = x.value().array().pow(exponent).matrix();
    return detail::make_result<T>(std::move(y), "pow", {x.node()}, [exponent](Node<T>& self) {
        // pow([R,C], p) -> [R,C]; d(x^p)/dx = p x^(p-1)
        Node<T>& in = *self.inputs[0];
        Matrix<T>& dx = in.grad_buffer();
        // x^0 = 1 is constant, so its gradient is 0. The formula would give 0 * 0^-1 = NaN
        // at x = 0, hence the special case (PyTorch makes the same one).
        if (exponent == T(0)) return;
        dx.array() += self.grad.array() * exponent * in.value.array().pow(exponent - T(1));
    });
}

/// Hyperbolic tangent, in (-1, 1).
template <typename T>
Tensor<T> tanh(const Tensor<T>& x) {
    detail::require_defined(x, "tanh");
    Matrix<T> y = x.value().array().tanh().matrix();
    return detail::make_result<T>(std::move(y), "tanh", {x.node()}, [](Node<T>& self) {
        // tanh([R,C]) -> [R,C]; d(tanh x)/dx = 1 - tanh²x = 1 - y²
        const auto& y = self.value.array();
        self.inputs[0]->accumulate_grad((self.grad.array() * (T(1) - y.square())).matrix());
    });
}

/// The logistic function 1 / (1 + e^-x), in [0, 1], computed without overflow.
template <typename T>
Tensor<T> sigmoid(const Tensor<T>& x) {
    detail::require_defined(x, "sigmoid");
    Matrix<T> y = x.value().unaryExpr([](T v) { return detail::stable_sigmoid(v); });
    return detail::make_result<T>(std::move(y), "sigmoid", {x.node()}, [](Node<T>& self) {
        // sigmoid([R,C]) -> [R,C]; dσ/dx = σ(1 - σ) = y(1 - y)
        const auto& y = self.value.array();
        self.inputs[0]->accumulate_grad((self.grad.array() * y * (T(1) - y)).matrix());
    });
}

/// log σ(x) = -softplus(-x) = min(x, 0) - log1p(e^-|x|). Never computed as log(sigmoid(x)),
/// which is log(0) = -inf once σ(x) underflows (x below about -88 in float).
template <typename T>
Tensor<T> log_sigmoid(const Tensor<T>& x) {
    detail::require_defined(x, "log_sigmoid");
    Matrix<T> y = x.value().unaryExpr([](T v) { return -detail::stable_softplus(-v); });
    return detail::make_result<T>(std::move(y), "log_sigmoid", {x.node()}, [](Node<T>& self) {
        // log_sigmoid([R,C]) -> [R,C]; d(log σ(x))/dx = 1 - σ(x) = σ(-x).
        // σ(-x) is computed directly: 1 - σ(x) would cancel to 0 for large x.
        const Matrix<T> s = self.inputs[0]->value.unaryExpr([](T v) { return detail::stable_sigmoid(-v); });
        self.inputs[0]->accumulate_grad(self.grad.cwiseProduct(s));
    });
}

/// max(x, 0). At x = 0 the gradient is taken as 0. A NaN input stays NaN.
template <typename T>
Tensor<T> relu(const Tensor<T>& x) {
    detail::require_defined(x, "relu");
    Matrix<T> y = x.value().unaryExpr([](T v) { return std::max(v, T(0)); });
    return detail::make_result<T>(std::move(y), "relu", {x.node()}, [](Node<T>& self) {
        // relu([R,C]) -> [R,C]; d relu/dx = 1 where x > 0, else 0
        const auto positive = (self.inputs[0]->value.array() > T(0)).template cast<T>();
        self.inputs[0]->accumulate_grad((self.grad.array() * positive).matrix());
    });
}

/// GELU, tanh approximation: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))).
/// Runs over fixed pieces of the entries in parallel (elementwise, so the split changes no
/// value). When a gradient will be needed, the forward also keeps dy/dx, which shares its
/// tanh with y, so the backward is one product.
template <typename T>
Tensor<T> gelu(const Tensor<T>& x) {
    detail::require_defined(x, "gelu");
    using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
    const T k = T(0.7978845608028654);  // √(2/π)
    const T c = T(0.044715);
    const Index kPiece = 16384;
    const Matrix<T>& X = x.value();
    const bool keep_slope = is_grad_enabled() && x.requires_grad();
    Matrix<T> y(X.rows(), X.cols()), slope;
    if (keep_slope) slope.resize(X.rows(), X.cols());
    detail::parallel_rows(X.size(), kPiece, 20.0, [&](Index b, Index n) {
        const auto xs = Eigen::Map<const Array>(X.data() + b, n);
        auto ys = Eigen::Map<Array>(y.data() + b, n);
        ys = (k * (xs + c * xs.cube())).tanh();  // t = tanh u, held in y's own piece until y is formed
        // With u = k(x + c x³) and t = tanh u:  dy/dx = 0.5 (1 + t) + 0.5 x (1 - t²) k (1 + 3 c x²)
        if (keep_slope) {
            Eigen::Map<Array>(slope.data() + b, n) =
                T(0.5) * (T(1) + ys) + T(0.5) * xs * (T(1) - ys.square()) * k * (T(1) + T(3) * c * xs.square());
        }
        ys = T(0.5) * xs * (T(1) + ys);
    });
    return detail::make_result<T>(std::move(y), "gelu", {x.node()}, [slope = std::move(slope), piece = kPiece](Node<T>& self) {
        // gelu([R,C]) -> [R,C]; dx = G ⊙ dy/dx, the slope kept by the forward
        Node<T>& in = *self.inputs[0];
        const bool fresh = in.begin_grad_write();
        detail::parallel_rows(slope.size(), piece, 2.0, [&](Index b, Index n) {
            auto dx = Eigen::Map<Array>(in.grad.data() + b, n);
            const auto g = Eigen::Map<const Array>(self.grad.data() + b, n);
            const auto s = Eigen::Map<const Array>(slope.data() + b, n);
            if (fresh) {
                dx = g * s;
            } else {
                dx += g * s;
            }
        });
    });
}

/// log(1 + e^x), a smooth relu, computed as max(x, 0) + log1p(e^-|x|) so it never overflows.
template <typename T>
Tensor<T> softplus(const Tensor<T>& x) {
    detail::require_defined(x, "softplus");
    Matrix<T> y = x.value().unaryExpr([](T v) { return detail::stable_softplus(v); });
    return detail::make_result<T>(std::move(y), "softplus", {x.node()}, [](Node<T>& self) {
        // softplus([R,C]) -> [R,C]; d softplus/dx = e^x / (1 + e^x) = σ(x)
        const Matrix<T> s = self.inputs[0]->value.unaryExpr([](T v) { return detail::stable_sigmoid(v); });
        self.inputs[0]->accumulate_grad(self.grad.cwiseProduct(s));
    });
}

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(Tensor<float> neg<float>(const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> operator-<float>(const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> exp<float>(const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> log<float>(const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> sqrt<float>(const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> pow<float>(const Tensor<float>&, float));
PIANO_INSTANTIATE(Tensor<float> tanh<float>(const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> sigmoid<float>(const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> log_sigmoid<float>(const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> relu<float>(const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> gelu<float>(const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> softplus<float>(const Tensor<float>&));

}  // namespace piano
