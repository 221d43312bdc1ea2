// piano/model/explain.hpp: what QDIR attends to, measured over many requests.
//
// QDIR exists for ambiguous queries: a term whose meaning differs between users, which
// only the user's own past searches with that term can resolve. If it works, the current
// query's attention goes to those past searches more than "no preference" would put there.
// qdir_focus measures that over every request whose query holds an eligible term (the
// simulator's ambiguous_terms.txt) that one of the user's past searches also holds:
//
//   attention  mean over those requests of Σ_{j same term} w_j, with w the attention
//              weights (mean over heads) over the null slot and the H past events
//   uniform    mean over the same requests of (#same-term events) / (H + 1): what equal
//              weights on the null slot and every event would put there
#pragma once

#include <algorithm>
#include <cstddef>
#include <set>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/data/batch.hpp"
#include "piano/model/reranker.hpp"

namespace piano {

struct QdirFocus {
    double attention = 0.0;    // mean attention mass on same-term past searches
    double uniform = 0.0;      // the same mass under uniform weights
    std::size_t requests = 0;  // requests measured (query and a past search share a term)
};

/// True when query `a` and past query `b` share a term of `terms` (never the unknown row).
inline bool shares_term(const std::vector<data::Row>& a, const std::vector<data::Row>& b,
                        const std::set<data::Row>& terms) {
    for (data::Row t : a)
        if (t != data::kUnknownRow && terms.count(t) && std::find(b.begin(), b.end(), t) != b.end()) return true;
    return false;
}

/// See the top of this file. The model must return QDIR weights (PIANO with use_qdir);
/// otherwise every request is skipped and `requests` is 0. Runs in evaluation mode
/// without a graph, `batch_size` requests at a time; the model's mode is restored.
template <typename T>
QdirFocus qdir_focus(Reranker<T>& model, const std::vector<data::Request>& requests, const std::set<data::Row>& terms,
                     std::size_t batch_size = 64) {
    const bool was_training = model.is_training();
    model.eval();
    NoGradGuard no_grad;
    QdirFocus focus;
    for (std::size_t begin = 0; begin < requests.size(); begin += batch_size) {
        const std::size_t end = std::min(requests.size(), begin + batch_size);
        const data::Batch batch = data::make_batch(requests, begin, end);
        const ModelOutputs<T> out = model.forward(batch, /*want_attention=*/true);
        if (out.qdir_weights.segments.empty()) break;
        for (std::size_t b = 0; b < end - begin; ++b) {
            const data::Request& r = requests[begin + b];
            const Matrix<T> mean = out.qdir_weights.mean_over_heads(b);  // [1, 1 + H], column 0: null slot
            double matched = 0.0;
            std::size_t same_term = 0;
            for (std::size_t j = 0; j < r.history.size(); ++j) {
                if (!shares_term(r.query, r.history[j].query, terms)) continue;
                matched += static_cast<double>(mean(0, static_cast<Index>(j) + 1));
                ++same_term;
            }
            if (same_term == 0) continue;
            focus.attention += matched;
            focus.uniform += static_cast<double>(same_term) / static_cast<double>(r.history.size() + 1);
            ++focus.requests;
        }
    }
    if (was_training) model.train();
    if (focus.requests > 0) {
        focus.attention /= static_cast<double>(focus.requests);
        focus.uniform /= static_cast<double>(focus.requests);
    }
    return focus;
}

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(QdirFocus qdir_focus<float>(Reranker<float>&, const std::vector<data::Request>&,
                                              const std::set<data::Row>&, std::size_t));

}  // namespace piano
