#!/usr/bin/env bash
# deps.sh — installs what qjit needs on Debian/Ubuntu, only what is missing.
# Debian packages: build tools, cJSON, xxHash, libpng, LLVM 14, LAPACKE + OpenBLAS, Open MPI; PyPI: NumPy (tests' reference).
set -euo pipefail
pkgs=(cmake gcc make pkg-config libcjson-dev libxxhash-dev libpng-dev zlib1g-dev llvm-14-dev liblapacke-dev libopenblas-dev
      libopenmpi-dev openmpi-bin)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PY=${PYTHON:-python3}
if ! "$PY" -c "import numpy" >/dev/null 2>&1; then
  echo "deps: installing numpy"
  "$PY" -m pip install -q numpy || echo "deps: numpy not installed; the NumPy reference tests will be skipped"
fi
