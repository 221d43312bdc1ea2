"""The PyTorch twin of bench/piano_bench.cpp: the same PIANO model, shapes, losses and
measurements, written to be as fast as PyTorch 1.13 allows on a CPU.

The model and the losses are tests/golden/piano_torch.py, the exact twin of the C++
PianoModel and multi_task_loss (the golden tests check the two agree to the last digit in
double precision). Ragged lists and histories are padded and masked there, so every layer
runs as one batched op over the whole batch (no Python loop over requests). Here it runs
in the reference configuration in float32 with:
  - sparse embedding gradients for the id tables, stepped by torch.optim.SparseAdam, and
    torch.optim.Adam (foreach, one multi-tensor update) for every other parameter (lr 1e-3);
  - optimizer.zero_grad(set_to_none=True);
  - torch.inference_mode() and model.eval() for inference; the attention weights are not
    kept (the C++ forward keeps them only when asked), and the lists of a batch are
    ordered by one stable sort of their padded scores;
  - torch.set_num_threads(N), one inter-op thread, and OPENBLAS_NUM_THREADS=N (set
    before torch is imported).
Batches are built as tensors before the clock starts, so only the model is timed.

Prints the keys piano_bench prints: train_lists_per_s, infer_us_per_list,
infer_batch_lists_per_s, peak_rss_mb, gemm_gflops (a 1024^3 float torch.mm).

Usage: /usr/bin/python3 bench/torch_piano.py [--threads N] [--seconds S] [--clock wall|cpu]
       [--only train|infer|batch|gemm] [--list L] [--history H] [--batch B]
       [--serve-batch B] [--train-batches N]
"""
import argparse
import os
import sys


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--only", default="train,infer,batch,gemm",
                        help="comma-separated measurements among train, infer, batch, gemm")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: process CPU time (leaves out waiting for a core; one thread only)")
    parser.add_argument("--list", type=int, default=50, help="candidates per request (L)")
    parser.add_argument("--history", type=int, default=50, help="history events per request (H)")
    parser.add_argument("--batch", type=int, default=32, help="requests per training step")
    parser.add_argument("--serve-batch", type=int, default=256, help="requests per batched rerank")
    parser.add_argument("--train-batches", type=int, default=8, help="distinct training batches, cycled")
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

L, H, QUERY_TERMS, BATCH, SERVE_BATCH = ARGS.list, ARGS.history, 4, ARGS.batch, ARGS.serve_batch
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
    """As piano_bench.cpp: one warm-up call, then rounds until `seconds` (at least 3) of
    per_round calls, fewer when one call is slow (a round lasts about seconds / 10); the
    median seconds per call."""
    clock = time.process_time if ARGS.clock == "cpu" else time.perf_counter
    t0 = clock()
    fn()
    warm = clock() - t0
    per_round = max(1, min(per_round, int(seconds / 10 / max(warm, 1e-9))))
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
    # Every list's order from one sort of the padded [B, L_max] scores, best first, ties in
    # first-stage order (stable); the -inf padding sorts last.
    lists = piano_torch.Ragged(batch["cand_offsets"])
    orders = torch.sort(lists.pad(score, float("-inf")), dim=1, descending=True, stable=True).indices
    return orders, p_ctr, p_cvr * p_ctr, torch.sigmoid(out["list_ctr_logit"]), torch.sigmoid(out["list_cvr_logit"])


def main():
    torch.set_num_threads(ARGS.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    config = piano_torch.make_config()
    rng = random.Random(2024)
    nb = ARGS.train_batches
    pool = [random_request(rng, config) for _ in range(nb * BATCH + SERVE_BATCH)]
    train_batches = [piano_torch.make_batch(pool[b * BATCH:(b + 1) * BATCH]) for b in range(nb)]
    serve = pool[nb * BATCH:]
    single_batches = [piano_torch.make_batch([r]) for r in serve]
    serve_batch = piano_torch.make_batch(serve)

    model = piano_torch.PianoModel(config, sparse=True, keep_attention=False)
    sparse = [p for name, p in model.named_parameters() if name in SPARSE_TABLES]
    dense = [p for name, p in model.named_parameters() if name not in SPARSE_TABLES]
    optimizers = [torch.optim.SparseAdam(sparse, lr=1e-3), torch.optim.Adam(dense, lr=1e-3, foreach=True)]

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
    if "train" in ARGS.only.split(","):
        s = median_seconds_per_call(train_step, 5, ARGS.seconds)
        print(f"train_lists_per_s={BATCH / s:.1f}", flush=True)
    model.eval()
    if "infer" in ARGS.only.split(","):
        s = median_seconds_per_call(infer_one, 50, ARGS.seconds)
        print(f"infer_us_per_list={s * 1e6:.1f}", flush=True)
    if "batch" in ARGS.only.split(","):
        s = median_seconds_per_call(infer_batch, 2, ARGS.seconds)
        print(f"infer_batch_lists_per_s={SERVE_BATCH / s:.1f}", flush=True)
    print(f"peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")
    if "gemm" in ARGS.only.split(","):
        a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
        s = median_seconds_per_call(lambda: torch.mm(a, b), 2, ARGS.seconds)
        print(f"gemm_gflops={2 * 1024 ** 3 / s / 1e9:.1f}")


if __name__ == "__main__":
    main()
