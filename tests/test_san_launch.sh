#!/usr/bin/env bash
# ctest-labels: unit
# test_san_launch.sh — tests/san_launch.sh, the sanitizer build's test launcher: it runs a test a second time only when
# LeakSanitizer's tracer crashed at exit with nothing reported; a leak report, a sanitizer error, a plain failure and a
# skip keep their exit status and run once.
set -u
source "$(dirname "$0")/cli_lib.sh" # ok, bad
L=$(cd "$(dirname "$0")" && pwd)/san_launch.sh
T=${QJ_TEST_TMP:-/tmp}/test_san_launch
rm -rf "$T"; mkdir -p "$T"
# fake.sh MODE: counts its runs in $T/runs; the first run fails as MODE says, a later one passes
cat > "$T/fake.sh" <<'EOS'
n=$(cat "$T/runs" 2>/dev/null || echo 0); echo $((n+1)) > "$T/runs"
[ "$n" -gt 0 ] && { echo "5 passed, 0 failed"; exit 0; }
case $1 in
  tracer) echo "5 passed, 0 failed"; echo "Tracer caught signal 11: addr=0xc68 pc=0x1 sp=0x2" >&2
          echo "==1==LeakSanitizer has encountered a fatal error." >&2; exit 1 ;;
  leak)   echo "==1==ERROR: LeakSanitizer: detected memory leaks" >&2
          echo "==1==LeakSanitizer has encountered a fatal error." >&2; exit 1 ;;
  asan)   echo "==1==ERROR: AddressSanitizer: heap-buffer-overflow" >&2
          echo "==1==LeakSanitizer has encountered a fatal error." >&2; exit 1 ;;
  ubsan)  echo "x.c:1:2: runtime error: signed integer overflow" >&2
          echo "==1==LeakSanitizer has encountered a fatal error." >&2; exit 1 ;;
  fail)   echo "FAIL: something" >&2; exit 1 ;;
  skip)   echo "SKIP: no GPU"; exit 77 ;;
esac
EOS
export T
# case MODE WANT_RC WANT_RUNS
check() {
  rm -f "$T/runs"
  out=$(bash "$L" bash "$T/fake.sh" "$1" 2>&1); rc=$?
  runs=$(cat "$T/runs")
  [ "$rc" -eq "$2" ] && [ "$runs" -eq "$3" ] && ok || bad "$1: exit $rc after $runs runs (wanted $2 after $3): $out"
  case "$out" in *"running the test once more: bash $T/fake.sh"*) again=1 ;; *) again=0 ;; esac
  [ "$again" -eq $(($3 - 1)) ] && ok || bad "$1: the retry line is $([ $again -eq 1 ] && echo there || echo missing): $out"
  case "$out" in *"5 passed"*|*FAIL*|*SKIP*|*ERROR*|*"runtime error"*) ok ;; *) bad "$1: the test's own output is lost: $out" ;; esac
}
check tracer 0 2
check leak 1 1
check asan 1 1
check ubsan 1 1
check fail 1 1
check skip 77 1
# the output keeps its streams: stdout on stdout, stderr on stderr
rm -f "$T/runs"
o=$(bash "$L" bash "$T/fake.sh" fail 2>/dev/null)
[ -z "$o" ] && ok || bad "stderr came out on stdout: $o"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
