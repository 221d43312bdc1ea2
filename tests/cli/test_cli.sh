#!/usr/bin/env bash
# End-to-end test of the `piano` command-line tool on a tiny simulated world (seconds):
# simulate -> train -> eval -> rerank -> compare -> report, then the error cases and their
# exit codes (docs/cli.md).
#
#   tests/cli/test_cli.sh PATH/TO/piano [WORK_DIR [PATH/TO/serve]]
set -euo pipefail

piano=${1:?usage: test_cli.sh PATH/TO/piano [WORK_DIR [PATH/TO/serve]]}
work=${2:-$(mktemp -d)}
serve=${3:-}
# shellcheck source=tests/cli/common.sh
. "$(dirname "$0")/common.sh"

# expect CODE PATTERN -- COMMAND...: runs COMMAND, checks its exit code and that its
# stderr matches PATTERN (a grep -E expression; empty for no check).
expect() {
  local code=$1 pattern=$2
  shift 3
  local status=0
  "$@" >"$work/out.txt" 2>"$work/err.txt" || status=$?
  if [ "$status" -ne "$code" ]; then
    fail "'$*' exited $status, expected $code; stderr: $(cat "$work/err.txt")"
  elif [ -n "$pattern" ] && ! grep -Eq "$pattern" "$work/err.txt"; then
    fail "'$*': stderr does not match '$pattern': $(cat "$work/err.txt")"
  fi
}

data=$work/data
tiny=(--config tiny --epochs 1 --seed 3)

echo "== simulate"
expect 0 "" -- "$piano" simulate --out "$data" --users 40 --songs 200 --artists 20 --genres 3 \
  --requests 200 --min-list 5 --max-list 8 --history 6 --seed 3
for f in products.txt train.txt valid.txt test.txt truth.txt ambiguous_terms.txt; do
  [ -s "$data/$f" ] || fail "simulate did not write $f"
done

echo "== train"
expect 0 "" -- "$piano" train --data "$data" --model piano --out "$work/model" "${tiny[@]}"
for f in model.txt best.ckpt train_log.csv vocab/terms.vocab vocab/items.vocab products.txt data.txt; do
  [ -s "$work/model/$f" ] || fail "train did not write $f"
done

# The run file train wrote repeats the run bit for bit, flags override it, and a trained
# model is never overwritten by accident.
[ -s "$work/model/config.txt" ] || fail "train did not write config.txt"
grep -q "^epochs = 1$" "$work/model/config.txt" || fail "config.txt does not hold the --epochs given: $(cat "$work/model/config.txt")"
expect 2 "already holds a trained model; pass --overwrite" -- \
  "$piano" train --data "$data" --model piano --out "$work/model" "${tiny[@]}"
expect 0 "" -- "$piano" train --data "$data" --model piano --out "$work/again" --config "$work/model/config.txt"
cmp -s "$work/model/best.ckpt" "$work/again/best.ckpt" || fail "train --config config.txt did not repeat the run"
cmp -s "$work/model/config.txt" "$work/again/config.txt" || fail "the repeated run wrote another config.txt"
expect 0 "" -- "$piano" train --data "$data" --model piano --out "$work/again" --config "$work/model/config.txt" \
  --overwrite --epochs 2
grep -q "^epochs = 2$" "$work/again/config.txt" || fail "--epochs did not override the run file"
[ "$(tail -n +2 "$work/again/train_log.csv" | wc -l)" -eq 2 ] || fail "--epochs 2 over the run file did not train 2 epochs"
printf 'd_model = 16\nheads = 2\nlearning_rate = fast\n' >"$work/bad_run.conf"
expect 5 "^piano: error: .*bad_run.conf: config key 'learning_rate': expected a number, got 'fast'" -- \
  "$piano" train --data "$data" --out "$work/x" --config "$work/bad_run.conf"

