"""A PyTorch twin of the C++ PianoModel and multi_task_loss (include/piano/model/).

It computes the same math as the C++ model, so golden_piano.py can check the C++ forward
and backward against autograd, and benchmarks can time the same network in PyTorch.

Where the C++ side stacks ragged lists without padding and loops over requests, this
module pads each ragged group to its longest member and masks: attention then runs as
one batched matmul for the whole batch, which is how PyTorch is fast. Padded keys are
masked out of every softmax and padded rows are dropped before anything reads them, so
padding changes no value and no gradient.

Parameter names are the C++ `named_parameters()` names ("features.terms.weight",
"qdir.w_q.weight", "encoder.layers.0.attn.w_q.weight", ...). The layouts differ in two
ways only: a C++ Linear weight is [in, out] (PyTorch's transpose) and C++ stores vectors
(biases, LayerNorm gains) as [1, n]; `cpp_parameters` and `load_cpp_parameters` convert.

A batch is a dict of tensors with the fields of the C++ data::Batch (see make_batch).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

BEHAVIOR_COUNT = 4  # data::kBehaviorCount: click, cart, purchase, follow
ITEM_FIELDS = 7     # data::ItemFields: item, brand, cate1..cate4, shop
LOSS_TERMS = ("ctr", "ctcvr", "list", "listwise")

# piano::PianoConfig's defaults (the "reference" configuration), under its to_map() keys.
DEFAULT_CONFIG = {
    "d_model": 64, "heads": 4, "layers": 2, "ffn_dim": 256, "dropout": 0.1,
    "term_rows": 10000, "item_rows": 100000, "brand_rows": 10000, "category_rows": 5000, "shop_rows": 5000,
    "dense_features": 0, "max_positions": 200, "gap_buckets": 16,
    "use_qdir": True, "use_ian": True, "list_loss": True, "detach_list_heads": True, "listwise_loss": False,
    "position_model": "pal", "lambda": 0.5, "weighting": "fixed",
    "weight_ctr": 1.0, "weight_ctcvr": 1.0, "weight_list": 0.1, "weight_listwise": 0.5,
}


def make_config(**overrides):
    """DEFAULT_CONFIG with `overrides`; an unknown key is an error, as in PianoConfig::from_map."""
    unknown = set(overrides) - set(DEFAULT_CONFIG)
    if unknown:
        raise KeyError(f"unknown config keys {sorted(unknown)}")
    config = dict(DEFAULT_CONFIG, **overrides)
    if config["d_model"] % config["heads"]:
        raise ValueError(f"d_model {config['d_model']} is not divisible by heads {config['heads']}")
    return config


def _offsets(lengths):
    return torch.tensor([0] + lengths, dtype=torch.long).cumsum(0)


def make_batch(requests):
    """Stacks requests as C++ data::make_batch does. A request is a dict:
        query:      [term rows]
        history:    [{query: [term rows], has_query: bool, fields: [7 rows], type: int, gap: int}]
        candidates: [{fields: [7 rows], click: 0/1, conv: 0/1, dense: [D floats] (optional)}]
    Fields are in data::ItemFields order; rows are already mapped by the vocabularies.
    Returns a dict of tensors: *_offsets [n+1], query_terms [ΣT], cand_fields [7, ΣL],
    cand_pos [ΣL], cand_dense [ΣL, D], click/conv [ΣL], hist_fields [7, ΣH], hist_type,
    hist_gap, hist_has_query [ΣH], hist_query_offsets [ΣH+1], hist_query_terms [ΣQ]."""
    cands = [c for r in requests for c in r["candidates"]]
    events = [e for r in requests for e in r["history"]]
    if any(not r["candidates"] for r in requests):
        raise ValueError("make_batch: a request needs >= 1 candidate")

    def long(values):
        return torch.tensor(values, dtype=torch.long)

    def fields(rows):
        return long([r["fields"] for r in rows]).reshape(-1, ITEM_FIELDS).t().contiguous()

    return {
        "query_offsets": _offsets([len(r["query"]) for r in requests]),
        "query_terms": long([t for r in requests for t in r["query"]]),
        "cand_offsets": _offsets([len(r["candidates"]) for r in requests]),
        "cand_fields": fields(cands),
        "cand_pos": long([i for r in requests for i in range(len(r["candidates"]))]),
        # float32 first, as the C++ Candidate stores them, so float64 runs see the same values.
        "cand_dense": torch.tensor([c.get("dense", []) for c in cands], dtype=torch.float32).to(
            torch.get_default_dtype()),
        "click": long([c["click"] for c in cands]),
        "conv": long([c["conv"] for c in cands]),
        "hist_offsets": _offsets([len(r["history"]) for r in requests]),
        "hist_fields": fields(events),
        "hist_type": long([e["type"] for e in events]),
        "hist_gap": long([e["gap"] for e in events]),
        "hist_has_query": torch.tensor([bool(e["has_query"]) for e in events], dtype=torch.bool),
        "hist_query_offsets": _offsets([len(e["query"]) for e in events]),
        "hist_query_terms": long([t for e in events for t in e["query"]]),
    }


class Ragged:
    """Where each row of a ragged group (offsets [S+1]) sits in its padded [S, width] form:
    segment[r] and position[r] of row r, each segment's length, and the width."""

    def __init__(self, offsets):
        self.lengths = offsets[1:] - offsets[:-1]
        self.segment = torch.repeat_interleave(torch.arange(len(self.lengths)), self.lengths)
        self.position = torch.arange(int(offsets[-1])) - offsets[:-1][self.segment]
        self.width = int(self.lengths.max()) if len(self.lengths) else 0

    def pad(self, x, fill=0.0):
        """[R, ...] -> [S, width, ...]; empty slots hold `fill`."""
        padded = x.new_full((len(self.lengths), self.width) + tuple(x.shape[1:]), fill)
        return padded.index_put((self.segment, self.position), x)

    def unpad(self, padded, shift=0):
        """[S, ≥shift+width, ...] -> [R, ...]: the real rows, read `shift` slots in."""
        return padded[self.segment, self.position + shift]

    def padding(self):
        """[S, width] bool, True at empty slots (PyTorch's key_padding_mask convention)."""
        return torch.arange(self.width)[None, :] >= self.lengths[:, None]

    def mean(self, x):
        """Mean of each segment's rows, zero for an empty segment (C++ segment_mean)."""
        total = x.new_zeros((len(self.lengths),) + tuple(x.shape[1:])).index_add(0, self.segment, x)
        return total / self.lengths.clamp(min=1).to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


