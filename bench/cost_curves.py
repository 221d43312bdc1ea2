"""Cost against list length L and history length H: piano beside its PyTorch twin.

For every L in --lists and H in --histories it runs piano_bench and bench/torch_piano.py
(each point in a fresh process, so the peak resident set is the point's own) and measures
single-request latency, batched inference, training throughput and peak memory. Writes:
  OUT/cost_curves.csv   one row per (system, L, H)
  OUT/cost_curves.md    the table, piano beside PyTorch, and the log-log slopes
  OUT/cost_curves.svg   log-log curves of both systems against L (at H=50) and H (at L=50)
and prints the markdown. The shapes are the reference configuration's but for L and H;
the batches are smaller than piano_bench's defaults (--batch, --serve-batch) so that the
largest points (L=1000, H=2000) fit in a few seconds and a few GB.

Usage: /usr/bin/python3 bench/cost_curves.py --piano build-bench/bench/piano_bench [--out DIR]
       [--threads N] [--seconds S] [--lists 10,50,200,1000] [--histories 0,50,500,2000]
       [--batch 8] [--serve-batch 32]
"""
import argparse
import csv
import math
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = ("infer_us_per_list", "infer_batch_lists_per_s", "train_lists_per_s", "peak_rss_mb")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--piano", required=True, help="the piano_bench executable")
    parser.add_argument("--python", default=sys.executable, help="a Python with torch, for the twin")
    parser.add_argument("--out", default="cost-curves")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    parser.add_argument("--lists", default="10,50,200,1000")
    parser.add_argument("--histories", default="0,50,500,2000")
    parser.add_argument("--batch", type=int, default=8, help="requests per training step")
    parser.add_argument("--serve-batch", type=int, default=32, help="requests per batched rerank")
    return parser.parse_args()


def run(command):
    """key=value lines of a benchmark's output, as floats."""
    text = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return {k: float(v) for k, _, v in (line.partition("=") for line in text.splitlines()) if v}


def measure(args, system, L, H):
    shape = ["--list", str(L), "--history", str(H), "--batch", str(args.batch), "--serve-batch",
             str(args.serve_batch), "--train-batches", "2", "--threads", str(args.threads), "--seconds",
             str(args.seconds), "--only", "train,infer,batch"]
    if system == "piano":
        return run([args.piano] + shape)
    return run([args.python, os.path.join(HERE, "torch_piano.py")] + shape)


def slope(xs, ys):
    """The log-log slope between consecutive points: 1 is linear, 2 quadratic."""
    return [math.log(y1 / y0) / math.log(x1 / x0) for x0, x1, y0, y1 in zip(xs, xs[1:], ys, ys[1:])]


# Cost per list for each measure, larger = slower, so every curve and slope reads the same way.
COSTS = {
    "one request, µs": lambda r: r["infer_us_per_list"],
    "batched, µs per list": lambda r: 1e6 / r["infer_batch_lists_per_s"],
    "training, µs per list": lambda r: 1e6 / r["train_lists_per_s"],
    "peak memory, MB": lambda r: r["peak_rss_mb"],
}


def svg_chart(x0, y0, w, h, title, x_label, series):
    """One log-log chart at (x0, y0), w x h pixels; series: [(name, colour, [(x, y)])]."""
    points = [p for _, _, ps in series for p in ps if p[1] > 0]
    lx = [math.log10(p[0]) for p in points]
    ly = [math.log10(p[1]) for p in points]
    xmin, xmax = min(lx), max(lx)
    ymin, ymax = math.floor(min(ly)), math.ceil(max(ly))
    ymax = ymax if ymax > ymin else ymin + 1
    left, bottom = x0 + 48, y0 + h - 32
    pw, ph = w - 60, h - 56

    def px(v):
        return left + (math.log10(v) - xmin) / (xmax - xmin) * pw

    def py(v):
        return bottom - (math.log10(v) - ymin) / (ymax - ymin) * ph

    out = [f'<text x="{x0 + w / 2:.0f}" y="{y0 + 14}" text-anchor="middle" font-weight="bold">{title}</text>',
           f'<rect x="{left}" y="{bottom - ph}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for e in range(ymin, ymax + 1):
        y = bottom - (e - ymin) / (ymax - ymin) * ph
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">1e{e}</text>')
    for x in sorted({p[0] for p in points}):
        out.append(f'<text x="{px(x):.1f}" y="{bottom + 14}" text-anchor="middle">{x:g}</text>')
    out.append(f'<text x="{left + pw / 2:.0f}" y="{bottom + 28}" text-anchor="middle">{x_label}</text>')
    for name, colour, ps in series:
        ps = [p for p in ps if p[1] > 0]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in ps)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>' for x, y in ps]
    return out


