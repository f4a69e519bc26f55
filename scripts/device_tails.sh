#!/usr/bin/env bash
# device_tails.sh — on the GPU machine: the tails (QJ_FUSE_TAIL=1: RMSNorm and SwiGLU done by the matmuls before
# them, docs/KERNELS.md) checked against the CPU reference, then Llama-3-8B decode with and without them, and a
# step trace with them. Logs in $OUT. Run: bash scripts/device_tails.sh (carry .device, scripts/device_prepare.sh)
set -uo pipefail
T0=$(date +%s)
BUDGET=${BUDGET:-480}
source scripts/device_env.sh
t built
./build-gpu/tests/test_gpu_forward > "$out/forward.log" 2>&1; echo "test_gpu_forward rc=$? $(tail -1 "$out/forward.log")"
grep -E "FAIL|check failed|tails" "$out/forward.log" | head -12
t forward
d() { ./build-gpu/qjit bench --synthetic llama3-8b --plan "$1" --device cuda --tokens 256 2>&1 | tee -a "$out/decode_full.log" |
      sed -nE "s|^decode batch 1: ([0-9.]+) tokens/s \(([0-9.]+) ms/token\).*|[$(basename $1) ${2:-}] \1 tok/s \2 ms|p; /rror/p" | head -3; }
A=examples/plans/int4-g128_all.json
for r in 1 2; do QJ_FUSE_TAIL=1 d $A tails; d $A; done
t decodeA
QJ_FUSE_TAIL=1 d int4-g128 tails; d int4-g128
for p in int3-g128 int5-g128 int6-g128; do left && QJ_FUSE_TAIL=1 d $p tails; left && d $p; done
t decode
if left; then QJIT=$PWD/build-gpu/qjit bash tests/test_trace.sh > "$out/trace_test.log" 2>&1
  echo "test_trace rc=$? $(tail -1 "$out/trace_test.log")"; grep FAIL "$out/trace_test.log" | cut -c1-600 | head -3; fi
if left; then QJ_FUSE_TAIL=1 QJ_TRACE=$out/trace_tails.txt ./build-gpu/qjit bench --synthetic llama3-8b --plan $A --device cuda \
  --tokens 64 > "$out/trace_run.log" 2>&1
  python3 scripts/trace_step.py $out/trace_tails.txt > "$out/trace_tails.log" 2>&1; cut -c1-100 "$out/trace_tails.log"; fi
t end
