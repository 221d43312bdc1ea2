// piano/ops/indexing.hpp: picking, stacking, cutting and reshaping rows and columns.
//
// These ops move numbers around without arithmetic, so each backward is the reverse move:
// a gather's backward scatters (adding where a row was picked twice), a concat's backward
// cuts the gradient back into the parts, a slice's backward adds into the slice's place.
//
// Errors: a bad shape, an index outside the table, or a slice past the end throws
// ShapeError (also for bad ids, so callers catch one family) whose message names the op,
// the bad value and the valid range.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/core/parallel.hpp"
#include "piano/core/tensor.hpp"
#include "piano/ops/segment.hpp"

namespace piano {

namespace detail {

/// ShapeError unless every id names a row of a [rows, cols] table.
inline void check_row_ids(const char* op, const std::vector<Index>& ids, Index rows, Index cols) {
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0 || ids[i] >= rows) {
            throw ShapeError(std::string(op) + ": index " + std::to_string(ids[i]) + " (position " + std::to_string(i) +
                             ") is outside the valid rows [0," + std::to_string(rows) + ") of " +
                             shape_string(rows, cols));
        }
    }
}

/// ShapeError unless [begin, begin + count) lies inside [0, extent). `axis` is "rows" or
/// "cols". Written as count > extent - begin so that huge values cannot overflow.
inline void check_slice(const char* op, const char* axis, Index begin, Index count, Index extent, Index rows,
                        Index cols) {
    if (begin < 0 || count < 0 || begin > extent || count > extent - begin) {
        throw ShapeError(std::string(op) + ": begin " + std::to_string(begin) + " and count " + std::to_string(count) +
                         " do not fit in the valid " + axis + " [0," + std::to_string(extent) + ") of " +
                         shape_string(rows, cols));
    }
}

/// The rows of `x` named by `ids`, in order: out.row(i) = x.row(ids[i]). Rows are
/// contiguous (row-major), so each is one copy.
template <typename T>
Matrix<T> gather(const Matrix<T>& x, const std::vector<Index>& ids) {
    const Index cols = x.cols();
    Matrix<T> out(static_cast<Index>(ids.size()), cols);
    const T* src = x.data();
    T* dst = out.data();
    parallel_rows(out.rows(), 256, static_cast<double>(cols), [&](Index r0, Index n) {
        for (Index i = r0; i < r0 + n; ++i) {
            const Index from = ids[static_cast<std::size_t>(i)];
            std::copy(src + from * cols, src + (from + 1) * cols, dst + i * cols);
        }
    });
    return out;
}

/// The scatter-add that undoes gather: dx.row(ids[i]) += g.row(i). A row picked k times
/// receives the sum of its k gradient rows.
template <typename T>
void scatter_add(Matrix<T>& dx, const Matrix<T>& g, const std::vector<Index>& ids) {
    parallel_scatter(dx.rows(), ids.data(), static_cast<Index>(ids.size()), static_cast<double>(g.cols()),
                     [&](Index i) { dx.row(ids[static_cast<std::size_t>(i)]) += g.row(i); });
}

}  // namespace detail

/// out.row(i) = x.row(rows[i]). Shapes: x [R,C], rows has N entries in [0,R) (repeats
/// allowed) -> [N,C]. Backward scatters: dx.row(rows[i]) += G.row(i), into a dense gradient.
template <typename T>
Tensor<T> gather_rows(const Tensor<T>& x, const std::vector<Index>& rows) {
    detail::check_row_ids("gather_rows", rows, x.rows(), x.cols());
    return detail::make_result<T>(detail::gather(x.value(), rows), "gather_rows", {x.node()},
                                  [rows](Node<T>& self) {
                                      // gather_rows([R,C], N rows) -> [N,C]
                                      Node<T>& nx = *self.inputs[0];
                                      if (nx.requires_grad) detail::scatter_add(nx.grad_buffer(), self.grad, rows);
                                  });
}

