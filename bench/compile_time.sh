#!/usr/bin/env bash
# The compile time of a program that uses piano, header-only and in compiled mode
# (docs/building.md, "Compile time"): CPU seconds (user + system) of one compiler run,
# the median of RUNS runs, for
#   tests/consumer/rerank_main.cpp  builds PIANO by name, trains it with piano::train, reranks
#   examples/quickstart.cpp         a two-layer network with the autograd and ops only
# each compiled as a header-only program and with -DPIANO_COMPILED (what linking
# piano::compiled adds); for an empty main() that includes <piano/piano.hpp>, the cost of
# reading the headers, which no mode avoids; and for src/compiled.cpp, the library's one
# file, which compiled mode builds once. Each program is then linked and run, so a figure is never that of a
# program that does not work.
# Usage: bench/compile_time.sh   (environment: CXX=g++, CXXFLAGS="-O2 -DNDEBUG", RUNS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=${CXX:-g++}
read -r -a flags <<<"${CXXFLAGS:--O2 -DNDEBUG}"
runs=${RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(-std=c++17 -fopenmp -Iinclude -isystem /usr/include/eigen3 "${flags[@]}")

# CPU seconds of one run of "$@".
cpu_seconds() {
  /usr/bin/time -f "%U %S" -o "$work/time" "$@"
  awk '{ printf "%.1f", $1 + $2 }' "$work/time"
}

# The median of RUNS compilations of $1 with the extra flags $3..., into $work/$2.o.
median_compile() {
  local source=$1 object=$2
  shift 2
  local times=()
  for ((i = 0; i < runs; i++)); do
    times+=("$(cpu_seconds "$cxx" "${common[@]}" "$@" -c "$source" -o "$work/$object.o")")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'
}

echo "$("$cxx" --version | head -n 1); flags: ${common[*]}; median of $runs runs; $(nproc) cores, $(uname -m)"
library=$(median_compile src/compiled.cpp compiled)
printf '#include <piano/piano.hpp>\nint main() {}\n' >"$work/empty.cpp"
empty=$(median_compile "$work/empty.cpp" empty)
echo
echo "| program | header-only | compiled mode |"
echo "|---|---:|---:|"
for source in tests/consumer/rerank_main.cpp examples/quickstart.cpp; do
  name=$(basename "$source" .cpp)
  header_only=$(median_compile "$source" "$name-header-only")
  compiled=$(median_compile "$source" "$name-compiled" -DPIANO_COMPILED)
  "$cxx" -fopenmp "$work/$name-header-only.o" -o "$work/$name-header-only"
  "$cxx" -fopenmp "$work/$name-compiled.o" "$work/compiled.o" -o "$work/$name-compiled"
  "$work/$name-header-only" >/dev/null
  "$work/$name-compiled" >/dev/null
  echo "| \`$source\` | $header_only s | $compiled s |"
done
echo "| an empty \`main()\` after \`#include <piano/piano.hpp>\` | $empty s | - |"
echo "| \`src/compiled.cpp\` (piano::compiled, once) | - | $library s |"
