#!/bin/sh
# bench/compare.sh: piano_bench and its PyTorch twin (bench/torch_piano.py), side by side,
# at 1 and 2 threads, then the ratios and the performance targets.
#
# Usage: bench/compare.sh [seconds per measurement, default 2]
# Environment: BUILD_DIR (default build-bench in the checkout), PYTHON (default
# /usr/bin/python3, Debian's, with python3-torch), THREADS (default "1 2").
#
# It configures and builds piano_bench (Release, -march=native) first. The two programs
# run one after the other for each thread count, so both see the same machine load;
# on a shared machine, run it twice and trust ratios more than absolute numbers.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
PYTHON=${PYTHON:-/usr/bin/python3}
THREADS=${THREADS:-"1 2"}
SECONDS_PER=${1:-2}

if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  echo "compare.sh: $PYTHON cannot import torch; install python3-torch and libopenblas0-pthread (see README)" >&2
  exit 1
fi

echo "building piano_bench in $BUILD_DIR ..." >&2
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DPIANO_BUILD_TESTS=OFF \
  -DPIANO_BUILD_EXAMPLES=OFF -DPIANO_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD_DIR" --target piano_bench -j2 >/dev/null

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for t in $THREADS; do
  echo "threads=$t: piano ..." >&2
  "$BUILD_DIR/bench/piano_bench" --threads "$t" --seconds "$SECONDS_PER" >"$OUT/piano.$t"
  echo "threads=$t: torch ..." >&2
  "$PYTHON" "$ROOT/bench/torch_piano.py" --threads "$t" --seconds "$SECONDS_PER" >"$OUT/torch.$t"
done

"$PYTHON" - "$OUT" $THREADS <<'EOF'
import sys

out, threads = sys.argv[1], sys.argv[2:]


def read(path):
    values = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            values[key] = float(value)
    return values


piano = {t: read(f"{out}/piano.{t}") for t in threads}
torch = {t: read(f"{out}/torch.{t}") for t in threads}
keys = ["train_lists_per_s", "infer_us_per_list", "infer_batch_lists_per_s", "peak_rss_mb", "gemm_gflops"]
for t in threads:
    print(f"threads={t}")
    print(f"  {'key':<26}{'piano':>12}{'torch':>12}{'piano/torch':>14}")
    for k in keys:
        p, q = piano[t][k], torch[t][k]
        print(f"  {k:<26}{p:>12.1f}{q:>12.1f}{p / q:>14.2f}")
    # The fraction of the machine's (Eigen GEMM) rate the model reaches is in the README.
print()

checks = []
t1 = threads[0]
checks.append(("training, lists/s, piano / torch, 1 thread", piano[t1]["train_lists_per_s"] / torch[t1]["train_lists_per_s"], 3.0))
checks.append(("single-request latency, torch / piano, 1 thread", torch[t1]["infer_us_per_list"] / piano[t1]["infer_us_per_list"], 5.0))
checks.append(("batched inference, lists/s, piano / torch, 1 thread",
               piano[t1]["infer_batch_lists_per_s"] / torch[t1]["infer_batch_lists_per_s"], 2.5))
if len(threads) > 1:
    t2 = threads[1]
    checks.append((f"piano training, {t2} threads / {t1}", piano[t2]["train_lists_per_s"] / piano[t1]["train_lists_per_s"], 1.7))
    checks.append((f"piano batched inference, {t2} threads / {t1}",
                   piano[t2]["infer_batch_lists_per_s"] / piano[t1]["infer_batch_lists_per_s"], 1.7))
    print(f"torch for reference: training {t2}/{t1} threads "
          f"{torch[t2]['train_lists_per_s'] / torch[t1]['train_lists_per_s']:.2f}x, batched inference "
          f"{torch[t2]['infer_batch_lists_per_s'] / torch[t1]['infer_batch_lists_per_s']:.2f}x")
print("targets")
for name, ratio, target in checks:
    print(f"  {name:<55}{ratio:>7.2f}x  (target >= {target:.1f}x)  {'ok' if ratio >= target else 'MISSED'}")
EOF