/// Embedding lookup: out.row(i) = table.row(ids[i]). Shapes: table [V,D], ids has N entries
/// in [0,V) -> [N,D]. The forward is gather_rows; the difference is the backward. A table
/// has many rows (V ~ 1e5) and a batch touches few, so the backward marks the table's
/// gradient as row-sparse and records the ids it added into (Node::touched_rows, repeats
/// kept). Optimizers then update, and Tensor::zero_grad clears, only those rows instead of
/// sweeping all V. The buffer itself is still [V,D], allocated as zeros once.
template <typename T>
Tensor<T> embedding(const Tensor<T>& table, const std::vector<Index>& ids) {
    detail::check_row_ids("embedding", ids, table.rows(), table.cols());
    return detail::make_result<T>(detail::gather(table.value(), ids), "embedding", {table.node()},
                                  [ids](Node<T>& self) {
                                      // embedding([V,D], N ids) -> [N,D]; dTable.row(ids[i]) += G.row(i)
                                      Node<T>& nt = *self.inputs[0];
                                      if (!nt.requires_grad) return;
                                      nt.accumulate_rows(self.grad, ids);
                                  });
}

/// Several embedding lookups summed in one node: out.row(i) = Σ_k tables[k].row(ids[k][i]),
/// added in the order k = 0, 1, ... (an item's id and field embeddings; a history event's
/// item, behaviour and gap). Shapes: tables[k] [V_k, D], all with the same D (a table may be
/// listed more than once), ids[k] has N entries in [0, V_k) -> [N, D]. One pass over the
/// output instead of K gathers and K-1 additions, each of which would write [N, D].
/// Backward: for every k as `embedding`'s, dTable_k.row(ids[k][i]) += G.row(i), row-sparse.
/// Errors: ShapeError naming the op for no tables, a count of id lists other than the
/// number of tables, id lists of different lengths, tables of different widths, or an id
/// outside its table.
template <typename T>
Tensor<T> embedding_sum(const std::vector<Tensor<T>>& tables, const std::vector<std::vector<Index>>& ids) {
    const char* op = "embedding_sum";
    if (tables.empty()) throw ShapeError("embedding_sum: the list of tables is empty");
    if (ids.size() != tables.size()) {
        throw ShapeError("embedding_sum: " + std::to_string(tables.size()) + " tables but " +
                         std::to_string(ids.size()) + " lists of ids; each table needs its own list");
    }
    const Index n = static_cast<Index>(ids[0].size());
    const Index width = tables[0].cols();
    std::vector<std::shared_ptr<Node<T>>> inputs;
    for (std::size_t k = 0; k < tables.size(); ++k) {
        detail::require_defined(tables[k], op);
        if (tables[k].cols() != width) {
            detail::throw_shape(op, "table " + std::to_string(k) + " has a different width than table 0:",
                                tables[k].rows(), tables[k].cols(), tables[0].rows(), width);
        }
        if (static_cast<Index>(ids[k].size()) != n) {
            throw ShapeError("embedding_sum: ids list " + std::to_string(k) + " has " + std::to_string(ids[k].size()) +
                             " entries, list 0 has " + std::to_string(n) + "; all must have one per output row");
        }
        detail::check_row_ids(op, ids[k], tables[k].rows(), width);
        inputs.push_back(tables[k].node());
    }
    Matrix<T> out(n, width);
    // Raw row pointers: each lookup is a contiguous row of `width` entries.
    const std::size_t K = tables.size();
    std::vector<const T*> base(K);
    std::vector<const Index*> rows_of(K);
    for (std::size_t k = 0; k < K; ++k) {
        base[k] = tables[k].value().data();
        rows_of[k] = ids[k].data();
    }
    constexpr Index kAhead = 4;  // rows whose lookups are prefetched ahead of the one being summed
    detail::parallel_rows(n, 256, static_cast<double>(K * width), [&](Index r0, Index rows) {
        auto fetch = [&](Index i) {
            for (std::size_t k = 0; k < K; ++k) detail::prefetch(base[k] + rows_of[k][i] * width, width);
        };
        for (Index i = r0; i < std::min(r0 + kAhead, r0 + rows); ++i) fetch(i);
        for (Index i = r0; i < r0 + rows; ++i) {
            if (i + kAhead < r0 + rows) fetch(i + kAhead);
            T* dst = out.data() + i * width;
            const T* first = base[0] + rows_of[0][i] * width;
            for (Index c = 0; c < width; ++c) dst[c] = first[c];
            for (std::size_t k = 1; k < K; ++k) {
                const T* src = base[k] + rows_of[k][i] * width;
                for (Index c = 0; c < width; ++c) dst[c] += src[c];
            }
        }
    });
    return detail::make_result<T>(std::move(out), op, std::move(inputs), [ids](Node<T>& self) {
        // embedding_sum(K tables [V_k,D], K x N ids) -> [N,D]; dTable_k.row(ids[k][i]) += G.row(i)
        for (std::size_t k = 0; k < ids.size(); ++k) {
            Node<T>& table = *self.inputs[k];
            if (table.requires_grad) table.accumulate_rows(self.grad, ids[k]);
        }
    });
}

