#!/usr/bin/env bash
# The main job: simulate a music-search world, train PIANO and every baseline on it with
# `piano compare`, and write report/ (the metric table, training curves and QDIR's
# attention as SVG). About 3 minutes on 2 free cores (109 s measured with the CLI already
# built, a build takes about 65 s more); docs/cli.md explains each step.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

demo=build/demo
jobs=$(nproc)
mkdir -p "$demo"
: >"$demo/timings.txt"
start_all=$SECONDS

# stage NAME COMMAND...: runs COMMAND, then records how many seconds it took.
stage() {
  local name=$1 start=$SECONDS
  shift
  echo
  echo "== $name"
  "$@"
  echo "$name $((SECONDS - start))" >>"$demo/timings.txt"
}

build() {
  cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/release -j "$jobs" --target piano_cli
}
stage build build
piano=build/release/examples/piano

# 30k searches by 2000 users over 3000 songs: enough for QDIR to learn the users' readings
# of the ambiguous terms, small enough to train seven models in a few minutes.
rm -rf "$demo/data" "$demo/compare"
stage simulate "$piano" simulate --out "$demo/data" --requests 30000 --users 2000 --songs 3000 --seed 7

# Narrower than the reference config (d=64, 2 layers), to fit the time budget.
cat >"$demo/demo.conf" <<'EOF'
d_model = 32
heads = 2
layers = 1
ffn_dim = 128
EOF
# One model per core: at d = 32 a training step is too small to split well (docs/cli.md).
stage compare "$piano" compare --data "$demo/data" --out "$demo/compare" --config "$demo/demo.conf" \
  --epochs 6 --patience 2 --seed 7 --jobs "$jobs" --threads 1

echo "total $((SECONDS - start_all))" >>"$demo/timings.txt"
"$piano" report --compare "$demo/compare" --out report --timings "$demo/timings.txt"
echo
echo "demo finished in $((SECONDS - start_all)) s: report/report.md, $demo/compare/compare.csv"
