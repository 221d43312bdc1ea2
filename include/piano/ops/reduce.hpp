// piano/ops/reduce.hpp: sums and means over the whole tensor, each row, or each column.
//
// A reduction's backward hands the upstream gradient back to every entry that was
// summed: each input entry contributed with weight 1 (sum) or 1/n (mean of n entries),
// so its gradient is the gradient of the one output it went into, times that weight.
//
// Sums of nothing are 0 (so summing an empty tensor is fine). A mean over zero entries
// has no value, so the means throw ShapeError when an averaged axis is empty.
#pragma once

#include <string>

#include "piano/core/compiled.hpp"
#include "piano/core/tensor.hpp"

namespace piano {

namespace detail {

/// Throw if a mean would divide by zero: `count` is the number of entries averaged.
inline void require_entries(const char* op, const char* what, Index count, Index rows, Index cols) {
    if (count == 0) {
        throw ShapeError(std::string(op) + ": cannot average " + what + " of " + shape_string(rows, cols) +
                         ": they are empty");
    }
}

}  // namespace detail

/// Σ of all entries: [R,C] -> [1,1].
template <typename T>
Tensor<T> sum(const Tensor<T>& x) {
    Matrix<T> y = Matrix<T>::Constant(1, 1, x.value().sum());
    return detail::make_result<T>(std::move(y), "sum", {x.node()}, [](Node<T>& self) {
        // sum([R,C]) -> [1,1]; every entry gets the one upstream value g
        Node<T>& in = *self.inputs[0];
        in.grad_buffer().array() += self.grad(0, 0);
    });
}

/// The mean of all entries: [R,C] -> [1,1]. ShapeError if x is empty.
template <typename T>
Tensor<T> mean(const Tensor<T>& x) {
    const Index R = x.rows(), C = x.cols();
    detail::require_entries("mean", "the entries", R * C, R, C);
    Matrix<T> y = Matrix<T>::Constant(1, 1, x.value().mean());
    return detail::make_result<T>(std::move(y), "mean", {x.node()}, [](Node<T>& self) {
        // mean([R,C]) -> [1,1]; every entry gets g / (R C)
        Node<T>& in = *self.inputs[0];
        in.grad_buffer().array() += self.grad(0, 0) / static_cast<T>(in.value.size());
    });
}

/// Each row summed: [R,C] -> [R,1].
template <typename T>
Tensor<T> row_sum(const Tensor<T>& x) {
    Matrix<T> y = x.value().rowwise().sum();
    return detail::make_result<T>(std::move(y), "row_sum", {x.node()}, [](Node<T>& self) {
        // row_sum([R,C]) -> [R,1]; entry (r,c) gets G(r,0): G repeated along the columns
        Node<T>& in = *self.inputs[0];
        in.accumulate_grad(self.grad.replicate(1, in.value.cols()));
    });
}

/// Each row's mean: [R,C] -> [R,1]. ShapeError if C = 0 (rows of nothing have no mean).
template <typename T>
Tensor<T> row_mean(const Tensor<T>& x) {
    const Index R = x.rows(), C = x.cols();
    detail::require_entries("row_mean", "the rows", C, R, C);
    Matrix<T> y = x.value().rowwise().mean();
    return detail::make_result<T>(std::move(y), "row_mean", {x.node()}, [](Node<T>& self) {
        // row_mean([R,C]) -> [R,1]; entry (r,c) gets G(r,0) / C
        Node<T>& in = *self.inputs[0];
        const Index C = in.value.cols();
        in.accumulate_grad(self.grad.replicate(1, C) / static_cast<T>(C));
    });
}

/// Each column summed: [R,C] -> [1,C].
template <typename T>
Tensor<T> col_sum(const Tensor<T>& x) {
    Matrix<T> y = x.value().colwise().sum();
    return detail::make_result<T>(std::move(y), "col_sum", {x.node()}, [](Node<T>& self) {
        // col_sum([R,C]) -> [1,C]; entry (r,c) gets G(0,c): G repeated down the rows
        Node<T>& in = *self.inputs[0];
        in.accumulate_grad(self.grad.replicate(in.value.rows(), 1));
    });
}

/// Each column's mean: [R,C] -> [1,C]. ShapeError if R = 0 (columns of nothing have no mean).
template <typename T>
Tensor<T> col_mean(const Tensor<T>& x) {
    const Index R = x.rows(), C = x.cols();
    detail::require_entries("col_mean", "the columns", R, R, C);
    Matrix<T> y = x.value().colwise().mean();
    return detail::make_result<T>(std::move(y), "col_mean", {x.node()}, [](Node<T>& self) {
        // col_mean([R,C]) -> [1,C]; entry (r,c) gets G(0,c) / R
        Node<T>& in = *self.inputs[0];
        const Index R = in.value.rows();
        in.accumulate_grad(self.grad.replicate(R, 1) / static_cast<T>(R));
    });
}

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(Tensor<float> sum<float>(const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> mean<float>(const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> row_sum<float>(const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> row_mean<float>(const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> col_sum<float>(const Tensor<float>&));
PIANO_INSTANTIATE(Tensor<float> col_mean<float>(const Tensor<float>&));

}  // namespace piano
