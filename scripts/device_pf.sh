#!/usr/bin/env bash
# device_pf.sh — one device call for issue 3's last item (3-/5-bit decode in proportion to bytes), 2026-12-07: the
# integer-MMA kernels' L2 prefetch at block start (QJ_IM_PF KiB a launch, qj_gemv_spec.pft), in order of need
# (BUDGET seconds, default 540, cuts the tail): decode at batch 1 of int4-g128 with an int4 head at PF = 0 and
# $PF_BEST (16 MiB), the four widths (bf16 heads) at both, test_gpu_forward with every byte of every launch
# prefetched, the int4 plan at 32 / 4 / 8 / 0 / 16 MiB, decode at batch 16, then the GPU tests with the defaults,
# test_gpu_tail, and test_gpu_gemv with every byte prefetched.
# Run from the repository root with .device prepared (scripts/device_prepare.sh, carry [".device"]).
set -uo pipefail
export T0=$(date +%s) BUDGET=${BUDGET:-540}
source scripts/device_env.sh
t built
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
D="./build-gpu/qjit bench --synthetic llama3-8b --device cuda --tokens 256"
dec() { local pf=$1 plan=$2; shift 2; echo "== decode PF=$pf $plan $*"
        QJ_IM_PF=$pf $D --plan $plan "$@" 2>&1 | grep -E "^decode batch|rror"; }
A=examples/plans/int4-g128_all.json
{ for pf in 0 ${PF_BEST:-16384}; do left && dec $pf $A; done
  t int4
  for p in int3-g128 int4-g128 int5-g128 int6-g128; do
    for pf in 0 ${PF_BEST:-16384}; do left && dec $pf $p; done
  done
  t widths
  left && { QJ_IM_PF=1048576 ./build-gpu/tests/test_gpu_forward > "$out/forward_pf.log" 2>&1
            echo "test_gpu_forward (QJ_IM_PF=1048576) rc=$? $(tail -1 "$out/forward_pf.log")"; t forward_pf; }
  for pf in 32768 4096 8192 0 ${PF_BEST:-16384}; do left && dec $pf $A; done
  t sweep
  left && { echo "== decode b16 (and b1), PF=${PF_BEST:-16384}"; QJ_IM_PF=${PF_BEST:-16384} $D --plan $A --batch 16 2>&1 | grep -E "^decode batch"; }
  left && { gpu_tests; t tests; }
  left && { ./build-gpu/tests/test_gpu_tail > "$out/tail.log" 2>&1; echo "test_gpu_tail rc=$? $(tail -1 "$out/tail.log")"; }
  left && { QJ_IM_PF=1048576 ./build-gpu/tests/test_gpu_gemv > "$out/gemv_pf.log" 2>&1
            echo "test_gpu_gemv (QJ_IM_PF=1048576) rc=$? $(grep -E 'checked' "$out/gemv_pf.log")"; }
  t done
} 2>&1 | tee "$out/bench.txt"
