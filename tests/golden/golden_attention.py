"""Golden fixtures for MultiHeadAttention and TransformerEncoderLayer, from PyTorch.

The C++ layers take ragged batches (rows of all lists stacked, with offsets); PyTorch's
take padded ones. So each list is padded to the longest, padding and masked keys go into
key_padding_mask, and only the real rows of the output are kept. Padded queries attend to
real keys and are then dropped, so they change nothing.

Names follow the C++ side: "param.<name>" for each parameter as
Module::named_parameters() names it (weights transposed: C++ Linear stores [in, out],
PyTorch [out, in]), "grad.<name>" for its gradient, "grad.<input>" for input gradients,
"upstream" for the gradient fed to backward, "output" for the forward.
"""
import torch
import torch.nn.functional as F

from fixture_io import write_fixture

D_MODEL = 8
HEADS = 2
FFN = 16


def offsets_of(lengths):
    out = [0]
    for n in lengths:
        out.append(out[-1] + n)
    return out


def pad_segments(x, offsets, length):
    """Ragged [R, d] -> padded [S, length, d], differentiably (zeros after each list)."""
    parts = []
    for s in range(len(offsets) - 1):
        rows = x[offsets[s]:offsets[s + 1]]
        parts.append(F.pad(rows, (0, 0, 0, length - rows.shape[0])))
    return torch.stack(parts)


def unpad_segments(y, offsets):
    """Padded [S, length, d] -> ragged [R, d]: the real rows of each list, stacked."""
    return torch.cat([y[s, :offsets[s + 1] - offsets[s]] for s in range(len(offsets) - 1)])


def padding_mask(offsets, length, key_mask):
    """[S, length], True = not attended (PyTorch's convention): padding or a masked key."""
    ignore = torch.ones(len(offsets) - 1, length, dtype=torch.bool)
    for s in range(len(offsets) - 1):
        n = offsets[s + 1] - offsets[s]
        ignore[s, :n] = ~key_mask[offsets[s]:offsets[s + 1]]
    return ignore


def randomize(module, gen, scale=0.4):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)


def attention_named(mha, prefix, use_grad):
    """The C++ MultiHeadAttention's parameters (or gradients) from a torch MultiheadAttention."""
    d = mha.embed_dim
    w = mha.in_proj_weight.grad if use_grad else mha.in_proj_weight
    b = mha.in_proj_bias.grad if use_grad else mha.in_proj_bias
    ow = mha.out_proj.weight.grad if use_grad else mha.out_proj.weight
    ob = mha.out_proj.bias.grad if use_grad else mha.out_proj.bias
    named = []
    for i, name in enumerate(["w_q", "w_k", "w_v"]):
        named.append((f"{prefix}{name}.weight", w[i * d:(i + 1) * d].t()))
        named.append((f"{prefix}{name}.bias", b[i * d:(i + 1) * d]))
    named.append((f"{prefix}w_o.weight", ow.t()))
    named.append((f"{prefix}w_o.bias", ob))
    return named


def linear_named(linear, name, use_grad):
    w = linear.weight.grad if use_grad else linear.weight
    b = linear.bias.grad if use_grad else linear.bias
    return [(f"{name}.weight", w.t()), (f"{name}.bias", b)]


def norm_named(norm, name, use_grad):
    w = norm.weight.grad if use_grad else norm.weight
    b = norm.bias.grad if use_grad else norm.bias
    return [(f"{name}.weight", w), (f"{name}.bias", b)]


def ragged_meta(name, offsets):
    return (name, torch.tensor(offsets, dtype=torch.float64))


