// piano/data/history_match.hpp: how much of its user's history each candidate matches.
//
// An attention over the history (QDIR, DIN's target attention) has to *learn* that a song
// by an artist the user bought from before is likely to be bought again: it needs
// embeddings in which the candidate's artist and the history's artists line up, learned
// from the few requests in which they meet. Counting the matches says it exactly, also for
// ids the model has seldom seen. For candidate i of a request with history h_1..h_H and
// each item field k (item, brand, the four category levels, shop; ItemFields order):
//
//   share_k(i)      = |{j : f_k(h_j) = f_k(i)}| / H                 the history's share that matches
//   relative_k(i)   = |{j : f_k(h_j) = f_k(i)}| / max_v |{j : f_k(h_j) = v}|   against the user's most frequent value
//   conversion_k(i) = |{j : h_j a purchase, f_k(h_j) = f_k(i)}| / |{j : h_j a purchase}|
//
// Each is 0 without history (or without purchases), and the unknown row matches nothing:
// two ids the vocabulary did not know are not known to be the same. The features are in
// [0, 1], built from the batch alone (no parameters, no gradient), so serving computes
// them exactly as training did.
//
// Layout: [ΣL, kHistoryMatchFeatures] row-major, feature 3k + m for field k and measure m
// (share, relative, conversion); history_match_names() names them in that order.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "piano/core/tensor.hpp"
#include "piano/data/batch.hpp"

namespace piano::data {

inline constexpr int kHistoryMatchMeasures = 3;  // share, relative, conversion
inline constexpr Index kHistoryMatchFeatures = ItemFields::kCount * kHistoryMatchMeasures;

/// "share_brand", "relative_brand", "conversion_brand", ... in feature order.
inline std::vector<std::string> history_match_names() {
    static const char* const measures[kHistoryMatchMeasures] = {"share", "relative", "conversion"};
    std::vector<std::string> names;
    for (int k = 0; k < ItemFields::kCount; ++k) {
        for (const char* m : measures) names.push_back(std::string(m) + "_" + kItemFieldNames[k]);
    }
    return names;
}

namespace detail {

/// How often each value occurs in a sorted list: the run of `value` in `sorted`.
inline std::size_t count_in_sorted(const std::vector<Index>& sorted, Index value) {
    const auto [lo, hi] = std::equal_range(sorted.begin(), sorted.end(), value);
    return static_cast<std::size_t>(hi - lo);
}

/// The length of the longest run of one value in a sorted list.
inline std::size_t longest_run(const std::vector<Index>& sorted) {
    std::size_t best = 0;
    for (std::size_t begin = 0; begin < sorted.size();) {
        std::size_t end = begin;
        while (end < sorted.size() && sorted[end] == sorted[begin]) ++end;
        best = std::max(best, end - begin);
        begin = end;
    }
    return best;
}

}  // namespace detail

/// The history-match features of every candidate of `batch`: [ΣL, kHistoryMatchFeatures]
/// as a row-major vector (see the file comment).
inline std::vector<float> history_match(const Batch& batch) {
    const std::size_t F = static_cast<std::size_t>(kHistoryMatchFeatures);
    std::vector<float> out(static_cast<std::size_t>(batch.num_candidates()) * F, 0.0f);
    std::vector<Index> all, bought;  // one field's known values over the history, sorted
    for (Index b = 0; b < batch.size(); ++b) {
        const Index h0 = batch.hist_offsets[static_cast<std::size_t>(b)];
        const Index h1 = batch.hist_offsets[static_cast<std::size_t>(b) + 1];
        if (h1 == h0) continue;
        std::size_t purchases = 0;
        for (Index e = h0; e < h1; ++e) {
            purchases += batch.hist_type[static_cast<std::size_t>(e)] == static_cast<Index>(Behavior::purchase);
        }
        const double H = static_cast<double>(h1 - h0);
        for (int k = 0; k < ItemFields::kCount; ++k) {
            const std::vector<Index>& hist = batch.hist_fields[static_cast<std::size_t>(k)];
            const std::vector<Index>& cand = batch.cand_fields[static_cast<std::size_t>(k)];
            all.clear();
            bought.clear();
            for (Index e = h0; e < h1; ++e) {
                const Index v = hist[static_cast<std::size_t>(e)];
                if (v == kUnknownRow) continue;
                all.push_back(v);
                if (batch.hist_type[static_cast<std::size_t>(e)] == static_cast<Index>(Behavior::purchase)) {
                    bought.push_back(v);
                }
            }
            std::sort(all.begin(), all.end());
            std::sort(bought.begin(), bought.end());
            const std::size_t peak = detail::longest_run(all);
            for (Index i = batch.cand_offsets[static_cast<std::size_t>(b)];
                 i < batch.cand_offsets[static_cast<std::size_t>(b) + 1]; ++i) {
                const Index v = cand[static_cast<std::size_t>(i)];
                if (v == kUnknownRow) continue;
                const std::size_t matches = detail::count_in_sorted(all, v);
                float* row = out.data() + static_cast<std::size_t>(i) * F + static_cast<std::size_t>(k) * kHistoryMatchMeasures;
                row[0] = static_cast<float>(static_cast<double>(matches) / H);
                row[1] = peak == 0 ? 0.0f : static_cast<float>(static_cast<double>(matches) / static_cast<double>(peak));
                row[2] = purchases == 0 ? 0.0f
                                        : static_cast<float>(static_cast<double>(detail::count_in_sorted(bought, v)) /
                                                             static_cast<double>(purchases));
            }
        }
    }
    return out;
}

}  // namespace piano::data
