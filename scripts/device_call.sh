#!/usr/bin/env bash
# device_call.sh — one device call in stages, each skipped once the call has
# run $BUDGET seconds (default 540), so a call always returns its logs:
#   STEPS="tests knobtests kernels sweep decode" (default: all but knobtests), KERNEL_PLANS,
#   KERNEL_ARGS, SWEEP_PLANS, DECODE_PLANS, DECODE_ARGS (e.g. --batch 16 for the first plan); knobtests runs test_gpu_gemv under each setting
#   the compiler picks by shape (so every shape is checked with it), KNOB_SETS (one per line).
# Logs in $OUT; every line of the summary carries the elapsed time.
set -uo pipefail
T0=$(date +%s)
BUDGET=${BUDGET:-540}
source "$(dirname "$0")/device_env.sh"
find_cublas
t "built; cuBLAS: ${QJ_CUBLAS:-none found}"
STEPS=${STEPS:-tests kernels sweep decode}
L1=examples/configs/llama3-8b-1layer.json
for step in $STEPS; do
  left || { t "skipped $step (budget)"; continue; }
  case $step in
  tests) gpu_tests ;;
  knobtests)
    while IFS= read -r set; do
      [ -z "$set" ] && continue
      env $set ./build-gpu/tests/test_gpu_gemv > "$out/gemv_knobs.log" 2>&1
      echo "test_gpu_gemv [$set] rc=$? $(grep -E 'checked' "$out/gemv_knobs.log")"
      grep -E "FAIL|rel " "$out/gemv_knobs.log" | head -5
    done <<< "${KNOB_SETS:-"QJ_IM_WARPS=8 QJ_IM_STAGES=6 QJ_IM_RING=45056
QJ_IM_WARPS=16 QJ_IM_UNROLL=2 QJ_IM_STAGES=0
QJ_IM_UNROLL=2 QJ_IM_STAGES=0"}" ;;
  kernels)
    for p in ${KERNEL_PLANS:-int4-g128}; do
      ./build-gpu/qjit bench --kernels --synthetic $L1 --plan $p --iters 30 ${KERNEL_ARGS:-} > "$out/kernels_$p.log" 2>&1
      grep -E "copy ceiling|cuBLAS|median|^layers|^lm_head|rror|^  qj_" "$out/kernels_$p.log"
    done ;;
  sweep) bash scripts/device_sweep.sh ${SWEEP_PLANS:-int4-g128 int3-g128 int2-g128 int5-g128 int8-g128} | tee "$out/sweep.txt" ;;
  decode)
    da=${DECODE_ARGS:-}
    for p in ${DECODE_PLANS:-examples/plans/int4-g128_all.json int4-g128 int3-g128 int5-g128}; do
      left || break
      ./build-gpu/qjit bench --synthetic llama3-8b --plan $p --device cuda --tokens 256 $da 2>&1 | grep -E "^decode|^weights|^batch|rror" |
        sed "s|^|[$(basename $p)] |" | tee -a "$out/decode.log"
      da=""
    done ;;
  esac
  t "$step done"
done