def table_rows(ids, rows, hashed=False):
    """Embedding::row_of: an id beyond the table reads the unknown row 0, or with hashing
    row 1 + id % (rows - 1)."""
    beyond = 1 + ids % (rows - 1) if hashed else torch.zeros_like(ids)
    return torch.where(ids < rows, ids, beyond)


def gap_bucket(gap, buckets):
    """log2 buckets of a time gap (piano::gap_bucket): 0 -> 0, 1 -> 1, 2..3 -> 2, 4..7 -> 3,
    ..., the last bucket holding everything larger."""
    bucket = 1 + torch.floor(torch.log2(gap.clamp(min=1).to(torch.float64))).long()
    return torch.where(gap > 0, bucket, torch.zeros_like(bucket)).clamp(max=buckets - 1)


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


class MLP(nn.Module):
    """piano::MLP: Linear layers with activation and dropout after all but the last."""

    def __init__(self, widths, activation=F.relu, dropout=0.0):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.dropout = nn.Dropout(dropout)
        self.activation = activation
        for i, layer in enumerate(self.layers):
            # As the C++ MLP: He init for layers a ReLU follows, Glorot for the others.
            if activation is F.relu and i + 1 < len(self.layers):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i + 1 < len(self.layers):
                x = self.dropout(self.activation(x))
        return x


def _linear(n_in, n_out):
    layer = nn.Linear(n_in, n_out)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def _learned_vector(*shape):
    return nn.Parameter(torch.randn(*shape) * 0.1)


