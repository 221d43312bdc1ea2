// piano/core/tensor.hpp: the tensor handle and the define-by-run graph.
//
// A Tensor<T> is a cheap handle (one shared_ptr) to a Node<T>. A node holds
//   - value:  a row-major Eigen matrix, [rows, cols];
//   - grad:   d(loss)/d(value), same shape, allocated the first time a gradient arrives;
//   - inputs: the nodes this one was computed from;
//   - backward_fn: one closure that reads `grad` and adds its share into each input's grad.
// Ops build the graph as they run (define-by-run). `backward()` sorts the graph
// topologically without recursion, then walks it in reverse, calling each closure once.
// Gradients are always accumulated (+=), never assigned, so a node used twice receives
// the sum of both uses.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "piano/core/error.hpp"
#include "piano/core/parallel.hpp"

namespace piano {

using Index = Eigen::Index;

/// The storage of every tensor: a dense, row-major matrix. Row-major because a ragged
/// batch stacks the rows of many lists, and a list is then one contiguous block.
template <typename T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A boolean mask (true = keep), row-major like Matrix. Masks are data, never differentiated.
using Mask = Eigen::Array<bool, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace detail {

inline bool& grad_mode_flag() {
    thread_local bool enabled = true;
    return enabled;
}
inline std::atomic<bool>& anomaly_flag() {
    static std::atomic<bool> enabled{false};
    return enabled;
}

/// A rows x cols matrix of zeros, zeroed in fixed blocks of rows in parallel. Backward
/// passes start large gradients from zero, and a fill on one thread is time the other
/// threads of a step spend waiting.
template <typename T>
Matrix<T> parallel_zeros(Index rows, Index cols) {
    Matrix<T> m(rows, cols);
    parallel_rows(rows, kRowBlock, static_cast<double>(cols), [&](Index r0, Index n) { m.middleRows(r0, n).setZero(); });
    return m;
}

/// a * b for two sizes, or ShapeError naming `op` when either is negative or the product
/// does not fit in an Index. Every size product computed from a caller's numbers goes
/// through here: a product that wraps around would pass a shape check it must fail.
inline Index checked_size_product(Index a, Index b, const std::string& op) {
    if (a < 0 || b < 0) {
        throw ShapeError(op + ": a size is negative in " + std::to_string(a) + " x " + std::to_string(b));
    }
    if (a != 0 && b > std::numeric_limits<Index>::max() / a) {
        throw ShapeError(op + ": " + std::to_string(a) + " x " + std::to_string(b) + " entries overflow the index type");
    }
    return a * b;
}
}  // namespace detail

/// True unless a NoGradGuard is alive on this thread.
inline bool is_grad_enabled() { return detail::grad_mode_flag(); }

/// While alive, ops on this thread record no graph and allocate no gradient: use it for
/// inference and for parameter updates. Guards nest; each restores the previous mode.
class NoGradGuard {
public:
    NoGradGuard() : previous_(detail::grad_mode_flag()) { detail::grad_mode_flag() = false; }
    ~NoGradGuard() { detail::grad_mode_flag() = previous_; }
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool previous_;
};

/// With anomaly detection on, every op checks its output (and, during backward, the
/// gradients it produces) and throws AnomalyError naming the first op that made a NaN or
/// Inf. It costs a pass over every value, so it is off by default.
inline void set_anomaly_detection(bool enabled) { detail::anomaly_flag() = enabled; }
inline bool is_anomaly_detection_enabled() { return detail::anomaly_flag(); }

/// One vertex of the graph. Users normally touch it only through Tensor.
template <typename T>
struct Node {
    Matrix<T> value;
    Matrix<T> grad;         // empty until a gradient arrives (see has_grad)
    bool has_grad = false;  // false: the gradient is zero and not allocated
    bool requires_grad = false;
    std::string op = "leaf";  // the op that produced the value, for messages
    std::vector<std::shared_ptr<Node>> inputs;
    std::function<void(Node&)> backward_fn;  // empty for leaves
    // True once a backward() without retain_graph dropped this node's inputs and closure:
    // it still requires grad but can pass nothing on, so a later backward that reaches it
    // throws instead of silently stopping here.
    bool released = false;

