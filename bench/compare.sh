#!/bin/sh
# bench/compare.sh: piano_bench and its PyTorch twin (bench/torch_piano.py), side by side,
# at 1 and 2 threads, twice; then the ratios, the roofline fractions, Eigen's products
# beside a BLAS's, the predicted two-thread speedup and where the serial time of a
# training step sits, the cost against L and H, and the performance targets.
#
# Usage: bench/compare.sh [seconds per measurement, default 2]
# Environment: BUILD_DIR (default build-bench in the checkout), PYTHON (default
# /usr/bin/python3, Debian's, with python3-torch), THREADS (default "1 2"), REPEAT (runs of
# the whole side-by-side comparison, default 2), CURVES (1: also run bench/cost_curves.py,
# the default; 0: skip it), CURVES_OUT (its table and plot, default $BUILD_DIR/cost-curves).
#
# Benchmark-only packages (not needed to build or test piano): python3-torch and
# libopenblas0-pthread for the twin; libopenblas-pthread-dev (or libblis-pthread-dev) for
# piano_bench_blas, built against piano::blas, which is skipped when CMake finds no BLAS.
#
# It configures and builds the benchmarks (Release, -march=native) first. The programs
# run one after the other for each thread count, so each pair sees the same machine load;
# on a shared machine trust the ratios of one run more than absolute numbers, and compare
# the two runs.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
PYTHON=${PYTHON:-/usr/bin/python3}
THREADS=${THREADS:-"1 2"}
REPEAT=${REPEAT:-2}
CURVES=${CURVES:-1}
CURVES_OUT=${CURVES_OUT:-$BUILD_DIR/cost-curves}
SECONDS_PER=${1:-2}
# Both systems use GCC's OpenMP runtime, with its default wait policy unless
# OMP_WAIT_POLICY is set (the team of threads piano trains with spins at most 200 us between
# loops, then sleeps: core/parallel.hpp). On a machine other jobs share, set
# OMP_WAIT_POLICY=passive for both (docs/training.md, "Determinism").
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  echo "compare.sh: $PYTHON cannot import torch; install python3-torch and libopenblas0-pthread (see README)" >&2
  exit 1
fi

echo "building the benchmarks in $BUILD_DIR ..." >&2
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DPIANO_BUILD_TESTS=OFF \
  -DPIANO_BUILD_EXAMPLES=OFF -DPIANO_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD_DIR" --target piano_bench piano_bench_parallel_profile -j2 >/dev/null
BLAS_BENCH=
if cmake --build "$BUILD_DIR" --target piano_bench_blas -j2 >/dev/null 2>&1; then
  BLAS_BENCH=$BUILD_DIR/bench/piano_bench_blas
else
  echo "compare.sh: no piano_bench_blas (no BLAS found); the BLAS comparison is skipped" >&2
fi

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg), OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset (the runtime's default)}"
rep=1
while [ "$rep" -le "$REPEAT" ]; do
  for t in $THREADS; do
    echo "run $rep, threads=$t: piano ..." >&2
    "$BUILD_DIR/bench/piano_bench" --threads "$t" --seconds "$SECONDS_PER" >"$OUT/piano.$rep.$t"
    if [ -n "$BLAS_BENCH" ]; then
      echo "run $rep, threads=$t: piano with piano::blas ..." >&2
      "$BLAS_BENCH" --threads "$t" --seconds "$SECONDS_PER" >"$OUT/blas.$rep.$t"
    fi
    echo "run $rep, threads=$t: torch ..." >&2
    "$PYTHON" "$ROOT/bench/torch_piano.py" --threads "$t" --seconds "$SECONDS_PER" >"$OUT/torch.$rep.$t"
  done
  rep=$((rep + 1))
done
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BUILD_DIR/bench/piano_bench_parallel_profile" --seconds "$SECONDS_PER" >"$OUT/profile" 2>"$OUT/profile.serial"

"$PYTHON" - "$OUT" "$REPEAT" $THREADS <<'EOF'
import os
import sys

out, repeat, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3:]


def read(path):
    values = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            values[key] = float(value)
    return values