class MultiHeadAttention(nn.Module):
    """piano::MultiHeadAttention on padded batches: query [B, Lq, d], key [B, Lk, d],
    value [B, Lk, value_features], key_padding [B, Lk] (True = not a key). Every query
    needs at least one real key. Returns the output [B, Lq, d] and the attention
    probabilities [B, heads, Lq, Lk] (before dropout)."""

    def __init__(self, d_model, heads, dropout=0.0, value_features=None):
        super().__init__()
        self.heads = heads
        self.d_head = d_model // heads
        self.w_q = _linear(d_model, d_model)
        self.w_k = _linear(d_model, d_model)
        self.w_v = _linear(value_features or d_model, d_model)
        self.w_o = _linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def _split(self, x):  # [B, L, d] -> [B, heads, L, d_head]
        return x.reshape(x.shape[0], x.shape[1], self.heads, self.d_head).transpose(1, 2)

    def forward(self, query, key, value, key_padding):
        # Q is pre-scaled by 1/√d_head, as in the C++ layer and in PyTorch's own.
        q = self._split(self.w_q(query) / math.sqrt(self.d_head))
        k = self._split(self.w_k(key))
        v = self._split(self.w_v(value))
        scores = (q @ k.transpose(-2, -1)).masked_fill(key_padding[:, None, None, :], float("-inf"))
        p = torch.softmax(scores, dim=-1)
        context = (self.dropout(p) @ v).transpose(1, 2).reshape(query.shape[0], query.shape[1], -1)
        return self.w_o(context), p


class TransformerEncoderLayer(nn.Module):
    """piano::TransformerEncoderLayer: pre-LN, GELU (tanh form), dropout on both residual
    branches and on the attention probabilities (none inside the FFN)."""

    def __init__(self, d_model, heads, ffn_dim, dropout):
        super().__init__()
        self.attn = MultiHeadAttention(d_model, heads, dropout)
        self.ffn1 = _linear(d_model, ffn_dim)
        self.ffn2 = _linear(ffn_dim, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=1e-5)
        self.norm2 = nn.LayerNorm(d_model, eps=1e-5)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, key_padding):
        n1 = self.norm1(x)
        h = x + self.dropout(self.attn(n1, n1, n1, key_padding)[0])
        return h + self.dropout(self.ffn2(gelu_tanh(self.ffn1(self.norm2(h)))))


class TransformerEncoder(nn.Module):
    """piano::TransformerEncoder: the layers, then a final LayerNorm."""

    def __init__(self, num_layers, d_model, heads, ffn_dim, dropout):
        super().__init__()
        self.layers = nn.ModuleList(TransformerEncoderLayer(d_model, heads, ffn_dim, dropout)
                                    for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model, eps=1e-5)

    def forward(self, x, key_padding):
        for layer in self.layers:
            x = layer(x, key_padding)
        return self.norm(x)


def _embedding(rows, d, sparse=False):
    table = nn.Embedding(rows, d, sparse=sparse)
    nn.init.normal_(table.weight, std=0.1)
    return table