if [ -n "$serve" ]; then
  # examples/serve.cpp: the folder piano train wrote, loaded with one call, reranks a raw
  # request of string ids (the first test request's query and songs, plus one new song).
  first=$(sed -n 2p "$data/test.txt")
  query=$(printf '%s' "$first" | cut -f1 | tr '\030' ' ')
  read -r -a songs <<<"$(printf '%s' "$first" | cut -f2 | tr '_' ' ') brand-new-song"
  expect 0 "^piano: .*ids unknown" -- "$serve" "$work/model" "$query" "${songs[@]}"
  [ "$(cut -f1 "$work/out.txt" | sort | tr '\n' ' ')" = "$(printf '%s\n' "${songs[@]}" | sort | tr '\n' ' ')" ] ||
    fail "serve did not print a permutation of the request's songs: $(cat "$work/out.txt")"
fi

echo "== eval"
expect 0 "" -- "$piano" eval --data "$data" --model "$work/model" --csv "$work/eval.csv"
for row in first-stage piano oracle; do
  grep -q "^| $row |" "$work/out.txt" || fail "eval printed no '$row' row"
done

# A test split whose every song is new to the model: a one-line warning, and still a table.
mkdir -p "$work/new_songs"
cp "$data/products.txt" "$data/train.txt" "$work/new_songs/"
awk -F'\t' 'BEGIN { OFS = "\t" } NR > 1 { gsub(/[0-9]+/, "new&", $2) } { print }' "$data/test.txt" >"$work/new_songs/test.txt"
expect 0 "^piano: warning: [0-9]+ of [0-9]+ test candidates \(100%\) are items the model never saw" -- \
  "$piano" eval --data "$work/new_songs" --model "$work/model"

echo "== rerank"
expect 0 "" -- "$piano" rerank --model "$work/model" --requests "$data/test.txt"
test_requests=$(($(wc -l <"$data/test.txt") - 1))
[ "$(wc -l <"$work/out.txt")" -eq $((test_requests + 1)) ] || fail "rerank printed $(wc -l <"$work/out.txt") lines for $test_requests requests"
head -1 "$work/out.txt" | grep -q "^line	p_list_ctr	p_list_cvr	wids	indices	scores	p_ctr	p_cvr	p_ctcvr$" ||
  fail "rerank header: $(head -1 "$work/out.txt")"
cp "$work/out.txt" "$work/rerank.tsv"
# Standard input gives the same answer as the file.
"$piano" rerank --model "$work/model" --requests - <"$data/test.txt" >"$work/stdin.tsv" 2>"$work/err.txt" ||
  fail "rerank --requests - failed: $(cat "$work/err.txt")"
cmp -s "$work/rerank.tsv" "$work/stdin.tsv" || fail "rerank of standard input differs from rerank of the file"
# long: a header and one line per candidate; its wids, request by request, are the tsv's.
expect 0 "" -- "$piano" rerank --model "$work/model" --requests "$data/test.txt" --format long
candidates=$(tail -n +2 "$data/test.txt" | cut -f2 | tr '_' '\n' | wc -l)
[ "$(wc -l <"$work/out.txt")" -eq $((candidates + 1)) ] || fail "rerank --format long printed $(wc -l <"$work/out.txt") lines for $candidates candidates"
[ "$(tail -n +2 "$work/out.txt" | cut -f4 | tr '\n' ',')" = "$(tail -n +2 "$work/rerank.tsv" | cut -f4 | tr '\n' ',')" ] ||
  fail "rerank --format long and tsv disagree on the new orders"
# jsonl: one object per request, no header (tests/io/test_rerank_output.cpp parses it).
expect 0 "" -- "$piano" rerank --model "$work/model" --requests "$data/test.txt" --format jsonl
[ "$(grep -c '^{"line":[0-9]*,"p_list_ctr":' "$work/out.txt")" -eq "$test_requests" ] || fail "rerank --format jsonl: $(head -2 "$work/out.txt")"
# New traffic without labels: an empty candidate_label_list.
unlabelled=$work/unlabelled.txt
head -1 "$data/test.txt" >"$unlabelled"
sed -n 2p "$data/test.txt" | awk -F'\t' 'BEGIN { OFS = "\t" } { $3 = ""; print }' >>"$unlabelled"
expect 0 "" -- "$piano" rerank --model "$work/model" --requests "$unlabelled"
[ "$(sed -n 2p "$work/out.txt" | cut -f4)" = "$(sed -n 2p "$work/rerank.tsv" | cut -f4)" ] ||
  fail "a request without labels got another order than with them"