    // Sparse-gradient bookkeeping for embedding tables. When grad_is_row_sparse is true,
    // every non-zero of grad lies in touched_rows (the rows gathers added into since the
    // last zero_grad; rows may repeat), so an optimizer may update only those rows.
    bool grad_is_row_sparse = false;
    std::vector<Index> touched_rows;

    Node() = default;
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    // Releasing a long chain node by node through shared_ptr destructors would recurse once
    // per node and overflow the stack on deep graphs, so inputs that this node holds the
    // last reference to are unlinked iteratively instead.
    ~Node() {
        std::vector<std::shared_ptr<Node>> pending = std::move(inputs);
        while (!pending.empty()) {
            std::shared_ptr<Node> n = std::move(pending.back());
            pending.pop_back();
            if (n && n.use_count() == 1) {
                for (auto& in : n->inputs) pending.push_back(std::move(in));
                n->inputs.clear();
            }
        }
    }

    /// grad += g, allocating a zero gradient first if there is none. Throws ShapeError if
    /// g does not have the value's shape: a backward bug must never write out of bounds.
    template <typename Derived>
    void accumulate_grad(const Eigen::MatrixBase<Derived>& g) {
        if (g.rows() != value.rows() || g.cols() != value.cols()) {
            throw ShapeError("backward of " + op + ": gradient " + shape_string(g.rows(), g.cols()) +
                             " does not match value " + shape_string(value.rows(), value.cols()));
        }
        const bool fresh = !has_grad;
        if (fresh) grad.resize(value.rows(), value.cols());
        has_grad = true;
        grad_is_row_sparse = false;
        // Entrywise, so fixed row blocks in parallel give the same bits on any thread count.
        detail::parallel_rows(g.rows(), detail::kRowBlock, static_cast<double>(g.cols()), [&](Index r0, Index n) {
            if (fresh) {
                grad.middleRows(r0, n) = g.middleRows(r0, n);
            } else {
                grad.middleRows(r0, n).noalias() += g.middleRows(r0, n);
            }
        });
    }

    /// grad += g for a gradient matrix the caller no longer needs: it is moved in, not
    /// copied, when no gradient has arrived yet. Same checks as the overload above.
    void accumulate_grad(Matrix<T>&& g) {
        if (g.rows() != value.rows() || g.cols() != value.cols()) {
            throw ShapeError("backward of " + op + ": gradient " + shape_string(g.rows(), g.cols()) +
                             " does not match value " + shape_string(value.rows(), value.cols()));
        }
        if (!has_grad) {
            grad = std::move(g);
            has_grad = true;
        } else {
            detail::parallel_rows(g.rows(), detail::kRowBlock, static_cast<double>(g.cols()),
                                  [&](Index r0, Index n) { grad.middleRows(r0, n).noalias() += g.middleRows(r0, n); });
        }
        grad_is_row_sparse = false;
    }

    /// grad.row(rows[i]) += g.row(i) for every i: the backward of a gather. The gradient
    /// stays row-sparse (every non-zero lies in touched_rows) unless a dense contribution
    /// already arrived since the last zero_grad.
    void accumulate_rows(const Matrix<T>& g, const std::vector<Index>& rows) {
        const bool stays_sparse = !has_grad || grad_is_row_sparse;
        if (!has_grad) {
            grad = detail::parallel_zeros<T>(value.rows(), value.cols());
            has_grad = true;
        }
        const Index cols = grad.cols(), n = static_cast<Index>(rows.size());
        // Rows of a large table are cache misses: the row kAhead lookups on is fetched early.
        constexpr Index kAhead = 4;
        detail::parallel_scatter(grad.rows(), rows.data(), n, static_cast<double>(cols), [&](Index i) {
            if (i + kAhead < n) detail::prefetch(grad.data() + rows[static_cast<std::size_t>(i + kAhead)] * cols, cols);
            T* dst = grad.data() + rows[static_cast<std::size_t>(i)] * cols;
            const T* src = g.data() + i * cols;
            for (Index c = 0; c < cols; ++c) dst[c] += src[c];
        });
        grad_is_row_sparse = stays_sparse;
        if (stays_sparse) touched_rows.insert(touched_rows.end(), rows.begin(), rows.end());
    }

