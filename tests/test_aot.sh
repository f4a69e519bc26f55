#!/usr/bin/env bash
# ctest-labels: unit llvm
# test_aot.sh — ahead-of-time CPU code in packages, on the real stories260K with
# the mixed plan: `compile --target cpu` stores object code; loading links it
# (nothing compiled) and gives exactly the JIT kernels' perplexity; code for
# another architecture is refused with --cpu-code=require and re-JIT-ed with a
# one-line note otherwise; a package without CPU code JITs as before (require
# refuses it); a package of a newer format version is refused naming the file;
# a bad --cpu-arch leaves no file. Skips (77) without LLVM or ../shared.
set -u
Q=${QJIT:?QJIT not set}
S=${QJ_SHARED:-}
SRC=${QJ_SOURCE:-$(dirname "$0")/..}
T=${QJ_TEST_TMP:-/tmp}/aot
M=$S/models/stories260K/stories260K.bin
TXT=$S/data/tinystories/valid_prefix.txt
[ -f "$M" ] && [ -f "$TXT" ] || { echo "SKIP: stories260K or TinyStories not in QJ_SHARED"; exit 77; }
"$Q" compile --help | grep -q -- "--cpu-arch" || { echo "SKIP: no --cpu-arch"; exit 77; }
rm -rf "$T"; mkdir -p "$T"
pass=0; fail=0
ok()  { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*" >&2; }
has() { case "$1" in *"$2"*) ok ;; *) bad "$3: lacks '$2' in: $1" ;; esac; }
nll() { sed -n 's/.*"nll":\([^,]*\),.*/\1/p' "$1"; }
PLAN=$SRC/examples/plans/stories260K_mixed.json
EV=(eval --text "$TXT" --max-tokens 3000 --ctx 256 --json)

if ! "$Q" compile --model "$M" --plan "$PLAN" --target cpu -o "$T/host.qjp" > "$T/compile.out" 2>&1; then
  if grep -q "without LLVM" "$T/compile.out"; then echo "SKIP: built without LLVM"; exit 77; fi
  cat "$T/compile.out"; exit 1
fi
has "$(cat "$T/compile.out")" "cpu code: 16 kernels for" "compile output"

# linked from the package vs JIT-compiled vs the reference
"$Q" "${EV[@]}" --model "$T/host.qjp" > "$T/aot.json" 2> "$T/aot.err" || bad "eval (package code)"
"$Q" "${EV[@]}" --model "$T/host.qjp" --cpu-code require > "$T/req.json" 2> "$T/req.err" || bad "eval --cpu-code require"
"$Q" "${EV[@]}" --model "$T/host.qjp" --cpu-code jit > "$T/jit.json" 2> "$T/jit.err" || bad "eval --cpu-code jit"
QJ_CPU_KERNELS=reference "$Q" "${EV[@]}" --model "$T/host.qjp" > "$T/ref.json" 2>/dev/null || bad "eval reference"
a=$(nll "$T/aot.json"); r=$(nll "$T/req.json"); j=$(nll "$T/jit.json"); ref=$(nll "$T/ref.json")
echo "NLL: package code $a, require $r, JIT $j, reference $ref"
[ -n "$a" ] && [ "$a" = "$j" ] && ok || bad "package-code NLL $a != JIT NLL $j"
[ "$a" = "$r" ] && ok || bad "require NLL $r != $a"
python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); sys.exit(0 if abs(a-b)/b < 1e-4 else 1)" "$a" "$ref" \
  && ok || bad "package-code NLL $a vs reference $ref"
"$Q" eval --text "$TXT" --max-tokens 300 --model "$T/host.qjp" 2> "$T/aot.log" >/dev/null
has "$(cat "$T/aot.log")" "from the package" "load message"
has "$(cat "$T/aot.log")" "linked, nothing compiled" "load message"
"$Q" eval --text "$TXT" --max-tokens 300 --model "$T/host.qjp" --cpu-code jit 2> "$T/jit.log" >/dev/null
has "$(cat "$T/jit.log")" "JIT-compiled" "--cpu-code jit message"
grep "^cpu:" "$T/aot.log" "$T/jit.log"

# generate: the same text from the package's code and from the JIT
g1=$("$Q" generate --model "$T/host.qjp" --steps 60 --temperature 0.8 --sample-seed 7 2>/dev/null)
g2=$("$Q" generate --model "$T/host.qjp" --steps 60 --temperature 0.8 --sample-seed 7 --cpu-code jit 2>/dev/null)
[ -n "$g1" ] && [ "$g1" = "$g2" ] && ok || bad "generate differs: '$g1' vs '$g2'"

