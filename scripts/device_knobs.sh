#!/usr/bin/env bash
# device_knobs.sh — on the GPU machine: build, GPU tests, then the kernel
# benchmark of the CUDA-core and the tensor-core kernels side by side
# (QJ_GEMV_MMA=1 forces the tensor-core kernel at batch 1), batch 16, and
# batch-1 decode. Logs go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.device/lib:${LD_LIBRARY_PATH:-} QJ_CACHE_DIR=/tmp/qjcache QJ_SHARED=$PWD/.device/shared QJ_TEST_TMP=/tmp/qjt
out=${OUT:-/tmp/out}
mkdir -p /tmp/qjt "$out"
bash scripts/device_build.sh || exit 1
./build-gpu/tests/test_gpu_gemv > "$out/gemv.log" 2>&1; echo "test_gpu_gemv rc=$? $(grep -E 'checked' "$out/gemv.log")"
./build-gpu/tests/test_gpu_forward > "$out/forward.log" 2>&1; echo "test_gpu_forward rc=$? $(tail -1 "$out/forward.log")"
kb() { echo "== $*"; env "${@:2}" ./build-gpu/qjit bench --kernels --synthetic llama3-8b --plan "$1" --iters 50 2>&1 | grep -E "copy ceiling|^layers|^lm_head|rror"; }
kb int4-g128 QJ_X=0
kb int4-g128 QJ_GEMV_MMA=1
kb int8-g128 QJ_GEMV_MMA=1
kb int3-g128 QJ_GEMV_MMA=1
kb int3-g128 QJ_X=0
kb int5-g128 QJ_X=0
echo "== batch 16"; ./build-gpu/qjit bench --kernels --synthetic llama3-8b --plan int4-g128 --iters 20 --batch 16 2>&1 | grep -E "^layers|rror"
for p in int4-g128 int3-g128 int5-g128 int6-g128; do
  ./build-gpu/qjit bench --synthetic llama3-8b --plan $p --device cuda --tokens 256 2>&1 | grep -E "^decode|^weights|rror" | sed "s/^/[$p] /"
done
