#!/usr/bin/env bash
# ctest-labels: unit llvm
# test_cpu_bar.sh — scripts/cpu_bar.sh (issue 4's CPU bar in one command, docs/PERFORMANCE.md) on a small synthetic
# model: two rounds of one plan (no more: the 1.2 GB ceiling passes are slow under ASan) and one decode run give a
# summary with the plan's row of seven "median (min–max)" cells, the lowest median, a row per round with the in-cache
# rate and its rows under 70%, and the decode's ratio against fp32; quiet off a terminal, a progress line on one
# (script(1)); a plan the bench refuses, or a probe that fails, stops it with the message; no OUTDIR is a usage error.
set -u
command -v python3 >/dev/null || { echo "SKIP: python3 (cpu_bar.sh summarises with it)"; exit 77; }
source "$(dirname "$0")/cli_lib.sh" # ok, bad, expect_fail
Q=${QJIT:?QJIT not set}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=${QJ_TEST_TMP:-/tmp}/test_cpu_bar
rm -rf "$T"; mkdir -p "$T"
if ! "$Q" bench --kernels --device cpu --synthetic tiny --plan int4-g32 --iters 5 >/dev/null 2>&1; then
  echo "SKIP: no LLVM CPU kernels in this build (bench --kernels --device cpu fails)"; exit 77
fi
cd "$ROOT"
run() { env QJIT="$Q" ROUNDS=2 ITERS=5 DECODE=1 CFG=tiny DPLAN=int4-g32 PROBE="2 128 64 4096 3" "$@"; }
if run PLANS="int2-g32" bash scripts/cpu_bar.sh "$T/bar" >"$T/out" 2>"$T/err"; then ok; else bad "cpu_bar.sh failed: $(cat "$T/err")"; fi
S=$T/bar/summary.md
cmp -s "$T/out" "$S" && ok || bad "stdout is not the summary"
n=$(grep -cE '^\| int2-g32 \|( [0-9]+ \([0-9]+–[0-9]+\) \|){7} [0-9.]+–[0-9.]+ \| [0-9.]+–[0-9.]+ \|$' "$S")
[ "$n" = 1 ] && ok || bad "$n of 1 plan row: $(cat "$S")"
grep -qE '^lowest median: [0-9.]+% \(int2-g32 [a-z]+_proj\)$' "$S" && ok || bad "no lowest median: $(cat "$S")"
n=$(grep -cE '^\| [12] \| [0-9.]+ \| [0-9]+ of 7 \| [0-9.]+% \(int2-g32 [a-z]+_proj\) \|$' "$S")
[ "$n" = 2 ] && ok || bad "$n of 2 round rows: $(cat "$S")"
grep -qE '^decode run 1: [0-9.]+ tokens/s, the fp32 reference [0-9.]+: [0-9.]+x$' "$S" && ok || bad "no decode line: $(cat "$S")"
[ ! -s "$T/err" ] && ok || bad "not quiet off a terminal: $(cat "$T/err")"
# on a terminal: a progress line (runs done, their rate, the time left)
if command -v script >/dev/null; then
  tty_out=$(run ROUNDS=1 DECODE=0 PLANS=int2-g32 script -qec "bash scripts/cpu_bar.sh $T/tty" /dev/null 2>&1)
  case "$tty_out" in *"cpu_bar.sh: 1 of 1 bench runs, "*" a minute, about "*" left"*) ok ;; *) bad "no progress line on a terminal: $tty_out" ;; esac
else
  echo "(no script(1): the terminal's progress line not checked)"
fi
expect_fail "cpu_bar.sh: the bench of int9-g32 failed (round 1)" run PLANS=int9-g32 bash scripts/cpu_bar.sh "$T/bad"
expect_fail "qj_cpu_resident 2 128 64 4096 0 failed" run PLANS=int4-g32 PROBE="2 128 64 4096 0" bash scripts/cpu_bar.sh "$T/bad2"
expect_fail "usage: scripts/cpu_bar.sh OUTDIR" bash scripts/cpu_bar.sh
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
