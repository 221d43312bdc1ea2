// Tutorial chapter 4 (docs/tutorial/04-attention.md): attention on a ragged batch.
//
// Two lists of different lengths are stacked without padding. Self-attention lets each
// token of a list look at the tokens of its own list; cross-attention lets one query per
// list look at that list's keys (here: a history, empty for the second list). The program
// prints the attention weights, recomputes one head's weights by hand, and checks that
// lists never see each other. Returns non-zero if a claim fails.
#include <piano/core/tensor.hpp>
#include <piano/nn/attention.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "checks.hpp"

namespace {

using piano::Index;
using piano::Matrix;
using piano::Tensor;

void print_matrix(const std::string& title, const Matrix<float>& m) {
    std::printf("%s [%ld,%ld]\n", title.c_str(), static_cast<long>(m.rows()), static_cast<long>(m.cols()));
    for (Index r = 0; r < m.rows() && m.cols() > 0; ++r) {
        std::printf("   ");
        for (Index c = 0; c < m.cols(); ++c) std::printf(" %6.3f", m(r, c));
        std::printf("\n");
    }
}

// [tutorial:by-hand]
// Head h's weights for the queries `xq` [nq,d] over the keys `xk` [nk,d], from the
// module's own parameters: softmax over each row of Q_h K_hᵀ / √d_head, where
// Q = xq W_q + b_q, K = xk W_k + b_k and X_h is X's columns [h·d_head, (h+1)·d_head).
Matrix<float> weights_by_hand(piano::MultiHeadAttention<float>& attn, const Matrix<float>& xq,
                              const Matrix<float>& xk, Index h) {
    const Index dh = attn.d_head();
    const Matrix<float> Q = (xq * attn.w_q().weight.value()).rowwise() + attn.w_q().bias.value().row(0);
    const Matrix<float> K = (xk * attn.w_k().weight.value()).rowwise() + attn.w_k().bias.value().row(0);
    Matrix<float> scores = Q.middleCols(h * dh, dh) * K.middleCols(h * dh, dh).transpose() /
                           std::sqrt(static_cast<float>(dh));                          // [nq,nk]
    for (Index r = 0; r < scores.rows(); ++r) {
        scores.row(r) = (scores.row(r).array() - scores.row(r).maxCoeff()).exp();      // shift: no overflow
        scores.row(r) /= scores.row(r).sum();
    }
    return scores;
}
// [tutorial:end]

}  // namespace

int main() {
    tutorial::Checks check;
    std::mt19937_64 rng(4);

    // [tutorial:ragged]
    // Two lists, of 3 and 2 tokens, d = 4: one [5,4] matrix and the offsets {0, 3, 5}.
    // List s is rows offsets[s] .. offsets[s+1]-1; nothing is padded.
    const Tensor<float> tokens = Tensor<float>::randn(5, 4, rng);
    const std::vector<Index> offsets = {0, 3, 5};
    // [tutorial:end]

    // [tutorial:self]
    // Self-attention: queries, keys and values are all the tokens; each list attends
    // within itself. 2 heads of d_head = 2 columns each.
    piano::MultiHeadAttention<float> self_attn(/*d_model=*/4, /*heads=*/2, rng);
    piano::AttentionWeights<float> self_weights;
    const Tensor<float> mixed = self_attn.forward(tokens, tokens, tokens, offsets, offsets, nullptr, &self_weights);
    for (std::size_t s = 0; s < 2; ++s) {
        for (Index h = 0; h < self_weights.heads; ++h) {
            print_matrix("list " + std::to_string(s) + ", head " + std::to_string(h) + ": weights (row = query, column = key)",
                         self_weights.head(s, h));
        }
    }
    // [tutorial:end]
    bool rows_sum_to_one = true;
    for (std::size_t s = 0; s < 2; ++s) {
        for (Index h = 0; h < 2; ++h) {
            rows_sum_to_one = rows_sum_to_one && self_weights.head(s, h).rowwise().sum().isOnes(1e-6f);
        }
    }
    check(rows_sum_to_one, "every query's weights over its list sum to 1");
    check(mixed.rows() == 5 && mixed.cols() == 4, "the output has one row per token: [5,4]");

    // [tutorial:check-by-hand]
    const Matrix<float> list0 = tokens.value().topRows(3);
    const Matrix<float> head0 = weights_by_hand(self_attn, list0, list0, 0);
    const bool same_as_by_hand = head0.isApprox(self_weights.head(0, 0), 1e-5f);
    // [tutorial:end]
    check(same_as_by_hand, "list 0, head 0: the weights equal softmax(Q_h K_h^T / sqrt(d_head)) computed by hand");

    // [tutorial:isolation]
    // Change a token of list 1: list 0's outputs must not move, list 1's must.
    Matrix<float> changed = tokens.value();
    changed.row(4).setConstant(3.0f);
    const Tensor<float> other(changed);
    const Matrix<float> remixed = self_attn.forward(other, other, other, offsets, offsets).value();
    const bool list0_unchanged = remixed.topRows(3) == mixed.value().topRows(3);
    const bool list1_changed = !(remixed.bottomRows(2) == mixed.value().bottomRows(2));
    // [tutorial:end]
    check(list0_unchanged, "changing a token of list 1 leaves list 0's outputs exactly as they were");
    check(list1_changed, "and changes list 1's");

    // [tutorial:cross]
    // Cross-attention: one query per list ([2,4], query offsets {0,1,2}) over keys from
    // elsewhere: list 0 has a history of 4 rows, list 1 none (key offsets {0,4,4}).
    piano::MultiHeadAttention<float> cross_attn(4, 2, rng);
    const Tensor<float> queries = Tensor<float>::randn(2, 4, rng);
    const Tensor<float> history = Tensor<float>::randn(4, 4, rng);
    piano::AttentionWeights<float> cross_weights;
    const Tensor<float> read = cross_attn.forward(queries, history, history, {0, 1, 2}, {0, 4, 4}, nullptr, &cross_weights);
    print_matrix("list 0: the query's weights over its 4 history rows (row = head)", cross_weights.segments[0]);
    print_matrix("list 1: nothing to attend to", cross_weights.segments[1]);
    print_matrix("output (row = list)", read.value());
    // [tutorial:end]
    check(cross_weights.segments[0].rowwise().sum().isOnes(1e-6f), "list 0's query spreads weight 1 over its history");
    check(read.value().row(1).isZero(0.0f), "list 1 has no history: its output row is exactly zero");

    return check.finish();
}
