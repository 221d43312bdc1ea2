// piano/data/shuffle.hpp: seeded shuffles that give the same order on every platform.
//
// std::shuffle and std::uniform_int_distribution are free to differ between standard
// libraries, so a seed would not pin a split or a batch order across compilers. The
// generator (std::mt19937_64), std::seed_seq and the two steps below are fully specified,
// so `same seed -> same order` holds everywhere.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace piano::data {

/// A generator for stream `stream` (an epoch, a purpose) of the run seeded by `seed`:
/// stream e can be recreated without replaying streams 0..e-1 (e.g. when resuming).
inline std::mt19937_64 seeded_generator(std::uint64_t seed, std::uint64_t stream) {
    std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                      static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)};
    return std::mt19937_64(seq);
}

/// A uniform integer in [0, n), n >= 1, without modulo bias: draws below 2^64 mod n are
/// rejected, so the accepted range is a whole number of copies of [0, n).
inline std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t n) {
    const std::uint64_t reject_below = (0 - n) % n;  // 2^64 mod n
    std::uint64_t x = rng();
    while (x < reject_below) x = rng();
    return x % n;
}

/// Fisher-Yates, last position first.
template <typename T>
void seeded_shuffle(std::vector<T>& v, std::mt19937_64& rng) {
    for (std::size_t i = v.size(); i > 1; --i) {
        const std::size_t j = static_cast<std::size_t>(uniform_below(rng, i));
        std::swap(v[i - 1], v[j]);
    }
}

}  // namespace piano::data
