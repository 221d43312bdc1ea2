// piano/optim/adam.hpp: Adam (Kingma & Ba) with L2 weight decay, and AdamW (Loshchilov &
// Hutter) with decoupled weight decay, computing what torch.optim.Adam / AdamW compute.
//
// Step t (t = 1 on the first step), for each parameter p with gradient g, elementwise:
//   Adam:  g = g + lambda p                      (L2: the decay goes through the moments)
//   AdamW: p = p (1 - lr lambda)                 (decoupled: the decay bypasses them)
//   m = b1 m + (1 - b1) g                        ("exp_avg", starts at 0)
//   v = b2 v + (1 - b2) g^2                      ("exp_avg_sq", starts at 0)
//   p = p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// The bias corrections undo the zero start: after t steps of a constant g, m = (1 - b1^t) g.
// eps is added after the second moment is bias-corrected, as in PyTorch (the original paper
// writes the same thing as m_hat / (sqrt(v_hat) + eps)).
//
// t is the optimizer's step count, shared by all parameters. PyTorch counts steps per
// parameter, skipping steps where it had no gradient; the two agree whenever every
// parameter receives a gradient at every step.
//
// Sparse (embedding) gradients, SparseMode:
//   dense (default): every row is updated from the full gradient, exactly as PyTorch's Adam.
//     A row no lookup touched has g = 0, yet its moments still decay (m *= b1, v *= b2), its
//     value still moves by the remaining momentum, and weight decay still shrinks it.
//   lazy: for a parameter whose gradient is row-sparse (Node::grad_is_row_sparse, set by
//     embedding()), only the distinct touched rows are updated, with the formulas above, as
//     PyTorch's SparseAdam does. How it differs from dense:
//     - untouched rows keep value, m and v bit for bit: their moments do not decay while the
//       row is unused, and weight decay (either kind) is applied to touched rows only;
//     - the bias correction still uses the global step t, not a per-row count. A row first
//       touched at a late step t has m = (1 - b1) g, v = (1 - b2) g^2 but is corrected by
//       1 - b1^t ~ 1 and 1 - b2^t ~ 1, so it moves by about lr (1 - b1) / sqrt(1 - b2), about
//       3.2 lr for the default betas, where dense Adam's first step on a row moves by lr;
//     - a row touched at every step from step 1 on follows dense Adam exactly; in particular
//       the first step of lazy and dense Adam agree on every touched row.
//     Unlike SparseAdam, eps is placed as in Adam above (SparseAdam adds eps to sqrt(v)
//     before the correction) and weight decay is allowed, so touched rows match dense Adam.
//     Parameters with a dense gradient are updated densely in either mode. zero_grad leaves
//     a gradient row-sparse with no touched rows until a contribution arrives, so in lazy
//     mode a parameter that took no part in the step's loss is left alone entirely, where
//     dense mode updates it with g = 0. Cost per step: O(touched rows x D) instead of
//     O(V x D) for a [V,D] table.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/core/error.hpp"
#include "piano/core/parallel.hpp"
#include "piano/core/tensor.hpp"
#include "piano/optim/optimizer.hpp"

namespace piano {

/// How Adam treats a row-sparse gradient: see the top of this header.
enum class SparseMode { dense, lazy };

struct AdamOptions {
    double learning_rate = 1e-3;  // lr >= 0
    double beta1 = 0.9;           // b1 in [0, 1)
    double beta2 = 0.999;         // b2 in [0, 1)
    double eps = 1e-8;            // >= 0
    double weight_decay = 0.0;    // lambda >= 0; L2 for Adam, decoupled for AdamW (PyTorch's AdamW default is 0.01)
    SparseMode sparse_mode = SparseMode::dense;
};

/// Adam with L2 weight decay (the update at the top of this header).
/// Requires: options in range (ConfigError otherwise), names unique (std::invalid_argument).
/// Ensures: parameters without a gradient are left alone, moments included.
/// State: slots "exp_avg" (m) and "exp_avg_sq" (v) per parameter, in that order.
template <typename T>
class Adam : public Optimizer<T> {
public:
    using typename Optimizer<T>::NamedParameter;

    Adam(std::vector<NamedParameter> parameters, const AdamOptions& options)
        : Adam(std::move(parameters), options, false) {}

