#!/usr/bin/env bash
# device_search.sh — the GPU throughput search of issue 5 in one device call:
# qjit search --objective throughput on a synthetic Llama-3-8B under a layer-output
# error limit, every trial compiled (kernels through NVRTC and the kernel cache),
# uploaded and its decode timed on the GPU. A history carried in .device/search/
# (from an earlier call's $OUT) is resumed, so a search longer than one call
# continues where it stopped. Settings (env): MAX_ERROR (default 0.09), TRIALS (50),
# INIT (10), STOP_AFTER (seconds the search may run in this call, default 420),
# TESTS=1 runs test_gpu_forward and test_search_gpu first; NAME (tput) names
# the history and logs; SAMPLES=FILE passes --initial-samples FILE (e.g. plans to measure);
# GPUS=0,1 runs the trials in one worker process per device (--gpus). Logs and the history in $OUT.
set -uo pipefail
T0=$(date +%s)
source "$(dirname "$0")/device_env.sh"
t "built"
if [ "${TESTS:-0}" = 1 ]; then
  ./build-gpu/tests/test_gpu_forward > "$out/forward.log" 2>&1
  t "test_gpu_forward rc=$? $(tail -1 "$out/forward.log")"
  QJIT=$PWD/build-gpu/qjit bash tests/test_search_gpu.sh > "$out/search_gpu_test.log" 2>&1
  t "test_search_gpu rc=$? $(tail -1 "$out/search_gpu_test.log")"
  grep FAIL "$out/search_gpu_test.log" | head -5
fi
N=${NAME:-tput}
H=$out/$N.jsonl
resume=""
extra=""
[ -n "${SAMPLES:-}" ] && extra="--initial-samples $SAMPLES"
if [ -f .device/search/$N.jsonl ]; then
  cp .device/search/$N.jsonl "$H"
  resume=--resume
  t "resuming a history of $(($(wc -l < "$H") - 1)) trials"
fi
timeout --signal=KILL "${STOP_AFTER:-420}" ./build-gpu/qjit search --synthetic llama3-8b --objective throughput \
  --max-error "${MAX_ERROR:-0.09}" ${GPUS:+--gpus $GPUS} --device cuda --trials "${TRIALS:-50}" --init "${INIT:-10}" --quant-cache 60 \
  --history "$H" --output "$out/$N.csv" --plots "$out/$N" $resume $extra > "$out/$N.log" 2>&1
t "search rc=$? ($(($(wc -l < "$H") - 1)) trials in the history)"
grep -vE '^  int' "$out/$N.log" | tail -60
grep -E '^  int' "$out/$N.log" > "$out/uniform.txt"