echo "== compare"
expect 0 "" -- "$piano" compare --data "$data" --out "$work/compare" --models dnn,piano --jobs 2 "${tiny[@]}"
header="model,auc_ctr,auc_ctcvr,auc_cvr,gauc_ctr,ndcg@5,ndcg@10,map@10,clicks@10,conv@10,list_auc_ctr,list_auc_cvr"
[ "$(head -1 "$work/compare/compare.csv")" = "$header" ] || fail "compare.csv header: $(head -1 "$work/compare/compare.csv")"
rows=$(tail -n +2 "$work/compare/compare.csv" | cut -d, -f1 | tr '\n' ' ')
[ "$rows" = "first-stage dnn piano oracle " ] || fail "compare.csv rows: '$rows'"
[ -s "$work/compare/piano/train_log.csv" ] || fail "compare wrote no piano/train_log.csv"
# PIANO head to head with each other model (simulated data): one row, against dnn.
pairs=$(tail -n +2 "$work/compare/head_to_head.csv" | cut -d, -f1,2 | tr '\n' ' ')
[ "$pairs" = "piano,dnn " ] || fail "head_to_head.csv rows: '$pairs'"
grep -q "^| piano | dnn | " "$work/compare/compare.md" || fail "compare.md has no head-to-head row"
# Training models side by side must not change them.
expect 0 "" -- "$piano" compare --data "$data" --out "$work/compare1" --models dnn,piano --jobs 1 "${tiny[@]}"
cmp -s "$work/compare/compare.csv" "$work/compare1/compare.csv" || fail "compare --jobs 2 and --jobs 1 differ"

echo "== report"
expect 0 "" -- "$piano" report --compare "$work/compare" --out "$work/report"
for f in report.md train_loss.svg valid_ndcg10.svg; do
  [ -s "$work/report/$f" ] || fail "report did not write $f"
done
grep -q "^| piano | dnn | [+-][0-9.]* \[" "$work/report/report.md" || fail "report.md has no head-to-head row"

echo "== errors"
for command in simulate train eval rerank compare report; do
  expect 0 "" -- "$piano" "$command" --help
  grep -q "^usage: piano $command" "$work/out.txt" || fail "$command --help printed no usage line"
done
expect 0 "" -- "$piano" --version
grep -Eq "^piano [0-9]+\.[0-9]+\.[0-9]+$" "$work/out.txt" || fail "--version printed: $(cat "$work/out.txt")"
expect 0 "" -- "$piano" --help
expect 2 "^piano: error: unknown command" -- "$piano" frobnicate
expect 2 "^piano: error: train: unknown option '--epoch'" -- "$piano" train --data "$data" --out "$work/x" --epoch 1
expect 2 "^piano: error: train: --data DIR is required" -- "$piano" train --out "$work/x"
expect 2 "^piano: error: train --epochs" -- "$piano" train --data "$data" --out "$work/x" --epochs zero
expect 3 "^piano: error: $work/missing:0: field directory: does not exist" -- \
  "$piano" train --data "$work/missing" --out "$work/x" "${tiny[@]}"
expect 5 "^piano: error: unknown model 'transformer'" -- \
  "$piano" train --data "$data" --model transformer --out "$work/x" "${tiny[@]}"
expect 5 "^piano: error: unknown model 'svm'" -- "$piano" compare --data "$data" --out "$work/x" --models dnn,svm

# A malformed requests file: line 3 has a label that is not a number.
bad=$work/bad.txt
head -2 "$data/test.txt" >"$bad"
sed -n 3p "$data/test.txt" | awk -F'\t' 'BEGIN { OFS = "\t" } { $3 = "x" substr($3, 2); print }' >>"$bad"
expect 3 "^piano: error: $bad:3: field candidate_label_list: " -- \
  "$piano" rerank --model "$work/model" --requests "$bad" --products "$data/products.txt"