class FeatureEncoder(nn.Module):
    """piano::FeatureEncoder: ids to d-wide vectors (queries, items, history events).
    With sparse=True the id tables (terms, items, fields) get sparse gradients, as the
    C++ tables get row-sparse ones; without it every backward writes whole tables."""

    def __init__(self, config, sparse=False):
        super().__init__()
        d = config["d_model"]
        self.config = config
        self.no_query = _learned_vector(1, d)
        # The query encoder's masked mean of term embeddings is exactly an EmbeddingBag.
        self.terms = nn.EmbeddingBag(config["term_rows"], d, mode="mean", include_last_offset=True, sparse=sparse)
        nn.init.normal_(self.terms.weight, std=0.1)
        self.items = _embedding(config["item_rows"], d, sparse)
        self.brands = _embedding(config["brand_rows"], d, sparse)
        self.categories = _embedding(config["category_rows"], d, sparse)
        self.shops = _embedding(config["shop_rows"], d, sparse)
        self.behaviors = _embedding(BEHAVIOR_COUNT, d)
        self.gaps = _embedding(config["gap_buckets"], d)
        self.query_proj = _linear(d, d)
        self.dense = _linear(config["dense_features"], d) if config["dense_features"] > 0 else None

    def forward(self, batch, with_keys=True):
        """q [B, d], c [ΣL, d], v [ΣH, d] and, with_keys, k [ΣH, d] (else None). The
        candidates and history items share one lookup per table, and so do the current
        and the history queries."""
        n_cand = batch["cand_fields"].shape[1]
        items = self._items(torch.cat([batch["cand_fields"], batch["hist_fields"]], dim=1))
        c = items[:n_cand]
        if self.dense is not None:
            c = c + self.dense(batch["cand_dense"])
        v = (items[n_cand:] + self.behaviors(batch["hist_type"])
             + self.gaps(gap_bucket(batch["hist_gap"], self.config["gap_buckets"])))

        offsets = batch["query_offsets"]
        has_terms = offsets[1:] > offsets[:-1]
        if not with_keys:
            return self._queries(batch["query_terms"], offsets, has_terms), c, v, None
        hist_offsets = batch["hist_query_offsets"]
        queries = self._queries(
            torch.cat([batch["query_terms"], batch["hist_query_terms"]]),
            torch.cat([offsets, hist_offsets[1:] + offsets[-1]]),
            torch.cat([has_terms, batch["hist_has_query"] & (hist_offsets[1:] > hist_offsets[:-1])]))
        n_req = len(offsets) - 1
        return queries[:n_req], c, v, queries[n_req:]

    def _queries(self, terms, offsets, has_terms):
        """Masked mean of term embeddings, projected; no_query where a query has no terms."""
        mean = self.terms(table_rows(terms, self.config["term_rows"]), offsets)
        return torch.where(has_terms[:, None], self.query_proj(mean), self.no_query)

    def _items(self, fields):
        """Σ over the fields [7, n] of their embeddings; the four genre levels share a table."""
        c = self.config
        return (self.items(table_rows(fields[0], c["item_rows"], hashed=True))
                + self.brands(table_rows(fields[1], c["brand_rows"]))
                + self.categories(table_rows(fields[2:6], c["category_rows"])).sum(0)
                + self.shops(table_rows(fields[6], c["shop_rows"])))


