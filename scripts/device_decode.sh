#!/usr/bin/env bash
# device_decode.sh — on the GPU machine, short: build, the GPU forward test,
# and batch-1 decode of synthetic Llama-3-8B for the shipped defaults. Logs in $OUT.
set -uo pipefail
export QJ_DEVICE_WERROR=${QJ_DEVICE_WERROR:-OFF}
source "$(dirname "$0")/device_env.sh"
./build-gpu/tests/test_gpu_forward > "$out/forward.log" 2>&1
echo "test_gpu_forward rc=$? $(tail -1 "$out/forward.log")"
for p in examples/plans/int4-g128_all.json int4-g128 int3-g128 int5-g128 int6-g128 int8-g128; do
  ./build-gpu/qjit bench --synthetic llama3-8b --plan $p --device cuda --tokens 256 2>&1 | grep -E "^decode|^weights|rror" |
    sed "s|^|[$(basename $p)] |" | tee -a "$out/decode.log"
done
