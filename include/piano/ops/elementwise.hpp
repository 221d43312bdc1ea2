// piano/ops/elementwise.hpp: add, sub, mul, div with broadcasting.
//
// Broadcasting follows one rule per axis: the two sizes are equal, or one of them is 1
// and is repeated. So [R,C] op [1,C] (a row vector), [R,C] op [R,1] (a column vector),
// [R,C] op [1,1] (a scalar) and [R,1] op [1,C] (an outer op) all work. In backward, the
// gradient of a broadcast operand is summed over the axes it was repeated along.
#pragma once

#include "piano/core/tensor.hpp"

namespace piano {

namespace detail {

/// The broadcast result shape of two operands, or ShapeError naming the op.
inline std::pair<Index, Index> broadcast_shape(const char* op, Index r1, Index c1, Index r2, Index c2) {
    auto axis = [](Index x, Index y) -> Index { return x == y ? x : (x == 1 ? y : (y == 1 ? x : -1)); };
    const Index r = axis(r1, r2);
    const Index c = axis(c1, c2);
    if (r < 0 || c < 0) throw_shape(op, "shapes do not broadcast:", r1, c1, r2, c2);
    return {r, c};
}

/// `m` repeated up to [rows, cols] (a copy only when it is actually broadcast).
template <typename T>
Matrix<T> expand(const Matrix<T>& m, Index rows, Index cols) {
    if (m.rows() == rows && m.cols() == cols) return m;
    return m.replicate(rows / m.rows(), cols / m.cols());
}

/// Sum a full-shape gradient down to the operand's shape, undoing expand().
template <typename T>
Matrix<T> reduce_to(const Matrix<T>& g, Index rows, Index cols) {
    if (g.rows() == rows && g.cols() == cols) return g;
    if (rows == 1 && cols == 1) return Matrix<T>::Constant(1, 1, g.sum());
    if (rows == 1) return g.colwise().sum();
    return g.rowwise().sum();
}

enum class BinaryOp { add, sub, mul, div };

template <typename T>
Tensor<T> binary(const Tensor<T>& a, const Tensor<T>& b, BinaryOp kind) {
    static const char* names[] = {"add", "sub", "mul", "div"};
    const char* name = names[static_cast<int>(kind)];
    const auto [rows, cols] = broadcast_shape(name, a.rows(), a.cols(), b.rows(), b.cols());
    const Matrix<T> A = expand(a.value(), rows, cols);
    const Matrix<T> B = expand(b.value(), rows, cols);
    Matrix<T> out(rows, cols);
    switch (kind) {
        case BinaryOp::add: out = A + B; break;
        case BinaryOp::sub: out = A - B; break;
        case BinaryOp::mul: out = A.cwiseProduct(B); break;
        case BinaryOp::div: out = A.cwiseQuotient(B); break;
    }
    return make_result<T>(std::move(out), name, {a.node(), b.node()}, [kind](Node<T>& self) {
        // binary([R,C] or broadcast, [R,C] or broadcast) -> [R,C]
        const Matrix<T>& G = self.grad;
        Node<T>& na = *self.inputs[0];
        Node<T>& nb = *self.inputs[1];
        const Index R = G.rows(), C = G.cols();
        if (na.requires_grad) {
            Matrix<T> dA;
            switch (kind) {
                case BinaryOp::add:
                case BinaryOp::sub: dA = G; break;
                case BinaryOp::mul: dA = G.cwiseProduct(expand(nb.value, R, C)); break;
                case BinaryOp::div: dA = G.cwiseQuotient(expand(nb.value, R, C)); break;
            }
            na.accumulate_grad(reduce_to(dA, na.value.rows(), na.value.cols()));
        }
        if (nb.requires_grad) {
            Matrix<T> dB;
            switch (kind) {
                case BinaryOp::add: dB = G; break;
                case BinaryOp::sub: dB = -G; break;
                case BinaryOp::mul: dB = G.cwiseProduct(expand(na.value, R, C)); break;
                case BinaryOp::div: {
                    // d(a/b)/db = -a / b^2
                    const Matrix<T> Bx = expand(nb.value, R, C);
                    dB = -(G.cwiseProduct(expand(na.value, R, C))).cwiseQuotient(Bx.cwiseProduct(Bx));
                    break;
                }
            }
            nb.accumulate_grad(reduce_to(dB, nb.value.rows(), nb.value.cols()));
        }
    });
}

}  // namespace detail

/// a + b, broadcasting. Shapes: see the top of this header.
template <typename T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b) { return detail::binary(a, b, detail::BinaryOp::add); }
/// a - b, broadcasting.
template <typename T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b) { return detail::binary(a, b, detail::BinaryOp::sub); }
/// a ⊙ b (elementwise product), broadcasting.
template <typename T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b) { return detail::binary(a, b, detail::BinaryOp::mul); }
/// a / b (elementwise), broadcasting.
template <typename T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b) { return detail::binary(a, b, detail::BinaryOp::div); }

template <typename T>
Tensor<T> operator+(const Tensor<T>& a, const Tensor<T>& b) { return add(a, b); }
template <typename T>
Tensor<T> operator-(const Tensor<T>& a, const Tensor<T>& b) { return sub(a, b); }
template <typename T>
Tensor<T> operator*(const Tensor<T>& a, const Tensor<T>& b) { return mul(a, b); }
template <typename T>
Tensor<T> operator/(const Tensor<T>& a, const Tensor<T>& b) { return div(a, b); }

// Scalars on either side become 1x1 constants and broadcast. The scalar's type is not
// deduced (ScalarOf), so `x * 2` and `x_float * 0.5` convert to the tensor's type.
template <typename T>
using ScalarOf = typename Tensor<T>::Scalar;

template <typename T>
Tensor<T> operator+(const Tensor<T>& a, ScalarOf<T> s) { return add(a, Tensor<T>::scalar(s)); }
template <typename T>
Tensor<T> operator+(ScalarOf<T> s, const Tensor<T>& a) { return add(Tensor<T>::scalar(s), a); }
template <typename T>
Tensor<T> operator-(const Tensor<T>& a, ScalarOf<T> s) { return sub(a, Tensor<T>::scalar(s)); }
template <typename T>
Tensor<T> operator-(ScalarOf<T> s, const Tensor<T>& a) { return sub(Tensor<T>::scalar(s), a); }
template <typename T>
Tensor<T> operator*(const Tensor<T>& a, ScalarOf<T> s) { return mul(a, Tensor<T>::scalar(s)); }
template <typename T>
Tensor<T> operator*(ScalarOf<T> s, const Tensor<T>& a) { return mul(Tensor<T>::scalar(s), a); }
template <typename T>
Tensor<T> operator/(const Tensor<T>& a, ScalarOf<T> s) { return div(a, Tensor<T>::scalar(s)); }
template <typename T>
Tensor<T> operator/(ScalarOf<T> s, const Tensor<T>& a) { return div(Tensor<T>::scalar(s), a); }

}  // namespace piano
