#!/usr/bin/env bash
# test.sh — one command: install dependencies, build with -Werror, run the whole
# test suite (ctest), then run it again under AddressSanitizer + UBSan.
# GPU tests skip visibly (ctest "Not Run / Skipped") on machines without a GPU.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/deps.sh
jobs=$(nproc)
export QJ_NO_PROGRESS=1
cmake -S . -B build -DQJ_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"
echo "== the same suite under AddressSanitizer + UBSan"
cmake -S . -B build-asan -DQJ_WERROR=ON -DQJ_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"
