// piano/ops/segment.hpp: reductions and softmax over the lists of a ragged batch.
//
// A ragged batch stacks the rows of S lists of different lengths into one [R,C] matrix,
// with no padding. `offsets` says where each list lives: it has S+1 entries,
//   offsets[0] = 0,  offsets[S] = R,  offsets[s] <= offsets[s+1],
// and list (segment) s is rows [offsets[s], offsets[s+1]). A segment may be empty
// (offsets[s] == offsets[s+1]). Example: lengths 2, 0, 3 give offsets {0, 2, 2, 5}.
//
// segment_sum and repeat_segments are adjoints of each other (one's backward is the
// other's forward), which is why repeat_segments exists: it adds a per-list vector to
// each of the list's candidates.
//
// Malformed offsets throw ShapeError naming the op, the bad entry and what was expected.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/core/tensor.hpp"

namespace piano {

namespace detail {

/// ShapeError unless offsets has at least one entry, starts at 0 and never decreases.
/// (Where they must end depends on the op, so the callers check that.)
inline void check_segment_offsets(const char* op, const std::vector<Index>& offsets) {
    const std::string name(op);
    if (offsets.empty()) {
        throw ShapeError(name + ": offsets is empty; S segments need S+1 offsets, starting at 0");
    }
    if (offsets[0] != 0) {
        throw ShapeError(name + ": offsets[0] is " + std::to_string(offsets[0]) + ", it must be 0");
    }
    for (std::size_t s = 1; s < offsets.size(); ++s) {
        if (offsets[s] < offsets[s - 1]) {
            throw ShapeError(name + ": offsets[" + std::to_string(s) + "] = " + std::to_string(offsets[s]) +
                             " is less than offsets[" + std::to_string(s - 1) + "] = " +
                             std::to_string(offsets[s - 1]) + "; offsets must be non-decreasing");
        }
    }
}

/// For the reductions: offsets valid and ending at x's row count R.
inline void check_offsets_cover(const char* op, const std::vector<Index>& offsets, Index rows, Index cols) {
    check_segment_offsets(op, offsets);
    if (offsets.back() != rows) {
        throw ShapeError(std::string(op) + ": the last offset is " + std::to_string(offsets.back()) +
                         ", it must equal the " + std::to_string(rows) + " rows of x " + shape_string(rows, cols));
    }
}

/// out.row(s) = Σ_{r in segment s} x.row(r): [R,C] -> [S,C]. An empty segment gives zeros.
template <typename T>
Matrix<T> sum_segments(const Matrix<T>& x, const std::vector<Index>& offsets) {
    const Index S = static_cast<Index>(offsets.size()) - 1;
    Matrix<T> out = Matrix<T>::Zero(S, x.cols());
    // Each segment's sum, in row order, is one piece's own output row.
    parallel_rows(S, 16, static_cast<double>(x.size()) / static_cast<double>(std::max<Index>(S, 1)), [&](Index s0, Index n) {
        for (Index s = s0; s < s0 + n; ++s) {
            for (Index r = offsets[s]; r < offsets[s + 1]; ++r) out.row(s) += x.row(r);
        }
    });
    return out;
}

/// out.row(r) += x.row(s) for every row r of segment s: [S,C] added into [R,C].
template <typename T>
void add_repeated(Matrix<T>& out, const Matrix<T>& x, const std::vector<Index>& offsets) {
    const Index S = static_cast<Index>(offsets.size()) - 1;
    // Segments own disjoint rows of out, so they run in parallel pieces.
    parallel_rows(S, 16, static_cast<double>(out.size()) / static_cast<double>(std::max<Index>(S, 1)), [&](Index s0, Index n) {
        for (Index s = s0; s < s0 + n; ++s) {
            for (Index r = offsets[s]; r < offsets[s + 1]; ++r) out.row(r) += x.row(s);
        }
    });
}

}  // namespace detail

/// Sum of each segment's rows. Shapes: x [R,C], S+1 offsets -> [S,C]; an empty segment
/// gives a zero row. Backward: every row of segment s receives G.row(s).
template <typename T>
Tensor<T> segment_sum(const Tensor<T>& x, const std::vector<Index>& offsets) {
    detail::check_offsets_cover("segment_sum", offsets, x.rows(), x.cols());
    return detail::make_result<T>(detail::sum_segments(x.value(), offsets), "segment_sum", {x.node()},
                                  [offsets](Node<T>& self) {
                                      // segment_sum([R,C], S+1 offsets) -> [S,C]; dx.row(r) += G.row(s)
                                      Node<T>& nx = *self.inputs[0];
                                      if (nx.requires_grad) detail::add_repeated(nx.grad_buffer(), self.grad, offsets);
                                  });
}

/// Mean of each segment's rows. Shapes: x [R,C], S+1 offsets -> [S,C]. An empty segment
/// has no mean; it gives a zero row, and its upstream gradient goes nowhere.
/// Backward: every row of segment s (length n_s > 0) receives G.row(s) / n_s.
template <typename T>
Tensor<T> segment_mean(const Tensor<T>& x, const std::vector<Index>& offsets) {
    detail::check_offsets_cover("segment_mean", offsets, x.rows(), x.cols());
    Matrix<T> out = detail::sum_segments(x.value(), offsets);
    for (Index s = 0; s < out.rows(); ++s) {
        const Index n = offsets[s + 1] - offsets[s];
        if (n > 0) out.row(s) /= static_cast<T>(n);
    }
    return detail::make_result<T>(std::move(out), "segment_mean", {x.node()}, [offsets](Node<T>& self) {
        // segment_mean([R,C], S+1 offsets) -> [S,C]; dx.row(r) += G.row(s) / n_s
        Node<T>& nx = *self.inputs[0];
        if (!nx.requires_grad) return;
        Matrix<T>& dx = nx.grad_buffer();
        for (Index s = 0; s + 1 < static_cast<Index>(offsets.size()); ++s) {
            const Index n = offsets[s + 1] - offsets[s];
            for (Index r = offsets[s]; r < offsets[s + 1]; ++r) dx.row(r) += self.grad.row(s) / static_cast<T>(n);
        }
    });
}

/// Softmax over the rows of each segment, independently for every column:
///   y[r,c] = exp(x[r,c]) / Σ_{r' in segment(r)} exp(x[r',c]).
/// Shapes: x [R,C], S+1 offsets -> [R,C]; each segment's column sums to 1 (empty segments
/// have no rows and are skipped). The column maximum is subtracted before exp, so large
/// scores do not overflow; a segment column that is entirely -inf gives NaN.
/// Backward, per segment and column: dx = y ⊙ (g − Σ_seg g ⊙ y).
template <typename T>
Tensor<T> segment_softmax(const Tensor<T>& x, const std::vector<Index>& offsets) {
    detail::check_offsets_cover("segment_softmax", offsets, x.rows(), x.cols());
    using RowArray = Eigen::Array<T, 1, Eigen::Dynamic>;
    const Matrix<T>& X = x.value();
    Matrix<T> out(X.rows(), X.cols());
    for (std::size_t s = 0; s + 1 < offsets.size(); ++s) {
        const Index begin = offsets[s], n = offsets[s + 1] - offsets[s];
        if (n == 0) continue;
        const auto block = X.middleRows(begin, n).array();                       // [n,C]
        const RowArray top = block.colwise().maxCoeff();                          // [1,C]
        const Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> e =
            (block.rowwise() - top).exp();                                        // [n,C], entries in (0,1]
        const RowArray total = e.colwise().sum();                                 // [1,C], >= 1
        out.middleRows(begin, n) = (e.rowwise() / total).matrix();
    }
    return detail::make_result<T>(std::move(out), "segment_softmax", {x.node()}, [offsets](Node<T>& self) {
        // segment_softmax([R,C], S+1 offsets) -> [R,C]
        // Within a segment column, dy_i/dx_j = y_i (δ_ij − y_j), so dx_j = y_j (g_j − Σ_i g_i y_i).
        Node<T>& nx = *self.inputs[0];
        if (!nx.requires_grad) return;
        Matrix<T>& dx = nx.grad_buffer();
        for (std::size_t s = 0; s + 1 < offsets.size(); ++s) {
            const Index begin = offsets[s], n = offsets[s + 1] - offsets[s];
            if (n == 0) continue;
            const auto y = self.value.middleRows(begin, n).array();              // [n,C]
            const auto g = self.grad.middleRows(begin, n).array();               // [n,C]
            const RowArray dot = (g * y).colwise().sum();                         // [1,C]
            dx.middleRows(begin, n).array() += y * (g.rowwise() - dot);
        }
    });
}

/// Row s of x copied to every row of segment s: out.row(r) = x.row(s) for r in
/// [offsets[s], offsets[s+1]). Shapes: x [S,C], S+1 offsets -> [offsets[S], C]; here the
/// offsets define R, so they must have exactly x.rows() + 1 entries. Used to add a
/// per-list vector to each of the list's candidates. The adjoint of segment_sum, so the
/// backward is a segment sum: dx.row(s) += Σ_{r in segment s} G.row(r).
template <typename T>
Tensor<T> repeat_segments(const Tensor<T>& x, const std::vector<Index>& offsets) {
    detail::check_segment_offsets("repeat_segments", offsets);
    if (static_cast<Index>(offsets.size()) != x.rows() + 1) {
        throw ShapeError("repeat_segments: x " + x.shape() + " has " + std::to_string(x.rows()) +
                         " segments (rows), so offsets needs " + std::to_string(x.rows() + 1) + " entries, got " +
                         std::to_string(offsets.size()));
    }
    Matrix<T> out = detail::parallel_zeros<T>(offsets.back(), x.cols());
    detail::add_repeated(out, x.value(), offsets);
    return detail::make_result<T>(std::move(out), "repeat_segments", {x.node()}, [offsets](Node<T>& self) {
        // repeat_segments([S,C], S+1 offsets) -> [R,C]; dx.row(s) += Σ_{r in s} G.row(r)
        Node<T>& nx = *self.inputs[0];
        if (nx.requires_grad) nx.accumulate_grad(detail::sum_segments(self.grad, offsets));
    });
}

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(Tensor<float> segment_sum<float>(const Tensor<float>&, const std::vector<Index>&));
PIANO_INSTANTIATE(Tensor<float> segment_mean<float>(const Tensor<float>&, const std::vector<Index>&));
PIANO_INSTANTIATE(Tensor<float> segment_softmax<float>(const Tensor<float>&, const std::vector<Index>&));
PIANO_INSTANTIATE(Tensor<float> repeat_segments<float>(const Tensor<float>&, const std::vector<Index>&));

}  // namespace piano
