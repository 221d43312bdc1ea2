// piano/data/batch.hpp: B requests of different lengths, stacked without padding.
//
// Request b's candidates are rows cand_offsets[b] .. cand_offsets[b+1] of every candidate
// array, its history events rows hist_offsets[b] .. hist_offsets[b+1] of every history
// array, and its query terms query_terms[query_offsets[b] .. query_offsets[b+1]). History
// event e's query terms are hist_query_terms[hist_query_offsets[e] .. hist_query_offsets[e+1]).
// So an encoder embeds all ΣL candidates in one lookup per field and attention cuts the
// result back into lists with the offsets: no compute goes to padding.
//
// Rows are piano::Index so that they feed embedding() directly.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "piano/core/error.hpp"
#include "piano/core/tensor.hpp"
#include "piano/data/request.hpp"
#include "piano/data/shuffle.hpp"

namespace piano::data {

struct Batch {
    std::vector<const Request*> requests;  // [B] borrowed: valid while the requests live

    std::vector<Index> query_offsets;  // [B+1]
    std::vector<Index> query_terms;    // [ΣT] term rows

    std::vector<Index> cand_offsets;                                 // [B+1]
    std::array<std::vector<Index>, ItemFields::kCount> cand_fields;  // kCount x [ΣL], field order of ItemFields
    std::vector<Index> cand_pos;                                     // [ΣL] first-stage position in its list, from 0
    Index dense_dim = 0;                                             // D, the same for the whole batch
    std::vector<float> cand_dense;                                   // [ΣL * D], row-major [ΣL, D]
    std::vector<float> cand_query_match;                             // [ΣL * kProductTextCount], row-major
    std::vector<int> click;                                          // [ΣL] 0/1
    std::vector<int> conv;                                           // [ΣL] 0/1
    std::vector<float> label;                                        // [ΣL] raw graded labels
    std::vector<int> first_stage_order;  // [B] 0/1 per request: 0 = its order carries no position (Request)

    std::vector<Index> hist_offsets;                                 // [B+1]
    std::array<std::vector<Index>, ItemFields::kCount> hist_fields;  // kCount x [ΣH]
    std::vector<Index> hist_type;                                    // [ΣH] Behavior as a row of E_type
    std::vector<std::int64_t> hist_gap;                              // [ΣH] time before the search
    std::vector<int> hist_has_query;                                 // [ΣH] 0/1
    std::vector<Index> hist_query_offsets;                           // [ΣH+1]
    std::vector<Index> hist_query_terms;                             // [ΣQ] term rows