/// The mean of each bag of embedding rows: out.row(s) = (1/n_s) Σ_i table.row(ids[i]) over
/// bag s, the ids ids[offsets[s] .. offsets[s+1]) (n_s of them); an empty bag gives a zero
/// row. Shapes: table [V,D], ids N entries in [0,V), offsets S+1 valid segment offsets (see
/// piano/ops/segment.hpp) ending at N -> [S,D]. What segment_mean(embedding(table, ids),
/// offsets) computes, in one node without the [N,D] rows in between (PyTorch's
/// EmbeddingBag, mode "mean"). Backward: row-sparse, dTable.row(ids[i]) += G.row(s) / n_s.
/// Errors: ShapeError naming the op for an id outside the table or malformed offsets.
template <typename T>
Tensor<T> embedding_mean(const Tensor<T>& table, const std::vector<Index>& ids, const std::vector<Index>& offsets) {
    detail::require_defined(table, "embedding_mean");
    detail::check_row_ids("embedding_mean", ids, table.rows(), table.cols());
    detail::check_segment_offsets("embedding_mean", offsets);
    if (offsets.back() != static_cast<Index>(ids.size())) {
        throw ShapeError("embedding_mean: the last offset is " + std::to_string(offsets.back()) + ", it must equal the " +
                         std::to_string(ids.size()) + " ids");
    }
    const Matrix<T>& V = table.value();
    const Index S = static_cast<Index>(offsets.size()) - 1;
    Matrix<T> out = Matrix<T>::Zero(S, V.cols());
    detail::parallel_rows(S, 64, 4.0 * static_cast<double>(V.cols() * static_cast<Index>(ids.size())) / std::max<Index>(S, 1),
                          [&](Index s0, Index count) {
                              const Index D = V.cols();
                              for (Index s = s0; s < s0 + count; ++s) {
                                  const Index n = offsets[s + 1] - offsets[s];
                                  for (Index i = offsets[s]; i < offsets[s + 1]; ++i) {
                                      detail::prefetch(V.data() + ids[static_cast<std::size_t>(i)] * D, D);
                                  }
                                  T* dst = out.data() + s * D;
                                  for (Index i = offsets[s]; i < offsets[s + 1]; ++i) {
                                      const T* src = V.data() + ids[static_cast<std::size_t>(i)] * D;
                                      for (Index c = 0; c < D; ++c) dst[c] += src[c];
                                  }
                                  if (n > 0) out.row(s) /= static_cast<T>(n);
                              }
                          });
    return detail::make_result<T>(std::move(out), "embedding_mean", {table.node()}, [ids, offsets](Node<T>& self) {
        // embedding_mean([V,D], N ids, S+1 offsets) -> [S,D]; dTable.row(ids[i]) += G.row(s) / n_s
        Node<T>& nt = *self.inputs[0];
        if (nt.requires_grad) nt.accumulate_bag_means(self.grad, ids, offsets);
    });
}

