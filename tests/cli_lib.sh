# cli_lib.sh — helpers the command-line script tests source (not a test itself):
# counters, expect_fail NEEDLE CMD...: a non-zero exit that is not a signal,
# with NEEDLE in the command's stderr; search_test_setup NAME, the search tests'
# common start, and same_history A B.
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

# search_test_setup NAME: Q (the qjit under test), M and TXT (stories260K and the TinyStories
# text under QJ_SHARED) and an empty T ($QJ_TEST_TMP/NAME); skips (77) without them or python3
search_test_setup() {
  Q=${QJIT:?QJIT not set}
  M=${QJ_SHARED:-}/models/stories260K/stories260K.bin
  TXT=${QJ_SHARED:-}/data/tinystories/valid_prefix.txt
  if [ ! -f "$M" ] || [ ! -f "$TXT" ]; then echo "SKIP: stories260K or TinyStories not found (QJ_SHARED)"; exit 77; fi
  command -v python3 >/dev/null || { echo "SKIP: python3 (reads the histories)"; exit 77; }
  T=${QJ_TEST_TMP:-/tmp}/$1
  rm -rf "$T"; mkdir -p "$T"
}

# same_history A B: two search histories hold the same trials (everything but the timings)
same_history() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
def load(p):
    out = []
    for l in open(p):
        d = json.loads(l); d.pop("seconds", None); out.append(d)
    return out
sys.exit(0 if load(sys.argv[1]) == load(sys.argv[2]) else 1)
EOF
}