    Index size() const { return static_cast<Index>(requests.size()); }
    Index num_candidates() const { return cand_offsets.back(); }
    Index num_history() const { return hist_offsets.back(); }
};

namespace detail {

/// std::invalid_argument unless every id of `r` is a row a table can hold: every query
/// term, every field of every candidate and history event, every history query term
/// (>= 0), and every behaviour (< kBehaviorCount). Rows from the vocabularies always are;
/// a hand-built request may not be, and a model reads only some of the fields, so this
/// one check in make_batch stands for every model. `index` is r's position in the batch.
inline void check_ids(const Request& r, std::size_t index) {
    // Runs for every request of every batch, so nothing is formatted until an id fails.
    const auto fail = [&](const std::string& where, long long id, const std::string& problem) {
        std::string request = "request " + std::to_string(index);
        if (!r.source.file.empty()) request += " (" + r.source.file + ":" + std::to_string(r.source.line) + ")";
        throw std::invalid_argument("make_batch: " + request + ": " + where + ": id " + std::to_string(id) + " " +
                                    problem);
    };
    constexpr const char* kNegative = "is negative; ids are rows of the embedding tables and must be >= 0";
    for (std::size_t t = 0; t < r.query.size(); ++t) {
        if (r.query[t] < 0) fail("query term " + std::to_string(t), r.query[t], kNegative);
    }
    // `what` `i`: "candidate 3", "history event 7".
    const auto check_fields = [&](const ItemFields& f, const char* what, std::size_t i) {
        for (int k = 0; k < ItemFields::kCount; ++k) {
            if (f[k] < 0) {
                fail(std::string(what) + " " + std::to_string(i) + " field " + kItemFieldNames[k], f[k], kNegative);
            }
        }
    };
    for (std::size_t i = 0; i < r.candidates.size(); ++i) check_fields(r.candidates[i].fields, "candidate", i);
    for (std::size_t j = 0; j < r.history.size(); ++j) {
        const HistoryEvent& e = r.history[j];
        const auto where = [j] { return "history event " + std::to_string(j); };
        check_fields(e.fields, "history event", j);
        for (std::size_t t = 0; t < e.query.size(); ++t) {
            if (e.query[t] < 0) fail(where() + " query term " + std::to_string(t), e.query[t], kNegative);
        }
        const int type = static_cast<int>(e.type);
        if (type >= kBehaviorCount) {
            fail(where() + " behaviour", type, "is not a behaviour (there are " + std::to_string(kBehaviorCount) + ")");
        }
    }
}

}  // namespace detail

/// Stacks `requests` in the given order. Every request needs >= 1 candidate and one dense
/// width D for all its candidates and for the whole batch (DataError naming the request),
/// and ids that are rows (std::invalid_argument naming the request, field and id; see
/// detail::check_ids): every model is built on a batch, so none reads a bad id.
inline Batch make_batch(const std::vector<const Request*>& requests) {
    Batch b;
    b.requests = requests;
    std::size_t n_cand = 0, n_hist = 0, n_query = 0, n_hist_query = 0;
    for (const Request* r : requests) {
        n_cand += r->candidates.size();
        n_hist += r->history.size();
        n_query += r->query.size();
        for (const HistoryEvent& e : r->history) n_hist_query += e.query.size();
    }
    if (!requests.empty() && !requests.front()->candidates.empty())
        b.dense_dim = static_cast<Index>(requests.front()->candidates.front().dense.size());
    const std::size_t width = static_cast<std::size_t>(b.dense_dim);

    b.query_offsets.reserve(requests.size() + 1);
    b.cand_offsets.reserve(requests.size() + 1);
    b.hist_offsets.reserve(requests.size() + 1);
    b.query_terms.reserve(n_query);
    for (auto& f : b.cand_fields) f.reserve(n_cand);
    b.cand_pos.reserve(n_cand);
    b.cand_dense.reserve(n_cand * width);
    b.cand_query_match.reserve(n_cand * kProductTextCount);
    b.click.reserve(n_cand);
    b.conv.reserve(n_cand);
    b.label.reserve(n_cand);
    b.first_stage_order.reserve(requests.size());
    for (auto& f : b.hist_fields) f.reserve(n_hist);
    b.hist_type.reserve(n_hist);
    b.hist_gap.reserve(n_hist);
    b.hist_has_query.reserve(n_hist);
    b.hist_query_offsets.reserve(n_hist + 1);
    b.hist_query_terms.reserve(n_hist_query);

    b.query_offsets.push_back(0);
    b.cand_offsets.push_back(0);
    b.hist_offsets.push_back(0);
    b.hist_query_offsets.push_back(0);
    for (const Request* r : requests) {
        detail::check_ids(*r, b.cand_offsets.size() - 1);
        if (r->candidates.empty())
            throw DataError(r->source.file, r->source.line, "candidates", "make_batch: a request needs >= 1 candidate");
        for (Row t : r->query) b.query_terms.push_back(t);
        b.first_stage_order.push_back(r->first_stage_order ? 1 : 0);
        for (std::size_t i = 0; i < r->candidates.size(); ++i) {
            const Candidate& c = r->candidates[i];
            if (c.dense.size() != width)
                throw DataError(r->source.file, r->source.line, "dense",
                                "make_batch: candidate " + std::to_string(i) + " has " +
                                    std::to_string(c.dense.size()) + " dense features, the batch has " +
                                    std::to_string(width));
            for (int k = 0; k < ItemFields::kCount; ++k) b.cand_fields[static_cast<std::size_t>(k)].push_back(c.fields[k]);
            b.cand_pos.push_back(static_cast<Index>(i));
            b.cand_dense.insert(b.cand_dense.end(), c.dense.begin(), c.dense.end());
            b.cand_query_match.insert(b.cand_query_match.end(), c.query_match.begin(), c.query_match.end());
            b.click.push_back(c.click);
            b.conv.push_back(c.conv);
            b.label.push_back(c.label);
        }
        for (const HistoryEvent& e : r->history) {
            for (int k = 0; k < ItemFields::kCount; ++k) b.hist_fields[static_cast<std::size_t>(k)].push_back(e.fields[k]);
            b.hist_type.push_back(static_cast<Index>(e.type));
            b.hist_gap.push_back(e.gap);
            b.hist_has_query.push_back(e.has_query ? 1 : 0);
            for (Row t : e.query) b.hist_query_terms.push_back(t);
            b.hist_query_offsets.push_back(static_cast<Index>(b.hist_query_terms.size()));
        }
        b.query_offsets.push_back(static_cast<Index>(b.query_terms.size()));
        b.cand_offsets.push_back(static_cast<Index>(b.cand_pos.size()));
        b.hist_offsets.push_back(static_cast<Index>(b.hist_type.size()));
    }
    return b;
}

/// Requests [begin, end) of `requests`, in order (evaluation walks a split this way).
inline Batch make_batch(const std::vector<Request>& requests, std::size_t begin, std::size_t end) {
    if (begin > end || end > requests.size())
        throw ShapeError("make_batch: range [" + std::to_string(begin) + ", " + std::to_string(end) +
                         ") outside " + std::to_string(requests.size()) + " requests");
    std::vector<const Request*> picked;
    picked.reserve(end - begin);
    for (std::size_t i = begin; i < end; ++i) picked.push_back(&requests[i]);
    return make_batch(picked);
}

/// Yields the batches of one epoch after another. With `shuffle`, epoch e visits the
/// requests in a permutation drawn from (seed, e) alone, so the same seed gives the same
/// batches, and a resumed run can start at epoch e without replaying the earlier ones.
/// Batches hold batch_size requests; the last one of an epoch holds the remainder.
class Batcher {
public:
    /// `requests` must outlive the Batcher and the batches it makes.
    Batcher(const std::vector<Request>& requests, std::size_t batch_size, std::uint64_t seed, bool shuffle = true)
        : requests_(&requests), batch_size_(batch_size), seed_(seed), shuffle_(shuffle) {
        if (batch_size == 0) throw ConfigError("Batcher: batch_size must be >= 1");
        start_epoch(0);
    }

