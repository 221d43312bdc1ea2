// piano/nn/dropout.hpp: the Dropout module, which follows train() / eval().
#pragma once

#include <cstdint>
#include <random>
#include <sstream>
#include <stdexcept>

#include "piano/core/compiled.hpp"
#include "piano/nn/module.hpp"
#include "piano/ops/dropout.hpp"

namespace piano {

/// Inverted dropout (the `dropout` op) switched by the module's mode: in training each
/// entry is zeroed with probability p and the rest scaled by 1/(1-p); in evaluation, or
/// when p = 0, forward returns its input unchanged (the same handle).
///
/// The module owns its generator, seeded at construction, so a model's dropout masks
/// depend only on the seeds it was built with, not on what else draws random numbers.
/// No parameters.
template <typename T>
class Dropout : public Module<T> {
public:
    /// Requires: 0 <= p < 1 (else std::invalid_argument naming p).
    explicit Dropout(T p, std::uint64_t seed = 0) : p_(p), rng_(seed) {
        if (!(p >= T(0) && p < T(1))) {  // written so that NaN is rejected too
            std::ostringstream message;
            message << "Dropout: p must be in [0, 1), got " << p;
            throw std::invalid_argument(message.str());
        }
    }

    /// Requires: nothing. Ensures: the result has x's shape; it is x itself in eval mode.
    /// Not const: each training call takes one draw from the generator, the seed of the
    /// call's counter-based mask (the `dropout` op's seed overload), so the mask is made in
    /// parallel and is the same for any number of threads.
    Tensor<T> forward(const Tensor<T>& x) {
        if (!active()) return dropout(x, p_, std::uint64_t{0}, false);  // x itself
        return dropout(x, p_, draw_seed(), true);
    }

    T p() const { return p_; }

    /// Whether forward would drop anything: training mode and p > 0.
    bool active() const { return this->is_training() && p_ > T(0); }

    /// One draw from the module's generator, for kernels that make their own masks from a
    /// seed (segment_attention's counter-based dropout). Advances the generator once.
    std::uint64_t draw_seed() { return rng_(); }

private:
    T p_;
    std::mt19937_64 rng_;
};

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(class Dropout<float>);

}  // namespace piano
