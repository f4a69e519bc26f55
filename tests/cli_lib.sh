# cli_lib.sh — helpers the command-line script tests source (not a test itself):
# counters, and expect_fail NEEDLE CMD...: a non-zero exit that is not a signal,
# with NEEDLE in the command's stderr.
pass=0; fail=0
ok()   { pass=$((pass+1)); }
bad()  { fail=$((fail+1)); echo "FAIL: $*" >&2; }
expect_fail() {
  local needle=$1; shift
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  if [ $rc -eq 0 ]; then bad "succeeded: $*"; return; fi
  if [ $rc -ge 128 ]; then bad "crashed ($rc): $*"; return; fi
  case "$err" in *"$needle"*) ok ;; *) bad "message for '$*' lacks '$needle': $err" ;; esac
}
