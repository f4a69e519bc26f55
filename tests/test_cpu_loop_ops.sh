#!/usr/bin/env bash
# ctest-labels: unit
# test_cpu_loop_ops.sh — scripts/cpu_loop_ops.py (docs/PERFORMANCE.md, "what the 2- and 3-bit kernels cost in vector
# operations"): on a made-up loop it counts the vector ops of the loop with the most vpdpbusd, leaving out loads,
# prefetches and zeroing idioms but not a xor of two registers, and derives the bytes of codes; an assembly without
# such a loop is refused; on a real 2-bit kernel (where this host has the integer kernels) it finds the loop.
set -u
command -v python3 >/dev/null || { echo "SKIP: python3 (runs scripts/cpu_loop_ops.py)"; exit 77; }
source "$(dirname "$0")/cli_lib.sh" # ok, bad, expect_fail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
S=$ROOT/scripts/cpu_loop_ops.py
T=${QJ_TEST_TMP:-/tmp}/test_cpu_loop_ops
rm -rf "$T"; mkdir -p "$T"
cat > "$T/a.s" <<'EOS'
.LBB0_1:
	vpdpbusd	%zmm1, %zmm2, %zmm3
	jne	.LBB0_1
.LBB0_2:
	prefetcht0	-192(%r14,%r12,8)
	vmovdqu64	-2688(%r9,%r15), %zmm20
	vpxord	%xmm25, %xmm25, %xmm25
	vpxord	%zmm1, %zmm2, %zmm3
	vpsrld	$2, %zmm0, %zmm24
	vpandd	%zmm5, %zmm0, %zmm6
	vpdpbusd	%zmm16, %zmm6, %zmm25
	vpdpbusd	%zmm17, %zmm26, %zmm25
	vpdpbusd	%zmm16, %zmm6, %zmm24
	vpdpbusd	%zmm17, %zmm26, %zmm24
	addq	$64, %r15
	jne	.LBB0_2
EOS
# four dot products, two digits, four planes in a 64-byte vector (2-bit): half a vector, 32 bytes
out=$(python3 "$S" "$T/a.s" 2 2)
case "$out" in *"4 vpdpbusd, 32 bytes of codes"*) ok ;; *) bad "2-bit, 2 digits: not 32 bytes: $out" ;; esac
# 8 bits: one plane a vector, 2 vectors = 128 bytes
out=$(python3 "$S" "$T/a.s" 8 2)
case "$out" in *"4 vpdpbusd, 128 bytes of codes"*) ok ;; *) bad "8-bit, 2 digits: not 4 dot products over 128 bytes: $out" ;; esac
# counted: 4 vpdpbusd, the xor of different registers, the shift, the and = 7; not the load, prefetch or zeroing
case "$out" in *"vector ops (no loads, no zeroing): 7 = 0.055 a byte"*) ok ;; *) bad "not 7 ops (0.055 a byte): $out" ;; esac
out=$(python3 "$S" "$T/a.s" 3 1)
case "$out" in *"4 vpdpbusd, 96 bytes of codes"*) ok ;; *) bad "3-bit, 1 digit: not 96 bytes (4 x 24): $out" ;; esac
printf '.LBB0_1:\n\tvpaddd\t%%zmm1, %%zmm2, %%zmm3\n\tjne\t.LBB0_1\n' > "$T/none.s"
expect_fail "has no loop with vpdpbusd" python3 "$S" "$T/none.s" 2 2
expect_fail "usage" python3 "$S" "$T/a.s"
expect_fail "BITS is 2..8 and DIGITS 1..3" python3 "$S" "$T/a.s" 9 2
# a real kernel, where this host runs the integer kernels (AVX-512 VNNI)
R=$(dirname "${QJIT:-$ROOT/build/qjit}")/qj_cpu_resident
if [ -x "$R" ] && grep -q avx512_vnni /proc/cpuinfo 2>/dev/null; then
  QJ_LLVM_DUMP=1 "$R" 2 128 256 4096 1 2> "$T/k.s" >/dev/null
  out=$(python3 "$S" "$T/k.s" 2 2)
  case "$out" in *"vector ops (no loads, no zeroing): "*" a byte of codes"*) ok ;; *) bad "a real 2-bit kernel: $out" ;; esac
else
  echo "(no integer kernels on this host: the real-kernel part not run)"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
