#!/usr/bin/env bash
# ctest-labels: unit
# test_cli.sh — the qjit command line on bad input: a clear message naming the
# file/field, a non-zero exit, no crash (exit >= 128), and no partial output file.
set -u
Q=${QJIT:?QJIT not set}
S=${QJ_SHARED:-}
T=${QJ_TEST_TMP:-/tmp}/cli
rm -rf "$T"; mkdir -p "$T"
source "$(dirname "$0")/cli_lib.sh" # ok, bad, expect_fail NEEDLE CMD...
expect_ok() { if "$@" >/dev/null 2>&1; then ok; else bad "failed: $*"; fi; }
no_file() { if ls "$1"* >/dev/null 2>&1; then bad "left a file behind: $(ls "$1"*)"; else ok; fi; }

expect_fail "unknown command" "$Q" frobnicate
expect_fail "exactly one of --model" "$Q" info
expect_fail "cannot open" "$Q" info --model "$T/missing.bin"
expect_fail "unknown synthetic preset" "$Q" info --synthetic llama9
expect_fail "--ctx" "$Q" eval --synthetic tiny --tokens /dev/null --ctx abc
expect_fail "-o OUT is required" "$Q" compile --synthetic tiny --plan int4-g32

# plans: every error names the file and the key
echo '{"bitwidth.0.": 4, "groupsize.0.": 32, "bitwidht.1.": 4}' > "$T/typo.json"
expect_fail 'typo.json: unknown key "bitwidht.1."' "$Q" compile --synthetic tiny --plan "$T/typo.json" -o "$T/out.qjp"
no_file "$T/out.qjp"
echo '{"bitwidth.0.": 9}' > "$T/width.json"
expect_fail '"bitwidth.0."' "$Q" compile --synthetic tiny --plan "$T/width.json" -o "$T/out.qjp"
no_file "$T/out.qjp"
echo '{"bitwidth.7.": 4}' > "$T/range.json"
expect_fail 'layer 7' "$Q" compile --synthetic tiny --plan "$T/range.json" -o "$T/out.qjp"
no_file "$T/out.qjp"
printf '{"bitwidth.0.": 4,' > "$T/broken.json"
expect_fail 'broken.json' "$Q" compile --synthetic tiny --plan "$T/broken.json" -o "$T/out.qjp"
no_file "$T/out.qjp"
expect_fail 'int11' "$Q" compile --synthetic tiny --plan int11-g32 -o "$T/out.qjp"
no_file "$T/out.qjp"

# a good compile works, and an output directory that does not exist fails cleanly
expect_ok "$Q" compile --synthetic tiny --plan int4-g32 -o "$T/tiny.qjp"
expect_fail "cannot create" "$Q" compile --synthetic tiny --plan int4-g32 -o "$T/nodir/x.qjp"
expect_fail "compiled package with its own plan" "$Q" eval --model "$T/tiny.qjp" --plan int8-g32 --tokens /dev/null
# corrupted package
cp "$T/tiny.qjp" "$T/trunc.qjp"; truncate -s 5000 "$T/trunc.qjp"
expect_fail "trunc.qjp" "$Q" info --model "$T/trunc.qjp"

# a synthetic model from a Hugging Face config.json (Qwen2: q/k/v biases, half RoPE):
# compile, package and in-memory eval agree, and output says SYNTHETIC
cat > "$T/qwen2_config.json" <<'JSON'
{"architectures": ["Qwen2ForCausalLM"], "hidden_size": 64, "intermediate_size": 96,
 "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "vocab_size": 300, "max_position_embeddings": 128, "rope_theta": 1000000.0,
 "rms_norm_eps": 1e-6, "tie_word_embeddings": true, "hidden_act": "silu"}