    /// The backward of a mean over bags of gathered rows: for every bag s, the ids
    /// ids[offsets[s] .. offsets[s+1]) (n_s of them), grad.row(id) += g.row(s) / n_s.
    /// Row-sparse bookkeeping as in accumulate_rows.
    void accumulate_bag_means(const Matrix<T>& g, const std::vector<Index>& ids, const std::vector<Index>& offsets) {
        const bool stays_sparse = !has_grad || grad_is_row_sparse;
        if (!has_grad) {
            grad = detail::parallel_zeros<T>(value.rows(), value.cols());
            has_grad = true;
        }
        // The bag of every id, so the ids can be scattered one by one (in order).
        std::vector<Index> bag(ids.size());
        for (std::size_t s = 0; s + 1 < offsets.size(); ++s) {
            for (Index i = offsets[s]; i < offsets[s + 1]; ++i) bag[static_cast<std::size_t>(i)] = static_cast<Index>(s);
        }
        const Index cols = grad.cols();
        detail::parallel_scatter(grad.rows(), ids.data(), static_cast<Index>(ids.size()), static_cast<double>(cols),
                                 [&](Index i) {
                                     const Index s = bag[static_cast<std::size_t>(i)];
                                     const T n = static_cast<T>(offsets[static_cast<std::size_t>(s) + 1] -
                                                                offsets[static_cast<std::size_t>(s)]);
                                     grad.row(ids[static_cast<std::size_t>(i)]) += g.row(s) / n;
                                 });
        grad_is_row_sparse = stays_sparse;
        if (stays_sparse) touched_rows.insert(touched_rows.end(), ids.begin(), ids.end());
    }

    /// For backward code that writes the whole gradient in pieces (row blocks in parallel):
    /// returns true when no gradient had arrived, in which case `grad` is now allocated
    /// *uninitialised* and the caller must assign (=) every entry; false when it must add
    /// (+=) into the existing gradient. Either way the gradient counts as dense afterwards.
    bool begin_grad_write() {
        grad_is_row_sparse = false;
        if (has_grad) return false;
        grad.resize(value.rows(), value.cols());
        has_grad = true;
        return true;
    }

    /// The gradient, allocating zeros if none has arrived: for backward code that adds
    /// into it directly. The caller may write anywhere, so the gradient counts as dense.
    Matrix<T>& grad_buffer() {
        if (!has_grad) {
            grad = detail::parallel_zeros<T>(value.rows(), value.cols());
            has_grad = true;
        }
        grad_is_row_sparse = false;
        return grad;
    }
};

template <typename T>
class Tensor;

namespace detail {
template <typename T>
bool all_finite(const Matrix<T>& m) {
    return m.allFinite();
}
}  // namespace detail

/// A handle to a node. Copying a Tensor copies the handle, not the data (like
/// std::shared_ptr); use `detach()` or `value()` to take the numbers.
template <typename T>
class Tensor {
public:
    using Scalar = T;
    using NodePtr = std::shared_ptr<Node<T>>;

    /// An empty handle; most calls on it throw std::logic_error.
    Tensor() = default;

    /// A leaf holding `value`. Parameters are leaves with requires_grad = true.
    explicit Tensor(Matrix<T> value, bool requires_grad = false) : node_(std::make_shared<Node<T>>()) {
        node_->value = std::move(value);
        node_->requires_grad = requires_grad;
    }