class PianoModel(nn.Module):
    """piano::PianoModel (the shapes and formulas are in include/piano/model/piano_model.hpp).
    forward(batch) returns a dict: ctr_logit, cvr_logit [ΣL, 1]; with the IAN
    list_ctr_logit, list_cvr_logit [B, 1]; with QDIR qdir_weights, one [heads, 1 + H]
    matrix per request (column 0 is the null slot).
    sparse=True gives the id tables sparse gradients (see FeatureEncoder); torch.optim.Adam
    rejects those, so a trainer then steps them with torch.optim.SparseAdam.
    keep_attention=False leaves qdir_weights out, as the C++ forward does unless asked
    (splitting them per request is a Python loop over the batch)."""

    def __init__(self, config, sparse=False, keep_attention=True):
        super().__init__()
        self.config = config
        self.keep_attention = keep_attention
        d, p = config["d_model"], config["dropout"]
        self.features = FeatureEncoder(config, sparse)
        if config["use_qdir"]:
            self.qdir = MultiHeadAttention(d, config["heads"], p, value_features=2 * d)
            self.qdir_norm = nn.LayerNorm(d, eps=1e-5)
            self.null_key = _learned_vector(1, d)
            self.null_value = _learned_vector(1, 2 * d)
        if config["position_model"] != "none":
            # The logged position's examination term e_pos: loss only, never the score.
            self.examination = nn.Embedding(config["max_positions"], 1)
            nn.init.zeros_(self.examination.weight)
        self.token_mlp = MLP([5 * d, 2 * d, d], gelu_tanh, p)
        if config["use_ian"]:
            self.ian = _learned_vector(1, d)
            self.ian_proj = _linear(2 * d, d)
            self.list_ctr = MLP([d, d, 1])
            self.list_cvr = MLP([d, d, 1])
        self.encoder = TransformerEncoder(config["layers"], d, config["heads"], config["ffn_dim"], p)
        head_in = 2 * d if config["use_ian"] else d
        self.item_ctr = MLP([head_in, d, 1])
        self.item_cvr = MLP([head_in, d, 1])
        if config["weighting"] == "uncertainty":
            self.loss_log_vars = nn.Parameter(torch.zeros(1, len(LOSS_TERMS)))

    def forward(self, batch):
        out = {}
        cands, hist = Ragged(batch["cand_offsets"]), Ragged(batch["hist_offsets"])
        q, c, v, k = self.features(batch, with_keys=self.config["use_qdir"])
        if self.config["use_qdir"]:
            r, weights = self._refine_interest(q, k, v, hist)
            if weights is not None:
                out["qdir_weights"] = weights
        else:
            r = hist.mean(v)

        # Candidate tokens: x_i = MLP([c_i ; q ; r ; c_i ⊙ r ; c_i ⊙ q]), no position.
        q_c, r_c = q[cands.segment], r[cands.segment]
        x = self.token_mlp(torch.cat([c, q_c, r_c, c * r_c, c * q_c], dim=1))
        if self.config["position_model"] != "none":
            positions = batch["cand_pos"].clamp(max=self.config["max_positions"] - 1)
            out["exam_logit"] = self.examination(positions)

        if not self.config["use_ian"]:
            h = self.encoder(cands.pad(x), cands.padding())
            items = cands.unpad(h)
        else:
            # The IAN node z sits at position 0 of each sequence [z ; x_1..x_L].
            z = self.ian + self.ian_proj(torch.cat([q, r], dim=1))
            padding = torch.cat([torch.zeros(len(z), 1, dtype=torch.bool), cands.padding()], dim=1)
            h = self.encoder(torch.cat([z[:, None], cands.pad(x)], dim=1), padding)
            h0 = h[:, 0]
            items = torch.cat([cands.unpad(h, shift=1), h0[cands.segment]], dim=1)
            h0_for_list = h0.detach() if self.config["detach_list_heads"] else h0
            out["list_ctr_logit"] = self.list_ctr(h0_for_list)
            out["list_cvr_logit"] = self.list_cvr(h0_for_list)
        out["ctr_logit"] = self.item_ctr(items)
        out["cvr_logit"] = self.item_cvr(items)
        return out

    def _refine_interest(self, q, k, v, hist):
        """QDIR: r = LayerNorm(q + MHA(q, [k_0 ; k], [v_0 ; [v ; k]])), one query per request;
        also the per-request weights, or None without keep_attention."""
        B = len(q)
        keys = torch.cat([self.null_key.expand(B, 1, -1), hist.pad(k)], dim=1)
        values = torch.cat([self.null_value.expand(B, 1, -1), hist.pad(torch.cat([v, k], dim=1))], dim=1)
        padding = torch.cat([torch.zeros(B, 1, dtype=torch.bool), hist.padding()], dim=1)
        attended, p = self.qdir(q[:, None], keys, values, padding)
        weights = [p[b, :, 0, :1 + int(n)].detach() for b, n in enumerate(hist.lengths)] if self.keep_attention else None
        return self.qdir_norm(q + attended[:, 0]), weights


def product_bce_with_logits(factors, y):
    """BCE(Π_k σ(x_k), y) per entry, never through log(Π σ(x_k)):
    log(1 - Π σ(x_k)) = logsumexp over the proper subsets S of Σ_{k∈S} x_k - Σ_k softplus(x_k)."""
    n = len(factors)
    log_p = sum(F.logsigmoid(x) for x in factors)
    subsets = [sum(factors[k] for k in range(n) if mask >> k & 1) for mask in range(1, 2 ** n - 1)]
    subsets.append(torch.zeros_like(factors[0]))
    log_not_p = torch.logsumexp(torch.cat(subsets, dim=1), dim=1, keepdim=True) - sum(F.softplus(x) for x in factors)
    return -(y * log_p + (1 - y) * log_not_p)


def listwise_softmax_loss(logits, click, offsets):
    """Softmax cross-entropy of each list's logits against its click distribution, averaged
    over the lists with a click (a constant 0 when there is none)."""
    lists = Ragged(offsets)
    clicks = lists.pad(click.to(logits.dtype)).sum(1)  # [B]
    with_click = int((clicks > 0).sum())
    if with_click == 0:
        return logits.new_zeros(())
    log_p = lists.unpad(torch.log_softmax(lists.pad(logits[:, 0], float("-inf")), dim=1))
    target = click.to(logits.dtype) / clicks.clamp(min=1)[lists.segment]
    return -(target * log_p).sum() / with_click


