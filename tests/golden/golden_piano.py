"""Golden fixture for the whole PIANO model and its multi-task loss, from piano_torch.py.

A tiny configuration (d=8, 2 heads, 1 layer, FFN 16, no dropout, listwise loss on, four
different fixed weights so a swapped weight shows) runs one batch of three requests
chosen to reach every branch of the C++ model:
  - list lengths 5, 1, 3: a list longer than max_positions (its last position is clamped)
    and a list of one;
  - history lengths 3, 0, 4: a request with only QDIR's null slot; query-less events, an
    event flagged as having a query but with no terms, gaps of 0, in range and beyond the
    last bucket;
  - an empty current query (the no_query vector), ids beyond every table (item ids are
    hashed, other fields read the unknown row 0), a list without a click (excluded from
    the listwise mean) and a conversion flagged without a click (the loss uses click ∧
    conv, so it must count as no conversion).

tests/fixtures/golden/piano_full.txt holds:
  config.<key>      the PianoConfig keys as numbers (booleans 0/1; weighting is fixed;
                    position_model is its index in none, pal, logit)
  batch.<field>     the piano_torch batch: offsets and id arrays, fields as [7, n]
  param_count       the number of parameters, param.<name> each in C++ layout
  out.<name>        ctr_logit, cvr_logit [ΣL, 1], list_ctr_logit, list_cvr_logit [B, 1],
                    qdir_weights.<b> [heads, 1 + H_b]
  loss.<term>       ctr, ctcvr, list, listwise and total
  grad.<name>       each parameter's gradient of the total, in C++ layout
"""
import torch

import piano_torch
from fixture_io import write_fixture

CONFIG = piano_torch.make_config(
    d_model=8, heads=2, layers=1, ffn_dim=16, dropout=0.0,
    term_rows=12, item_rows=20, brand_rows=6, category_rows=9, shop_rows=4, max_positions=4, gap_buckets=5,
    listwise_loss=True, weight_ctr=1.0, weight_ctcvr=0.8, weight_list=0.6, weight_listwise=0.4,
    detach_list_heads=False)  # the list loss's gradient through the whole model is checked too

BATCH_FIELDS = ["query_offsets", "query_terms", "cand_offsets", "cand_fields", "cand_pos", "click", "conv",
                "hist_offsets", "hist_fields", "hist_type", "hist_gap", "hist_has_query", "hist_query_offsets",
                "hist_query_terms"]


def fields(item, brand=0, cate1=0, cate2=0, cate3=0, cate4=0, shop=0):
    return [item, brand, cate1, cate2, cate3, cate4, shop]


def event(query, item_fields, kind, gap, has_query=None):
    return {"query": query, "has_query": bool(query) if has_query is None else has_query,
            "fields": item_fields, "type": kind, "gap": gap}


def candidate(item_fields, click, conv):
    return {"fields": item_fields, "click": click, "conv": conv}


REQUESTS = [
    {"query": [3, 7],
     "history": [event([2, 5], fields(4, 1, 2), kind=0, gap=0),
                 event([], fields(25, 2, 3, 4), kind=1, gap=3),  # query-less; item 25 hashed
                 event([15], fields(7, 9, 1, shop=2), kind=2, gap=100)],  # term 15, brand 9 unknown
     "candidates": [candidate(fields(1, 1, 1, 5), 0, 0),
                    candidate(fields(2, 2, 2, 6, shop=1), 1, 0),
                    candidate(fields(31, 3, 1, 7, 8), 0, 0),  # item 31 hashed
                    candidate(fields(4, 4, 3, shop=3), 1, 1),
                    candidate(fields(5, 8, 4, 5, shop=7), 0, 0)]},  # position 4 clamped to 3
    {"query": [],
     "history": [],
     "candidates": [candidate(fields(6, 5, 2, 6, shop=1), 0, 0)]},
    {"query": [1, 1, 11],
     "history": [event([4], fields(8, 3, 2), kind=3, gap=1),
                 event([], fields(9, 4, 4, 8), kind=0, gap=7, has_query=True),  # flagged, no terms
                 event([6, 20], fields(44, 1, 1, shop=2), kind=2, gap=1_000_000),  # beyond the last bucket
                 event([], fields(3, 5, 5), kind=1, gap=12)],
     "candidates": [candidate(fields(10, 2, 3, 5, shop=2), 1, 1),
                    candidate(fields(11, 1, 2, 7), 0, 1),  # conv without click: no conversion
                    candidate(fields(12, 3, 1, 6, 8, shop=1), 1, 0)]},
]


def randomize(model, gen):
    """Draws every parameter well away from the C++ initialisation, so no entry that the
    comparison depends on is zero or one by construction."""
    gains = {f"{name}.weight" for name, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)}
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            if name in gains:
                p.add_(1.0)  # LayerNorm gains near 1, as after training


def write(out_dir):
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)  # the constructor's initial draws, all overwritten below
    model = piano_torch.PianoModel(CONFIG)
    randomize(model, torch.Generator().manual_seed(20240601))
    batch = piano_torch.make_batch(REQUESTS)

    out = model(batch)
    total, terms = piano_torch.multi_task_loss(out, batch, CONFIG)
    total.backward()

    named = [(f"config.{key}", float(value)) for key, value in CONFIG.items()
             if key not in ("weighting", "position_model")]
    # position_model as its index in piano::kPositionModelNames
    named += [("config.position_model", float(("none", "pal", "logit").index(CONFIG["position_model"])))]
    named += [(f"batch.{key}", batch[key]) for key in BATCH_FIELDS]
    params = piano_torch.cpp_parameters(model)
    named += [("param_count", len(params))] + [(f"param.{name}", value) for name, value in params]
    named += [(f"out.{key}", out[key])
              for key in ["ctr_logit", "cvr_logit", "list_ctr_logit", "list_cvr_logit", "exam_logit"]]
    named += [(f"out.qdir_weights.{b}", w) for b, w in enumerate(out["qdir_weights"])]
    named += [(f"loss.{name}", terms[name]) for name in piano_torch.LOSS_TERMS] + [("loss.total", total)]
    named += [(f"grad.{name}", value) for name, value in piano_torch.cpp_parameters(model, grad=True)]
    write_fixture(out_dir / "piano_full.txt", named)
