// piano/ops/linear.hpp: the fused affine map y = x W + b, the workhorse of every layer.
//
// One node instead of matmul + add: the bias is added to each row in place (no [N,out]
// copy of it is made), and the backward forms all three gradients from one upstream G.
// Products run on contiguous row-major blocks of kRowBlock rows (piano/core/parallel.hpp),
// in parallel, so a row's result does not depend on the thread count.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/core/parallel.hpp"
#include "piano/core/tensor.hpp"

namespace piano {

/// y = x W + b. Shapes: x [N,in], W [in,out], b [1,out] or an undefined tensor (no bias)
/// -> [N,out]. Backward: dx = G Wᵀ, dW = xᵀ G, db = Σ_rows G.
/// ShapeError, naming the op and both shapes, if x's columns differ from W's rows or b is
/// not [1,out].
template <typename T>
Tensor<T> linear(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = Tensor<T>()) {
    detail::require_defined(x, "linear");
    detail::require_defined(weight, "linear");
    if (x.cols() != weight.rows()) {
        detail::throw_shape("linear", "x and W: inner dimensions differ:", x.rows(), x.cols(), weight.rows(),
                            weight.cols());
    }
    const bool with_bias = bias.defined();
    if (with_bias && (bias.rows() != 1 || bias.cols() != weight.cols())) {
        detail::throw_shape("linear", "b must be [1,out] for W:", bias.rows(), bias.cols(), weight.rows(),
                            weight.cols());
    }
    const Matrix<T>& X = x.value();
    const Matrix<T>& W = weight.value();
    const Index n = X.rows(), in = X.cols(), out = W.cols();
    Matrix<T> y(n, out);
    detail::parallel_rows(n, detail::kRowBlock, static_cast<double>(in * out), [&](Index r0, Index rows) {
        auto block = y.middleRows(r0, rows);
        if (in == 0) {
            block.setZero();
        } else {
            block.noalias() = X.middleRows(r0, rows) * W;
        }
        if (with_bias) block.rowwise() += bias.value().row(0);
    });

    std::vector<std::shared_ptr<Node<T>>> inputs = {x.node(), weight.node()};
    if (with_bias) inputs.push_back(bias.node());
    return detail::make_result<T>(std::move(y), "linear", std::move(inputs), [](Node<T>& self) {
        // linear(x [N,in], W [in,out], b [1,out]) -> [N,out]; G = dL/dy is [N,out].
        const Matrix<T>& G = self.grad;
        Node<T>& nx = *self.inputs[0];
        Node<T>& nw = *self.inputs[1];
        const Matrix<T>& X = nx.value;
        const Matrix<T>& W = nw.value;
        const Index n = X.rows(), in = X.cols(), out = W.cols();
        if (self.inputs.size() == 3 && self.inputs[2]->requires_grad) {
            // db = Σ_rows G   [1,out]: partial sums over fixed chunks of rows, added in order.
            constexpr Index kSumRows = 256;
            const Index chunks = std::max<Index>(1, (n + kSumRows - 1) / kSumRows);
            Matrix<T> partial = Matrix<T>::Zero(chunks, out);
            detail::parallel_for(chunks, static_cast<double>(n * out), [&](Index k) {
                const Index r0 = k * kSumRows, rows = std::min(kSumRows, n - r0);
                if (rows > 0) partial.row(k) = G.middleRows(r0, rows).colwise().sum();
            });
            self.inputs[2]->accumulate_grad(Matrix<T>(partial.colwise().sum()));
        }
        // Each gradient is written block by block: assigned if it is the first to arrive
        // (no zero fill), added otherwise.
        if (nx.requires_grad && in > 0) {
            const bool fresh = nx.begin_grad_write();  // dx += G Wᵀ   [N,in], row blocks
            Matrix<T>& dX = nx.grad;
            detail::parallel_rows(n, detail::kRowBlock, static_cast<double>(in * out), [&](Index r0, Index rows) {
                if (fresh) {
                    dX.middleRows(r0, rows).noalias() = G.middleRows(r0, rows) * W.transpose();
                } else {
                    dX.middleRows(r0, rows).noalias() += G.middleRows(r0, rows) * W.transpose();
                }
            });
        }
        if (nw.requires_grad && n > 0) {
            // dW += xᵀ G   [in,out], a sum over the N rows. It is formed in fixed chunks of
            // kSumRows rows, one product each (in parallel), and the chunks' partial sums are
            // then added in chunk order: the same additions for any thread count.
            constexpr Index kSumRows = 256;
            const Index chunks = (n + kSumRows - 1) / kSumRows;
            std::vector<Matrix<T>> partial(static_cast<std::size_t>(chunks));
            detail::parallel_for(chunks, static_cast<double>(n * in * out), [&](Index k) {
                const Index r0 = k * kSumRows, rows = std::min(kSumRows, n - r0);
                partial[static_cast<std::size_t>(k)].noalias() =
                    X.middleRows(r0, rows).transpose() * G.middleRows(r0, rows);
            });
            if (nw.has_grad) {
                for (const auto& p : partial) nw.grad_buffer() += p;
            } else {
                Matrix<T> sum = std::move(partial[0]);
                for (std::size_t k = 1; k < partial.size(); ++k) sum += partial[k];
                nw.accumulate_grad(std::move(sum));
            }
        }
    });
}

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(Tensor<float> linear<float>(const Tensor<float>&, const Tensor<float>&, const Tensor<float>&));

}  // namespace piano
