#!/usr/bin/env bash
# Installs the Debian 12 packages piano's build, tests and examples need, skipping those
# already present. Safe to run again. Needs root (or sudo) only when something is missing.
set -euo pipefail

# clang, libclang-rt-14-dev (libFuzzer and the sanitizer runtimes) and libomp-dev (clang's
# OpenMP) for scripts/fuzz.sh and the sanitizer build of scripts/test.sh; libopenmpi-dev
# and openmpi-bin (mpirun) for the data-parallel tests of its Release build;
# libopenblas-pthread-dev for piano::blas and its tests (Eigen's products through OpenBLAS).
packages=(cmake g++ make pkg-config libeigen3-dev libcereal-dev rapidjson-dev catch2 libbenchmark-dev doxygen clang libclang-rt-14-dev libomp-dev libopenmpi-dev openmpi-bin libopenblas-pthread-dev)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "piano: installing missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  apt_get=(apt-get)
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  apt_get=(sudo apt-get)
else
  echo "piano: these packages are missing and this user cannot install them: ${missing[*]}" >&2
  echo "piano: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${apt_get[@]}" update -qq
"${apt_get[@]}" install -y -qq --no-install-recommends "${missing[@]}"
