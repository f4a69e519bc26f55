#!/usr/bin/env bash
# device_red.sh — one device call for issue 3 after the K splits' adds into y became the default (2026-12-07), in
# order of need (BUDGET, seconds, default 420, cuts the tail): the GPU tests with the new defaults (test_gpu_gemv,
# test_gpu_forward), the batch-16 kernels of a Llama-3-8B layer (int4-g128) against cuBLAS bf16 in the same run,
# test_gpu_tail (test_gpu_gemv runs every K-split case both ways itself since 2026-12-07), a second cuBLAS round,
# decode at batch 1 and 16 (and 16 with QJ_IM_RED=0), batch 8, the dense head's kernel at batch 16 with 2, 4 and 8
# rows a warp (QJ_GEMV_ROWS), decode at batch 16 with the head dense. Run from the repository root with .device prepared
# (scripts/device_prepare.sh, carry [".device"]).
set -uo pipefail
export T0=$(date +%s) BUDGET=${BUDGET:-420}
source scripts/device_env.sh
t built
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
K="./build-gpu/qjit bench --kernels --synthetic examples/configs/llama3-8b-1layer.json --iters 30 --plan int4-g128"
cub() { echo "== b16 with cuBLAS, round $1"; $K --batch 16 > "$out/cublas16_$1.txt" 2>&1
        grep -E "proj|gate|up|ceiling|cuBLAS" "$out/cublas16_$1.txt" | head -12; }
D="./build-gpu/qjit bench --synthetic llama3-8b --device cuda --tokens 256 --plan examples/plans/int4-g128_all.json --batch 16"
{ gpu_tests
  t tests
  cub 1
  t kernels
  left && { ./build-gpu/tests/test_gpu_tail > "$out/tail.log" 2>&1; echo "test_gpu_tail rc=$? $(tail -1 "$out/tail.log")"; }
  left && cub 2
  left && { echo "== decode b16 (and b1)"; $D 2>&1 | grep -E "^decode batch"; }
  left && { echo "== decode b16 QJ_IM_RED=0"; QJ_IM_RED=0 $D 2>&1 | grep -E "^decode batch 16"; }
  left && { echo "== b8"; $K --batch 8 --no-baselines 2>&1 | sed -n '/back-to-back: median/,$p' | grep -E 'proj|gate|up' | head -6; }
  # the plan string leaves the head dense: its bf16 kernel at batch 16 (8.2 ms against cuBLAS's 0.38 in the kernel bench)
  for r in 2 4 8; do left && { echo "== b16 dense head, QJ_GEMV_ROWS=$r"
      QJ_GEMV_ROWS=$r $K --batch 16 --no-baselines 2>&1 | sed -n '/back-to-back: median/,$p' | grep -E 'lm_head' | head -1; }; done
  left && { echo "== decode b16, int4-g128 with a dense head"; ${D/examples\/plans\/int4-g128_all.json/int4-g128} 2>&1 | grep -E "^decode batch"; }
  t done
} 2>&1 | tee "$out/bench.txt"