    explicit Tensor(NodePtr node) : node_(std::move(node)) {}

    /// The factories throw ShapeError for a negative shape or one whose size overflows.
    static Tensor zeros(Index rows, Index cols, bool requires_grad = false) {
        detail::checked_size_product(rows, cols, "Tensor::zeros");
        return Tensor(Matrix<T>::Zero(rows, cols), requires_grad);
    }
    static Tensor ones(Index rows, Index cols, bool requires_grad = false) {
        detail::checked_size_product(rows, cols, "Tensor::ones");
        return Tensor(Matrix<T>::Ones(rows, cols), requires_grad);
    }
    static Tensor constant(Index rows, Index cols, T value, bool requires_grad = false) {
        detail::checked_size_product(rows, cols, "Tensor::constant");
        return Tensor(Matrix<T>::Constant(rows, cols, value), requires_grad);
    }
    /// A 1x1 tensor: how a scalar enters the graph (it broadcasts in elementwise ops).
    static Tensor scalar(T value, bool requires_grad = false) { return constant(1, 1, value, requires_grad); }
    /// Entries drawn from N(0, stddev^2) with the given generator, so results are seeded.
    template <typename Rng>
    static Tensor randn(Index rows, Index cols, Rng& rng, T stddev = T(1), bool requires_grad = false) {
        detail::checked_size_product(rows, cols, "Tensor::randn");
        std::normal_distribution<double> normal(0.0, static_cast<double>(stddev));
        Matrix<T> m(rows, cols);
        for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<T>(normal(rng));
        return Tensor(std::move(m), requires_grad);
    }

    bool defined() const { return static_cast<bool>(node_); }
    const NodePtr& node() const { return node_; }

    const Matrix<T>& value() const { return checked().value; }
    /// Writable access to the numbers, for optimizers and initialisers. Changing a value
    /// that a recorded graph still needs makes that graph's gradients wrong.
    Matrix<T>& mutable_value() { return checked().value; }
    Index rows() const { return checked().value.rows(); }
    Index cols() const { return checked().value.cols(); }
    Index size() const { return checked().value.size(); }
    std::string shape() const { return shape_string(rows(), cols()); }
    const std::string& op() const { return checked().op; }

    /// The value of a 1x1 tensor.
    T item() const {
        const auto& v = value();
        if (v.size() != 1) throw ShapeError("item: expected a [1,1] tensor, got " + shape());
        return v(0, 0);
    }

    bool requires_grad() const { return checked().requires_grad; }
    Tensor& set_requires_grad(bool on) {
        checked().requires_grad = on;
        return *this;
    }
    bool has_grad() const { return checked().has_grad; }
    /// The accumulated gradient. Throws std::logic_error if no gradient has arrived.
    const Matrix<T>& grad() const {
        const auto& n = checked();
        if (!n.has_grad) throw std::logic_error("grad: tensor " + shape() + " (" + n.op + ") has no gradient");
        return n.grad;
    }
    /// The gradient, allocated as zeros if none has arrived yet.
    Matrix<T>& mutable_grad() { return checked().grad_buffer(); }

    /// Set the gradient to zero, clearing only the touched rows when it is row-sparse.
    /// The memory is kept for reuse. An all-zero gradient is trivially row-sparse with no
    /// touched rows, so the flag is set until a dense contribution arrives.
    /// Both clears run in fixed pieces in parallel (zeroing is the same in any order): the
    /// step boundary of training is otherwise time the other threads spend waiting.
    void zero_grad() {
        auto& n = checked();
        if (n.has_grad) {
            Matrix<T>& g = n.grad;
            const Index cols = g.cols();
            if (n.grad_is_row_sparse) {
                const std::vector<Index>& rows = n.touched_rows;
                constexpr Index kRowsPerPiece = 512;
                detail::parallel_rows(static_cast<Index>(rows.size()), kRowsPerPiece, static_cast<double>(cols),
                                      [&](Index b, Index count) {
                                          for (Index i = b; i < b + count; ++i) {
                                              g.row(rows[static_cast<std::size_t>(i)]).setZero();
                                          }
                                      });
            } else {
                detail::parallel_rows(g.rows(), detail::kRowBlock, static_cast<double>(cols),
                                      [&](Index r0, Index count) { g.middleRows(r0, count).setZero(); });
            }
            n.grad_is_row_sparse = true;
        }
        n.touched_rows.clear();
    }

