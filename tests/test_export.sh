#!/usr/bin/env bash
# ctest-labels: unit llvm
# test_export.sh — qjit export and examples/generate_app on the real
# stories260K: compile with the mixed plan and CPU code, export, build the
# example application against the export with the system C compiler (and as
# C++), run it without the package, LLVM or NVRTC, and check that it prints
# the same token ids and text as `qjit generate` (greedy and sampled). Also:
# the public header compiles as C and C++; exporting needs CPU code, a new
# directory, and code for this architecture (other code is refused at build
# time). Skips (77) without LLVM, ../shared or a C compiler.
set -u
Q=${QJIT:?QJIT not set}
S=${QJ_SHARED:-}
SRC=${QJ_SOURCE:-$(dirname "$0")/..}
T=${QJ_TEST_TMP:-/tmp}/export
M=$S/models/stories260K/stories260K.bin
CC=${CC:-cc}
CXX=${CXX:-g++}
[ -f "$M" ] || { echo "SKIP: stories260K not in QJ_SHARED"; exit 77; }
command -v "$CC" >/dev/null || { echo "SKIP: no C compiler ($CC)"; exit 77; }
rm -rf "$T"; mkdir -p "$T"
pass=0; fail=0
ok()  { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*" >&2; }
has() { case "$1" in *"$2"*) ok ;; *) bad "$3: lacks '$2' in: $1" ;; esac; }

if ! "$Q" compile --model "$M" --plan "$SRC/examples/plans/stories260K_mixed.json" --target cpu -o "$T/stories.qjp" \
    > "$T/compile.out" 2>&1; then
  if grep -q "without LLVM" "$T/compile.out"; then echo "SKIP: built without LLVM"; exit 77; fi
  cat "$T/compile.out"; exit 1
fi
grep -q "cpu code" "$T/compile.out" || { echo "SKIP: this qjit stores no CPU code (no LLVM)"; exit 77; }

# the public header on its own, strict, as C and as C++
printf '#include "qjit_embed.h"\nint main(void) { qjit_generate_params p = qjit_generate_default_params(); return p.steps == 256 ? 0 : 1; }\n' > "$T/hdr.c"
for std in c99 c11; do
  "$CC" -std=$std -Wall -Wextra -pedantic -Werror -I"$SRC/runtime" -fsyntax-only -x c "$T/hdr.c" && ok || bad "qjit_embed.h as $std"
done
if command -v "$CXX" >/dev/null; then
  for std in c++11 c++17; do
    "$CXX" -std=$std -Wall -Wextra -pedantic -Werror -I"$SRC/runtime" -fsyntax-only -x c++ "$T/hdr.c" && ok || bad "qjit_embed.h as $std"
  done
fi

# export
E=$T/stories_export
out=$("$Q" export --model "$T/stories.qjp" -o "$E" 2>&1) || bad "export: $out"
has "$out" "16 CPU kernels for x86_64" "export output"
for f in qjit_embed.h qjit_export.h stories.c stories_cpu.o libqjit_embed.a qjit_export.mk README.txt; do
  [ -s "$E/$f" ] && ok || bad "export lacks $f"
done
cmp -s "$E/qjit_embed.h" "$SRC/runtime/qjit_embed.h" && ok || bad "exported qjit_embed.h differs from runtime/qjit_embed.h"
# the runtime an export links is built for the x86-64 baseline (no AVX/AVX-512 registers), not this machine
if [ "$(uname -m)" = x86_64 ] && command -v objdump >/dev/null; then
  n=$(objdump -d "$E/libqjit_embed.a" | grep -cE '%[yz]mm[0-9]')
  [ "$n" -eq 0 ] && ok || bad "libqjit_embed.a uses $n AVX/AVX-512 register instructions"
fi
err=$("$Q" export --model "$T/stories.qjp" -o "$E" 2>&1); rc=$?
[ $rc -ne 0 ] && ok || bad "export over an existing directory succeeded"
has "$err" "already exists" "existing directory"
"$Q" compile --model "$M" --plan "$SRC/examples/plans/stories260K_mixed.json" -o "$T/nocode.qjp" >/dev/null 2>&1
err=$("$Q" export --model "$T/nocode.qjp" -o "$T/nocode_export" 2>&1); rc=$?
[ $rc -ne 0 ] && [ $rc -lt 128 ] && ok || bad "export without CPU code: rc $rc"
has "$err" "nocode.qjp: the package carries no CPU code" "export without CPU code"
if ls -d "$T"/nocode_export* >/dev/null 2>&1; then bad "failed export left $(ls -d "$T"/nocode_export*)"; else ok; fi

