// piano/ops/elementwise.hpp: add, sub, mul, div with broadcasting.
//
// Broadcasting follows one rule per axis: the two sizes are equal, or one of them is 1
// and is repeated. So [R,C] op [1,C] (a row vector), [R,C] op [R,1] (a column vector),
// [R,C] op [1,1] (a scalar) and [R,1] op [1,C] (an outer op) all work. In backward, the
// gradient of a broadcast operand is summed over the axes it was repeated along.
#pragma once

#include <type_traits>

#include "piano/core/compiled.hpp"
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

/// Calls f with row r of `m` broadcast to a result of C columns: the row as an Eigen array
/// when m has C columns, the scalar m(r', 0) when it has one (a column vector or a 1x1
/// scalar being repeated along the row). r' is r, or 0 when m has a single row.
template <typename T, typename F>
void with_broadcast_row(const Matrix<T>& m, Index R, Index C, Index r, F&& f) {
    const Index row = m.rows() == R ? r : 0;
    if (m.cols() == C) {
        f(m.row(row).array());
    } else {
        f(m(row, 0));
    }
}

/// out[R,C] = op(a, b) entrywise with a and b broadcast to [R,C] (see the top of this
/// header), row by row: a broadcast operand is read in place, never copied out to [R,C].
/// op receives two row arrays, or a row array and a scalar, and returns an array expression.
template <typename T, typename Op>
Matrix<T> broadcast_apply(const Matrix<T>& a, const Matrix<T>& b, Index R, Index C, Op op) {
    Matrix<T> out(R, C);
    const bool same = a.rows() == R && a.cols() == C && b.rows() == R && b.cols() == C;
    // Entrywise, so fixed row blocks run in parallel without changing a bit.
    parallel_rows(R, kRowBlock, static_cast<double>(C), [&](Index r0, Index n) {
        if (same) {
            out.middleRows(r0, n).array() = op(a.middleRows(r0, n).array(), b.middleRows(r0, n).array());
            return;
        }
        for (Index r = r0; r < r0 + n; ++r) {
            with_broadcast_row(a, R, C, r, [&](auto&& x) {
                with_broadcast_row(b, R, C, r, [&](auto&& y) {
                    using Result = std::decay_t<decltype(op(x, y))>;
                    if constexpr (std::is_arithmetic_v<Result>) {
                        out.row(r).setConstant(op(x, y));  // (cannot happen: C > 1 needs one array side)
                    } else {
                        out.row(r).array() = op(x, y);
                    }
                });
            });
        }
    });
    return out;
}

template <typename T>
Tensor<T> binary(const Tensor<T>& a, const Tensor<T>& b, BinaryOp kind) {
    static const char* names[] = {"add", "sub", "mul", "div"};
    const char* name = names[static_cast<int>(kind)];
    const auto [rows, cols] = broadcast_shape(name, a.rows(), a.cols(), b.rows(), b.cols());
    const Matrix<T>& A = a.value();
    const Matrix<T>& B = b.value();
    Matrix<T> out;
    switch (kind) {
        case BinaryOp::add: out = broadcast_apply(A, B, rows, cols, [](const auto& x, const auto& y) { return x + y; }); break;
        case BinaryOp::sub: out = broadcast_apply(A, B, rows, cols, [](const auto& x, const auto& y) { return x - y; }); break;
        case BinaryOp::mul: out = broadcast_apply(A, B, rows, cols, [](const auto& x, const auto& y) { return x * y; }); break;
        case BinaryOp::div: out = broadcast_apply(A, B, rows, cols, [](const auto& x, const auto& y) { return x / y; }); break;
    }
    return make_result<T>(std::move(out), name, {a.node(), b.node()}, [kind](Node<T>& self) {
        // binary([R,C] or broadcast, [R,C] or broadcast) -> [R,C]
        const Matrix<T>& G = self.grad;
        Node<T>& na = *self.inputs[0];
        Node<T>& nb = *self.inputs[1];
        const Index R = G.rows(), C = G.cols();
        // A gradient of the result's shape, summed down to the operand's shape if it was broadcast.
        auto give = [R, C](Node<T>& n, Matrix<T>&& d) {
            if (n.value.rows() == R && n.value.cols() == C) {
                n.accumulate_grad(std::move(d));
            } else {
                n.accumulate_grad(reduce_to(d, n.value.rows(), n.value.cols()));
            }
        };
        auto times = [](const auto& x, const auto& y) { return x * y; };
        auto over = [](const auto& x, const auto& y) { return x / y; };
        const bool a_full = na.value.rows() == R && na.value.cols() == C;
        const bool b_full = nb.value.rows() == R && nb.value.cols() == C;
        if (na.requires_grad) {
            switch (kind) {
                case BinaryOp::add:
                case BinaryOp::sub:
                    if (a_full) na.accumulate_grad(G);  // adds G in place, or copies it once
                    else give(na, Matrix<T>(G));
                    break;
                case BinaryOp::mul: give(na, broadcast_apply(G, nb.value, R, C, times)); break;  // G ⊙ b
                case BinaryOp::div: give(na, broadcast_apply(G, nb.value, R, C, over)); break;   // G / b
            }
        }
        if (nb.requires_grad) {
            switch (kind) {
                case BinaryOp::add:
                    if (b_full) nb.accumulate_grad(G);
                    else give(nb, Matrix<T>(G));
                    break;
                case BinaryOp::sub: give(nb, Matrix<T>(-G)); break;
                case BinaryOp::mul: give(nb, broadcast_apply(G, na.value, R, C, times)); break;  // G ⊙ a
                case BinaryOp::div: {
                    // d(a/b)/db = -a / b^2, as -(G ⊙ a) / (b ⊙ b)
                    const Matrix<T> ga = broadcast_apply(G, na.value, R, C, times);
                    give(nb, broadcast_apply(ga, nb.value, R, C, [](const auto& x, const auto& y) { return -x / (y * y); }));
                    break;
                }
            }
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

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(Tensor<float> add<float>(const Tensor<float>&, const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> sub<float>(const Tensor<float>&, const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> mul<float>(const Tensor<float>&, const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> div<float>(const Tensor<float>&, const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> operator+<float>(const Tensor<float>&, const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> operator-<float>(const Tensor<float>&, const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> operator*<float>(const Tensor<float>&, const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> operator/<float>(const Tensor<float>&, const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> operator+<float>(const Tensor<float>&, float));
PIANO_INSTANTIATE(Tensor<float> operator+<float>(float, const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> operator-<float>(const Tensor<float>&, float));
PIANO_INSTANTIATE(Tensor<float> operator-<float>(float, const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> operator*<float>(const Tensor<float>&, float));
PIANO_INSTANTIATE(Tensor<float> operator*<float>(float, const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> operator/<float>(const Tensor<float>&, float));
PIANO_INSTANTIATE(Tensor<float> operator/<float>(float, const Tensor<float>&));

}  // namespace piano