# code for another architecture (really compiled for it): refused with require, re-JIT-ed otherwise
"$Q" compile --model "$M" --plan "$PLAN" --target cpu --cpu-arch aarch64-unknown-linux-gnu:generic -o "$T/arm.qjp" \
  > "$T/arm.out" 2>&1 || bad "compile for aarch64: $(cat "$T/arm.out")"
has "$(cat "$T/arm.out")" "aarch64-unknown-linux-gnu generic" "aarch64 compile output"
err=$("$Q" "${EV[@]}" --model "$T/arm.qjp" --cpu-code=require 2>&1 >/dev/null); rc=$?
[ $rc -ne 0 ] && [ $rc -lt 128 ] && ok || bad "require on foreign code: rc $rc"
has "$err" "arm.qjp: cpu_code: none of its 1 CPU code entries runs here" "require message"
has "$err" "built for aarch64-unknown-linux-gnu" "require message"
has "$err" "expected code for x86_64" "require message"
"$Q" "${EV[@]}" --model "$T/arm.qjp" > "$T/arm.json" 2> "$T/arm.err" || bad "eval of the aarch64 package"
note=$(cat "$T/arm.err")
has "$note" "the package's CPU code does not run here (built for aarch64-unknown-linux-gnu" "re-JIT note"
has "$note" "compiling the kernels with LLVM instead" "re-JIT note"
[ "$(grep -c . "$T/arm.err")" = 1 ] && ok || bad "re-JIT note is not one line: $note"
[ "$(nll "$T/arm.json")" = "$j" ] && ok || bad "re-JIT NLL $(nll "$T/arm.json") != $j"

# several targets: the best that runs here is linked (x86-64-v3 = AVX2 runs on any AVX2 machine)
if grep -q ' +avx2' /proc/cpuinfo 2>/dev/null || grep -q 'avx2' /proc/cpuinfo 2>/dev/null; then
  "$Q" compile --model "$M" --plan "$PLAN" --target cpu --cpu-arch aarch64-unknown-linux-gnu:generic,x86-64-v3 \
    -o "$T/multi.qjp" >/dev/null 2>&1 || bad "compile for two targets"
  "$Q" "${EV[@]}" --model "$T/multi.qjp" --cpu-code require > "$T/multi.json" 2> "$T/multi.err" || bad "eval multi"
  python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); sys.exit(0 if abs(a-b)/b < 1e-4 else 1)" \
    "$(nll "$T/multi.json")" "$ref" && ok || bad "x86-64-v3 code NLL $(nll "$T/multi.json") vs reference $ref"
fi

# no CPU code: JIT as before, no note; require refuses
"$Q" compile --model "$M" --plan "$PLAN" -o "$T/plain.qjp" >/dev/null 2>&1 || bad "compile without --target"
"$Q" "${EV[@]}" --model "$T/plain.qjp" > "$T/plain.json" 2> "$T/plain.err" || bad "eval plain"
[ ! -s "$T/plain.err" ] && ok || bad "plain package printed: $(cat "$T/plain.err")"
[ "$(nll "$T/plain.json")" = "$j" ] && ok || bad "plain NLL $(nll "$T/plain.json") != $j"
err=$("$Q" "${EV[@]}" --model "$T/plain.qjp" --cpu-code require 2>&1 >/dev/null)
has "$err" "plain.qjp: the package carries no CPU code" "require without code"

# a newer format version is refused, naming the file and the version expected
cp "$T/host.qjp" "$T/v2.qjp"
printf '\x02' | dd of="$T/v2.qjp" bs=1 seek=8 conv=notrunc 2>/dev/null
err=$("$Q" "${EV[@]}" --model "$T/v2.qjp" 2>&1 >/dev/null); rc=$?
[ $rc -ne 0 ] && [ $rc -lt 128 ] && ok || bad "v2 package: rc $rc"
has "$err" "v2.qjp: package format version 2 is newer than this qjit supports (1)" "version message"

# bad --cpu-arch values: clear messages, no file left
err=$("$Q" compile --model "$M" --plan "$PLAN" --target cpu --cpu-arch pentium -o "$T/bad.qjp" 2>&1 >/dev/null)
has "$err" "expected host, x86-64" "--cpu-arch message"
err=$("$Q" compile --model "$M" --plan "$PLAN" --target cpu --cpu-arch nosucharch-unknown-linux-gnu:generic -o "$T/bad.qjp" 2>&1 >/dev/null)
has "$err" "no target for nosucharch-unknown-linux-gnu" "--cpu-arch unknown triple"
if ls "$T"/bad.qjp* >/dev/null 2>&1; then bad "left a file behind"; else ok; fi
err=$("$Q" eval --model "$T/host.qjp" --tokens /dev/null --cpu-code sometimes 2>&1 >/dev/null)
has "$err" '"sometimes" is not auto, require or jit' "--cpu-code message"

echo "test_aot: $pass passed, $fail failed"
[ $fail -eq 0 ]