JSON
seq 1 2 299 | tr '\n' ' ' > "$T/ids_qwen.txt"
out=$("$Q" info --synthetic "$T/qwen2_config.json" --plan int4-g32 --summary)
case "$out" in *"SYNTHETIC"*"qwen2"*"qkv bias"*) ok ;; *) bad "qwen2 synthetic info: $out" ;; esac
expect_ok "$Q" compile --synthetic "$T/qwen2_config.json" --plan int5-g32 -o "$T/qwen.qjp"
x=$("$Q" eval --synthetic "$T/qwen2_config.json" --plan int5-g32 --tokens "$T/ids_qwen.txt" --json | sed 's/.*"nll": *\([0-9.]*\).*/\1/')
y=$("$Q" eval --model "$T/qwen.qjp" --tokens "$T/ids_qwen.txt" --json | sed 's/.*"nll": *\([0-9.]*\).*/\1/')
if [ -n "$x" ] && [ "$x" = "$y" ]; then ok; else bad "qwen2 package nll ($y) != in-memory nll ($x)"; fi
echo '{"architectures": ["GPT2LMHeadModel"], "n_embd": 64}' > "$T/gpt2_config.json"
expect_fail "gpt2_config.json" "$Q" info --synthetic "$T/gpt2_config.json"

# without a driver, --device cuda says so (on a GPU machine this check is skipped)
if "$Q" eval --synthetic tiny --device cuda --tokens "$T/ids_qwen.txt" >/dev/null 2>"$T/nodrv.txt"; then
  echo "note: a CUDA device is present; the missing-driver message is not checked"
else
  case "$(cat "$T/nodrv.txt")" in *"no NVIDIA driver"*|*"no CUDA device"*|*"NVRTC"*) ok ;; *) bad "--device cuda without a driver: $(cat "$T/nodrv.txt")" ;; esac
fi
expect_fail '--device: "tpu" is not cpu or cuda' "$Q" eval --synthetic tiny --device tpu --tokens "$T/ids_qwen.txt"
expect_fail '--target: "fpga" is not cpu or cuda' "$Q" compile --synthetic tiny --target cpu,fpga -o "$T/x.qjp"
no_file "$T/x.qjp"

# bench: bad option values are refused before any work
expect_fail '--batch: "65" is not an integer in 1..64' "$Q" bench --synthetic tiny --batch 65
expect_fail '--tokens: "0" is not an integer' "$Q" bench --synthetic tiny --tokens 0
expect_fail 'unexpected argument "extra"' "$Q" bench --synthetic tiny extra
expect_ok "$Q" bench --synthetic tiny --tokens 8
# bench --kernels --device cpu: the LLVM kernels next to a read ceiling (builds with LLVM)
if out=$("$Q" bench --kernels --device cpu --synthetic tiny --plan int4-g32 --iters 5 2>&1); then
  case "$out" in *"read ceiling"*"the calls in rounds"*"layers.*.gate_proj"*) ok ;; *) bad "bench --kernels --device cpu output: $out" ;; esac
  # every linear of the layer timed, each with a time, a bandwidth and a ceiling above zero (rounds cover every row)
  rows=$(printf '%s\n' "$out" | awk '/^layers\.\*\./ && $8 > 0 && $9 > 0 && $10 > 0 {n++} END {print n + 0}')
  [ "$rows" = 7 ] && ok || bad "bench --kernels --device cpu: $rows of 7 rows timed: $out"
else
  case "$out" in *"built without LLVM"*) ok ;; *) bad "bench --kernels --device cpu failed: $out" ;; esac
fi
expect_fail '--layer 7 out of range' "$Q" bench --kernels --device cpu --synthetic tiny --plan int4-g32 --layer 7
expect_fail 'QJ_CPU_KERNELS="llvm": expected jit' env QJ_CPU_KERNELS=llvm "$Q" bench --synthetic tiny --plan int4-g32 --tokens 4
expect_ok env QJ_CPU_KERNELS=reference "$Q" bench --synthetic tiny --plan int4-g32 --tokens 4
# --fp32-baseline: the same model dense fp32 in the same run, and the ratio
out=$("$Q" bench --synthetic tiny --plan int4-g32 --tokens 4 --fp32-baseline 2>&1)
case "$out" in *"decode batch 1: "*"fp32 reference forward of the same model, same run: "*"tokens/s; this plan is "*x*) ok ;;
  *) bad "bench --fp32-baseline output: $out" ;; esac
