#!/usr/bin/env bash
# ctest-labels: unit llvm
# test_cpu_resident.sh — bench/cpu_resident.c (qj_cpu_resident, beside qjit in the build): bad
# arguments get the usage or a message naming what was expected and a non-zero exit, no crash;
# a small layer runs and prints its time.
set -u
Q=${QJIT:?QJIT not set}
R=$(dirname "$Q")/qj_cpu_resident
[ -x "$R" ] || { echo "SKIP: $R not built"; exit 77; }
source "$(dirname "$0")/cli_lib.sh" # ok, bad, expect_fail NEEDLE CMD...
expect_fail "usage:" "$R"
expect_fail "usage:" "$R" 4 128 64
expect_fail "BITS 2..8" "$R" 9 128 64 256
expect_fail "multiple of 32" "$R" 4 48 64 256
expect_fail "N, K >= 1" "$R" 4 128 0 256
expect_fail "N, K >= 1" "$R" 4 128 abc 256
expect_fail "ITERS >= 1" "$R" 4 128 64 256 0
out=$("$R" 4 128 64 256 2 2>&1); rc=$?
if [ $rc -eq 0 ]; then
  case "$out" in *"one thread: best"*) ok ;; *) bad "no timing line: $out" ;; esac
elif echo "$out" | grep -qi "llvm"; then
  echo "no LLVM kernels here: the good run is not checked ($out)"
else
  bad "a small layer failed ($rc): $out"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
