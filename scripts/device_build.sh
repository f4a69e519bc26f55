#!/usr/bin/env bash
# device_build.sh — configure and build qjit on the GPU machine (Ubuntu image
# without cJSON, LAPACKE or libpng's headers): uses the headers and libraries carried in .device/ (made by
# scripts/device_prepare.sh on the development machine).
set -euo pipefail
cd "$(dirname "$0")/.."
D=$PWD/.device
export LD_LIBRARY_PATH=$D/lib:${LD_LIBRARY_PATH:-}
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQJ_WERROR=${QJ_DEVICE_WERROR:-ON} \
  -DCJSON_LIB=$D/lib/libcjson.so.1 -DCJSON_INC=$D/include -DXXHASH_INC=$D/include \
  -DLAPACKE_LIB=$D/lib/liblapacke.so.3 -DLAPACKE_INC=$D/include \
  -DPNG_LIBRARY=$D/lib/libpng16.so.16 -DPNG_PNG_INCLUDE_DIR=$D/include \
  -DQJ_SHARED_DIR=$D/shared >/dev/null
cmake --build build-gpu -j"$(nproc)" 2>&1 | grep -E "error|warning" || true
test -x build-gpu/qjit
