#!/usr/bin/env bash
# device_final.sh — on the GPU machine, one call: build, the GPU tests with the
# integer-MMA GEMV's shared-memory ring (QJ_IM_STAGES=4) and without, per-layer
# kernels with the cuBLAS baseline, the better of the two pipelines for the
# other widths and batch 16, and decode. Logs go to $OUT (timestamps in t=).
set -uo pipefail
export QJ_DEVICE_WERROR=${QJ_DEVICE_WERROR:-OFF}
T0=$(date +%s)
source "$(dirname "$0")/device_env.sh"
find_cublas
t "built; cuBLAS: ${QJ_CUBLAS:-none found}"
k() { # k PLAN [VAR=VAL ...]: per-kernel bench, 30 launches each
  echo "== $*"
  env "${@:2}" ./build-gpu/qjit bench --kernels --synthetic llama3-8b --plan "$1" --iters 30 2>&1 |
    grep -E "copy ceiling|cuBLAS|^layers|^lm_head|rror" | tee -a "$out/kernels.log"
}
d() { # d PLAN [VAR=VAL ...]: decode
  env "${@:2}" ./build-gpu/qjit bench --synthetic llama3-8b --plan "$1" --device cuda --tokens 256 2>&1 |
    grep -E "^decode|^weights|rror" | sed "s|^|[$(basename $1) ${*:2}] |" | tee -a "$out/decode.log"
}
QJ_IM_STAGES=4 ./build-gpu/tests/test_gpu_gemv > "$out/gemv_ring.log" 2>&1
t "test_gpu_gemv QJ_IM_STAGES=4 rc=$? $(grep -E 'checked' "$out/gemv_ring.log")"
grep -E "FAIL|rel " "$out/gemv_ring.log" | head -5
./build-gpu/tests/test_gpu_forward > "$out/forward.log" 2>&1
t "test_gpu_forward rc=$? $(tail -1 "$out/forward.log")"
QJ_IM_STAGES=4 ./build-gpu/tests/test_gpu_forward > "$out/forward_ring.log" 2>&1
t "test_gpu_forward QJ_IM_STAGES=4 rc=$? $(tail -1 "$out/forward_ring.log")"
k int4-g128 | tee "$out/k0.txt"
k int4-g128 QJ_IM_STAGES=4 | tee "$out/k4.txt"
k int4-g128 QJ_IM_STAGES=4 QJ_IM_MT=1 | tee "$out/k41.txt"
t "int4 variants done"
gu() { awk '/gate_proj\+up_proj/ {print $7; exit}' "$1"; }
best="" ; bu=$(gu "$out/k0.txt")
for v in "QJ_IM_STAGES=4:k4" "QJ_IM_STAGES=4 QJ_IM_MT=1:k41"; do
  u=$(gu "$out/${v##*:}.txt")
  if awk -v a="$u" -v b="$bu" 'BEGIN{exit !(a < b)}'; then bu=$u; best=${v%%:*}; fi
done
t "fastest int4 gate+up: '${best:-default}' ($bu us)"
d examples/plans/int4-g128_all.json
d examples/plans/int4-g128_all.json $best
d int4-g128 $best
d int3-g128 $best
d int5-g128 $best
d int6-g128 $best
t "decode done"
echo "== int4-g128 batch 16 $best"
env $best ./build-gpu/qjit bench --kernels --synthetic llama3-8b --plan int4-g128 --iters 20 --batch 16 2>&1 |
  grep -E "copy ceiling|cuBLAS|^layers|^lm_head|rror" | tee -a "$out/kernels.log"
t "batch 16 done"
for p in int3-g128 int8-g128 int5-g128; do k $p $best; done
t "all done"
