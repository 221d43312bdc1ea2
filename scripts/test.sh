#!/usr/bin/env bash
# Builds and runs every test twice: a Release build with -Wall -Wextra -Wpedantic -Werror
# (GCC) and MPI, then a Debug build under AddressSanitizer and UndefinedBehaviorSanitizer (clang),
# then a short fuzzing run and the API reference.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)

echo "== Release, warnings as errors, with data parallelism over MPI"
# PIANO_USE_MPI adds the two-rank tests (mpirun -np 2, seconds); the sanitizer build below
# leaves it off, so the library is also built and tested without MPI.
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DPIANO_WARNINGS_AS_ERRORS=ON -DPIANO_BUILD_BENCH=OFF \
  -DPIANO_USE_MPI=ON
cmake --build build/release -j "$jobs"
ctest --test-dir build/release --output-on-failure -j "$jobs"

echo "== Debug, AddressSanitizer + UndefinedBehaviorSanitizer, built with clang"
# The library's unit tests under the sanitizers; the examples and the CLI ran above.
# clang here and GCC above: both compilers build every test at no extra CI time.
# -O1 keeps the sanitized suite fast enough; Eigen's own assertions stay on (no NDEBUG).
# -g1 (line tables, no variable info) keeps sanitizer reports readable while the object
# files of the unity test batches stay smaller and assemble faster than with full -g.
CC=clang CXX=clang++ cmake -S . -B build/sanitize-clang -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DPIANO_SANITIZE=ON -DPIANO_WARNINGS_AS_ERRORS=ON -DPIANO_BUILD_BENCH=OFF -DPIANO_BUILD_EXAMPLES=OFF
cmake --build build/sanitize-clang -j "$jobs"
# The package tests configure separate projects without sanitizers; they ran above.
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build/sanitize-clang --output-on-failure -j "$jobs" -LE package

echo "== Fuzzing: each libFuzzer target for a short run from the committed corpus"
# 30 s each keeps CI short; scripts/fuzz.sh 600 (or more) is the longer run to do by hand.
scripts/fuzz.sh 30

echo "== API reference (Doxygen)"; doxygen docs/Doxyfile
