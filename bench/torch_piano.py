"""The PyTorch twin of bench/piano_bench.cpp: the same PIANO model, shapes, losses and
measurements, written as a good PyTorch user would write them.

The model and the losses are tests/golden/piano_torch.py, the exact twin of the C++
PianoModel and multi_task_loss (the golden tests check the two agree to the last digit in
double precision). Here it runs in the reference configuration in float32 with:
  - sparse embedding gradients for the id tables, stepped by torch.optim.SparseAdam, and
    torch.optim.Adam for every other parameter (lr 1e-3 both);
  - optimizer.zero_grad(set_to_none=True);
  - torch.inference_mode() and model.eval() for inference;
  - torch.set_num_threads(N) and OPENBLAS_NUM_THREADS=N (set before torch is imported).
Batches are built as tensors before the clock starts, so only the model is timed.

Prints the keys piano_bench prints: train_lists_per_s, infer_us_per_list,
infer_batch_lists_per_s, peak_rss_mb, gemm_gflops (a 1024^3 float torch.mm).

Usage: /usr/bin/python3 bench/torch_piano.py [--threads N] [--seconds S] [--clock wall|cpu]
"""
import argparse
import os
import sys


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--only", choices=["train", "infer", "batch", "gemm"], default=None)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: process CPU time (leaves out waiting for a core; one thread only)")
    return parser.parse_args()


ARGS = parse_args()
# BLAS reads its thread count when it loads, so it is set before torch is imported.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import random  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
import piano_torch  # noqa: E402

L, H, QUERY_TERMS, BATCH, SERVE_BATCH = 50, 50, 4, 32, 256
SPARSE_TABLES = ("features.terms.weight", "features.items.weight", "features.brands.weight",
                 "features.categories.weight", "features.shops.weight")


def random_request(rng, c):
    """The distributions of piano_bench.cpp's random_request."""
    def row(rows):
        return 1 + rng.randrange(rows - 1)

    def item():
        return [row(c["item_rows"]), row(c["brand_rows"])] + [row(c["category_rows"]) for _ in range(4)] + \
            [row(c["shop_rows"])]

    history = []
    for _ in range(H):
        has_query = rng.random() < 0.8
        history.append({"query": [row(c["term_rows"]) for _ in range(QUERY_TERMS)] if has_query else [],
                        "has_query": has_query, "fields": item(), "type": rng.randrange(4),
                        "gap": rng.randrange(1000000)})
    candidates = []
    for _ in range(L):
        click = int(rng.random() < 0.1)
        conv = int(click and rng.random() < 0.3)
        candidates.append({"fields": item(), "click": click, "conv": conv})
    return {"query": [row(c["term_rows"]) for _ in range(QUERY_TERMS)], "history": history,
            "candidates": candidates}


def median_seconds_per_call(fn, per_round, seconds):
    """As piano_bench.cpp: one warm-up call, then rounds until `seconds` (at least 3);
    the median seconds per call."""
    clock = time.process_time if ARGS.clock == "cpu" else time.perf_counter
    fn()
    rounds = []
    start = clock()
    while len(rounds) < 3 or clock() - start < seconds:
        t0 = clock()
        for _ in range(per_round):
            fn()
        rounds.append((clock() - t0) / per_round)
    rounds.sort()
    return rounds[len(rounds) // 2]


def rerank(model, batch, lam):
    """What Reranker::rerank computes: probabilities, scores and each list's order."""
    out = model(batch)
    a, b = out["ctr_logit"][:, 0], out["cvr_logit"][:, 0]
    p_ctr, p_cvr = torch.sigmoid(a), torch.sigmoid(b)
    score = torch.nn.functional.logsigmoid(a) + lam * torch.nn.functional.logsigmoid(b)
    offsets = batch["cand_offsets"].tolist()
    # One sort per list, best first, ties in first-stage order (a stable sort).
    orders = [torch.sort(score[s:e], descending=True, stable=True).indices for s, e in zip(offsets, offsets[1:])]
    return orders, p_ctr, p_cvr * p_ctr, torch.sigmoid(out["list_ctr_logit"]), torch.sigmoid(out["list_cvr_logit"])


def main():
    torch.set_num_threads(ARGS.threads)
    torch.manual_seed(0)
    config = piano_torch.make_config()
    rng = random.Random(2024)
    pool = [random_request(rng, config) for _ in range(8 * BATCH + SERVE_BATCH)]
    train_batches = [piano_torch.make_batch(pool[b * BATCH:(b + 1) * BATCH]) for b in range(8)]
    serve = pool[8 * BATCH:]
    single_batches = [piano_torch.make_batch([r]) for r in serve]
    serve_batch = piano_torch.make_batch(serve)

    model = piano_torch.PianoModel(config, sparse=True)
    sparse = [p for name, p in model.named_parameters() if name in SPARSE_TABLES]
    dense = [p for name, p in model.named_parameters() if name not in SPARSE_TABLES]
    optimizers = [torch.optim.SparseAdam(sparse, lr=1e-3), torch.optim.Adam(dense, lr=1e-3)]

    state = {"batch": 0, "request": 0}

    def train_step():
        batch = train_batches[state["batch"] % len(train_batches)]
        state["batch"] += 1
        model.train()
        out = model(batch)
        total, _ = piano_torch.multi_task_loss(out, batch, config)
        total.backward()
        for opt in optimizers:
            opt.step()
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)

    def infer_one():
        batch = single_batches[state["request"] % len(single_batches)]
        state["request"] += 1
        with torch.inference_mode():
            rerank(model, batch, config["lambda"])

    def infer_batch():
        with torch.inference_mode():
            rerank(model, serve_batch, config["lambda"])

    print(f"threads={ARGS.threads}")
    if ARGS.only in (None, "train"):
        s = median_seconds_per_call(train_step, 5, ARGS.seconds)
        print(f"train_lists_per_s={BATCH / s:.1f}", flush=True)
    model.eval()
    if ARGS.only in (None, "infer"):
        s = median_seconds_per_call(infer_one, 50, ARGS.seconds)
        print(f"infer_us_per_list={s * 1e6:.1f}", flush=True)
    if ARGS.only in (None, "batch"):
        s = median_seconds_per_call(infer_batch, 2, ARGS.seconds)
        print(f"infer_batch_lists_per_s={SERVE_BATCH / s:.1f}", flush=True)
    print(f"peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")
    if ARGS.only in (None, "gemm"):
        a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
        s = median_seconds_per_call(lambda: torch.mm(a, b), 2, ARGS.seconds)
        print(f"gemm_gflops={2 * 1024 ** 3 / s / 1e9:.1f}")


if __name__ == "__main__":
    main()
