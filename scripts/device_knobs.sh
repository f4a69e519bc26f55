#!/usr/bin/env bash
# device_knobs.sh — on the GPU machine: build, GPU tests, then the kernel
# benchmark of the CUDA-core and the tensor-core kernels side by side
# (QJ_GEMV_MMA=1 forces the tensor-core kernel at batch 1), batch 16, and
# batch-1 decode. Logs go to $OUT.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
gpu_tests
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