def multi_task_loss(out, batch, config, log_vars=None):
    """piano::multi_task_loss: returns (total, {term: value}) with the terms the model and
    config provide. log_vars [1, 4] selects uncertainty weighting Σ exp(-s_k) L_k + s_k."""
    dtype = out["ctr_logit"].dtype
    click = batch["click"].to(dtype)[:, None]
    click_and_conv = (batch["click"].bool() & batch["conv"].bool()).to(dtype)[:, None]
    lists = Ragged(batch["cand_offsets"])
    terms = {}
    # The click factors: σ(a), times σ(e) (pal) or as σ(a + e) (logit) with an examination term.
    click_factors, listwise_logit = [out["ctr_logit"]], out["ctr_logit"]
    if "exam_logit" in out and config["position_model"] == "pal":
        click_factors = [out["exam_logit"], out["ctr_logit"]]
        listwise_logit = out["ctr_logit"] + F.logsigmoid(out["exam_logit"])
    elif "exam_logit" in out and config["position_model"] == "logit":
        click_factors = [out["ctr_logit"] + out["exam_logit"]]
        listwise_logit = click_factors[0]
    if config["weight_ctr"] > 0:
        terms["ctr"] = product_bce_with_logits(click_factors, click).mean()
    if "cvr_logit" in out:
        terms["ctcvr"] = product_bce_with_logits(click_factors + [out["cvr_logit"]], click_and_conv).mean()
    if "list_ctr_logit" in out and config["list_loss"]:
        any_click = lists.pad(click).amax(1)
        any_conv = lists.pad(click_and_conv).amax(1)
        terms["list"] = (F.binary_cross_entropy_with_logits(out["list_ctr_logit"], any_click)
                         + F.binary_cross_entropy_with_logits(out["list_cvr_logit"], any_conv))
    if config["listwise_loss"]:
        terms["listwise"] = listwise_softmax_loss(listwise_logit, batch["click"], batch["cand_offsets"])
    if not terms:
        raise ValueError("multi_task_loss: no loss term is active (check the loss weights in the config)")
    total = 0
    for k, name in enumerate(LOSS_TERMS):
        if name not in terms:
            continue
        if log_vars is not None:
            s = log_vars[0, k]
            total = total + torch.exp(-s) * terms[name] + s
        else:
            total = total + terms[name] * config[f"weight_{name}"]
    return total, terms


def _linear_weight_names(model):
    return {f"{name}.weight" for name, m in model.named_modules() if isinstance(m, nn.Linear)}


def _to_cpp(name, t, linear_weights):
    if name in linear_weights:
        return t.t()
    return t.reshape(1, -1) if t.dim() == 1 else t


def cpp_parameters(model, grad=False):
    """[(C++ name, parameter or its gradient in C++ layout)], in named_parameters() order.
    A parameter the loss did not reach has no .grad; its gradient is zero."""
    linear_weights = _linear_weight_names(model)

    def pick(p):
        if not grad:
            return p
        if p.grad is None:
            return torch.zeros_like(p)
        return p.grad.to_dense() if p.grad.is_sparse else p.grad

    return [(name, _to_cpp(name, pick(p).detach(), linear_weights)) for name, p in model.named_parameters()]


def load_cpp_parameters(model, named):
    """Copies C++-named, C++-laid-out parameters (a mapping name -> matrix) into `model`.
    The name sets must be equal and the shapes must agree."""
    params = dict(model.named_parameters())
    if set(params) != set(named):
        raise KeyError(f"parameter names differ: missing {sorted(set(params) - set(named))}, "
                       f"unexpected {sorted(set(named) - set(params))}")
    linear_weights = _linear_weight_names(model)
    with torch.no_grad():
        for name, p in params.items():
            value = torch.as_tensor(named[name], dtype=p.dtype)
            expected = _to_cpp(name, p, linear_weights).shape
            if value.shape != expected:
                raise ValueError(f"{name}: shape {tuple(value.shape)}, the C++ layout is {tuple(expected)}")
            p.copy_(value.t() if name in linear_weights else value.reshape(p.shape))
