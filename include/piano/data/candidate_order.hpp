// piano/data/candidate_order.hpp: is a logged candidate order a first-stage order, or
// does it give the labels away?
//
// A reranker learns from the order its lists arrive in (the first-stage position is an
// input). That is right when the log kept the order the first stage showed, as the
// simulator's does. Some public logs instead store each list with the engaged candidates
// first (JDsearch does, for every search with an engagement): a model fed that order
// learns "the first rows are the clicked ones", scores near-perfect offline, and is
// worthless in production. So the readers measure, per file, how often a list puts every
// positive (label >= 1) before every negative, against what a random order would give:
//
//     chance that a random order of L candidates, p of them positive, puts the p first
//         = 1 / C(L, p)                      (one of the C(L, p) equally likely position sets)
//
// and LoadOptions::candidate_order says what to do with the order:
//   as_logged  keep it: it is a real first-stage order (Request::first_stage_order = true);
//   shuffle    permute each list by a seeded shuffle of its own (seed, line): the same
//              permutation on every platform, so training, eval and rerank agree; the
//              request is marked first_stage_order = false and models get no position;
//   automatic  ("auto") shuffle when the file is label-sorted far beyond chance
//              (label_sorted_beyond_chance below), keep it otherwise.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "piano/core/error.hpp"
#include "piano/data/request.hpp"
#include "piano/data/shuffle.hpp"

namespace piano::data {

enum class CandidateOrder : std::uint8_t { as_logged, shuffle, automatic };

inline const char* to_string(CandidateOrder order) {
    switch (order) {
        case CandidateOrder::as_logged: return "as_logged";
        case CandidateOrder::shuffle: return "shuffle";
        case CandidateOrder::automatic: return "auto";
    }
    return "auto";
}

/// "as_logged", "shuffle" or "auto" (ConfigError otherwise).
inline CandidateOrder candidate_order_from_string(const std::string& name) {
    for (CandidateOrder o : {CandidateOrder::as_logged, CandidateOrder::shuffle, CandidateOrder::automatic})
        if (name == to_string(o)) return o;
    throw ConfigError("candidate order '" + name + "' is unknown (expected as_logged, shuffle or auto)");
}

/// 1 / C(L, p): the chance that a uniformly random order of L candidates, p of them
/// positive, puts all p first. Computed in log space (C(200, 100) overflows a double).
/// Requires p <= L.
inline double chance_label_sorted(std::size_t L, std::size_t p) {
    const double log_choose = std::lgamma(static_cast<double>(L) + 1.0) - std::lgamma(static_cast<double>(p) + 1.0) -
                              std::lgamma(static_cast<double>(L - p) + 1.0);
    return std::exp(-log_choose);
}

/// How label-sorted the lists of a file are. Only lists with both a positive and a
/// negative count: a list of one class is sorted by any order.
struct OrderStats {
    std::size_t lists_with_both = 0;       // lists holding a positive and a negative
    std::size_t label_sorted = 0;          // of those, lists with every positive first
    double expected_label_sorted = 0.0;    // Σ 1/C(L,p): the count a random order would give

    /// Counts one list, its candidates' labels in logged order (positive: label >= 1).
    void add(const std::vector<float>& labels) {
        std::size_t positives = 0;
        bool negative_seen = false, sorted = true;
        for (float label : labels) {
            const bool positive = label >= 1.0f;
            positives += positive ? 1 : 0;
            if (positive && negative_seen) sorted = false;
            negative_seen = negative_seen || !positive;
        }
        if (positives == 0 || positives == labels.size()) return;
        ++lists_with_both;
        label_sorted += sorted ? 1 : 0;
        expected_label_sorted += chance_label_sorted(labels.size(), positives);
    }

    void merge(const OrderStats& other) {
        lists_with_both += other.lists_with_both;
        label_sorted += other.label_sorted;
        expected_label_sorted += other.expected_label_sorted;
    }

    /// ln of an upper bound on P(a random order sorts >= label_sorted lists), the
    /// Chernoff bound for a sum of independent Bernoulli(q_i) with mean μ = Σ q_i:
    ///     P(K >= k) <= e^{-μ} (e μ / k)^k   for k > μ;
    /// 0 (probability 1) when k <= μ.
    double log_chance_bound() const {
        const double k = static_cast<double>(label_sorted), mu = expected_label_sorted;
        if (k <= mu || mu <= 0.0) return 0.0;
        return -mu + k * (1.0 + std::log(mu) - std::log(k));
    }

    /// Label-sorted far beyond chance: at least kMinSortedFraction of the lists put their
    /// positives first, and a random order would do so with probability below
    /// kMaxChance. The fraction guards a real first-stage order, which also ranks clicked
    /// candidates high (position bias) far more often than chance, but not almost always.
    static constexpr double kMinSortedFraction = 0.9;
    static constexpr double kMaxChance = 1e-3;
    bool label_sorted_beyond_chance() const {
        if (lists_with_both == 0) return false;
        const double fraction = static_cast<double>(label_sorted) / static_cast<double>(lists_with_both);
        return fraction >= kMinSortedFraction && log_chance_bound() < std::log(kMaxChance);
    }

    /// One line for a person: "3 of 3 lists with positives and negatives put every
    /// positive first (a random order: 0.0117 expected)".
    std::string summary() const {
        std::ostringstream out;
        out << label_sorted << " of " << lists_with_both
            << " lists with positives and negatives put every positive first (a random order: "
            << expected_label_sorted << " expected)";
        return out.str();
    }
};

/// What `requested` means for a file with `stats`: automatic becomes shuffle when the
/// file is label-sorted beyond chance, as_logged otherwise; the others stay.
inline CandidateOrder resolve_candidate_order(CandidateOrder requested, const OrderStats& stats) {
    if (requested != CandidateOrder::automatic) return requested;
    return stats.label_sorted_beyond_chance() ? CandidateOrder::shuffle : CandidateOrder::as_logged;
}

/// The permutation `shuffle` applies to a list of L candidates read from line `line`:
/// shuffled position k holds logged candidate perm[k]. A function of (seed, line, L)
/// alone, so a reranked order can be mapped back to the logged one.
inline std::vector<std::size_t> candidate_permutation(std::uint64_t seed, long line, std::size_t L) {
    std::vector<std::size_t> perm(L);
    for (std::size_t i = 0; i < L; ++i) perm[i] = i;
    std::mt19937_64 rng = seeded_generator(seed, static_cast<std::uint64_t>(line));
    seeded_shuffle(perm, rng);
    return perm;
}

/// Applies a resolved order (as_logged or shuffle) to `r`, read from r.source.line.
inline void apply_candidate_order(Request& r, CandidateOrder order, std::uint64_t seed) {
    if (order == CandidateOrder::automatic)
        throw ConfigError("apply_candidate_order: resolve 'auto' first (resolve_candidate_order)");
    if (order == CandidateOrder::as_logged) return;
    const std::vector<std::size_t> perm = candidate_permutation(seed, r.source.line, r.candidates.size());
    std::vector<Candidate> shuffled;
    shuffled.reserve(perm.size());
    for (std::size_t from : perm) shuffled.push_back(std::move(r.candidates[from]));
    r.candidates = std::move(shuffled);
    r.first_stage_order = false;
}

}  // namespace piano::data
