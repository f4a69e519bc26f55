#!/usr/bin/env bash
# device_im.sh — on the GPU machine: build, GPU tests, then the integer-MMA
# GEMV (automatic for packed single-format launches at batch <= 16) against
# the integer-dot GEMV (QJ_GEMV_IM=0) per layer kernel, every width, batch 16,
# an optional geometry sweep (SWEEP=1), and batch-1 decode. Logs go to $OUT.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem,memory.total --format=csv,noheader | tee "$out/gpu.txt"
gpu_tests
kb int4-g128
kb int4-g128 QJ_GEMV_IM=0
if [ -n "${SWEEP:-}" ]; then
  for v in "QJ_IM_MT=1" "QJ_IM_UNROLL=2" "QJ_IM_WARPS=2" "QJ_IM_WARPS=8"; do kb int4-g128 $v; done
fi
for p in ${WIDTHS:-int2-g64 int3-g128 int5-g128 int6-g128 int8-g128 int4-g32}; do kb $p; done
echo "== int4-g128 batch 16"
./build-gpu/qjit bench --kernels --synthetic llama3-8b --plan int4-g128 --iters 30 --batch 16 2>&1 |
  grep -E "copy ceiling|^layers|^lm_head|rror" | tee -a "$out/kernels.log"
for p in int4-g128 examples/plans/int4-g128_all.json int3-g128 int5-g128 int6-g128 int8-g128; do
  ./build-gpu/qjit bench --synthetic llama3-8b --plan $p --device cuda --tokens 256 2>&1 | grep -E "^decode|^weights|rror" | sed "s|^|[$(basename $p)] |" | tee -a "$out/decode.log"
done
QJ_PDL=0 ./build-gpu/qjit bench --synthetic llama3-8b --plan examples/plans/int4-g128_all.json --device cuda --tokens 256 2>&1 | grep -E "^decode|rror" | sed "s|^|[int4-g128_all QJ_PDL=0] |" | tee -a "$out/decode.log"
QJ_GEMV_IM=0 ./build-gpu/qjit bench --synthetic llama3-8b --plan int4-g128 --device cuda --tokens 256 2>&1 | grep -E "^decode|rror" | sed "s|^|[int4-g128 QJ_GEMV_IM=0] |" | tee -a "$out/decode.log"
