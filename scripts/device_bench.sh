#!/usr/bin/env bash
# device_bench.sh — on the GPU machine: build, run the GPU tests, then the
# kernel and decode benchmarks of docs/PERFORMANCE.md for the given plans.
# usage: scripts/device_bench.sh OUTDIR PLAN...
set -uo pipefail
cd "$(dirname "$0")/.."
out=$1; shift
export LD_LIBRARY_PATH=$PWD/.device/lib:${LD_LIBRARY_PATH:-} QJ_CACHE_DIR=${QJ_CACHE_DIR:-/tmp/qjcache}
export QJ_SHARED=$PWD/.device/shared QJ_TEST_TMP=/tmp/qjt
mkdir -p /tmp/qjt "$out"
bash scripts/device_build.sh || exit 1
./build-gpu/tests/test_gpu_gemv > "$out/test_gpu_gemv.log" 2>&1; echo "test_gpu_gemv rc=$? $(tail -2 "$out/test_gpu_gemv.log" | head -1)"
./build-gpu/tests/test_gpu_forward > "$out/test_gpu_forward.log" 2>&1; echo "test_gpu_forward rc=$? $(tail -1 "$out/test_gpu_forward.log")"
for p in "$@"; do
  ./build-gpu/qjit bench --kernels --synthetic llama3-8b --plan "$p" --iters 100 > "$out/kernels_$p.log" 2>&1
  grep -E "copy ceiling|^layers|^lm_head" "$out/kernels_$p.log" | sed "s/^/[$p] /"
  ./build-gpu/qjit bench --synthetic llama3-8b --plan "$p" --device cuda --tokens 256 > "$out/decode_$p.log" 2>&1
  grep -E "^decode|^weights" "$out/decode_$p.log" | sed "s/^/[$p] /"
done
