// piano/ops/matmul.hpp: matrix product with optional transposes.
#pragma once

#include "piano/core/compiled.hpp"
#include "piano/core/tensor.hpp"

namespace piano {

/// C = op(A) op(B), where op(X) is X or X^T as the flags say.
/// Shapes: op(A) is [M,K], op(B) is [K,N], C is [M,N]. Transposes are folded into the
/// product (no transposed copy is made).
template <typename T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b, bool transpose_a = false, bool transpose_b = false) {
    const Index m = transpose_a ? a.cols() : a.rows();
    const Index ka = transpose_a ? a.rows() : a.cols();
    const Index kb = transpose_b ? b.cols() : b.rows();
    const Index n = transpose_b ? b.rows() : b.cols();
    if (ka != kb) {
        detail::throw_shape(std::string("matmul") + (transpose_a ? " (A^T)" : "") + (transpose_b ? " (B^T)" : ""),
                            "inner dimensions differ:", a.rows(), a.cols(), b.rows(), b.cols());
    }
    Matrix<T> c(m, n);
    const auto& A = a.value();
    const auto& B = b.value();
    if (!transpose_a && !transpose_b) c.noalias() = A * B;
    if (transpose_a && !transpose_b) c.noalias() = A.transpose() * B;
    if (!transpose_a && transpose_b) c.noalias() = A * B.transpose();
    if (transpose_a && transpose_b) c.noalias() = A.transpose() * B.transpose();

    return detail::make_result<T>(std::move(c), "matmul", {a.node(), b.node()}, [transpose_a, transpose_b](Node<T>& self) {
        // matmul(op(A)[M,K], op(B)[K,N]) -> [M,N]; G = dL/dC is [M,N].
        const auto& G = self.grad;
        Node<T>& na = *self.inputs[0];
        Node<T>& nb = *self.inputs[1];
        const auto& A = na.value;
        const auto& B = nb.value;
        if (na.requires_grad) {
            Matrix<T>& dA = na.grad_buffer();
            if (!transpose_a && !transpose_b) dA.noalias() += G * B.transpose();              // [M,K]
            if (transpose_a && !transpose_b) dA.noalias() += B * G.transpose();               // [K,M]
            if (!transpose_a && transpose_b) dA.noalias() += G * B;                           // [M,K]
            if (transpose_a && transpose_b) dA.noalias() += B.transpose() * G.transpose();    // [K,M]
        }
        if (nb.requires_grad) {
            Matrix<T>& dB = nb.grad_buffer();
            if (!transpose_a && !transpose_b) dB.noalias() += A.transpose() * G;              // [K,N]
            if (transpose_a && !transpose_b) dB.noalias() += A * G;                           // [K,N]
            if (!transpose_a && transpose_b) dB.noalias() += G.transpose() * A;               // [N,K]
            if (transpose_a && transpose_b) dB.noalias() += G.transpose() * A.transpose();    // [N,K]
        }
    });
}

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(Tensor<float> matmul<float>(const Tensor<float>&, const Tensor<float>&, bool, bool));

}  // namespace piano