def write_attention(path):
    """(a) Cross-attention on 3 lists with 2, 3, 1 queries and 3, 4, 2 keys; a key masked
    in lists 0 and 1."""
    gen = torch.Generator().manual_seed(20240501)
    q_off = offsets_of([2, 3, 1])
    k_off = offsets_of([3, 4, 2])
    key_mask = torch.tensor([False, True, True, True, True, False, True, True, True])
    query = torch.randn(q_off[-1], D_MODEL, generator=gen).requires_grad_()
    key = torch.randn(k_off[-1], D_MODEL, generator=gen).requires_grad_()
    value = torch.randn(k_off[-1], D_MODEL, generator=gen).requires_grad_()
    upstream = torch.randn(q_off[-1], D_MODEL, generator=gen)

    mha = torch.nn.MultiheadAttention(D_MODEL, HEADS, dropout=0.0, batch_first=True)
    randomize(mha, gen)
    lq = max(q_off[i + 1] - q_off[i] for i in range(len(q_off) - 1))
    lk = max(k_off[i + 1] - k_off[i] for i in range(len(k_off) - 1))
    out, weights = mha(pad_segments(query, q_off, lq), pad_segments(key, k_off, lk),
                       pad_segments(value, k_off, lk), key_padding_mask=padding_mask(k_off, lk, key_mask),
                       average_attn_weights=False)  # weights: [S, heads, lq, lk]
    output = unpad_segments(out, q_off)
    output.backward(upstream)

    named = [("query", query), ("key", key), ("value", value), ragged_meta("query_offsets", q_off),
             ragged_meta("key_offsets", k_off), ("key_mask", key_mask.to(torch.float64).reshape(-1, 1)),
             ("upstream", upstream)]
    named += [("param." + n, t) for n, t in attention_named(mha, "", use_grad=False)]
    named += [("output", output)]
    for s in range(len(q_off) - 1):
        nq, nk = q_off[s + 1] - q_off[s], k_off[s + 1] - k_off[s]
        # The C++ layout: per list, [heads * nq, nk], head after head.
        named.append((f"weights.{s}", weights[s, :, :nq, :nk].reshape(HEADS * nq, nk)))
    named += [("grad.query", query.grad), ("grad.key", key.grad), ("grad.value", value.grad)]
    named += [("grad." + n, t) for n, t in attention_named(mha, "", use_grad=True)]
    write_fixture(path, named)


def write_encoder_layer(path):
    """(b) A pre-LN encoder layer (GELU tanh form, dropout 0) on 3 lists of 3, 1, 4 tokens,
    the last list with one masked token."""
    gen = torch.Generator().manual_seed(20240502)
    off = offsets_of([3, 1, 4])
    key_mask = torch.tensor([True, True, True, True, True, True, False, True])
    x = torch.randn(off[-1], D_MODEL, generator=gen).requires_grad_()
    upstream = torch.randn(off[-1], D_MODEL, generator=gen)

    layer = torch.nn.TransformerEncoderLayer(D_MODEL, HEADS, dim_feedforward=FFN, dropout=0.0,
                                             activation=lambda t: F.gelu(t, approximate="tanh"),
                                             batch_first=True, norm_first=True)
    randomize(layer, gen)
    with torch.no_grad():  # gains near 1, as after training, rather than near 0
        layer.norm1.weight.add_(1.0)
        layer.norm2.weight.add_(1.0)
    length = max(off[i + 1] - off[i] for i in range(len(off) - 1))
    out = layer(pad_segments(x, off, length), src_key_padding_mask=padding_mask(off, length, key_mask))
    output = unpad_segments(out, off)
    output.backward(upstream)

    def params(use_grad):
        return (attention_named(layer.self_attn, "attn.", use_grad) + linear_named(layer.linear1, "ffn1", use_grad)
                + linear_named(layer.linear2, "ffn2", use_grad) + norm_named(layer.norm1, "norm1", use_grad)
                + norm_named(layer.norm2, "norm2", use_grad))

    named = [("x", x), ragged_meta("offsets", off), ("key_mask", key_mask.to(torch.float64).reshape(-1, 1)),
             ("upstream", upstream)]
    named += [("param." + n, t) for n, t in params(use_grad=False)]
    named += [("output", output), ("grad.x", x.grad)]
    named += [("grad." + n, t) for n, t in params(use_grad=True)]
    write_fixture(path, named)


def write(out_dir):
    torch.set_default_dtype(torch.float64)
    write_attention(out_dir / "attention_mha.txt")
    write_encoder_layer(out_dir / "attention_encoder_layer.txt")