    void step() override {
        NoGradGuard no_grad;
        const double t = static_cast<double>(this->step_ + 1);
        const double lr = this->learning_rate_;
        Coefficients c;
        c.beta1 = static_cast<T>(options_.beta1);
        c.beta2 = static_cast<T>(options_.beta2);
        c.one_minus_beta1 = static_cast<T>(1 - options_.beta1);
        c.one_minus_beta2 = static_cast<T>(1 - options_.beta2);
        c.l2 = static_cast<T>(decoupled_ ? 0.0 : options_.weight_decay);
        c.keep = static_cast<T>(decoupled_ ? 1 - lr * options_.weight_decay : 1.0);
        c.step_size = static_cast<T>(lr / (1 - std::pow(options_.beta1, t)));
        c.correction2_sqrt = static_cast<T>(std::sqrt(1 - std::pow(options_.beta2, t)));
        c.eps = static_cast<T>(options_.eps);

        // Dense parameters of one piece or less (weights, biases, norms' gains) are updated
        // together in one loop, a piece per parameter, rather than one after another on one
        // thread: the updates are elementwise and independent, so the bits are the same.
        small_dense_.clear();
        double small_work = 0;
        for (std::size_t i = 0; i < this->parameters_.size(); ++i) {
            Tensor<T>& p = this->parameters_[i].second;
            if (!p.has_grad()) continue;
            const Node<T>& node = *p.node();
            if (options_.sparse_mode == SparseMode::lazy && node.grad_is_row_sparse) {
                update_touched_rows(i, node.touched_rows, c);
            } else if (p.size() <= kDensePiece) {
                small_dense_.push_back(i);
                small_work += kUpdateWork * static_cast<double>(p.size());
            } else {
                update_all_rows(i, c);
            }
        }
        detail::parallel_for(static_cast<Index>(small_dense_.size()), small_work, [&](Index k) {
            const std::size_t i = small_dense_[static_cast<std::size_t>(k)];
            Tensor<T>& param = this->parameters_[i].second;
            update_entries(param.mutable_value().data(), slots_[i][0].data(), slots_[i][1].data(), param.grad().data(),
                           param.size(), c);
        });
        ++this->step_;
    }

    std::string name() const override { return decoupled_ ? "adamw" : "adam"; }

    OptimizerState<T> state() const override { return detail::export_slots(this->step_, this->parameters_, slots_); }

    /// Also throws CheckpointError for a second moment (exp_avg_sq) that is negative or NaN,
    /// which no run can produce and whose square root would turn the next step into NaN.
    void load_state(const OptimizerState<T>& state) override {
        std::vector<std::vector<Matrix<T>>> slots = detail::import_slots(name(), slot_names(), this->parameters_, state);
        for (std::size_t i = 0; i < slots.size(); ++i) {
            const Matrix<T>& v = slots[i][1];
            for (Index k = 0; k < v.size(); ++k) {
                if (!(v.data()[k] >= T(0))) {
                    throw CheckpointError(name() + " load_state: parameter '" + this->parameters_[i].first +
                                          "' slot exp_avg_sq holds " + std::to_string(v.data()[k]) + " at entry (" +
                                          std::to_string(k / v.cols()) + "," + std::to_string(k % v.cols()) +
                                          "); a second moment is never negative (the state is corrupt)");
                }
            }
        }
        slots_ = std::move(slots);
        this->step_ = state.step;
    }

    const AdamOptions& options() const { return options_; }

    /// The slots state() stores per parameter, in order.
    static std::vector<std::string> slot_names() { return {"exp_avg", "exp_avg_sq"}; }

protected:
    Adam(std::vector<NamedParameter> parameters, const AdamOptions& options, bool decoupled)
        : Optimizer<T>(std::move(parameters), options.learning_rate), options_(options), decoupled_(decoupled) {
        const std::string who = name();
        detail::require_at_least(who, "learning_rate", options.learning_rate);
        if (!(options.beta1 >= 0 && options.beta1 < 1)) throw ConfigError(who + ": beta1 must be in [0, 1)");
        if (!(options.beta2 >= 0 && options.beta2 < 1)) throw ConfigError(who + ": beta2 must be in [0, 1)");
        detail::require_at_least(who, "eps", options.eps);
        detail::require_at_least(who, "weight_decay", options.weight_decay);
        detail::check_optimizer_parameters(who, this->parameters_);
        slots_ = detail::zero_slots(this->parameters_, slot_names().size());
    }

private:
    // The step's scalars, computed once in double and rounded to T.
    struct Coefficients {
        T beta1, beta2, one_minus_beta1, one_minus_beta2;
        T l2;                // lambda for Adam, 0 for AdamW
        T keep;              // 1 - lr lambda for AdamW, 1 for Adam
        T step_size;         // lr / (1 - b1^t)
        T correction2_sqrt;  // sqrt(1 - b2^t)
        T eps;
    };

