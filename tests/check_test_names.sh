#!/usr/bin/env bash
# Fails when a test name would break catch_discover_tests: CMake reads the discovered
# names as a list, so a ';' splits a name and an unclosed '[' swallows every name after
# it into one test that matches nothing and "passes" while the real tests never run.
#
#   tests/check_test_names.sh PATH/TO/piano_tests
set -euo pipefail
# Catch2 v2 exits with the number of tests listed, so the status says nothing here.
names=$("$1" --list-test-names-only || true)
[ -n "$names" ] || { echo "no test names from $1" >&2; exit 1; }
bad=$(printf '%s\n' "$names" | grep -nE ';|\[[^]]*$|^[^[]*\]' || true)
if [ -n "$bad" ]; then
  echo "test names that CTest cannot discover (rename them: no ';', brackets in pairs):" >&2
  printf '%s\n' "$bad" >&2
  exit 1
fi
echo "$(printf '%s\n' "$names" | grep -c .) test names, all discoverable"