t1 = threads[0]
keys = ["train_lists_per_s", "infer_us_per_list", "infer_batch_lists_per_s", "peak_rss_mb", "gemm_gflops"]
for rep in range(1, repeat + 1):
    piano = {t: read(f"{out}/piano.{rep}.{t}") for t in threads}
    torch = {t: read(f"{out}/torch.{rep}.{t}") for t in threads}
    print(f"\n=== run {rep} of {repeat}")
    for t in threads:
        p, q = piano[t], torch[t]
        print(f"threads={t}")
        print(f"  {'key':<26}{'piano':>12}{'torch':>12}{'piano/torch':>14}")
        for k in keys:
            print(f"  {k:<26}{p[k]:>12.1f}{q[k]:>12.1f}{p[k] / q[k]:>14.2f}")
        print(f"  piano: block_gemm_gflops {p['block_gemm_gflops']:.1f}; "
              f"FLOP per list: training {p['train_mflop_per_list']:.1f} M, inference {p['infer_mflop_per_list']:.1f} M")
        print(f"  piano roofline: training {p['train_gflops']:.1f} GFLOP/s = {p['train_roofline']:.3f} of the 1024^3 GEMM, "
              f"{p['train_gflops'] / p['block_gemm_gflops']:.3f} of the model-shape GEMM; batched inference "
              f"{p['batch_gflops']:.1f} GFLOP/s = {p['batch_roofline']:.3f} / "
              f"{p['batch_gflops'] / p['block_gemm_gflops']:.3f}")
        # The same FLOP count for the twin (it runs more: no per-request split of the first layers).
        tr = q["train_lists_per_s"] * p["train_mflop_per_list"] / 1e3
        br = q["infer_batch_lists_per_s"] * p["infer_mflop_per_list"] / 1e3
        print(f"  torch roofline (piano's FLOP count): training {tr / q['gemm_gflops']:.3f}, "
              f"batched inference {br / q['gemm_gflops']:.3f} of its own 1024^3 GEMM")
        print(f"  piano heap allocations: {p['train_allocs_per_step']:.0f} per training step, "
              f"{p['infer_allocs_per_request']:.0f} per request, {p['batch_allocs_per_call']:.0f} per batch of 256")
    for t in threads:
        if not os.path.exists(f"{out}/blas.{rep}.{t}"):
            continue
        b, p = read(f"{out}/blas.{rep}.{t}"), piano[t]
        print(f"Eigen's products vs piano::blas, threads={t} (above 1: the BLAS build is faster)")
        for k, faster_is_larger in (("train_lists_per_s", True), ("infer_us_per_list", False),
                                    ("infer_batch_lists_per_s", True), ("block_gemm_gflops", True),
                                    ("gemm_gflops", True)):
            if k == "gemm_gflops" and t != t1:
                continue  # the BLAS build's 1024^3 product stays on one thread (piano sets it so)
            ratio = b[k] / p[k] if faster_is_larger else p[k] / b[k]
            print(f"  {k:<26}{p[k]:>12.1f}{b[k]:>12.1f}{ratio:>10.2f}")

    checks = [
        ("training, lists/s, piano / torch", piano[t1]["train_lists_per_s"] / torch[t1]["train_lists_per_s"], 2.5),
        ("single-request latency, torch / piano", torch[t1]["infer_us_per_list"] / piano[t1]["infer_us_per_list"], 5.0),
        ("batched inference, lists/s, piano / torch",
         piano[t1]["infer_batch_lists_per_s"] / torch[t1]["infer_batch_lists_per_s"], 3.0),
        ("training, fraction of the 1024^3 GEMM rate", piano[t1]["train_roofline"], 0.7),
    ]
    if len(threads) > 1:
        t2 = threads[1]
        checks.append((f"piano training, {t2} threads / {t1}",
                       piano[t2]["train_lists_per_s"] / piano[t1]["train_lists_per_s"], 1.8))
        checks.append((f"piano batched inference, {t2} threads / {t1}",
                       piano[t2]["infer_batch_lists_per_s"] / piano[t1]["infer_batch_lists_per_s"], 1.8))
        print(f"torch for reference: training {t2}/{t1} threads "
              f"{torch[t2]['train_lists_per_s'] / torch[t1]['train_lists_per_s']:.2f}x, batched inference "
              f"{torch[t2]['infer_batch_lists_per_s'] / torch[t1]['infer_batch_lists_per_s']:.2f}x")
    print(f"targets (threads={t1} unless named)")
    for name, ratio, target in checks:
        print(f"  {name:<50}{ratio:>7.2f}  (target >= {target:.2f})  {'ok' if ratio >= target else 'MISSED'}")

prof = read(f"{out}/profile")
print("\npredicted speedup on an idle machine (piano_bench_parallel_profile: every piece of every parallel loop "
      "timed on one thread, OpenMP's schedule replayed):")
for name in ("train", "infer_batch"):
    print(f"  {name:<12} {prof[name + '_parallel_loops_per_call']:.0f} parallel loops per call, "
          f"{100 * prof[name + '_parallel_fraction']:.0f}% of the time in them; 2 threads "
          f"{prof[name + '_predicted_speedup_2']:.2f}x, 4 threads {prof[name + '_predicted_speedup_4']:.2f}x")
EOF

# Where the serial time of a training step sits: the largest tallies, by the op whose
# parallel loop ends them (the type names are long; the op is at their start).
head -n 7 "$OUT/profile.serial" | cut -c1-150

if [ "$CURVES" = 1 ]; then
  echo "cost curves (one thread) ..." >&2
  echo
  echo "=== cost against L and H: $PYTHON bench/cost_curves.py (table and plot in $CURVES_OUT)"
  "$PYTHON" "$ROOT/bench/cost_curves.py" --piano "$BUILD_DIR/bench/piano_bench" --python "$PYTHON" \
    --out "$CURVES_OUT" --threads 1 --seconds "$(echo "$SECONDS_PER" | awk '{print $1 / 2}')"
fi
