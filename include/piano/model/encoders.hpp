// piano/model/encoders.hpp: from a batch of integer ids to d-wide vectors.
//
// PIANO and every baseline share these encoders (SPEC "Encoders"), so a comparison
// between them measures the architecture above the features, not the features.
//
//   query(batch)          q   [B, d]   masked mean of term embeddings, then Linear(d,d);
//                                      an empty query is the learned `no_query` vector
//   candidates(batch)     c   [ΣL, d]  Σ over fields of field embeddings (+ Linear(dense))
//                                      (+ Linear(history match), when config.history_match)
//                                      (+ Linear(query match), when config.query_match)
//   history_keys(batch)   k   [ΣH, d]  QueryEnc(query_j), `no_query` when absent
//   history_values(batch) v   [ΣH, d]  ItemEnc(item_j) + E_type[type_j] + E_gap[bucket(gap_j)]
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/data/batch.hpp"
#include "piano/data/history_match.hpp"
#include "piano/model/config.hpp"
#include "piano/nn/embedding.hpp"
#include "piano/nn/init.hpp"
#include "piano/nn/linear.hpp"
#include "piano/nn/module.hpp"
#include "piano/ops/elementwise.hpp"
#include "piano/ops/indexing.hpp"
#include "piano/ops/segment.hpp"

namespace piano {

/// log2 buckets of a time gap: 0 -> 0, 1 -> 1, 2..3 -> 2, 4..7 -> 3, ...; the last bucket
/// holds everything larger. Gaps span orders of magnitude, so equal-width buckets would
/// put nearly every event in one of them.
inline Index gap_bucket(std::int64_t gap, Index buckets) {
    if (gap <= 0) return 0;
    const Index b = 1 + static_cast<Index>(std::floor(std::log2(static_cast<double>(gap))));
    return b < buckets ? b : buckets - 1;
}

/// Children: "terms", "items", "brands", "categories", "shops", "behaviors", "gaps"
/// (Embedding), "query_proj" (Linear d->d), "dense" (Linear D->d, only when D > 0),
/// "match" (Linear F->d over data::history_match, only when config.history_match),
/// "query_match" (Linear 6->d over Candidate::query_match, only when config.query_match);
/// parameter "no_query" [1, d].
template <typename T>
class FeatureEncoder : public Module<T> {
public:
    FeatureEncoder(const PianoConfig& config, std::mt19937_64& rng) : config_(config) {
        const Index d = config.d_model;
        terms_ = this->register_module("terms", std::make_shared<Embedding<T>>(config.term_rows, d, rng));
        // Large id spaces (items) are hashed into the table rather than all sent to row 0.
        items_ = this->register_module(
            "items", std::make_shared<Embedding<T>>(config.item_rows, d, rng, EmbeddingOptions{true, 0.1}));
        brands_ = this->register_module("brands", std::make_shared<Embedding<T>>(config.brand_rows, d, rng));
        categories_ = this->register_module("categories", std::make_shared<Embedding<T>>(config.category_rows, d, rng));
        shops_ = this->register_module("shops", std::make_shared<Embedding<T>>(config.shop_rows, d, rng));
        behaviors_ = this->register_module("behaviors", std::make_shared<Embedding<T>>(data::kBehaviorCount, d, rng));
        gaps_ = this->register_module("gaps", std::make_shared<Embedding<T>>(config.gap_buckets, d, rng));
        query_proj_ = this->register_module("query_proj", std::make_shared<Linear<T>>(d, d, rng));
        if (config.dense_features > 0) {
            dense_ = this->register_module("dense", std::make_shared<Linear<T>>(config.dense_features, d, rng));
        }
        if (config.history_match) {
            match_ = this->register_module("match", std::make_shared<Linear<T>>(data::kHistoryMatchFeatures, d, rng));
        }
        if (config.query_match) {
            query_match_ =
                this->register_module("query_match", std::make_shared<Linear<T>>(data::kProductTextCount, d, rng));
        }
        no_query_ = this->register_parameter("no_query", Tensor<T>(init::normal<T>(1, d, rng, 0.1)));
    }

    /// q [B, d]: the current query of every request.
    Tensor<T> query(const data::Batch& batch) const {
        std::vector<int> has_terms(static_cast<std::size_t>(batch.size()));
        for (Index b = 0; b < batch.size(); ++b) {
            has_terms[static_cast<std::size_t>(b)] = batch.query_offsets[b + 1] > batch.query_offsets[b];
        }
        return encode_queries(batch.query_terms, batch.query_offsets, has_terms);
    }

    /// k [ΣH, d]: the query of every history event (no_query for query-less events).
    Tensor<T> history_keys(const data::Batch& batch) const {
        std::vector<int> has_terms(batch.hist_has_query.size());
        for (std::size_t e = 0; e < has_terms.size(); ++e) {
            has_terms[e] = batch.hist_has_query[e] && batch.hist_query_offsets[e + 1] > batch.hist_query_offsets[e];
        }
        return encode_queries(batch.hist_query_terms, batch.hist_query_offsets, has_terms);
    }