# build the example with the system compiler, the way qjit_export.mk says
mkv() { sed -n "s/^$1 = //p" "$E/qjit_export.mk" | sed "s|\$(QJIT_EXPORT_DIR)|$E|g"; }
CFLAGS_E=$(mkv QJIT_CFLAGS); SOURCES=$(mkv QJIT_SOURCES); OBJECTS=$(mkv QJIT_OBJECTS); LIBS=$(mkv QJIT_LIBS)
[ -n "$SOURCES" ] && [ -n "$OBJECTS" ] && [ -n "$LIBS" ] && ok || bad "qjit_export.mk lacks variables"
# shellcheck disable=SC2086
"$CC" -std=c11 -O2 -Wall -Wextra -Werror $CFLAGS_E -o "$T/generate_app" "$SRC/examples/generate_app/main.c" $SOURCES $OBJECTS $LIBS \
  2> "$T/build.err" && ok || { bad "building generate_app: $(cat "$T/build.err")"; }
if command -v "$CXX" >/dev/null; then
  "$CC" -std=c11 -O2 -c $CFLAGS_E -o "$T/stories.o" $SOURCES || bad "compiling the export's C source"
  # shellcheck disable=SC2086
  "$CXX" -std=c++11 -O2 -Wall -Wextra -Werror $CFLAGS_E -x c++ "$SRC/examples/generate_app/main.c" -x none \
    -o "$T/generate_app_cxx" "$T/stories.o" $OBJECTS $LIBS 2> "$T/buildxx.err" && ok || bad "building as C++: $(cat "$T/buildxx.err")"
fi
[ -x "$T/generate_app" ] || { echo "test_export: $pass passed, $fail failed (no app)"; exit 1; }
if command -v ldd >/dev/null; then
  libs=$(ldd "$T/generate_app")
  case "$libs" in *LLVM*|*nvrtc*|*libcuda*) bad "generate_app links $libs" ;; *) ok ;; esac
fi

# the same tokens as qjit generate; the app runs with the package gone
run_both() { # args: options shared by both
  local what="$*"
  "$Q" generate --model "$T/stories.qjp" "$@" --print-ids > "$T/q.ids" 2>/dev/null || bad "qjit generate $*"
  "$Q" generate --model "$T/stories.qjp" "$@" > "$T/q.txt" 2>/dev/null || bad "qjit generate $*"
  local args=() a
  while [ $# -gt 0 ]; do a=$1; shift; [ "$a" = --sample-seed ] && a=--seed; args+=("$a"); done
  mv "$T/stories.qjp" "$T/stories.moved"
  "$T/generate_app" "${args[@]}" --print-ids > "$T/a.ids" 2> "$T/a.err" || bad "generate_app: $(cat "$T/a.err")"
  "$T/generate_app" "${args[@]}" > "$T/a.txt" 2>/dev/null || bad "generate_app (text)"
  [ -x "$T/generate_app_cxx" ] && { "$T/generate_app_cxx" "${args[@]}" --print-ids > "$T/x.ids" 2>/dev/null || bad "C++ app"; }
  mv "$T/stories.moved" "$T/stories.qjp"
  local n; n=$(wc -w < "$T/q.ids")
  [ "$n" -gt 20 ] && ok || bad "qjit generate produced only $n ids"
  cmp -s "$T/q.ids" "$T/a.ids" && ok || bad "token ids differ ($what): qjit $(cat "$T/q.ids") / app $(cat "$T/a.ids")"
  cmp -s "$T/q.txt" "$T/a.txt" && ok || bad "text differs ($what)"
  [ ! -x "$T/generate_app_cxx" ] || cmp -s "$T/q.ids" "$T/x.ids" && ok || bad "C++ app ids differ ($what)"
  echo "$what -> $n ids: $(head -c 100 "$T/a.txt")"
}
run_both --prompt "Once upon a time" --steps 120 --temperature 0
run_both --prompt "The dog" --steps 200 --temperature 0.8 --top-p 0.9 --sample-seed 7
"$T/generate_app" --info --steps 2 2> "$T/info.err" >/dev/null
has "$(cat "$T/info.err")" "CPU code" "--info"

# CPU code for another architecture: not exported by default; exported on request, it refuses to build here
"$Q" compile --model "$M" --plan "$SRC/examples/plans/stories260K_mixed.json" --target cpu \
  --cpu-arch aarch64-unknown-linux-gnu:generic -o "$T/arm.qjp" >/dev/null 2>&1 || bad "compile for aarch64"
err=$("$Q" export --model "$T/arm.qjp" -o "$T/arm_export" 2>&1); rc=$?
[ $rc -ne 0 ] && ok || bad "export of aarch64-only code succeeded"
has "$err" "arm.qjp: none of its CPU code runs on this machine" "foreign export"
"$Q" export --model "$T/arm.qjp" -o "$T/arm_export" --cpu generic >/dev/null 2>&1 || bad "export --cpu generic"
err=$("$CC" -c -I"$T/arm_export" -o "$T/arm.o" "$T/arm_export/arm.c" 2>&1); rc=$?
if [ "$(uname -m)" != aarch64 ]; then
  [ $rc -ne 0 ] && ok || bad "aarch64 export compiled on $(uname -m)"
  has "$err" "arm_cpu.o holds aarch64-unknown-linux-gnu code" "foreign export build error"
fi

echo "test_export: $pass passed, $fail failed"
[ $fail -eq 0 ]
