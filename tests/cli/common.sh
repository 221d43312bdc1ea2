# What the CLI test scripts share; sourced, never run. Before sourcing, set `work` (the
# scratch directory, emptied here). After the checks, `finish NAME` exits 1 when any
# check failed and reports NAME's success otherwise.
rm -rf "$work"
mkdir -p "$work"
failures=0

# fail MESSAGE...: records a failed check and goes on, so one run reports every failure.
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

finish() {
  if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
  fi
  echo "all $1 checks passed"
}
