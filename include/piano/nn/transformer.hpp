// piano/nn/transformer.hpp: pre-LayerNorm transformer encoder layers over ragged batches.
//
// One layer (pre-LN, as in GPT-2 and PyTorch's norm_first=True):
//     x = x + Dropout(MHA(LN1(x)))                  self-attention within each list
//     x = x + Dropout(W2 GELU(W1 LN2(x) + b1) + b2)  position-wise feed-forward
// Normalising the input of each block (not its sum with the residual, as post-LN does)
// leaves an identity path from the output back to the input, which keeps gradients
// well scaled through a stack without a learning-rate warm-up.
#pragma once

#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "piano/core/compiled.hpp"
#include "piano/nn/attention.hpp"
#include "piano/nn/dropout.hpp"
#include "piano/nn/layer_norm.hpp"
#include "piano/nn/linear.hpp"
#include "piano/nn/module.hpp"
#include "piano/ops/elementwise.hpp"
#include "piano/ops/unary.hpp"

namespace piano {

/// One pre-LN encoder layer (the formula at the top of this header); GELU is the tanh form.
///
/// Children, registered in PyTorch's order so that parameter lists line up with
/// nn.TransformerEncoderLayer's: "attn" (MultiHeadAttention, dropout on its probabilities),
/// "ffn1" (Linear d_model -> ffn_dim), "ffn2" (Linear ffn_dim -> d_model), "norm1" and
/// "norm2" (LayerNorm d_model), "dropout" (on both residual branches; no parameters).
template <typename T>
class TransformerEncoderLayer : public Module<T> {
public:
    /// Requires: d_model % heads == 0, ffn_dim positive, 0 <= dropout < 1.
    TransformerEncoderLayer(Index d_model, Index heads, Index ffn_dim, T dropout, std::mt19937_64& rng) {
        attn_ = this->register_module("attn", std::make_shared<MultiHeadAttention<T>>(d_model, heads, rng, dropout));
        ffn1_ = this->register_module("ffn1", std::make_shared<Linear<T>>(d_model, ffn_dim, rng));
        ffn2_ = this->register_module("ffn2", std::make_shared<Linear<T>>(ffn_dim, d_model, rng));
        norm1_ = this->register_module("norm1", std::make_shared<LayerNorm<T>>(d_model));
        norm2_ = this->register_module("norm2", std::make_shared<LayerNorm<T>>(d_model));
        dropout_ = this->register_module("dropout", std::make_shared<Dropout<T>>(dropout, rng()));
    }

    /// Requires: x [R, d_model]; offsets valid segment offsets over R rows (S+1 entries);
    /// key_mask, if given, [R, 1] with true = a real token.
    /// Ensures: the result is [R, d_model]; each list attends only to itself, and no token
    /// attends to a masked one (masked rows are still transformed, as queries). If
    /// weights_out is given it receives the attention probabilities (AttentionWeights).
    Tensor<T> forward(const Tensor<T>& x, const std::vector<Index>& offsets, const Mask* key_mask = nullptr,
                      AttentionWeights<T>* weights_out = nullptr) {
        const Tensor<T> n1 = norm1_->forward(x);
        const Tensor<T> h = x + dropout_->forward(attn_->forward(n1, n1, n1, offsets, offsets, key_mask, weights_out));
        const Tensor<T> ffn = ffn2_->forward(gelu(ffn1_->forward(norm2_->forward(h))));  // [R,ffn] -> [R,d]
        return h + dropout_->forward(ffn);
    }

    MultiHeadAttention<T>& attn() { return *attn_; }

private:
    std::shared_ptr<MultiHeadAttention<T>> attn_;
    std::shared_ptr<Linear<T>> ffn1_, ffn2_;
    std::shared_ptr<LayerNorm<T>> norm1_, norm2_;
    std::shared_ptr<Dropout<T>> dropout_;
};

/// A stack of `num_layers` TransformerEncoderLayer and, optionally, a final LayerNorm
/// (pre-LN layers leave their output un-normalised, so a model usually wants one).
///
/// Children: "layers" (a ModuleList; parameters "layers.0.attn.w_q.weight", ...,
/// "layers.1.norm2.bias") and, with final_norm, "norm" ("norm.weight", "norm.bias").
template <typename T>
class TransformerEncoder : public Module<T> {
public:
    /// Requires: num_layers >= 1 and the layer's requirements.
    TransformerEncoder(Index num_layers, Index d_model, Index heads, Index ffn_dim, T dropout, std::mt19937_64& rng,
                       bool final_norm = true) {
        if (num_layers < 1) {
            throw std::invalid_argument("TransformerEncoder: num_layers must be positive, got " +
                                        std::to_string(num_layers));
        }
        layers_ = this->register_module("layers", std::make_shared<ModuleList<T, TransformerEncoderLayer<T>>>());
        for (Index i = 0; i < num_layers; ++i) {
            layers_->push_back(std::make_shared<TransformerEncoderLayer<T>>(d_model, heads, ffn_dim, dropout, rng));
        }
        if (final_norm) norm_ = this->register_module("norm", std::make_shared<LayerNorm<T>>(d_model));
    }

    /// Requires and ensures: as TransformerEncoderLayer::forward, applied layer after
    /// layer (then the final norm). If weights_out is given, it receives one
    /// AttentionWeights per layer, in order.
    Tensor<T> forward(const Tensor<T>& x, const std::vector<Index>& offsets, const Mask* key_mask = nullptr,
                      std::vector<AttentionWeights<T>>* weights_out = nullptr) {
        if (weights_out) weights_out->assign(layers_->size(), AttentionWeights<T>());
        Tensor<T> h = x;
        for (std::size_t i = 0; i < layers_->size(); ++i) {
            h = (*layers_)[i].forward(h, offsets, key_mask, weights_out ? &(*weights_out)[i] : nullptr);
        }
        return norm_ ? norm_->forward(h) : h;
    }

    std::size_t num_layers() const { return layers_->size(); }
    TransformerEncoderLayer<T>& layer(std::size_t i) { return (*layers_)[i]; }

private:
    std::shared_ptr<ModuleList<T, TransformerEncoderLayer<T>>> layers_;
    std::shared_ptr<LayerNorm<T>> norm_;  // null without a final norm
};

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(class TransformerEncoderLayer<float>);
PIANO_INSTANTIATE(class ModuleList<float, TransformerEncoderLayer<float>>);
PIANO_INSTANTIATE(class TransformerEncoder<float>);

}  // namespace piano
