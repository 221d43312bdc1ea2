#!/usr/bin/env bash
# Builds piano's libFuzzer targets with clang and runs each for SECONDS (default 60) from
# the committed seed corpus (tests/fuzz/corpus). The corpus is copied to a temporary
# directory first, so new inputs the fuzzer finds never modify the repository.
#
#   scripts/fuzz.sh [SECONDS]
#
# Fails (exit 1) when any target reports a crash, a sanitizer error, a leak, a timeout
# (an input slower than 10 s), running out of memory, or an exception the library does
# not document; the reproducer is kept and its path printed. Turn a finding into a
# regression test in tests/ before fixing it (docs/errors.md).
# Environment: PIANO_FUZZ_BUILD_DIR (default build/fuzz), PIANO_FUZZ_KEEP=1 keeps the
# temporary directory (grown corpora, logs) for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
case $seconds in '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;; esac

for tool in clang clang++; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
done

build=${PIANO_FUZZ_BUILD_DIR:-build/fuzz}
# Eigen's assertions stay on (no NDEBUG): an index out of range is a finding too.
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_FLAGS="-O1 -g" \
  -DPIANO_BUILD_FUZZERS=ON -DPIANO_BUILD_TESTS=OFF -DPIANO_BUILD_EXAMPLES=OFF -DPIANO_BUILD_BENCH=OFF \
  -DPIANO_USE_OPENMP=OFF -DPIANO_WARNINGS_AS_ERRORS=ON >/dev/null
cmake --build "$build" -j "$(nproc)"

work=$(mktemp -d "${TMPDIR:-/tmp}/piano_fuzz.XXXXXX")
if [ "${PIANO_FUZZ_KEEP:-0}" != 1 ]; then trap 'rm -rf "$work"' EXIT; fi

# target:corpus:dictionary
targets=(
  "fuzz_request_line:request_line:jdsearch.dict"
  "fuzz_product_line:product_line:jdsearch.dict"
  "fuzz_letor_line:letor_line:"
  "fuzz_config:config:config.dict"
  "fuzz_checkpoint_binary:checkpoint_binary:"
  "fuzz_checkpoint_json:checkpoint_json:"
)
failed=()
for entry in "${targets[@]}"; do
  IFS=: read -r target corpus dict <<<"$entry"
  mkdir -p "$work/$target/corpus" "$work/$target/artifacts"
  cp tests/fuzz/corpus/"$corpus"/* "$work/$target/corpus/"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$work/$target/artifacts/")
  [ -n "$dict" ] && args+=(-dict="tests/fuzz/$dict")
  echo "== $target (${seconds}s)"
  status=0
  "$build/tests/fuzz/$target" "${args[@]}" "$work/$target/corpus" >"$work/$target/log.txt" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$target/log.txt")
  files=$(find "$work/$target/corpus" -type f | wc -l)
  echo "$target: ${runs:-?} executions, corpus $(find "tests/fuzz/corpus/$corpus" -type f | wc -l) -> $files inputs, exit $status"
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    grep -E "ERROR|SUMMARY|terminate|what\(\)|Test unit written" "$work/$target/log.txt" | head -20 >&2 || true
    echo "$target: full log $work/$target/log.txt; reproducers:" >&2
    ls "$work/$target/artifacts" >&2
    trap - EXIT  # keep the reproducers
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: findings in: ${failed[*]} (files under $work)" >&2
  exit 1
fi
echo "fuzz.sh: no findings"
