#!/usr/bin/env bash
# `mpirun -np 2 piano train` end to end on a tiny simulated world (seconds): two ranks
# write the model folder one process writes, with the same losses up to float rounding;
# ranks given different runs, a rank that fails alone and a rank that dies each end the
# job with a non-zero exit and a message, and leave the model folder as it was.
#
#   tests/cli/test_cli_mpi.sh PATH/TO/piano PATH/TO/mpirun [WORK_DIR]
set -euo pipefail

piano=${1:?usage: test_cli_mpi.sh PATH/TO/piano PATH/TO/mpirun [WORK_DIR]}
mpirun=${2:?usage: test_cli_mpi.sh PATH/TO/piano PATH/TO/mpirun [WORK_DIR]}
work=${3:-$(mktemp -d)}
# shellcheck source=tests/cli/common.sh
. "$(dirname "$0")/common.sh"
# Two ranks on this machine, however many cores it has; a hung job fails after 120 s.
ranks2=(timeout 120 "$mpirun" --oversubscribe -np 2)

data=$work/data
tiny=(--config tiny --epochs 2 --seed 3 --batch-size 16)
"$piano" simulate --out "$data" --users 40 --songs 200 --artists 20 --genres 3 --requests 200 --min-list 5 \
  --max-list 8 --history 6 --seed 3 >/dev/null

echo "== one process, then two ranks"
"$piano" train --data "$data" --out "$work/alone" "${tiny[@]}" >/dev/null
"${ranks2[@]}" "$piano" train --data "$data" --out "$work/ranks" "${tiny[@]}" >"$work/out.txt" 2>"$work/err.txt" ||
  fail "mpirun -np 2 piano train exited $?: $(cat "$work/err.txt")"
for f in model.txt best.ckpt train_log.csv config.txt data.txt products.txt vocab/items.vocab; do
  [ -s "$work/ranks/$f" ] || fail "two ranks did not write $f"
done
[ "$(grep -c '^data parallel: 2 ranks' "$work/out.txt")" -eq 1 ] || fail "rank 0 alone should print: $(cat "$work/out.txt")"
cmp -s "$work/alone/config.txt" "$work/ranks/config.txt" || fail "the ranks wrote another config.txt"
cmp -s "$work/alone/vocab/items.vocab" "$work/ranks/vocab/items.vocab" || fail "the ranks wrote other vocabularies"
# The epochs' losses and validation metrics (every column but the last, seconds) agree to
# 1e-3: float sums in another order (docs/distributed.md, "The same model").
paste -d, <(cut -d, -f1-$(($(head -1 "$work/alone/train_log.csv" | tr ',' '\n' | wc -l) - 1)) "$work/alone/train_log.csv") \
  <(cut -d, -f1-$(($(head -1 "$work/ranks/train_log.csv" | tr ',' '\n' | wc -l) - 1)) "$work/ranks/train_log.csv") |
  awk -F, 'NR > 1 { n = NF / 2; for (i = 1; i <= n; ++i) { d = $i - $(i + n); if (d < -1e-3 || d > 1e-3) { print "column " i ": " $i " vs " $(i + n); bad = 1 } } }
           END { exit bad }' >"$work/diff.txt" || fail "two ranks' train_log.csv differs from one process's: $(cat "$work/diff.txt")"
"$piano" eval --data "$data" --model "$work/ranks" >/dev/null || fail "piano eval cannot read the ranks' folder"
cp "$work/ranks/best.ckpt" "$work/good.ckpt"

echo "== ranks given different runs"
status=0
timeout 120 "$mpirun" --oversubscribe -np 1 "$piano" train --data "$data" --out "$work/mismatch" "${tiny[@]}" : \
  -np 1 "$piano" train --data "$data" --out "$work/mismatch" "${tiny[@]}" --lr 0.01 >"$work/out.txt" 2>"$work/err.txt" || status=$?
[ "$status" -eq 5 ] || fail "mismatched ranks exited $status, expected 5 (a config error): $(cat "$work/err.txt")"
grep -q "^piano: error: the 2 ranks were not given the same run: model and training keys: rank 1 differs from rank 0" \
  "$work/err.txt" || fail "no clear message on rank 0 for mismatched ranks: $(cat "$work/err.txt")"
[ ! -e "$work/mismatch" ] || fail "mismatched ranks wrote into --out: $(ls "$work/mismatch")"

echo "== a rank that fails alone, a rank that dies"
status=0
timeout 120 "$mpirun" --oversubscribe -np 1 "$piano" train --data "$data" --out "$work/ranks" --overwrite "${tiny[@]}" : \
  -np 1 "$piano" train --data "$work/no-such-data" --out "$work/ranks" --overwrite "${tiny[@]}" \
  >"$work/out.txt" 2>"$work/err.txt" || status=$?
[ "$status" -eq 3 ] || fail "a rank without its data: exited $status, expected 3 (a data error): $(cat "$work/err.txt")"
grep -q "rank 1 of 2: .*no-such-data" "$work/err.txt" || fail "no message naming rank 1's missing data: $(cat "$work/err.txt")"
cmp -s "$work/ranks/best.ckpt" "$work/good.ckpt" || fail "a failed job changed the last checkpoint"
status=0
timeout 120 "$mpirun" --oversubscribe -np 1 "$piano" train --data "$data" --out "$work/ranks" --overwrite "${tiny[@]}" : \
  -np 1 sh -c 'kill -9 $$' >"$work/out.txt" 2>"$work/err.txt" || status=$?
[ "$status" -ne 0 ] && [ "$status" -ne 124 ] || fail "a job with a dead rank exited $status (124: it hung)"
# mpirun names the signal, or (when it sees the exit first) a process's non-zero exit.
grep -Eq "signal 9|non-zero exit" "$work/err.txt" || fail "mpirun did not report the dead rank: $(cat "$work/err.txt")"
cmp -s "$work/ranks/best.ckpt" "$work/good.ckpt" || fail "a job with a dead rank changed the last checkpoint"
"$piano" eval --data "$data" --model "$work/ranks" >/dev/null || fail "the failed jobs left a folder eval cannot read"

finish "MPI CLI"
