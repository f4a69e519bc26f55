#!/usr/bin/env bash
# device_dq.sh — on the GPU machine: build, GPU tests, then the integer-dot
# GEMV (automatic at batch 1) against the float GEMV (QJ_GEMV_DQ=0) per layer
# kernel, every width, a rows sweep (SWEEP=1), and batch-1 decode. Logs go to $OUT.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
gpu_tests
kb int4-g128 QJ_GEMV_DQ=0
kb int4-g128 QJ_X=0
sweep=("QJ_GEMV_ROWS=2" "QJ_GEMV_ROWS=2 QJ_GEMV_WARPS=4" "QJ_GEMV_ROWS=4 QJ_GEMV_WARPS=4")
[ -n "${SWEEP:-}" ] && for v in "${sweep[@]}"; do kb int4-g128 $v; done
for p in ${WIDTHS:-int3-g128 int5-g128 int6-g128 int8-g128 int2-g64}; do kb $p QJ_X=0; done
for p in int4-g128 examples/plans/int4-g128_all.json int3-g128 int5-g128 int6-g128 int8-g128; do
  ./build-gpu/qjit bench --synthetic llama3-8b --plan $p --device cuda --tokens 256 2>&1 | grep -E "^decode|^weights|rror" | sed "s|^|[$(basename $p)] |" | tee -a "$out/decode.log"
done
QJ_GEMV_DQ=0 ./build-gpu/qjit bench --synthetic llama3-8b --plan int4-g128 --device cuda --tokens 256 2>&1 | grep -E "^decode|rror" | sed "s|^|[int4-g128 QJ_GEMV_DQ=0] |" | tee -a "$out/decode.log"