# Model folders that cannot be read: a file instead of the folder, a corrupt checkpoint,
# a folder another version wrote, another kind than the checkpoint holds.
expect 4 "^piano: error: model folder '$work/model/best.ckpt' is a file" -- \
  "$piano" eval --data "$data" --model "$work/model/best.ckpt"
cp -r "$work/model" "$work/junk_model"
printf 'not a checkpoint' >"$work/junk_model/best.ckpt"
expect 4 "^piano: error: load_checkpoint" -- "$piano" eval --data "$data" --model "$work/junk_model"
cp -r "$work/model" "$work/future_model"
sed -i 's/^piano_version = .*/piano_version = 9.9.0/' "$work/future_model/model.txt"
expect 4 "^piano: error: model folder '$work/future_model' was written by piano 9.9.0" -- \
  "$piano" rerank --model "$work/future_model" --requests "$data/test.txt"
sed -i 's/^kind = .*/kind = dnn/; s/^piano_version = .*/piano_version = '"$("$piano" --version | cut -d' ' -f2)"'/' "$work/future_model/model.txt"
expect 4 "best.ckpt holds a 'piano' model, model.txt says 'dnn'" -- \
  "$piano" rerank --model "$work/future_model" --requests "$data/test.txt"
printf 'd_model = 7\nheads = 2\n' >"$work/odd.conf"
expect 5 "^piano: error: .*odd.conf" -- "$piano" train --data "$data" --out "$work/x" --config "$work/odd.conf"
[ "$(wc -l <"$work/err.txt")" -eq 1 ] || fail "an error message spans more than one line"


echo "== errors as API: every exit code, one line each (docs/errors.md)"
# expect_one_line: the last command's stderr is exactly one line, with no stack dump.
expect_one_line() {
  [ "$(wc -l <"$work/err.txt")" -eq 1 ] || fail "$1: the error spans $(wc -l <"$work/err.txt") lines: $(cat "$work/err.txt")"
  ! grep -Eq "terminate called|Aborted|#[0-9]+ 0x|core dumped" "$work/err.txt" || fail "$1: a crash instead of a message"
}
header=$(head -1 "$data/test.txt")

# 0: a request whose every id (terms, songs, history) the model never saw is reranked
# with the unknown rows: one output line, a permutation of its three candidates.
unseen=$work/unseen.txt
printf '%s
never1	new1_new2_new3	0_0_0	never2_-1	new4_new5	CLICK_ORD	0_10_20
' "$header" >"$unseen"
expect 0 "" -- "$piano" rerank --model "$work/model" --requests "$unseen" --products "$data/products.txt"
order=$(sed -n 2p "$work/out.txt" | cut -f4 | tr ',' '\n' | sort | tr '\n' ' ')
[ "$order" = "new1 new2 new3 " ] || fail "rerank of unseen ids: order '$order', expected a permutation of new1 new2 new3"
grep -q "^piano: rerank: 7 of 7 ids unknown (terms 2 of 2, items 5 of 5)$" "$work/err.txt" ||
  fail "rerank of unseen ids did not count them: $(cat "$work/err.txt")"
sed -n 2p "$work/out.txt" | grep -q "^2	" || fail "rerank of unseen ids: the line number is not 2: $(cat "$work/out.txt")"

# 2, 3, 4, 5: one line each (the codes themselves are checked above).
expect 2 "^piano: error: " -- "$piano" frobnicate
expect_one_line "usage"
expect 3 "^piano: error: " -- "$piano" rerank --model "$work/model" --requests "$bad" --products "$data/products.txt"
expect_one_line "data"
expect 4 "^piano: error: load_checkpoint" -- "$piano" eval --data "$data" --model "$work/junk_model"
expect_one_line "checkpoint"
expect 5 "^piano: error: " -- "$piano" train --data "$data" --out "$work/x" --config "$work/odd.conf"
expect_one_line "config"

# 6: requests with a dense feature per candidate for a model trained without any.
dense=$work/dense.txt
printf '%s
never1	new1_new2	0_0				5	0.5_0.25
' "$header" >"$dense"
expect 6 "^piano: error: FeatureEncoder: the batch has 1 dense features" -- \
  "$piano" rerank --model "$work/model" --requests "$dense" --products "$data/products.txt"
