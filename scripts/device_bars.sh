#!/usr/bin/env bash
# device_bars.sh — issue 3's bars re-measured with the shipped defaults (the 8 MiB L2 prefetch at batch 1 since
# 7348cfb), one device call per PART (BUDGET seconds, default 540, cuts the tail):
#   PART=1  the GPU tests; the batch-1 kernel bench of int4-g128 with QJ_IM_PF=0 and the default, twice alternating;
#           the other widths at g128 (default); decode at batch 1 of the all-int4 plan and int3/4/5/6-g128 (bf16
#           heads), each with and without every weight launch (QJ_STEP_SKIP=qkv,o,gu,down,head: the step's
#           width-independent time); the batch-16 kernels against cuBLAS bf16
#   PART=2  the other group sizes (32, 64, 256, 512 for every width; int4-g32 first); qjit compile of the 32-layer
#           mixed plan cold and warm; test_gpu_tail
# Full logs in $OUT; the summary in $OUT/bench.txt. Run from the repository root with .device prepared
# (scripts/device_prepare.sh, carry [".device"]).
set -uo pipefail
export T0=$(date +%s) BUDGET=${BUDGET:-540}
source scripts/device_env.sh
find_cublas
t "built; cuBLAS: ${QJ_CUBLAS:-none found}"
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
K="./build-gpu/qjit bench --kernels --synthetic examples/configs/llama3-8b-1layer.json --iters 30"
D="./build-gpu/qjit bench --synthetic llama3-8b --device cuda --tokens 256"
# kern TAG PLAN [VAR=VAL ...] [-- bench args]: one kernel bench, its table rows in the summary
kern() {
  local tag=$1 plan=$2; shift 2
  local envs=() args=()
  while [ $# -gt 0 ]; do
    if [ "$1" = -- ]; then shift; args=("$@"); break; fi
    envs+=("$1"); shift
  done
  echo "== kernels $tag $plan ${envs[*]:-} ${args[*]:-}"
  env "${envs[@]}" $K --plan "$plan" "${args[@]}" > "$out/k_${tag}_$plan.log" 2>&1
  grep -E "copy ceiling|back-to-back|_proj|lm_head|rror" "$out/k_${tag}_$plan.log"
}
dec() {
  local plan=$1; shift
  echo "== decode $plan $*"
  env "$@" $D --plan "$plan" 2>&1 | grep -E "^decode batch|^weights|rror"
}
A=examples/plans/int4-g128_all.json
SKIP=QJ_STEP_SKIP=qkv,o,gu,down,head
{ case ${PART:-1} in
  1)
    gpu_tests
    t tests
    for r in 1 2; do
      left && kern "pf0r$r" int4-g128 QJ_IM_PF=0
      left && kern "defr$r" int4-g128
    done
    t int4
    for p in int3-g128 int5-g128 int6-g128 int8-g128 int2-g128; do left && kern def $p; done
    t widths
    for p in $A int4-g128 int3-g128 int5-g128 int6-g128; do
      left && dec $p
      left && dec $p $SKIP
    done
    t decode
    left && kern b16 int4-g128 -- --batch 16
    t done ;;
  2)
    for g in 32 64 256 512; do
      for b in 4 3 2 5 6 8; do left && kern def int$b-g$g; done
    done
    t groups
    if left; then
      rm -rf /tmp/qjcache_compile
      for run in cold warm; do
        echo "== compile $run"
        QJ_CACHE_DIR=/tmp/qjcache_compile ./build-gpu/qjit compile --synthetic llama3-8b \
          --plan examples/plans/llama3-8b_mixed.json --target cuda -o /tmp/l3.qjp 2>&1 | tail -3
      done
    fi
    left && { ./build-gpu/tests/test_gpu_tail > "$out/tail.log" 2>&1; echo "test_gpu_tail rc=$? $(tail -1 "$out/tail.log")"; }
    t done ;;
  esac
} 2>&1 | tee "$out/bench.txt"
