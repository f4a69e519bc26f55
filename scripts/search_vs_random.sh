#!/usr/bin/env bash
# search_vs_random.sh — issue 5's CPU bar: qjit search (BO) against random search with the
# same trials and initial design, over several seeds, on stories260K / TinyStories, with
# the size limit of uniform int4-g64. Prints each run's best perplexity and the medians.
#   scripts/search_vs_random.sh [SEEDS (default "1 2 3 4 5")] ; env TRIALS (40), INIT (10),
#   TOKENS (1000), OUT (directory, default /tmp/search_vs_random), Q (qjit binary)
set -euo pipefail
cd "$(dirname "$0")/.."
Q=${Q:-build/qjit}
S=${QJ_SHARED:-../shared}
M=$S/models/stories260K/stories260K.bin
TXT=$S/data/tinystories/valid_prefix.txt
OUT=${OUT:-/tmp/search_vs_random}
TRIALS=${TRIALS:-40} INIT=${INIT:-10} TOKENS=${TOKENS:-1000}
mkdir -p "$OUT"
LIM=$("$Q" eval --model "$M" --plan int4-g64 --text "$TXT" --max-tokens "$TOKENS" --json |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["size_bytes"] / 1e9)')
echo "limit: uniform int4-g64 = $LIM GB; $TRIALS trials ($INIT initial), $TOKENS tokens"
for seed in ${1:-1 2 3 4 5}; do
  for strat in bo random; do
    rm -f "$OUT/$strat$seed.jsonl"
    "$Q" search --model "$M" --objective ppl --max-size "$LIM" --text "$TXT" --max-tokens "$TOKENS" \
      --trials "$TRIALS" --init "$INIT" --seed "$seed" --strategy "$strat" \
      --history "$OUT/$strat$seed.jsonl" --output "$OUT/$strat$seed.csv" > "$OUT/$strat$seed.log" 2>&1 &
  done
  wait
done
python3 - "$OUT" ${1:-1 2 3 4 5} <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
res = {}
for strat in ("bo", "random"):
    bests = []
    for s in seeds:
        ppl = [json.loads(l)["cal_PPL"] for l in list(open(f"{out}/{strat}{s}.jsonl"))[1:]]
        bests.append(min(ppl))
    res[strat] = bests
    print(f"{strat:7s} best per seed: " + " ".join(f"{b:.4f}" for b in bests) + f"   median {statistics.median(bests):.4f}")
PY
