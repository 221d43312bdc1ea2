#!/usr/bin/env bash
# The main job: builds the examples and runs the quickstart, which trains a tiny model
# with piano's autograd and prints its loss falling.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)" --target quickstart
build/release/examples/quickstart
