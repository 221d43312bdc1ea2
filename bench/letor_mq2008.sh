#!/bin/sh
# bench/letor_mq2008.sh: piano's listwise models beside XGBoost's LambdaMART (rank:ndcg)
# on LETOR 4.0 MQ2008, fold 1's validation and test files (../shared/data/letor-mq2008):
# each system trains on one file and is tested on the other, both ways, and every NDCG is
# computed by piano's own metric code from that system's scores (piano eval for piano's
# models, bench/letor_ndcg.cpp for XGBoost's). Not part of CI.
#
# Usage: bench/letor_mq2008.sh
# Environment: DATA (default ../shared/data/letor-mq2008 beside the checkout), BUILD_DIR
# (default build/letor in the checkout), PYTHON (default /usr/bin/python3, with Debian's
# python3-xgboost), MODELS (default "prm piano"), EPOCHS (default 30), ROUNDS (XGBoost's
# boosting rounds, default 100), SEEDS (piano's seeds, default "1 2 3").
#
# Neither system gets a validation split (the fold's training file is not in the share):
# both train for a fixed budget with their default settings (piano: the tiny config).
# Each piano model is trained once per seed and its row gives the mean and the range;
# XGBoost's training is deterministic, so it runs once.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${DATA:-$ROOT/../shared/data/letor-mq2008}
BUILD_DIR=${BUILD_DIR:-$ROOT/build/letor}
PYTHON=${PYTHON:-/usr/bin/python3}
MODELS=${MODELS:-"prm piano"}
EPOCHS=${EPOCHS:-30}
ROUNDS=${ROUNDS:-100}
SEEDS=${SEEDS:-"1 2 3"}

if ! "$PYTHON" -c "import xgboost" 2>/dev/null; then
  echo "letor_mq2008.sh: $PYTHON cannot import xgboost; apt-get install python3-xgboost" >&2
  exit 1
fi
for f in vali.txt test.txt; do
  [ -s "$DATA/$f" ] || { echo "letor_mq2008.sh: $DATA/$f is missing" >&2; exit 1; }
done

echo "building piano and letor_ndcg in $BUILD_DIR ..." >&2
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DPIANO_BUILD_TESTS=OFF \
  -DPIANO_BUILD_EXAMPLES=ON -DPIANO_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD_DIR" --target piano_cli letor_ndcg -j2 >/dev/null
PIANO=$BUILD_DIR/examples/piano
LETOR_NDCG=$BUILD_DIR/bench/letor_ndcg

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ROWS=$WORK/rows.txt  # direction|system|seed|ndcg@5|ndcg@10, one line per run

# One direction of the split: train on $1, test on $2.
run() {
  train=$1 test=$2 dir=$WORK/$1-$2
  mkdir -p "$dir/data"
  ln -s "$DATA/$train" "$dir/data/train.txt"
  ln -s "$DATA/$test" "$dir/data/test.txt"
  for model in $MODELS; do
    for seed in $SEEDS; do
      echo "training $model on $train, seed $seed ..." >&2
      out=$dir/$model-$seed
      "$PIANO" train --format letor --data "$dir/data" --model "$model" --out "$out" --config tiny \
        --epochs "$EPOCHS" --seed "$seed" >"$out.log"
      "$PIANO" eval --data "$dir/data" --model "$out" --csv "$out.csv" >/dev/null
      # The model's row: model,...,ndcg@5 (column 6), ndcg@10 (column 7).
      awk -F, -v m="$model" -v s="$seed" -v d="$train -> $test" \
        '$1 == m { printf "%s|%s|%s|%s|%s\n", d, m, s, $6, $7 }' "$out.csv" >>"$ROWS"
    done
  done
  echo "training xgboost rank:ndcg on $train ..." >&2
  "$PYTHON" - "$DATA/$train" "$DATA/$test" "$dir/xgb_scores.txt" "$ROUNDS" <<'PY'
import sys
import numpy as np
import xgboost as xgb

def read_letor(path):
    """Labels, query ids and dense features of a LETOR file (indices 1-based)."""
    labels, qids, rows = [], [], []
    for line in open(path):
        body = line.split("#", 1)[0].split()
        if not body:
            continue
        labels.append(float(body[0]))
        qids.append(body[1].split(":", 1)[1])
        rows.append({int(k): float(v) for k, v in (t.split(":", 1) for t in body[2:])})
    width = max(max(r) for r in rows if r)
    x = np.zeros((len(rows), width))
    for i, r in enumerate(rows):
        for k, v in r.items():
            x[i, k - 1] = v
    groups = []  # lines per query, queries contiguous
    for i, q in enumerate(qids):
        if i == 0 or q != qids[i - 1]:
            groups.append(0)
        groups[-1] += 1
    return np.array(labels), groups, x

train_path, test_path, out_path, rounds = sys.argv[1:5]
y, groups, x = read_letor(train_path)
train = xgb.DMatrix(x, label=y)
train.set_group(groups)
booster = xgb.train({"objective": "rank:ndcg"}, train, num_boost_round=int(rounds))
_, _, x_test = read_letor(test_path)
np.savetxt(out_path, booster.predict(xgb.DMatrix(x_test)), fmt="%.9g")
PY
  set -- $("$LETOR_NDCG" "$DATA/$test" "$dir/xgb_scores.txt")
  printf "%s|xgboost rank:ndcg|-|%s|%s\n" "$train -> $test" "$1" "$2" >>"$ROWS"
}

run vali.txt test.txt
run test.txt vali.txt

echo
echo "| train -> test | system | runs | NDCG@5 mean (min-max) | NDCG@10 mean (min-max) |"
echo "|---|---|---:|---|---|"
# Rows in order of first appearance, each system's runs pooled.
awk -F'|' '
  { key = $1 "|" $2
    if (!(key in n)) { order[++keys] = key; lo5[key] = hi5[key] = $4; lo10[key] = hi10[key] = $5 }
    n[key]++; s5[key] += $4; s10[key] += $5
    if ($4 < lo5[key]) lo5[key] = $4; if ($4 > hi5[key]) hi5[key] = $4
    if ($5 < lo10[key]) lo10[key] = $5; if ($5 > hi10[key]) hi10[key] = $5 }
  END { for (k = 1; k <= keys; k++) { key = order[k]; split(key, part, "|")
          printf "| %s | %s | %d | %.4f (%.4f-%.4f) | %.4f (%.4f-%.4f) |\n", part[1], part[2], n[key],
                 s5[key] / n[key], lo5[key], hi5[key], s10[key] / n[key], lo10[key], hi10[key] } }' "$ROWS"
echo
echo "piano: config tiny, $EPOCHS epochs, seeds $SEEDS, no validation split; xgboost $("$PYTHON" -c 'import xgboost; print(xgboost.__version__)'): rank:ndcg, $ROUNDS rounds, default parameters."
echo "NDCG over the test file's queries with a relevant document (grades = MQ2008's labels 0/1/2, gain 2^g - 1), computed by piano::metrics."