    // The update of `count` entries (p, m, v, g aligned), in PyTorch's order of operations.
    // Elementwise, so any split of a parameter into pieces gives the same bits. Eigen maps,
    // not a scalar loop: std::sqrt's errno contract keeps a plain loop from vectorising.
    static void update_entries(T* p_data, T* m_data, T* v_data, const T* g_data, Index count, const Coefficients& c) {
        using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
        Eigen::Map<Array> p(p_data, count), m(m_data, count), v(v_data, count);
        const Eigen::Map<const Array> grad(g_data, count);
        if (c.l2 != T(0)) {
            // g = grad + lambda p, formed from p before the decoupled decay (Adam has keep = 1).
            m = m * c.beta1 + c.one_minus_beta1 * (grad + c.l2 * p);
            v = v * c.beta2 + c.one_minus_beta2 * (grad + c.l2 * p) * (grad + c.l2 * p);
        } else {
            // The L2 term is skipped when lambda = 0 rather than adding 0 p, which is NaN
            // where p is infinite.
            m = m * c.beta1 + c.one_minus_beta1 * grad;
            v = v * c.beta2 + c.one_minus_beta2 * grad * grad;
        }
        p = p * c.keep - c.step_size * m / (v.sqrt() / c.correction2_sqrt + c.eps);
    }

    // The work of updating one entry, in multiply-adds, for the parallel loops' thresholds.
    static constexpr double kUpdateWork = 8.0;

    // Entries per piece of a dense update.
    static constexpr Index kDensePiece = 16384;

    // Dense mode, or a dense gradient: every entry, in fixed pieces of kDensePiece entries.
    void update_all_rows(std::size_t i, const Coefficients& c) {
        Tensor<T>& param = this->parameters_[i].second;
        T* p = param.mutable_value().data();
        T* m = slots_[i][0].data();
        T* v = slots_[i][1].data();
        const T* g = param.grad().data();
        const Index n = param.size();
        detail::parallel_rows(n, kDensePiece, kUpdateWork, [&](Index b, Index count) {
            update_entries(p + b, m + b, v + b, g + b, count, c);
        });
    }

    // Lazy mode, a row-sparse gradient: the distinct touched rows only (a row listed twice
    // already holds the sum of its contributions, so it is updated once).
    void update_touched_rows(std::size_t i, const std::vector<Index>& touched, const Coefficients& c) {
        Tensor<T>& param = this->parameters_[i].second;
        const Index cols = param.cols();
        std::vector<unsigned char>& seen = seen_[i];
        if (seen.size() != static_cast<std::size_t>(param.rows())) seen.assign(static_cast<std::size_t>(param.rows()), 0);
        std::vector<Index> rows;
        rows.reserve(touched.size());
        for (Index r : touched) {
            if (!seen[static_cast<std::size_t>(r)]) {
                seen[static_cast<std::size_t>(r)] = 1;
                rows.push_back(r);
            }
        }
        for (Index r : rows) seen[static_cast<std::size_t>(r)] = 0;
        T* p = param.mutable_value().data();
        T* m = slots_[i][0].data();
        T* v = slots_[i][1].data();
        const T* g = param.grad().data();
        constexpr Index kRows = 256;
        detail::parallel_rows(static_cast<Index>(rows.size()), kRows, kUpdateWork * static_cast<double>(cols),
                              [&](Index b, Index count) {
                                  constexpr Index kAhead = 4;  // rows prefetched ahead
                                  auto fetch = [&](Index k) {
                                      const Index at = rows[static_cast<std::size_t>(k)] * cols;
                                      detail::prefetch(p + at, cols);
                                      detail::prefetch(m + at, cols);
                                      detail::prefetch(v + at, cols);
                                      detail::prefetch(g + at, cols);
                                  };
                                  for (Index k = b; k < std::min(b + kAhead, b + count); ++k) fetch(k);
                                  for (Index k = b; k < b + count; ++k) {
                                      if (k + kAhead < b + count) fetch(k + kAhead);
                                      const Index at = rows[static_cast<std::size_t>(k)] * cols;
                                      update_entries(p + at, m + at, v + at, g + at, cols, c);
                                  }
                              });
    }

    AdamOptions options_;
    bool decoupled_;
    std::vector<std::vector<Matrix<T>>> slots_;  // slots_[i] = {m, v} of parameters_[i]
    // Per parameter, scratch flags for finding distinct touched rows without sorting (all
    // zero between steps; sized on first use).
    std::vector<std::vector<unsigned char>> seen_ = std::vector<std::vector<unsigned char>>(this->parameters_.size());
    std::vector<std::size_t> small_dense_;  // step()'s scratch: the parameters it updates in one loop
};

/// AdamW: Adam whose weight decay is decoupled from the moments (see the top of this
/// header). Same options, state slots and sparse modes as Adam; name() is "adamw".
template <typename T>
class AdamW : public Adam<T> {
public:
    using typename Adam<T>::NamedParameter;

    AdamW(std::vector<NamedParameter> parameters, const AdamOptions& options)
        : Adam<T>(std::move(parameters), options, true) {}
};

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(class Adam<float>);
PIANO_INSTANTIATE(class AdamW<float>);

}  // namespace piano
