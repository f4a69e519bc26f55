#!/usr/bin/env bash
# device_sweep.sh — on the GPU machine (after device_env.sh has built): time
# the integer-MMA GEMV of a one-layer Llama-3-8B-shaped model
# (examples/configs/llama3-8b-1layer.json, the same shapes as every layer of
# llama3-8b) over its knobs, for each plan given. One line per setting and
# timing mode: kernel us (%ceil) of each linear and the head. Full bench
# output in $out/sweep/.
#   scripts/device_sweep.sh PLAN... ; the settings: $SWEEP_SET (one per line) or the defaults below;
#   $SWEEP_ARGS: more bench arguments (e.g. --batch 16)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${out:-${OUT:-/tmp/out}}
mkdir -p "$out/sweep"
SETS=${SWEEP_SET:-"default
QJ_IM_MT=1
QJ_IM_STAGES=0
QJ_IM_STAGES=4
QJ_IM_STAGES=8 QJ_IM_RING=45056
QJ_IM_MT=1 QJ_IM_STAGES=8 QJ_IM_RING=45056
QJ_IM_UNROLL=2 QJ_IM_STAGES=0
QJ_IM_WARPS=8 QJ_IM_STAGES=6 QJ_IM_RING=45056"}
for plan in "$@"; do
  while IFS= read -r set; do
    [ -z "$set" ] && continue
    vars=$set; [ "$set" = default ] && vars=""
    log="$out/sweep/$(basename "$plan" .json)_$(echo "$set" | tr ' =' '_-').log"
    env $vars ./build-gpu/qjit bench --kernels --synthetic examples/configs/llama3-8b-1layer.json --plan "$plan" \
      --iters 30 --no-baselines ${SWEEP_ARGS:-} > "$log" 2>&1
    awk -v p="$(basename "$plan" .json)" -v s="$set" '
      /^cold:|cold: median/ {m="cold"} /back-to-back: median/ {m="b2b"}
      /^layers|^lm_head/ {sub(/^layers\.\*\./, "", $1); r[m] = r[m] sprintf(" %s %s (%s)", $1, $7, $10)}
      /rror/ {e = e " " $0}
      END {printf "%-10s %-45s cold:%s\n%-10s %-45s b2b: %s%s\n", p, s, r["cold"], p, s, r["b2b"], e}' "$log"
  done <<< "$SETS"
done
