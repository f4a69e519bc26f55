#!/usr/bin/env bash
# ctest-labels: unit gpu
# test_trace.sh — the step trace (QJ_TRACE, docs/KERNELS.md "Tracing a step"): scripts/trace_step.py
# splits a synthetic trace of two steps into its launches and names them (everywhere); on a machine
# with a GPU, qjit bench writes a real trace of stories260K and the script reads eight whole steps.
set -u
command -v python3 >/dev/null || { echo "SKIP: python3 (runs scripts/trace_step.py)"; exit 77; }
source "$(dirname "$0")/cli_lib.sh" # ok, bad, expect_fail NEEDLE CMD...
TS=$(dirname "$0")/../scripts/trace_step.py
T=${QJ_TEST_TMP:-/tmp}/test_trace
rm -rf "$T"; mkdir -p "$T"
# two steps of a two-layer model: embed, (norm, q|k|v, attention, o, norm, gate|up, SwiGLU, down) x 2, norm, head;
# 5 us a launch; the embedding and RMSNorm have one block of one module, as for a small model
python3 - "$T/syn.txt" <<'PY'
import sys
mods = ["qj_imv2_b4_g128_n6144_k4096_bt1_x", "qj_imv2_b4_g128_n4096_k4096_bt1_x", "qj_imv2_b4_g128_n28672_k4096_bt1_x",
        "qj_imv2_b4_g128_n4096_k14336_bt1_x", "qj_imv2_b4_g128_n128256_k4096_bt1_x", "qj_ops3_s264_p3_a8"]
out = ["# qjit trace\n"] + ["# module %d %s\n" % (j, m) for j, m in enumerate(mods)]
seq = [(5, 1, 256)]
for l in range(2):
    seq += [(5, 1, 256), (0, 384, 256), (5, 64, 256), (1, 256, 512), (5, 1, 256), (2, 896, 128), (5, 1, 256), (3, 256, 256)]
seq += [(5, 1, 256), (4, 1000, 32)]
t = 10**6
for m, g, th in seq * 2:
    out += ["%d %d %d %d %d %d\n" % (t - 900, t + b % 7, m, g, th, b % 132) for b in range(g)]
    t += 5000
open(sys.argv[1], "w").writelines(out)
PY
r=$(python3 "$TS" "$T/syn.txt" 2>&1)
for want in "38 launches" "0 launches with a block count unlike their grid; 2 steps traced" \
            "rmsnorm  *10 " "attention  *4 " "swiglu  *4 " "embed  *2 " "matmul 28672x4096  *4 " "0.092 ms a step"; do
  if echo "$r" | grep -Eq "$want"; then ok; else bad "synthetic trace: no '$want' in: $r"; fi
done
# the same two steps with tails (the kind column; o_proj and down_proj do the RMSNorm after them, gate|up SwiGLU):
# embed, norm, (q|k|v, attention, o+norm, gate|up+swiglu, down+norm) x 2, head
python3 - "$T/tail.txt" <<'PY'
import sys
mods = ["qj_imv7_b4_g128_n6144_k4096_bt1_m1w8u1s4x", "qj_imv7_b4_g128_n4096_k4096_bt1_m2w16u2s0_tn2p1e3727c5ac",
        "qj_imv7_b4_g128_n28672_k4096_bt1_m2w4u1s4_tsp1", "qj_imv7_b4_g128_n4096_k14336_bt1_m1w8u1s4x_tn2p1e3727c5ac",
        "qj_imv7_b4_g128_n128256_k4096_bt1_x", "qj_ops3_s264_p3_a8"]
out = ["# qjit trace\n"] + ["# module %d %s\n" % (j, m) for j, m in enumerate(mods)]
seq = [(5, 1, 256, 1), (5, 32, 256, 2)]
for l in range(2):
    seq += [(0, 384, 256, 0), (5, 64, 256, 3), (1, 128, 512, 0), (2, 448, 128, 0), (3, 256, 256, 0)]
seq += [(4, 1000, 32, 0)]
t = 10**6
for m, g, th, k in seq * 2:
    out += ["%d %d %d %d %d %d %d\n" % (t - 900, t + b % 7, m, g, th, b % 132, k) for b in range(g)]
    t += 5000
open(sys.argv[1], "w").writelines(out)
PY
r=$(python3 "$TS" "$T/tail.txt" 2>&1)
for want in "26 launches" "0 launches with a block count unlike their grid; 2 steps traced" "rmsnorm  *2 " \
            "attention  *4 " "embed  *2 " "matmul 4096x4096 \+rmsnorm  *4 " "matmul 28672x4096 \+swiglu  *4 " \
            "matmul 4096x14336 \+rmsnorm  *4 " "0.062 ms a step"; do
  if echo "$r" | grep -Eq "$want"; then ok; else bad "synthetic trace with tails: no '$want' in: $r"; fi
done
if echo "$r" | grep -Eq "^swiglu "; then bad "a SwiGLU launch named where there is none: $r"; else ok; fi
: > "$T/empty.txt"
expect_fail "no block events" python3 "$TS" "$T/empty.txt"
# a real trace: needs a GPU, stories260K (QJ_SHARED) and qjit
Q=${QJIT:-}
M=${QJ_SHARED:-}/models/stories260K/stories260K.bin
if [ -n "$Q" ] && [ -f "$M" ]; then
  out=$(QJ_FUSE_TAIL=1 QJ_TRACE="$T/real.txt" "$Q" bench --model "$M" --plan int4-g32 --device cuda --tokens 8 2>&1); rc=$?
  if [ $rc -ne 0 ] && echo "$out" | grep -qiE "no NVIDIA driver|no CUDA device|no usable NVIDIA GPU"; then
    echo "no GPU here: the real trace is not taken ($out)" | head -2
  elif [ $rc -ne 0 ]; then
    bad "QJ_TRACE bench failed ($rc): $out"
  else
    r=$(python3 "$TS" "$T/real.txt" 2>&1)
    # stories260K: 5 layers; with tails (QJ_FUSE_TAIL=1) every RMSNorm but the first and every SwiGLU are done by
    # the matmuls before them, so a step has one RMSNorm launch and 5 attentions
    for want in "0 launches with a block count unlike their grid; 8 steps traced" "rmsnorm  *8 " "attention  *40 " \
                "^matmul 64x64 \+rmsnorm( \(grid [0-9]+\))? +40 " "^matmul 64x172 \+rmsnorm( \(grid [0-9]+\))? +40 " \
                "^matmul 344x64 \+swiglu( \(grid [0-9]+\))? +40 "; do
      if echo "$r" | grep -Eq "$want"; then ok; else bad "real trace: no '$want' in: $r"; fi
    done
  fi
  # without tails (the default; set, so that a caller's QJ_FUSE_TAIL does not leak in): 11 RMSNorms and 5 SwiGLUs a step
  out=$(QJ_FUSE_TAIL=0 QJ_TRACE="$T/real0.txt" "$Q" bench --model "$M" --plan int4-g32 --device cuda --tokens 8 2>&1); rc=$?
  if [ $rc -eq 0 ]; then
    r=$(python3 "$TS" "$T/real0.txt" 2>&1)
    for want in "8 steps traced" "rmsnorm  *88 " "swiglu  *40 " "attention  *40 "; do
      if echo "$r" | grep -Eq "$want"; then ok; else bad "real trace without tails: no '$want' in: $r"; fi
    done
  fi
else
  echo "no qjit or stories260K: the real trace is not taken"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