    /// c [ΣL, d]: every candidate's item encoding.
    Tensor<T> candidates(const data::Batch& batch) const {
        Tensor<T> c = encode_items(batch.cand_fields);
        // Checked with or without a dense layer: features a model has no input for would
        // otherwise be dropped without a word, and scores computed as if they were absent.
        if (batch.dense_dim != config_.dense_features) {
            throw ShapeError("FeatureEncoder: the batch has " + std::to_string(batch.dense_dim) +
                             " dense features, the model " + std::to_string(config_.dense_features));
        }
        if (dense_) c = c + dense_->forward(per_candidate(batch.cand_dense, batch, batch.dense_dim, "dense"));
        if (match_) {
            c = c + match_->forward(
                        per_candidate(data::history_match(batch), batch, data::kHistoryMatchFeatures, "history-match"));
        }
        if (query_match_) {
            c = c + query_match_->forward(
                        per_candidate(batch.cand_query_match, batch, data::kProductTextCount, "query-match"));
        }
        return c;
    }

    /// v [ΣH, d]: what each history event did, and how long ago.
    Tensor<T> history_values(const data::Batch& batch) const {
        std::vector<Index> gap_rows(batch.hist_gap.size());
        for (std::size_t e = 0; e < gap_rows.size(); ++e) gap_rows[e] = gap_bucket(batch.hist_gap[e], config_.gap_buckets);
        std::vector<Tensor<T>> tables;
        std::vector<std::vector<Index>> rows;
        item_lookups(batch.hist_fields, tables, rows);
        tables.push_back(behaviors_->weight);
        rows.push_back(behaviors_->rows_of(batch.hist_type));
        tables.push_back(gaps_->weight);
        rows.push_back(gaps_->rows_of(gap_rows));
        return embedding_sum(tables, rows);  // item fields + E_type + E_gap, one node
    }

    const Tensor<T>& no_query() const { return no_query_; }

private:
    // A row-major [ΣL, width] block of per-candidate input values as a constant tensor.
    // ShapeError unless `values` holds `width` of them for every candidate of `batch`.
    static Tensor<T> per_candidate(const std::vector<float>& values, const data::Batch& batch, Index width,
                                   const char* what) {
        const Index n = batch.num_candidates();
        if (values.size() != static_cast<std::size_t>(n * width)) {
            throw ShapeError(std::string("FeatureEncoder: the batch has ") + std::to_string(values.size()) + " " + what +
                             " values for " + std::to_string(n) + " candidates, expected " + std::to_string(width) +
                             " each");
        }
        Matrix<T> m(n, width);
        for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<T>(values[static_cast<std::size_t>(i)]);
        return Tensor<T>(std::move(m));
    }

    // Masked mean of term embeddings per segment, projected; segments without terms get
    // no_query instead:  out = has ⊙ Linear(mean) + (1 - has) ⊙ no_query.
    Tensor<T> encode_queries(const std::vector<Index>& terms, const std::vector<Index>& offsets,
                             const std::vector<int>& has_terms) const {
        const Index n = static_cast<Index>(has_terms.size());
        Matrix<T> has(n, 1), lacks(n, 1);
        for (Index i = 0; i < n; ++i) {
            has(i, 0) = has_terms[static_cast<std::size_t>(i)] ? T(1) : T(0);
            lacks(i, 0) = T(1) - has(i, 0);
        }
        const Tensor<T> mean = embedding_mean(terms_->weight, terms_->rows_of(terms), offsets);  // [n, d]
        return query_proj_->forward(mean) * Tensor<T>(std::move(has)) + Tensor<T>(std::move(lacks)) * no_query_;
    }

    // Σ_k E_table(k)[field_k]: the item id, artist, four genre levels and label.
    Tensor<T> encode_items(const std::array<std::vector<Index>, data::ItemFields::kCount>& fields) const {
        std::vector<Tensor<T>> tables;
        std::vector<std::vector<Index>> rows;
        item_lookups(fields, tables, rows);
        return embedding_sum(tables, rows);
    }

    // The tables and rows of an item's seven lookups, in field order (the four genre
    // levels share one table).
    void item_lookups(const std::array<std::vector<Index>, data::ItemFields::kCount>& fields,
                      std::vector<Tensor<T>>& tables, std::vector<std::vector<Index>>& rows) const {
        const Embedding<T>* table_of[data::ItemFields::kCount] = {items_.get(),      brands_.get(),     categories_.get(),
                                                                  categories_.get(), categories_.get(), categories_.get(),
                                                                  shops_.get()};
        for (int k = 0; k < data::ItemFields::kCount; ++k) {
            tables.push_back(table_of[k]->weight);
            rows.push_back(table_of[k]->rows_of(fields[static_cast<std::size_t>(k)]));
        }
    }

    PianoConfig config_;
    std::shared_ptr<Embedding<T>> terms_, items_, brands_, categories_, shops_, behaviors_, gaps_;
    std::shared_ptr<Linear<T>> query_proj_, dense_, match_, query_match_;
    Tensor<T> no_query_;
};

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(class FeatureEncoder<float>);

}  // namespace piano