def write_svg(path, results, lists, histories, threads):
    """Two rows of charts: cost against L at H=50 (or the nearest H), and against H at L=50."""
    h_fixed = min(histories, key=lambda h: abs(h - 50))
    l_fixed = min(lists, key=lambda n: abs(n - 50))
    w, h = 300, 230
    body = []
    colours = {"piano": "#1f77b4", "torch": "#d62728"}
    for row, (axis, fixed) in enumerate((("L", h_fixed), ("H", l_fixed))):
        xs = lists if axis == "L" else histories
        for col, (measure, cost) in enumerate(COSTS.items()):
            series = []
            for system in ("piano", "torch"):
                key = (lambda x: (system, x, fixed)) if axis == "L" else (lambda x: (system, fixed, x))
                # log-log: H = 0 is drawn at H = 1 (the point has no history at all).
                series.append((system, colours[system], [(max(x, 1), cost(results[key(x)])) for x in xs]))
            label = f"L (H = {fixed})" if axis == "L" else f"H, 0 drawn at 1 (L = {fixed})"
            body += svg_chart(col * w, 30 + row * h, w, h, measure, label, series)
    legend = (f'<text x="10" y="18" font-weight="bold">piano (blue) and PyTorch (red), {threads} thread(s), '
              f'log-log</text>')
    width, height = 4 * w, 30 + 2 * h
    with open(path, "w") as f:
        f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                f'font-family="sans-serif" font-size="11">\n<rect width="100%" height="100%" fill="white"/>\n')
        f.write(legend + "\n" + "\n".join(body) + "\n</svg>\n")


def main():
    args = parse_args()
    lists = [int(x) for x in args.lists.split(",")]
    histories = [int(x) for x in args.histories.split(",")]
    os.makedirs(args.out, exist_ok=True)
    results = {}
    for L in lists:
        for H in histories:
            for system in ("piano", "torch"):
                print(f"L={L} H={H}: {system} ...", file=sys.stderr, flush=True)
                results[(system, L, H)] = measure(args, system, L, H)

    with open(os.path.join(args.out, "cost_curves.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["system", "L", "H"] + list(KEYS))
        for (system, L, H), r in sorted(results.items()):
            writer.writerow([system, L, H] + [r[k] for k in KEYS])

    lines = [f"threads {args.threads}, training batch {args.batch}, batched inference {args.serve_batch} lists; "
             "each cell: piano / PyTorch (ratio = PyTorch's cost / piano's)", "",
             "| L | H | MFLOP/list (inference) | one request, µs | batched, µs/list | training, µs/list | peak MB |",
             "|---:|---:|---:|---|---|---|---|"]
    for L in lists:
        for H in histories:
            p, t = results[("piano", L, H)], results[("torch", L, H)]
            cells = []
            for cost in COSTS.values():
                a, b = cost(p), cost(t)
                cells.append(f"{a:.0f} / {b:.0f} ({b / a:.1f}×)")
            lines.append(f"| {L} | {H} | {p['infer_mflop_per_list']:.1f} | " + " | ".join(cells) + " |")
    lines += ["", "log-log slopes between consecutive points (1: linear, 2: quadratic), piano / PyTorch:"]
    h_fixed = min(histories, key=lambda h: abs(h - 50))
    l_fixed = min(lists, key=lambda n: abs(n - 50))
    for name, cost in COSTS.items():
        for axis, xs, key in (("L", lists, lambda s, x: (s, x, h_fixed)), ("H", [x for x in histories if x > 0],
                                                                            lambda s, x: (s, l_fixed, x))):
            fixed = f"H={h_fixed}" if axis == "L" else f"L={l_fixed}"
            ps = slope(xs, [cost(results[key("piano", x)]) for x in xs])
            ts = slope(xs, [cost(results[key("torch", x)]) for x in xs])
            steps = ", ".join(f"{a}→{b}: {sp:.2f} / {st:.2f}" for a, b, sp, st in zip(xs, xs[1:], ps, ts))
            lines.append(f"- {name} against {axis} ({fixed}): {steps}")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "cost_curves.md"), "w") as f:
        f.write(text)
    write_svg(os.path.join(args.out, "cost_curves.svg"), results, lists, histories, args.threads)
    print(text)


if __name__ == "__main__":
    main()