    /// A new leaf sharing no graph with this one, holding a copy of the value.
    Tensor detach() const { return Tensor(value(), false); }

    /// Backpropagate from this 1x1 tensor with d(this)/d(this) = 1.
    void backward(bool retain_graph = false) {
        if (size() != 1) {
            throw ShapeError("backward: without a seed gradient the tensor must be [1,1], got " + shape());
        }
        backward(Matrix<T>::Ones(1, 1), retain_graph);
    }

    /// Backpropagate with the given upstream gradient (same shape as the value). After
    /// the walk the gradients of intermediate nodes are freed, and the graph above the
    /// leaves is released (inputs and closures dropped) unless retain_graph is true.
    /// Throws std::logic_error, before any gradient changes, if the walk would pass
    /// through a node an earlier backward released: a second backward through the same
    /// graph, or a new graph built on an intermediate of a released one (either would
    /// silently miss the gradients that node can no longer pass on).
    void backward(const Matrix<T>& seed, bool retain_graph = false) {
        auto& root = checked();
        if (!root.requires_grad) {
            throw std::logic_error("backward: the tensor (" + root.op + ") does not require grad");
        }
        const std::vector<Node<T>*> order = topological_order(node_.get());
        // Intermediate gradients are scratch: free them afterwards (also when a closure
        // throws), so a retained graph can be walked again without double-counting.
        // Leaves keep theirs.
        auto release = [&order, retain_graph] {
            for (Node<T>* n : order) {
                if (!n->backward_fn) continue;
                n->grad = Matrix<T>();
                n->has_grad = false;
                n->grad_is_row_sparse = false;
                n->touched_rows.clear();
                if (!retain_graph) {
                    n->backward_fn = nullptr;
                    n->inputs.clear();
                    n->released = true;
                }
            }
        };
        try {
            root.accumulate_grad(seed);
            const bool anomaly = is_anomaly_detection_enabled();
            // Reverse topological order: every consumer runs before the node it consumes.
            for (auto it = order.rbegin(); it != order.rend(); ++it) {
                Node<T>& n = **it;
                if (!n.backward_fn || !n.has_grad) continue;
                n.backward_fn(n);
                if (anomaly) check_input_gradients(n);
            }
        } catch (...) {
            release();
            throw;
        }
        release();
    }

private:
    Node<T>& checked() const {
        if (!node_) throw std::logic_error("piano::Tensor: use of an empty tensor handle");
        return *node_;
    }

    static void check_input_gradients(const Node<T>& n) {
        for (const auto& in : n.inputs) {
            if (in->has_grad && !detail::all_finite(in->grad)) {
                throw AnomalyError("anomaly: backward of " + n.op + " produced NaN or Inf in the gradient of " +
                                   in->op + " " + shape_string(in->value.rows(), in->value.cols()));
            }
        }
    }

    [[noreturn]] static void throw_released(const Node<T>& n, const Node<T>& root) {
        const std::string what = n.op + " " + shape_string(n.value.rows(), n.value.cols());
        throw std::logic_error(
            "backward: trying to backward through the graph a second time: " +
            (&n == &root ? "this tensor (" + what + ") was" : "the intermediate " + what + " it uses was") +
            " computed in a graph that an earlier backward() released. Pass retain_graph = true to that "
            "backward to walk the graph again, or detach() a tensor to use its value as a constant");
    }