    /// Restarts at the first batch of epoch `epoch`.
    void start_epoch(std::uint64_t epoch) {
        order_.resize(requests_->size());
        for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = i;
        if (shuffle_) {
            std::mt19937_64 rng = seeded_generator(seed_, epoch);
            seeded_shuffle(order_, rng);
        }
        next_ = 0;
    }

    /// Data parallelism (train/collective.hpp): this Batcher is rank `rank` of `ranks`, all
    /// with the same requests, batch size and seed. next() then yields only this rank's
    /// part of each batch of B requests, requests [ceil(B rank / ranks), ceil(B (rank+1) /
    /// ranks)) of it: the parts of all ranks, in rank order, are the batch one process
    /// would see. Rank 0's part is never empty; the others' are when B < ranks (only the
    /// last batch of an epoch can be that small).
    void shard(int rank, int ranks) {
        if (ranks < 1 || rank < 0 || rank >= ranks)
            throw ConfigError("Batcher::shard: rank " + std::to_string(rank) + " of " + std::to_string(ranks) +
                              " ranks (expected 0 <= rank < ranks)");
        rank_ = static_cast<std::size_t>(rank);
        ranks_ = static_cast<std::size_t>(ranks);
    }

    /// The next batch (this rank's part of it, see shard) into `out`; false (and `out`
    /// untouched) after the last.
    bool next(Batch& out) {
        if (next_ >= order_.size()) return false;
        const std::size_t end = std::min(order_.size(), next_ + batch_size_);
        whole_.clear();
        for (std::size_t i = next_; i < end; ++i) whole_.push_back(&(*requests_)[order_[i]]);
        next_ = end;
        const std::size_t n = whole_.size();
        const std::size_t first = (n * rank_ + ranks_ - 1) / ranks_, last = (n * (rank_ + 1) + ranks_ - 1) / ranks_;
        out = make_batch(std::vector<const Request*>(whole_.begin() + static_cast<std::ptrdiff_t>(first),
                                                     whole_.begin() + static_cast<std::ptrdiff_t>(last)));
        return true;
    }

    /// The whole batch the last next() took its part from: what every rank's loss needs to
    /// weigh its part (LossShare, model/losses.hpp).
    const std::vector<const Request*>& whole_batch() const { return whole_; }

    std::size_t num_batches() const { return (order_.size() + batch_size_ - 1) / batch_size_; }
    /// This epoch's visiting order: request indices, batch after batch.
    const std::vector<std::size_t>& order() const { return order_; }

private:
    const std::vector<Request>* requests_;
    std::size_t batch_size_;
    std::uint64_t seed_;
    bool shuffle_;
    std::vector<std::size_t> order_;
    std::size_t next_ = 0;
    std::size_t rank_ = 0, ranks_ = 1;
    std::vector<const Request*> whole_;
};

}  // namespace piano::data
