#!/usr/bin/env bash
# device_wg.sh — on the GPU machine, one call: build, check the wgmma integer-MMA
# kernels (QJ_IM_WG) against the C reference on every batch > 4 case
# (QJ_IM_BX=1 QJ_IM_WG=1 test_gpu_gemv; with QJ_IM_WGSWAP=1 too when that fails),
# then time them at batch 16 over their geometry knobs (scripts/device_sweep.sh,
# $WG_SET), and, with time left, the batch-1 kernels over widths x groups ($GROUP_PLANS).
# Logs in $OUT.
set -uo pipefail
T0=$(date +%s)
BUDGET=${BUDGET:-520}
source "$(dirname "$0")/device_env.sh"
t "built"
gemv() { # gemv LOG [VAR=VAL ...]
  env "${@:2}" ./build-gpu/tests/test_gpu_gemv > "$out/$1" 2>&1
  echo "test_gpu_gemv [${*:2}] rc=$? $(grep -E 'checked' "$out/$1")"
  grep -E "FAIL|rel |check failed" "$out/$1" | head -4
}
gemv gemv_wg.log QJ_IM_BX=1 QJ_IM_WG=1
if ! grep -q " 0 bad" "$out/gemv_wg.log"; then gemv gemv_wgswap.log QJ_IM_BX=1 QJ_IM_WG=1 QJ_IM_WGSWAP=1; fi
t "checks done"
if [ -n "${WG_TESTS_ONLY:-}" ]; then exit 0; fi
SWEEP_SET=${WG_SET:-"default
QJ_IM_WG=1
QJ_IM_WG=1 QJ_IM_MT=1
QJ_IM_WG=1 QJ_IM_MT=4
QJ_IM_WG=1 QJ_IM_WARPS=8
QJ_IM_WG=1 QJ_IM_MT=1 QJ_IM_WARPS=8
QJ_IM_BX=1 QJ_IM_WG=1 QJ_IM_MT=1
QJ_IM_BX=1 QJ_IM_WG=1"} SWEEP_ARGS="--batch 16" bash scripts/device_sweep.sh ${WG_PLANS:-int4-g128} | grep b2b | tee "$out/wg_sweep.txt"
t "batch-16 sweep done"
for p in ${GROUP_PLANS:-}; do
  left || { t "skipped the rest of the group plans (budget)"; break; }
  SWEEP_SET=default bash scripts/device_sweep.sh $p | grep b2b | tee -a "$out/groups.txt"
done
t "all done"