/// The parts stacked vertically. Shapes: parts[k] is [R_k, C], all with the same C ->
/// [ΣR_k, C]. Backward: part k receives the rows of G where it was placed. A part listed
/// twice receives both slices.
template <typename T>
Tensor<T> concat_rows(const std::vector<Tensor<T>>& parts) {
    if (parts.empty()) throw ShapeError("concat_rows: the list of parts is empty");
    const Index cols = parts[0].cols();
    Index rows = 0;
    std::vector<std::shared_ptr<Node<T>>> inputs;
    for (std::size_t k = 0; k < parts.size(); ++k) {
        if (parts[k].cols() != cols) {
            detail::throw_shape("concat_rows", "part " + std::to_string(k) + " has a different column count than part 0:",
                                parts[k].rows(), parts[k].cols(), parts[0].rows(), cols);
        }
        rows += parts[k].rows();
        inputs.push_back(parts[k].node());
    }
    Matrix<T> out(rows, cols);
    Index at = 0;
    for (const auto& p : parts) {
        const Matrix<T>& v = p.value();
        detail::parallel_rows(v.rows(), detail::kRowBlock, static_cast<double>(cols),
                              [&](Index r0, Index n) { out.middleRows(at + r0, n) = v.middleRows(r0, n); });
        at += p.rows();
    }
    return detail::make_result<T>(std::move(out), "concat_rows", std::move(inputs), [](Node<T>& self) {
        // concat_rows([R_0,C], ..., [R_k,C]) -> [ΣR,C]; part k gets G.middleRows(its first row, R_k)
        Index at = 0;
        for (const auto& in : self.inputs) {
            const Index r = in->value.rows();
            if (in->requires_grad) in->accumulate_grad(self.grad.middleRows(at, r));
            at += r;
        }
    });
}

/// The parts side by side. Shapes: parts[k] is [R, C_k], all with the same R -> [R, ΣC_k].
/// Backward: part k receives the columns of G where it was placed.
template <typename T>
Tensor<T> concat_cols(const std::vector<Tensor<T>>& parts) {
    if (parts.empty()) throw ShapeError("concat_cols: the list of parts is empty");
    const Index rows = parts[0].rows();
    Index cols = 0;
    std::vector<std::shared_ptr<Node<T>>> inputs;
    for (std::size_t k = 0; k < parts.size(); ++k) {
        if (parts[k].rows() != rows) {
            detail::throw_shape("concat_cols", "part " + std::to_string(k) + " has a different row count than part 0:",
                                parts[k].rows(), parts[k].cols(), rows, parts[0].cols());
        }
        cols += parts[k].cols();
        inputs.push_back(parts[k].node());
    }
    Matrix<T> out(rows, cols);
    detail::parallel_rows(rows, detail::kRowBlock, static_cast<double>(cols), [&](Index r0, Index n) {
        Index at = 0;
        for (const auto& p : parts) {
            out.block(r0, at, n, p.cols()) = p.value().middleRows(r0, n);
            at += p.cols();
        }
    });
    return detail::make_result<T>(std::move(out), "concat_cols", std::move(inputs), [](Node<T>& self) {
        // concat_cols([R,C_0], ..., [R,C_k]) -> [R,ΣC]; part k gets G.middleCols(its first column, C_k)
        Index at = 0;
        for (const auto& in : self.inputs) {
            const Index c = in->value.cols();
            if (in->requires_grad) in->accumulate_grad(self.grad.middleCols(at, c));
            at += c;
        }
    });
}

