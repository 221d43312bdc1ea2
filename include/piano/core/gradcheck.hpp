// piano/core/gradcheck.hpp: compare an op's backward with central finite differences.
//
// check_gradients(f, inputs) treats f as a function of its double-precision inputs and
// checks every entry of every input's gradient. It is built to catch the usual backward
// bugs, not only wrong formulas:
//   - the upstream gradient is random (not all ones), so a transposed or mis-indexed
//     gradient cannot hide behind symmetry;
//   - backward runs twice, once with every input's gradient buffer pre-filled with random
//     values (code that assigns (=) where it must accumulate (+=) is caught) and once with
//     empty buffers (the branch where the first gradient arrives and must be allocated or
//     assigned is caught: many backward closures take a different path there);
//   - f's output is used twice, so the non-leaf output receives two gradient
//     contributions that must be summed.
// Use it for every new op, layer or loss: see docs/ops.md and the tutorial's chapter 2.
// It needs only the graph machinery (core depends on nothing above it), so it builds the
// double use of f's output itself rather than with an op.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "piano/core/tensor.hpp"

namespace piano {
struct GradCheckOptions {
    double step = 1e-6;             // central-difference step h: (f(x+h) - f(x-h)) / 2h
    double abs_tolerance = 1e-6;    // |analytic - numeric| <= abs + rel * max(|a|, |n|)
    double rel_tolerance = 1e-5;
    unsigned seed = 12345;          // for the upstream gradient and the pre-filled buffers
    // Check at most this many entries per input (a seeded random sample; 0 = all). Whole
    // models have tens of thousands of parameters: a sample keeps the check fast while
    // still visiting every tensor.
    Index max_entries_per_input = 0;
};

struct GradCheckResult {
    bool ok = true;
    double max_abs_error = 0.0;
    std::string message;  // empty when ok; otherwise the first mismatches, one per line
};

namespace detail {

/// [R,C] -> [R,C], the value 2 * out, recording `out` as both of its inputs: backward then
/// adds the upstream gradient into out twice, first into an empty buffer, then onto it.
template <typename T>
Tensor<T> used_twice(const Tensor<T>& out) {
    return make_result<T>(Matrix<T>(T(2) * out.value()), "gradcheck_used_twice", {out.node(), out.node()},
                          [](Node<T>& self) {
                              // used_twice([R,C]) -> [R,C]: d/d(out) = g per use
                              self.inputs[0]->accumulate_grad(self.grad);
                              self.inputs[1]->accumulate_grad(self.grad);
                          });
}

}  // namespace detail

/// f: (const std::vector<Tensor<double>>&) -> Tensor<double>, deterministic.
/// The inputs are made leaves that require grad; their gradient buffers hold scratch
/// afterwards. A mismatch names the input, the entry and which way the buffers started.
template <typename F>
GradCheckResult check_gradients(F&& f, std::vector<Tensor<double>> inputs, const GradCheckOptions& options = {}) {
    std::mt19937_64 rng(options.seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    auto random_like = [&](Index rows, Index cols) {
        Matrix<double> m(rows, cols);
        for (Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
        return m;
    };

    for (auto& x : inputs) x.set_requires_grad(true);

    // Upstream gradient R: the scalar being differentiated is <f(x), R>.
    Matrix<double> upstream;
    {
        NoGradGuard no_grad;
        const Tensor<double> probe = f(inputs);
        upstream = random_like(probe.rows(), probe.cols());
    }

    GradCheckResult result;
    // analytic[way][i]: input i's gradient of <f(x), R> from one backward; way 0 starts
    // from buffers of noise (subtracted afterwards), way 1 from empty buffers.
    const char* const ways[2] = {"gradient buffers pre-filled", "gradient buffers empty"};
    std::vector<Matrix<double>> analytic[2];
    for (int way = 0; way < 2; ++way) {
        std::vector<Matrix<double>> prefill;
        for (auto& x : inputs) {
            prefill.push_back(way == 0 ? random_like(x.rows(), x.cols()) : Matrix<double>::Zero(x.rows(), x.cols()));
            x.node()->grad = way == 0 ? prefill.back() : Matrix<double>();
            x.node()->has_grad = way == 0;
            x.node()->grad_is_row_sparse = false;
            x.node()->touched_rows.clear();
        }
        const Tensor<double> out = f(inputs);
        if (!out.requires_grad()) {
            result.ok = false;
            result.message = "f's output does not require grad: no input reaches it";
            return result;
        }
        detail::used_twice(out).backward(upstream);
        for (std::size_t i = 0; i < inputs.size(); ++i) {
            analytic[way].push_back(inputs[i].has_grad() ? Matrix<double>((inputs[i].grad() - prefill[i]) / 2.0)
                                                         : prefill[i]);
        }
    }

    auto objective = [&]() {
        NoGradGuard no_grad;
        const Tensor<double> y = f(inputs);
        return (y.value().array() * upstream.array()).sum();
    };

    std::ostringstream mismatches;
    int reported = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        Matrix<double>& x = inputs[i].mutable_value();
        std::vector<Index> entries(static_cast<std::size_t>(x.size()));
        for (Index k = 0; k < x.size(); ++k) entries[static_cast<std::size_t>(k)] = k;
        if (options.max_entries_per_input > 0 && x.size() > options.max_entries_per_input) {
            std::shuffle(entries.begin(), entries.end(), rng);
            entries.resize(static_cast<std::size_t>(options.max_entries_per_input));
        }
        for (Index k : entries) {
            const double saved = x.data()[k];
            x.data()[k] = saved + options.step;
            const double plus = objective();
            x.data()[k] = saved - options.step;
            const double minus = objective();
            x.data()[k] = saved;
            const double numeric = (plus - minus) / (2.0 * options.step);
            for (int way = 0; way < 2; ++way) {
                const double a = analytic[way][i].data()[k];
                const double err = std::abs(a - numeric);
                result.max_abs_error = std::max(result.max_abs_error, err);
                if (err > options.abs_tolerance + options.rel_tolerance * std::max(std::abs(a), std::abs(numeric))) {
                    result.ok = false;
                    if (reported++ < 8) {
                        mismatches << "input " << i << " " << shape_string(x.rows(), x.cols()) << " entry ("
                                   << k / x.cols() << ',' << k % x.cols() << "), " << ways[way] << ": analytic " << a
                                   << ", numeric " << numeric << '\n';
                    }
                }
            }
        }
    }
    result.message = mismatches.str();
    return result;
}

}  // namespace piano