expect_one_line "shape"

# 7: a training set whose dense features are near float's largest value: the first step's
# loss is not finite and training stops, naming the step and the term.
huge=$work/huge
mkdir -p "$huge"
cp "$data/products.txt" "$huge/products.txt"
for i in 1 2 3 4; do
  printf 'q%d	w1_w2	1.0_0.0				5	3e38_-3e38
' "$i"
done >"$huge/train.txt"
expect 7 "^piano: error: step 1 \(epoch 1\)" -- "$piano" train --data "$huge" --out "$work/huge_model" "${tiny[@]}"
expect_one_line "training"

# 1: anything else, e.g. an output directory that cannot be created.
printf 'a file, not a directory' >"$work/plain_file"
expect 1 "^piano: error: " -- "$piano" simulate --out "$work/plain_file/sub" --users 10 --requests 20
expect_one_line "other"

echo "== letor"
# The project's LETOR fixture as a training and a test file: train, eval, rerank, and a
# malformed file's file:line:field message.
fixtures=$(cd "$(dirname "$0")/../fixtures/letor" && pwd)
letor=$work/letor
mkdir -p "$letor"
cp "$fixtures/good.txt" "$letor/train.txt"
cp "$fixtures/good.txt" "$letor/test.txt"
expect 0 "" -- "$piano" train --format letor --data "$letor" --model prm --out "$work/letor_model" "${tiny[@]}"
grep -q "^format = letor$" "$work/letor_model/data.txt" || fail "train --format letor saved no 'format = letor'"
expect 0 "" -- "$piano" eval --data "$letor" --model "$work/letor_model"
grep -q "^| prm |" "$work/out.txt" || fail "eval on LETOR printed no prm row"
expect 0 "" -- "$piano" rerank --model "$work/letor_model" --requests "$letor/test.txt"
[ "$(wc -l <"$work/out.txt")" -eq 4 ] || fail "rerank of 3 LETOR queries printed $(wc -l <"$work/out.txt") lines"
mkdir -p "$work/letor_bad"
cp "$fixtures/malformed/label_not_a_number.txt" "$work/letor_bad/train.txt"
expect 3 "^piano: error: $work/letor_bad/train.txt:2: field label: 'x' is not a number" -- \
  "$piano" train --format letor --data "$work/letor_bad" --out "$work/x" "${tiny[@]}"
expect 5 "^piano: error: data format 'csv'" -- "$piano" train --format csv --data "$letor" --out "$work/x" "${tiny[@]}"

echo "== the real JDsearch sample (when ../shared holds it)"
sample=$(dirname "$0")/../../../shared/data/jdsearch-sample
if [ -d "$sample" ]; then
  # Its lists are label-sorted: compare shuffles them (with a warning), gives the models no
  # position, and reports a random order where the first stage would be.
  mkdir -p "$work/jd"
  cp "$sample/product_meta_data_sample.txt" "$work/jd/products.txt"
  cp "$sample/user_behavior_data_sample.txt" "$work/jd/requests.txt"
  expect 0 "label-sorted far beyond chance" -- \
    "$piano" compare --data "$work/jd" --out "$work/jd_compare" --models prm "${tiny[@]}"
  grep -q "^candidate order: 3 of 3 lists .*lists shuffled" "$work/out.txt" || fail "compare printed no order line"
  rows=$(tail -n +2 "$work/jd_compare/compare.csv" | cut -d, -f1 | tr '\n' '|')
  [ "$rows" = "random order|prm|" ] || fail "compare.csv rows on the sample: '$rows'"
  grep -q "^candidate_order = shuffle$" "$work/jd_compare/prm/data.txt" || fail "the shuffle was not saved with the model"
  expect 0 "" -- "$piano" eval --data "$work/jd" --model "$work/jd_compare/prm"
  grep -q "^| random order |" "$work/out.txt" || fail "eval on the sample printed no random-order row"
  ! grep -q "^| first-stage |" "$work/out.txt" || fail "eval on the sample reported a first-stage ranker"
fi

finish CLI
