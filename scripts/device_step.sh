#!/usr/bin/env bash
# device_step.sh — on the GPU machine: where a decode step's time goes. For
# each plan, the batch-1 decode benchmark as shipped, then once per launch
# kind with that kind left out of the step (QJ_STEP_SKIP, timing only), so the
# difference is what the kind costs inside the graph. Usage:
#   OUT=dir scripts/device_step.sh PLAN...     ($STEP_KINDS: the kinds to leave out, $STEP_TOKENS: steps, default 256)
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
kinds=${STEP_KINDS:-norm att swiglu qkv o gu down head}
for p in "$@"; do
  for k in none $kinds; do
    e=""; [ "$k" != none ] && e="QJ_STEP_SKIP=$k"
    r=$(env $e ./build-gpu/qjit bench --synthetic llama3-8b --plan "$p" --device cuda --tokens "${STEP_TOKENS:-256}" 2>&1 |
        grep -E "^decode batch 1|rror")
    ms=$(sed -nE 's/.*\(([0-9.]+) ms\/token\).*/\1/p' <<<"$r")
    echo "$(basename "$p") skip=$k ms/token=$ms | $r" | tee -a "$out/step.log"
  done
done
# $STEP_NCU=PLAN: also each kernel of one graph replay alone under Nsight Compute
# (isolated durations, no overlap), summed per kernel name
if [ -n "${STEP_NCU:-}" ]; then
  NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1 || true)
  "$NCU" --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv -s 1200 -c 291 \
    ./build-gpu/qjit bench --synthetic llama3-8b --plan "$STEP_NCU" --device cuda --tokens 8 > "$out/ncu_step.csv" 2>"$out/ncu_step.err"
  python3 - "$out/ncu_step.csv" <<'PYEOF' | tee "$out/ncu_step.txt"
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
h = rows[0]; ki = h.index("Kernel Name"); vi = h.index("Metric Value"); ui = h.index("Metric Unit")
tot = collections.defaultdict(float); cnt = collections.Counter()
for r in rows[1:]:
    v = float(r[vi].replace(",", "")); v = v / 1000 if r[ui] == "nsecond" else v
    tot[r[ki][:60]] += v; cnt[r[ki][:60]] += 1
for k in sorted(tot, key=lambda k: -tot[k]):
    print(f"{tot[k]:10.1f} us  {cnt[k]:4d} x {tot[k]/cnt[k]:8.2f}  {k}")
print(f"{sum(tot.values()):10.1f} us total, {sum(cnt.values())} kernels")
PYEOF
fi
