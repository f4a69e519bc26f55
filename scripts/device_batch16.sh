#!/usr/bin/env bash
# device_batch16.sh — one device call for issue 3's batch-16 bar (docs/PERFORMANCE.md, the seventh session of
# 2026-12-06): the GPU tests on the tree (qj_count_last, the hand-offs folded, not yet run on a GPU), the same tests
# with the K splits adding into y (QJ_IM_RED=1, opt-in, not yet run on a GPU), then the batch-16 kernels of a
# Llama-3-8B layer (int4-g128) back to back — the product, o through the block-shared kernel (QJ_IM_BX=1, its GPU
# test too), QJ_IM_RED=1, and the diagnostic copy td_noepi (no hand-off, no adds: the bound) — cuBLAS bf16 in the
# same run, and batch-16 decode with and without QJ_IM_RED=1. Run from the repository root with .device
# prepared (scripts/device_prepare.sh, carry [".device"]); BUDGET (seconds, default 420) stops the optional parts.
set -uo pipefail
export T0=$(date +%s) BUDGET=${BUDGET:-420}
source scripts/device_env.sh
t built
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
python3 scripts/diag_templates.py .device >/dev/null || exit 1
gpu_tests 2>&1 | tee "$out/tests.txt"
{ QJ_IM_RED=1 ./build-gpu/tests/test_gpu_gemv > "$out/gemv_red.log" 2>&1
  echo "test_gpu_gemv QJ_IM_RED=1 rc=$? $(grep -E 'checked' "$out/gemv_red.log")"; grep -E "FAIL|rel " "$out/gemv_red.log" | head -5
  QJ_IM_RED=1 ./build-gpu/tests/test_gpu_forward > "$out/forward_red.log" 2>&1
  echo "test_gpu_forward QJ_IM_RED=1 rc=$? $(tail -1 "$out/forward_red.log")"; } 2>&1 | tee -a "$out/tests.txt"
t tests
K="./build-gpu/qjit bench --kernels --synthetic examples/configs/llama3-8b-1layer.json --iters 30 --plan int4-g128"
run() { local lab=$1 b=$2; shift 2; echo "== $lab b$b $*"; env "$@" $K --batch "$b" --no-baselines 2>&1 |
        sed -n '/back-to-back: median/,$p' | grep -E 'proj|gate|up' | head -6; }
{
for r in 1 2; do
  run product 16 X=1
  run "o via BX" 16 QJ_IM_BX=1
  run red 16 QJ_IM_RED=1
  run "red, o via BX" 16 QJ_IM_RED=1 QJ_IM_BX=1
  run td_noepi 16 QJ_IM_BX=1 QJ_TEMPLATE_DIR=$PWD/.device/td_noepi
done
t kernels
left && { echo "== product with cuBLAS, b16"; $K --batch 16 > "$out/cublas16.txt" 2>&1;
          grep -E "proj|gate|up|ceiling|bf16|cuBLAS" "$out/cublas16.txt" | head -30; }
D="./build-gpu/qjit bench --synthetic llama3-8b --device cuda --tokens 256 --plan examples/plans/int4-g128_all.json --batch 16"
left && { echo "== decode b16 product"; $D 2>&1 | grep -E "^decode batch"; echo "== decode b16 red"; QJ_IM_RED=1 $D 2>&1 | grep -E "^decode batch"; }
left && { QJ_IM_BX=1 ./build-gpu/tests/test_gpu_gemv > "$out/gemv_bx.log" 2>&1
          echo "test_gpu_gemv QJ_IM_BX=1 rc=$? $(grep -E 'checked' "$out/gemv_bx.log")"; }
left && for b in 8 32; do run product "$b" X=1; run "o via BX" "$b" QJ_IM_BX=1; run red "$b" QJ_IM_RED=1; done
t done
} 2>&1 | tee "$out/bench.txt"
