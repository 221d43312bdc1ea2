#!/usr/bin/env bash
# The online comparison over several simulated worlds: for each seed, `piano simulate
# --seed S` (plus SIMULATE_ARGS), then `piano compare` on it with the same seed (plus
# COMPARE_ARGS), then one table of every order's online lift in clicks and conversions and
# the share of the first-stage -> oracle gap it closes, seed by seed (from online.csv), and
# one of PIANO head to head with every other model, seed by seed (from head_to_head.csv:
# PIANO's lift minus the other's, in points, with its 95% paired interval).
#
#   bench/online_seeds.sh OUT_DIR [SEED...]          (default seeds: 1 2 3)
#   SIMULATE_ARGS="--click-model dbn" COMPARE_ARGS="--config my.conf --jobs 2" bench/online_seeds.sh runs/dbn
#
# Needs a built piano CLI: PIANO=path/to/piano, default build/release/examples/piano.
# Not part of the tests: a run trains every model on every world (minutes per seed).
set -euo pipefail
out=${1:?usage: bench/online_seeds.sh OUT_DIR [SEED...]}
shift
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
piano=${PIANO:-build/release/examples/piano}
mkdir -p "$out"
for s in "${seeds[@]}"; do
  if [ ! -f "$out/compare_$s/online.csv" ]; then
    # shellcheck disable=SC2086  # the ARGS variables are word lists on purpose
    "$piano" simulate --out "$out/world_$s" --seed "$s" ${SIMULATE_ARGS:-} >/dev/null
    # shellcheck disable=SC2086
    "$piano" compare --data "$out/world_$s" --out "$out/compare_$s" --seed "$s" ${COMPARE_ARGS:-} \
      >"$out/compare_$s.log" 2>&1
  fi
done

python3 - "$out" "${seeds[@]}" <<'EOF'
import csv, sys
out, seeds = sys.argv[1], sys.argv[2:]
rows = {}
for s in seeds:
    with open(f"{out}/compare_{s}/online.csv") as f:
        for r in csv.DictReader(f):
            rows.setdefault(r["order"], {})[s] = r
print(f"online lift against the first stage (gap closed), seeds {' '.join(seeds)}")
print("| order | " + " | ".join(f"clicks s{s}" for s in seeds) + " | " + " | ".join(f"conv s{s}" for s in seeds) + " |")
print("|---|" + "---:|" * (2 * len(seeds)))
for order, by_seed in rows.items():
    cells = []
    for key, gap in (("lift_clicks", "gap_closed_clicks"), ("lift_conversions", "gap_closed_conversions")):
        for s in seeds:
            r = by_seed.get(s)
            cells.append(f"{100 * float(r[key]):+.2f}% ({100 * float(r[gap]):.0f}%)" if r else "-")
    print(f"| {order} | " + " | ".join(cells) + " |")

pairs = {}
for s in seeds:
    try:
        with open(f"{out}/compare_{s}/head_to_head.csv") as f:
            for r in csv.DictReader(f):
                pairs.setdefault(r["against"], {})[s] = r
    except FileNotFoundError:
        pass
if pairs:
    print(f"\nPIANO head to head: its lift minus each model's, points [95% paired interval], seeds {' '.join(seeds)}")
    print("| against | " + " | ".join(f"clicks s{s}" for s in seeds) + " | " + " | ".join(f"conv s{s}" for s in seeds) + " |")
    print("|---|" + "---:|" * (2 * len(seeds)))
    for against, by_seed in pairs.items():
        cells = []
        for measure in ("clicks", "conversions"):
            key = "lift_difference_" + measure
            for s in seeds:
                r = by_seed.get(s)
                cells.append(f"{100 * float(r[key]):+.2f} [{100 * float(r[key + '_low']):+.2f}, "
                             f"{100 * float(r[key + '_high']):+.2f}]" if r else "-")
        print(f"| {against} | " + " | ".join(cells) + " |")
EOF