    // The nodes a walk has reached: an open-addressing table of pointers, so a walk over a
    // few hundred nodes makes a handful of allocations instead of one per node (a training
    // step walks its graph once per step).
    class VisitedSet {
    public:
        /// True if `p` was not in the set (and is now).
        bool insert(Node<T>* p) {
            if (2 * (size_ + 1) > slots_.size()) grow();
            for (std::size_t i = slot_of(p);; i = (i + 1) & (slots_.size() - 1)) {
                if (slots_[i] == p) return false;
                if (!slots_[i]) {
                    slots_[i] = p;
                    ++size_;
                    return true;
                }
            }
        }

    private:
        std::size_t slot_of(const Node<T>* p) const {
            // Fibonacci hashing of the address, whose low three bits are zero for any Node.
            const auto bits = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p) >> 3);
            return static_cast<std::size_t>((bits * 0x9E3779B97F4A7C15ull) >> 32) & (slots_.size() - 1);
        }
        void grow() {
            std::vector<Node<T>*> old = std::move(slots_);
            slots_.assign(std::max<std::size_t>(256, 2 * old.size()), nullptr);
            size_ = 0;
            for (Node<T>* p : old) {
                if (p) insert(p);
            }
        }
        std::vector<Node<T>*> slots_;  // a power of two, at most half full
        std::size_t size_ = 0;
    };

    // Post-order DFS with an explicit stack, so graph depth is limited by memory, not by
    // the call stack. Only nodes that require grad are visited.
    static std::vector<Node<T>*> topological_order(Node<T>* root) {
        std::vector<Node<T>*> order;
        VisitedSet seen;
        std::vector<std::pair<Node<T>*, std::size_t>> stack;  // (node, next input to visit)
        stack.emplace_back(root, 0);
        seen.insert(root);
        while (!stack.empty()) {
            auto& [n, next] = stack.back();
            if (n->released) throw_released(*n, *root);
            if (next < n->inputs.size()) {
                Node<T>* child = n->inputs[next++].get();
                if (child->requires_grad && seen.insert(child)) stack.emplace_back(child, 0);
            } else {
                order.push_back(n);
                stack.pop_back();
            }
        }
        return order;
    }

    NodePtr node_;
};

namespace detail {

/// Wrap an op's result as a tensor. If gradients are on and any input requires grad, the
/// node records its inputs and backward closure; otherwise it is a plain constant leaf.
/// With anomaly detection on, a non-finite result throws here, naming the op.
template <typename T>
Tensor<T> make_result(Matrix<T> value, const char* op, std::vector<std::shared_ptr<Node<T>>> inputs,
                      std::function<void(Node<T>&)> backward_fn) {
    if (is_anomaly_detection_enabled() && !all_finite(value)) {
        throw AnomalyError(std::string("anomaly: ") + op + " produced NaN or Inf in its output " +
                           shape_string(value.rows(), value.cols()));
    }
    auto node = std::make_shared<Node<T>>();
    node->value = std::move(value);
    node->op = op;
    if (is_grad_enabled()) {
        const bool any = std::any_of(inputs.begin(), inputs.end(),
                                     [](const std::shared_ptr<Node<T>>& in) { return in->requires_grad; });
        if (any) {
            node->requires_grad = true;
            node->inputs = std::move(inputs);
            node->backward_fn = std::move(backward_fn);
        }
    }
    return Tensor<T>(std::move(node));
}

/// Every op's first check: a non-empty handle. The message names the op, which the
/// handle's own check cannot do.
template <typename T>
void require_defined(const Tensor<T>& x, const char* op) {
    if (!x.defined()) throw std::logic_error(std::string(op) + ": the input is an empty tensor handle");
}

[[noreturn]] inline void throw_shape(const std::string& op, const std::string& what, Index r1, Index c1, Index r2,
                                     Index c2) {
    throw ShapeError(op + ": " + what + " " + shape_string(r1, c1) + " and " + shape_string(r2, c2));
}

}  // namespace detail

}  // namespace piano
