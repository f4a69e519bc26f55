#!/usr/bin/env bash
# setup.sh — one command: install dependencies, build qjit, and run the main job
# on the default input (the real stories260K llama from ../shared): compile it
# with a mixed-precision plan into a package, show its size, and measure
# perplexity on TinyStories against the fp32 model.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
SHARED=${QJ_SHARED:-../shared}
MODEL=$SHARED/models/stories260K/stories260K.bin
TEXT=$SHARED/data/tinystories/valid_prefix.txt
if [ ! -f "$MODEL" ]; then
  echo "setup: built ./build/qjit; no default input at $MODEL (set QJ_SHARED), done"
  exit 0
fi
mkdir -p out
echo "== qjit compile: stories260K with examples/plans/stories260K_mixed.json"
./build/qjit compile --model "$MODEL" --plan examples/plans/stories260K_mixed.json -o out/stories260K_mixed.qjp
echo "== qjit info"
./build/qjit info --model out/stories260K_mixed.qjp
echo "== qjit eval: fp32 model vs the mixed package, first 4000 tokens of TinyStories"
./build/qjit eval --model "$MODEL" --plan fp32 --text "$TEXT" --max-tokens 4000
./build/qjit eval --model out/stories260K_mixed.qjp --text "$TEXT" --max-tokens 4000
echo "== qjit generate"
./build/qjit generate --model out/stories260K_mixed.qjp --prompt "Once upon a time" --steps 80
