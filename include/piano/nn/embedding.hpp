// piano/nn/embedding.hpp: a lookup table of learned vectors, with a reserved row for
// unknown ids and optional hashing of large id spaces.
#pragma once

#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/nn/init.hpp"
#include "piano/nn/module.hpp"
#include "piano/ops/indexing.hpp"

namespace piano {

struct EmbeddingOptions {
    /// false: an id >= rows is unknown and reads row 0.
    /// true:  an id >= rows is hashed into rows 1..rows-1 by 1 + id % (rows - 1), so a
    ///        large id space shares a fixed table (distinct ids may collide); needs rows >= 2.
    bool hash_buckets = false;
    /// The standard deviation of the N(0, s²) initial entries. Small, so that a sum of
    /// several field embeddings stays of order 1.
    double init_stddev = 0.1;
};

/// A table of `rows` learned vectors of width `dim`.
///
/// Ids map to rows as follows (Embedding::row_of):
///   - 0 <= id < rows:  row id. Row 0 is reserved for "unknown": callers encode a missing
///     value as id 0, and it is also where out-of-range ids go, so no id crashes or reads
///     out of bounds.
///   - id >= rows:      row 0, or with EmbeddingOptions::hash_buckets row 1 + id % (rows - 1).
///   - id < 0:          std::invalid_argument naming the id and its position (a negative id
///                      is a bug upstream, not an unseen value).
///
/// Parameters: `weight` [rows, dim]. Its gradient is row-sparse (see the `embedding` op):
/// only the rows a batch used are touched.
template <typename T>
class Embedding : public Module<T> {
public:
    Embedding(Index rows, Index dim, std::mt19937_64& rng, EmbeddingOptions options = {})
        : rows_(rows), dim_(dim), options_(options) {
        if (rows < 1 || dim < 1) {
            throw std::invalid_argument("Embedding: rows and dim must be positive, got rows " + std::to_string(rows) +
                                        " and dim " + std::to_string(dim));
        }
        if (options.hash_buckets && rows < 2) {
            throw std::invalid_argument("Embedding: hashing needs rows >= 2 (row 0 is reserved), got rows " +
                                        std::to_string(rows));
        }
        weight = this->register_parameter("weight", Tensor<T>(init::normal<T>(rows, dim, rng, options.init_stddev)));
    }

    /// The table row that `id` reads (the rules above). Requires: id >= 0.
    Index row_of(Index id) const {
        if (id < rows_) return id;
        return options_.hash_buckets ? 1 + id % (rows_ - 1) : 0;
    }

    /// Requires: every id >= 0. Ensures: the result is [ids.size(), dim], row i being
    /// weight.row(row_of(ids[i])); backward adds into those rows of weight's gradient.
    Tensor<T> forward(const std::vector<Index>& ids) const { return embedding(weight, rows_of(ids)); }

    /// row_of for every id, after checking that none is negative (std::invalid_argument
    /// naming the id and its position): the table rows forward() reads, for callers that
    /// sum several lookups in one node (embedding_sum).
    std::vector<Index> rows_of(const std::vector<Index>& ids) const {
        std::vector<Index> table_rows(ids.size());
        for (std::size_t i = 0; i < ids.size(); ++i) {
            if (ids[i] < 0) {
                throw std::invalid_argument("Embedding: id " + std::to_string(ids[i]) + " (position " +
                                            std::to_string(i) + ") is negative; ids must be >= 0");
            }
            table_rows[i] = row_of(ids[i]);
        }
        return table_rows;
    }

    Index rows() const { return rows_; }
    Index dim() const { return dim_; }

    Tensor<T> weight;

private:
    Index rows_, dim_;
    EmbeddingOptions options_;
};

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(class Embedding<float>);

}  // namespace piano
