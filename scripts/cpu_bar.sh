#!/usr/bin/env bash
# Issue 4's CPU bar in one command: ROUNDS rounds of the kernel bench over PLANS (Llama-2-7B's layers,
# synthetic), one plan after another in each round, then per plan and layer the median and the min-max of
# "% of the row's read ceiling" over the rounds; then DECODE runs of the all-int4 plan's decode
# (examples/plans/int4-g128_all.json, the head int4 too) against the dense fp32 reference forward in the same
# process. Nothing else should run on the machine meanwhile.
#   scripts/cpu_bar.sh OUTDIR            raw logs in OUTDIR, the tables on stdout (and in OUTDIR/summary.md)
#   ROUNDS=5 ITERS=10 DECODE=2 PLANS="int2-g128 ..." QJIT=build/qjit scripts/cpu_bar.sh OUTDIR
#   CFG (the --synthetic model, default examples/configs/llama2-7b-1layer.json), DPLAN (the decode's plan, default
#   examples/plans/int4-g128_all.json) and PROBE (the round probe's arguments) are for tests/test_cpu_bar.sh's small run.
# Each round first times build/qj_cpu_resident (the 2-bit kernel on one thread, its layer in the caches): the VM's
# arithmetic rate at that moment, beside the round's rows under 70% (docs/PERFORMANCE.md, 2026-12-07).
set -euo pipefail
out=${1:?usage: scripts/cpu_bar.sh OUTDIR}
qjit=${QJIT:-build/qjit}
rounds=${ROUNDS:-5}
iters=${ITERS:-10}
decode=${DECODE:-2}
plans=${PLANS:-"int2-g128 int3-g128 int4-g128 int5-g128 int6-g128 int8-g128 int2-g32 int3-g64 int4-g32 int5-g256 int6-g64 int8-g32"}
cfg=${CFG:-examples/configs/llama2-7b-1layer.json}
dplan=${DPLAN:-examples/plans/int4-g128_all.json}
probe=${PROBE:-2 128 2048 4096 30} # qj_cpu_resident's BITS GROUP N K ITERS
[ -x "$qjit" ] || { echo "cpu_bar.sh: $qjit is not built (cmake --build build)" >&2; exit 1; }
mkdir -p "$out"
resident=$(dirname "$qjit")/qj_cpu_resident
nplans=$(echo $plans | wc -w)
steps=$((rounds * nplans)) step=0 t0=$(date +%s)
# a progress line on a terminal (bench runs done, their rate, the time left), nothing otherwise
progress() {
  step=$((step + 1))
  [ -t 2 ] || return 0
  local el=$(($(date +%s) - t0))
  local left=$((el * (steps - step) / step))
  printf '\rcpu_bar.sh: %d of %d bench runs, %d a minute, about %dm%02ds left ' "$step" "$steps" \
    $((el > 0 ? step * 60 / el : 0)) $((left / 60)) $((left % 60)) >&2
  [ "$step" -lt "$steps" ] || echo >&2
}
for r in $(seq 1 "$rounds"); do
  # the 2-bit kernel's arithmetic at this moment: one thread, the layer in the caches (no DRAM)
  if [ -x "$resident" ]; then
    "$resident" $probe >"$out/r$r-resident.txt" 2>&1 ||
      { echo "cpu_bar.sh: $resident $probe failed:" >&2; cat "$out/r$r-resident.txt" >&2; exit 1; }
  fi
  for p in $plans; do
    "$qjit" bench --kernels --device cpu --synthetic "$cfg" --plan "$p" --iters "$iters" >"$out/r$r-$p.txt" 2>&1 ||
      { echo "cpu_bar.sh: the bench of $p failed (round $r):" >&2; cat "$out/r$r-$p.txt" >&2; exit 1; }
    progress
  done
done
for d in $(seq 1 "$decode"); do
  "$qjit" bench --device cpu --synthetic "$cfg" --plan "$dplan" --tokens 32 --fp32-baseline >"$out/decode$d.txt" 2>&1 ||
    { echo "cpu_bar.sh: the decode run failed:" >&2; cat "$out/decode$d.txt" >&2; exit 1; }
done
python3 - "$out" "$rounds" "$decode" $plans <<'EOF' | tee "$out/summary.md"
import re, statistics, sys
out, rounds, decode, plans = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
layers = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def layer_rows(r, p):
    """(layer, % of ceiling, GB/s, ceiling GB/s) of each layers.*. row of round r's bench of plan p"""
    rows = []
    for line in open(f"{out}/r{r}-{p}.txt"):
        f = line.split()
        if len(f) == 11 and f[0].startswith("layers.*."):
            rows.append((f[0][len("layers.*."):], float(f[10].rstrip("%")), float(f[8]), float(f[9])))
    return rows


runs = {(r, p): layer_rows(r, p) for r in range(1, rounds + 1) for p in plans}
print("| plan | " + " | ".join(l.split("_")[0] for l in layers) + " | kernels, GB/s | ceilings, GB/s |")
print("|---" * (len(layers) + 3) + "|")
worst = (1e9, "")
for p in plans:
    pct, gbs, ceil = {l: [] for l in layers}, [], []
    for r in range(1, rounds + 1):
        for l, v, g, c in runs[(r, p)]:
            pct[l].append(v)
            gbs.append(g)
            ceil.append(c)
    cells = []
    for l in layers:
        v = pct[l]
        if len(v) != rounds:
            sys.exit(f"cpu_bar.sh: {p} {l}: {len(v)} rows timed in {rounds} rounds ({out}/r*-{p}.txt)")
        m = statistics.median(v)
        worst = min(worst, (m, f"{p} {l}"))
        cells.append(f"{m:.0f} ({min(v):.0f}–{max(v):.0f})")
    print(f"| {p} | " + " | ".join(cells) + f" | {min(gbs):.1f}–{max(gbs):.1f} | {min(ceil):.1f}–{max(ceil):.1f} |")
print(f"\nlowest median: {worst[0]:.1f}% ({worst[1]})")
print("\n| round | 2-bit kernel in cache, one thread, GB/s | rows under 70% | lowest row |")
print("|---|---|---|---|")
for r in range(1, rounds + 1):
    try:
        m = re.search(r"\(([0-9.]+) GB/s of codes\)", open(f"{out}/r{r}-resident.txt").read())
        rate = m.group(1) if m else "?"
    except OSError:
        rate = "-"
    rows = [(v, f"{p} {l}") for p in plans for l, v, _, _ in runs[(r, p)]]
    low = min(rows)
    print(f"| {r} | {rate} | {sum(v < 70 for v, _ in rows)} of {len(rows)} | {low[0]:.1f}% ({low[1]}) |")
for d in range(1, decode + 1):
    txt = open(f"{out}/decode{d}.txt").read()
    toks = re.findall(r"([0-9.]+) tokens/s", txt)
    ratio = re.search(r"this plan is ([0-9.]+)x", txt)
    if len(toks) != 2 or not ratio:
        sys.exit(f"cpu_bar.sh: no decode and fp32 tokens/s in {out}/decode{d}.txt")
    print(f"decode run {d}: {toks[0]} tokens/s, the fp32 reference {toks[1]}: {ratio.group(1)}x")
EOF