"$Q" compile --synthetic tiny --plan int4-g32 -o "$T/b.qjp" >/dev/null 2>&1
expect_fail '--fp32-baseline needs the source model' "$Q" bench --model "$T/b.qjp" --tokens 4 --fp32-baseline
expect_fail '--fp32-baseline goes with CPU decode' "$Q" bench --synthetic tiny --kernels --fp32-baseline
expect_fail '--fp32-baseline goes with CPU decode' "$Q" bench --synthetic tiny --device cuda --fp32-baseline
expect_fail 'decode at --batch 4 runs on the GPU' "$Q" bench --synthetic tiny --plan int4-g32 --tokens 4 --batch 4

# token files: non-integers and ids out of the vocabulary
echo "1 2 x3" > "$T/ids_bad.txt"
expect_fail "ids_bad.txt: byte offset 4" "$Q" eval --model "$T/tiny.qjp" --tokens "$T/ids_bad.txt"
echo "1 2 99999" > "$T/ids_range.txt"
expect_fail "outside the vocabulary" "$Q" eval --model "$T/tiny.qjp" --tokens "$T/ids_range.txt"
echo "" > "$T/ids_empty.txt"
expect_fail "no token ids" "$Q" eval --model "$T/tiny.qjp" --tokens "$T/ids_empty.txt"

if [ -n "$S" ] && [ -f "$S/models/stories260K/stories260K.bin" ]; then
  M=$S/models/stories260K/stories260K.bin
  printf 'Once upon a time \xff\xfe there' > "$T/bad_utf8.txt"
  expect_fail "invalid UTF-8 at byte offset 17" "$Q" eval --model "$M" --text "$T/bad_utf8.txt"
  printf 'ok \xe2\x82' > "$T/trunc_utf8.txt"
  expect_fail "invalid UTF-8 at byte offset 3" "$Q" tokenize --tokenizer "$S/models/stories260K/tok512.bin" --text "$T/trunc_utf8.txt"
  # the size qjit info prints: stories260K in fp32 is 260032 weights * 4 bytes
  out=$("$Q" info --model "$M" --plan fp32)
  case "$out" in *"model.layers.4.mlp.down_proj.weight"*"(64, 172)"*) ok ;; *) bad "info lacks the tensor list: $out" ;; esac
  case "$out" in *"1040128 bytes = 0.001040 GB"*"model_size: 0.0010"*) ok ;; *) bad "info size: $out" ;; esac
  # generate is seeded: the same seed gives the same text
  a=$("$Q" generate --model "$M" --steps 40 --sample-seed 5 2>/dev/null)
  b=$("$Q" generate --model "$M" --steps 40 --sample-seed 5 2>/dev/null)
  if [ -n "$a" ] && [ "$a" = "$b" ]; then ok; else bad "generate not reproducible: '$a' vs '$b'"; fi
  # eval --text and eval --tokens of the tokenized text agree
  "$Q" tokenize --tokenizer "$S/models/stories260K/tok512.bin" --text "$S/data/tinystories/valid_prefix.txt" --max-tokens 700 > "$T/ids700.txt"
  x=$("$Q" eval --model "$M" --tokens "$T/ids700.txt" --json | sed 's/.*"nll": *\([0-9.]*\).*/\1/')
  y=$("$Q" eval --model "$M" --text "$S/data/tinystories/valid_prefix.txt" --max-tokens 700 --json | sed 's/.*"nll": *\([0-9.]*\).*/\1/')
  if [ -n "$x" ] && [ "$x" = "$y" ]; then ok; else bad "eval --text ($y) != eval --tokens ($x)"; fi
else
  echo "SKIP: parts needing ../shared (QJ_SHARED)"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