/// Rows [begin, begin + count) of x. Shapes: x [R,C] -> [count, C]; needs
/// 0 <= begin, 0 <= count, begin + count <= R. Backward: dx.middleRows(begin, count) += G.
template <typename T>
Tensor<T> slice_rows(const Tensor<T>& x, Index begin, Index count) {
    detail::check_slice("slice_rows", "rows", begin, count, x.rows(), x.rows(), x.cols());
    Matrix<T> out = x.value().middleRows(begin, count);
    return detail::make_result<T>(std::move(out), "slice_rows", {x.node()}, [begin, count](Node<T>& self) {
        // slice_rows([R,C], begin, count) -> [count,C]
        Node<T>& nx = *self.inputs[0];
        if (nx.requires_grad) nx.grad_buffer().middleRows(begin, count) += self.grad;
    });
}

/// Columns [begin, begin + count) of x. Shapes: x [R,C] -> [R, count]; needs
/// 0 <= begin, 0 <= count, begin + count <= C. Backward: dx.middleCols(begin, count) += G.
template <typename T>
Tensor<T> slice_cols(const Tensor<T>& x, Index begin, Index count) {
    detail::check_slice("slice_cols", "cols", begin, count, x.cols(), x.rows(), x.cols());
    Matrix<T> out = x.value().middleCols(begin, count);
    return detail::make_result<T>(std::move(out), "slice_cols", {x.node()}, [begin, count](Node<T>& self) {
        // slice_cols([R,C], begin, count) -> [R,count]
        Node<T>& nx = *self.inputs[0];
        if (nx.requires_grad) nx.grad_buffer().middleCols(begin, count) += self.grad;
    });
}

/// The same numbers read as [rows, cols]: entry k of the row-major storage stays entry k.
/// So [2,3] -> [3,2] turns rows (a b c)(d e f) into (a b)(c d)(e f), not a transpose.
/// Needs rows, cols >= 0 and rows * cols == x.size(). Backward: G read back as x's shape.
template <typename T>
Tensor<T> reshape(const Tensor<T>& x, Index rows, Index cols) {
    if (rows < 0 || cols < 0 || detail::checked_size_product(rows, cols, "reshape") != x.size()) {
        throw ShapeError("reshape: cannot read x " + x.shape() + " (" + std::to_string(x.size()) + " entries) as " +
                         shape_string(rows, cols) + "; the shape must be non-negative with the same number of entries");
    }
    Matrix<T> out = Eigen::Map<const Matrix<T>>(x.value().data(), rows, cols);
    return detail::make_result<T>(std::move(out), "reshape", {x.node()}, [](Node<T>& self) {
        // reshape([R,C], r, c) -> [r,c], r*c == R*C; both row-major, so G's storage is dx's storage
        Node<T>& nx = *self.inputs[0];
        if (nx.requires_grad) {
            nx.accumulate_grad(Eigen::Map<const Matrix<T>>(self.grad.data(), nx.value.rows(), nx.value.cols()));
        }
    });
}

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(Tensor<float> gather_rows<float>(const Tensor<float>&, const std::vector<Index>&));
PIANO_INSTANTIATE(Tensor<float> embedding<float>(const Tensor<float>&, const std::vector<Index>&));
PIANO_INSTANTIATE(Tensor<float> embedding_sum<float>(const std::vector<Tensor<float>>&,
                                                     const std::vector<std::vector<Index>>&));
PIANO_INSTANTIATE(Tensor<float> embedding_mean<float>(const Tensor<float>&, const std::vector<Index>&,
                                                      const std::vector<Index>&));
PIANO_INSTANTIATE(Tensor<float> concat_rows<float>(const std::vector<Tensor<float>>&));
PIANO_INSTANTIATE(Tensor<float> concat_cols<float>(const std::vector<Tensor<float>>&));
PIANO_INSTANTIATE(Tensor<float> slice_rows<float>(const Tensor<float>&, Index, Index));
PIANO_INSTANTIATE(Tensor<float> slice_cols<float>(const Tensor<float>&, Index, Index));
PIANO_INSTANTIATE(Tensor<float> reshape<float>(const Tensor<float>&, Index, Index));

}  // namespace piano
