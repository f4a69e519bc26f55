#!/usr/bin/env bash
# device_bench.sh — on the GPU machine: build, run the GPU tests, then the
# kernel and decode benchmarks of docs/PERFORMANCE.md for the given plans.
# usage: scripts/device_bench.sh OUTDIR PLAN...
set -uo pipefail
out=$1; shift
source "$(dirname "$0")/device_env.sh"
gpu_tests
for p in "$@"; do
  ./build-gpu/qjit bench --kernels --synthetic llama3-8b --plan "$p" --iters 100 > "$out/kernels_$p.log" 2>&1
  grep -E "copy ceiling|^layers|^lm_head" "$out/kernels_$p.log" | sed "s/^/[$p] /"
  ./build-gpu/qjit bench --synthetic llama3-8b --plan "$p" --device cuda --tokens 256 > "$out/decode_$p.log" 2>&1
  grep -E "^decode|^weights" "$out/decode_$p.log" | sed "s/^/[$p] /"
done
