#!/usr/bin/env bash
# ctest-labels: unit
# test_search_cli.sh — qjit search on stories260K (CPU): a short search runs, writes
# its JSONL history and the seed's CSV and prints the best config within the
# size limit; a search stopped early (--trials) and one killed mid-trial (kill -9)
# each resume (--resume) to the same history as an uninterrupted run with the
# same seed (timings aside); a throughput search (CPU decode) under the layer-output
# error limit keeps every trial within it, one under --max-ppl reports a best within
# that, and the error itself as the objective stays under the size; with --workers 2
# (worker processes, batches of two) a run is reproducible and resumes after a kill
# to the same history; bad settings and inputs are refused with a message.
set -u
source "$(dirname "$0")/cli_lib.sh"
search_test_setup search
# the size of uniform int4-g64: the limit
LIM=$("$Q" eval --model "$M" --plan int4-g64 --text "$TXT" --max-tokens 200 --json |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["size_bytes"] / 1e9)')
run() { "$Q" search --model "$M" --objective ppl --max-size "$LIM" --text "$TXT" --max-tokens 300 --init 4 --seed 3 "$@"; }

# uninterrupted
out=$(run --trials 8 --history "$T/a.jsonl" --output "$T/a.csv" 2>&1); rc=$?
[ $rc -eq 0 ] && ok || bad "search failed ($rc): $out"
case "$out" in *"------Best config------"*"{'cal_PPL': "*"'bitwidth.0.': "*"'groupsize.4.': "*) ok ;; *) bad "no best config block: $out" ;; esac
[ "$(wc -l < "$T/a.jsonl")" -eq 9 ] && ok || bad "history lines: $(wc -l < "$T/a.jsonl")"
for pl in pareto progress plan; do  # the PNG plots beside the history (when built with libpng)
  case "$out" in *"without libpng"*) ok; continue ;; esac
  [ "$(head -c 8 "$T/a_$pl.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] && ok || bad "no PNG $T/a_$pl.png"
done
[ "$(wc -l < "$T/a.csv")" -eq 9 ] && head -1 "$T/a.csv" | grep -q '^cal_PPL,model_size,quant_config$' && ok || bad "CSV: $(head -2 "$T/a.csv")"
python3 - "$T/a.jsonl" "$LIM" <<'EOF' && ok || bad "history contents"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert "search" in lines[0]
lim = float(sys.argv[2]) * 1e9
for i, t in enumerate(lines[1:]):
    assert t["trial"] == i and t["size_bytes"] <= lim + 1, t
    assert t["kind"] == ("initial" if i < 4 else "bo")
    assert t["cal_PPL"] > 1 and len(t["quant_config"]) == 10
EOF

same() { same_history "$@"; }
# stopped after 5 trials, an append cut short, then resumed
run --trials 5 --history "$T/b.jsonl" --output "$T/b.csv" >/dev/null 2>&1 && ok || bad "short run"
printf '{"trial":5,"kind":"bo","cal_P' >> "$T/b.jsonl"
out=$(run --trials 8 --history "$T/b.jsonl" --output "$T/b.csv" --resume 2>&1) && ok || bad "resume: $out"
case "$out" in *"resuming"*"5 trials done"*) ok ;; *) bad "resume message: $out" ;; esac
same "$T/a.jsonl" "$T/b.jsonl" && ok || bad "resumed history differs from the uninterrupted one"

# killed mid-search (kill -9 once 3 trials are in), then resumed
"$Q" search --model "$M" --objective ppl --max-size "$LIM" --text "$TXT" --max-tokens 300 --init 4 --seed 3 \
  --trials 8 --history "$T/c.jsonl" --output "$T/c.csv" >/dev/null 2>&1 &
pid=$! # qjit itself (not a subshell), so the kill lands mid-search
for _ in $(seq 600); do
  [ -f "$T/c.jsonl" ] && [ "$(wc -l < "$T/c.jsonl")" -ge 4 ] && break
  sleep 0.05
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
n=$(wc -l < "$T/c.jsonl")
[ "$n" -lt 9 ] && ok || bad "the kill came too late ($n lines)"
run --trials 8 --history "$T/c.jsonl" --output "$T/c.csv" --resume >/dev/null 2>&1 && ok || bad "resume after kill"
same "$T/a.jsonl" "$T/c.jsonl" && ok || bad "history after kill + resume differs"

# worker processes: a batch of 2 trials at a time, proposed together; the same run twice gives
# the same history, and so does one killed mid-search and resumed (no worker left behind)
wrun() { run --workers 2 --trials 8 "$@"; }
out=$(wrun --history "$T/w1.jsonl" --output "$T/w1.csv" 2>&1) && ok || bad "--workers 2: $out"
case "$out" in *"2 worker processes on the CPU"*) ok ;; *) bad "no worker line: $out" ;; esac
wrun --history "$T/w2.jsonl" --output "$T/w2.csv" >/dev/null 2>&1 && ok || bad "--workers 2 again"
same "$T/w1.jsonl" "$T/w2.jsonl" && ok || bad "two --workers 2 runs differ"
python3 - "$T/w1.jsonl" "$LIM" <<'EOF' && ok || bad "--workers history"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines[0]["search"]["workers"] == 2
tr = lines[1:]
assert [t["trial"] for t in tr] == list(range(8)) and [t["kind"] for t in tr] == ["initial"] * 4 + ["bo"] * 4
cfgs = [json.dumps(t["quant_config"], sort_keys=True) for t in tr]
assert len(set(cfgs)) == 8 and all(t["size_bytes"] <= float(sys.argv[2]) * 1e9 + 1 for t in tr)
EOF
"$Q" search --model "$M" --objective ppl --max-size "$LIM" --text "$TXT" --max-tokens 300 --init 4 --seed 3 \
  --workers 2 --trials 8 --history "$T/w3.jsonl" --output "$T/w3.csv" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 600); do
  [ -f "$T/w3.jsonl" ] && [ "$(wc -l < "$T/w3.jsonl")" -ge 4 ] && break
  sleep 0.05
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
[ "$(wc -l < "$T/w3.jsonl")" -lt 9 ] && ok || bad "the kill came too late"
for _ in $(seq 100); do pgrep -f -- "--history $T/w3.jsonl" >/dev/null || break; sleep 0.05; done
pgrep -f -- "--history $T/w3.jsonl" >/dev/null && bad "workers left running after the driver was killed" || ok
wrun --history "$T/w3.jsonl" --output "$T/w3.csv" --resume >/dev/null 2>&1 && ok || bad "--workers resume after kill"
same "$T/w1.jsonl" "$T/w3.jsonl" && ok || bad "--workers history after kill + resume differs"
expect_fail '"workers":2} differ' run --trials 8 --history "$T/w1.jsonl" --resume
expect_fail "--gpus LIST, not --workers" run --workers 2 --device cuda --history "$T/d.jsonl"
expect_fail "--gpus \"0,x\"" run --gpus 0,x --history "$T/d.jsonl"
expect_fail "not with --device cpu" run --gpus 0 --device cpu --history "$T/d.jsonl"
expect_fail "no workers" "$Q" search --model "$M" --objective error --max-size 1 --workers 2 --history "$T/d.jsonl"

# random search (the baseline): initial trials, then random untried plans that fit
run --trials 6 --strategy random --history "$T/r.jsonl" --output "$T/r.csv" >/dev/null 2>&1 && ok || bad "random search"
python3 - "$T/r.jsonl" "$LIM" <<'EOF' && ok || bad "random history"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines[0]["search"]["strategy"] == "random"
kinds = [t["kind"] for t in lines[1:]]
assert kinds == ["initial"] * 4 + ["random"] * 2, kinds
cfgs = [json.dumps(t["quant_config"], sort_keys=True) for t in lines[1:]]
assert len(set(cfgs[4:])) == 2 and not set(cfgs[4:]) & set(cfgs[:4])
assert all(t["size_bytes"] <= float(sys.argv[2]) * 1e9 + 1 for t in lines[1:])
EOF
expect_fail '--strategy "greedy": expected bo or random' run --strategy greedy --history "$T/g.jsonl"

# throughput (CPU decode, JIT kernels) under the data-free layer-output error: every trial within
# the limit, three runs each, the first the uniform int5 plan of the table, the best the fastest
out=$("$Q" search --model "$M" --objective throughput --max-error 0.06 --trials 6 --init 3 --repeats 3 \
  --decode-tokens 32 --history "$T/t.jsonl" --output "$T/t.csv" 2>&1) && ok || bad "throughput search: $out"
case "$out" in *"------Best config------"*"{'cal_throughput': "*"'layer_error': "*) ok ;; *) bad "no best block: $out" ;; esac
head -1 "$T/t.csv" | grep -q '^cal_throughput,layer_error,quant_config$' && ok || bad "CSV: $(head -1 "$T/t.csv")"
e5=$(printf '%s\n' "$out" | sed -n 's/^  int5-g256 .*layer-output error \([0-9.]*\) *within the limits$/\1/p')
[ -n "$e5" ] && ok || bad "uniform table lacks int5-g256 within the limits: $out"
python3 - "$T/t.jsonl" "${e5:-0}" <<'EOF' && ok || bad "throughput history"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
s = lines[0]["search"]
assert s["objective"] == "throughput" and s["max_error"] == 0.06 and s["repeats"] == 3, s
tr = lines[1:]
assert len(tr) == 6 and [t["kind"] for t in tr] == ["initial"] * 3 + ["bo"] * 3
for t in tr:
    assert 0 < t["layer_error"] <= 0.06, t
    assert len(t["throughput_runs"]) == 3 and min(t["throughput_runs"]) > 0
    assert abs(t["cal_throughput"] - sum(t["throughput_runs"]) / 3) < 1e-6 * t["cal_throughput"]
    assert t["throughput_log_var"] >= 0 and "cal_PPL" not in t
# the first initial trial: uniform int5 at its smallest plan, its error the table's
assert all(v == 5 for k, v in tr[0]["quant_config"].items() if k.startswith("bitwidth"))
assert abs(tr[0]["layer_error"] - float(sys.argv[2])) < 1e-5, (tr[0]["layer_error"], sys.argv[2])
EOF
best=$(python3 -c 'import json,sys; print("%g" % max(json.loads(l)["cal_throughput"] for l in list(open(sys.argv[1]))[1:]))' "$T/t.jsonl")
case "$out" in *"{'cal_throughput': $best,"*) ok ;; *) bad "best is not the history's fastest $best: $out" ;; esac
# a throughput history whose trial lacks its measurement is refused on --resume, naming the line
python3 - "$T/t.jsonl" "$T/tbad.jsonl" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
del lines[2]["cal_throughput"]
open(sys.argv[2], "w").write("".join(json.dumps(l, separators=(",", ":")) + "\n" for l in lines))
EOF
cp "$T/tbad.jsonl" "$T/tbad.before"
expect_fail 'tbad.jsonl:3: "cal_throughput" is missing' "$Q" search --model "$M" --objective throughput --max-error 0.06 \
  --trials 7 --init 3 --repeats 3 --decode-tokens 32 --history "$T/tbad.jsonl" --output "$T/tbad.csv" --resume
cmp -s "$T/tbad.jsonl" "$T/tbad.before" && [ ! -f "$T/tbad.csv" ] && ok || bad "the refused resume changed the history or wrote a CSV"
# throughput under a perplexity limit: the second GP; the best meets the limit
out=$("$Q" search --model "$M" --objective throughput --max-ppl 12 --text "$TXT" --max-tokens 200 --trials 5 --init 3 \
  --repeats 2 --decode-tokens 16 --history "$T/tp.jsonl" --output "$T/tp.csv" 2>&1) && ok || bad "max-ppl search: $out"
python3 - "$T/tp.jsonl" <<'EOF' && ok || bad "max-ppl history"
import json, sys
tr = [json.loads(l) for l in list(open(sys.argv[1]))[1:]]
assert len(tr) == 5 and all(t["cal_PPL"] > 1 and t["cal_throughput"] > 0 for t in tr)
EOF
bp=$(printf '%s\n' "$out" | sed -n "s/^{'cal_throughput': [0-9.e+]*, 'cal_PPL': \([0-9.]*\)}.*/\1/p")
python3 -c 'import sys; sys.exit(0 if 1 < float(sys.argv[1]) <= 12 else 1)' "${bp:-0}" && ok || bad "best ppl '$bp' over 12: $out"
# the error itself as the objective, under the size: exact, nothing compiled
out=$("$Q" search --model "$M" --objective error --max-size "$LIM" --trials 8 --init 4 --history "$T/err.jsonl" \
  --output "$T/err.csv" 2>&1) && ok || bad "error search: $out"
python3 - "$T/err.jsonl" "$LIM" <<'EOF' && ok || bad "error history"
import json, sys
tr = [json.loads(l) for l in list(open(sys.argv[1]))[1:]]
assert len(tr) == 8 and all(t["size_bytes"] <= float(sys.argv[2]) * 1e9 + 1 for t in tr)
assert all(t["layer_error"] > 0 for t in tr)
EOF

# qjit baselines: the seed's table, the search's best among them, measured on the same ids
out=$("$Q" baselines --model "$M" --text "$TXT" --max-tokens 300 --history "$T/a.jsonl" 2>&1) && ok || bad "baselines: $out"
for row in "bf16 baseline" "int8wo uniform quantization" "int4wo uniform quantization" "manual baseline" \
           "BO mixed-precision quantization"; do
  case "$out" in *"| $row  | "*) ok ;; *) bad "baselines lack '$row': $out" ;; esac
done
best=$(python3 -c 'import json,sys; print("%.4f" % min(json.loads(l)["cal_PPL"] for l in list(open(sys.argv[1]))[1:]))' "$T/a.jsonl")
case "$out" in *"| BO mixed-precision quantization  | $best |"*) ok ;; *) bad "BO row is not the history's best $best: $out" ;; esac
# qjit baselines --throughput: the seed's other table; without a text the accuracy column is the
# layer-output error, and the BO row is the throughput history's fastest trial (its error as recorded)
out=$("$Q" baselines --model "$M" --throughput --decode-tokens 16 --repeats 2 --history "$T/t.jsonl" 2>&1) &&
  ok || bad "baselines --throughput: $out"
case "$out" in *"|layer error | throughput|"*"| bf16 baseline  | 0.00000 | "*) ok ;; *) bad "throughput table: $out" ;; esac
be=$(python3 -c 'import json,sys; t=max((json.loads(l) for l in list(open(sys.argv[1]))[1:]), key=lambda t: t["cal_throughput"]); print("%.5f" % t["layer_error"])' "$T/t.jsonl")
case "$out" in *"| BO mixed-precision quantization  | $be | "*) ok ;; *) bad "BO row is not the fastest trial's (error $be): $out" ;; esac
expect_fail "--device cuda goes with --throughput" "$Q" baselines --model "$M" --text "$TXT" --device cuda
expect_fail "missing.jsonl" "$Q" baselines --model "$M" --text "$TXT" --history "$T/missing.jsonl"

# refusals
expect_fail "exists: --resume continues" run --trials 8 --history "$T/a.jsonl" --output "$T/x.csv"
expect_fail "differ from this search's" "$Q" search --model "$M" --objective ppl --max-size 1 --text "$TXT" \
  --max-tokens 300 --init 4 --seed 3 --trials 9 --history "$T/a.jsonl" --resume
expect_fail "need --max-size" "$Q" search --model "$M" --objective ppl --text "$TXT"
expect_fail "expected ppl, throughput or error" "$Q" search --model "$M" --objective speed --max-size 1
expect_fail "perplexity needs exactly one of --text" "$Q" search --model "$M" --objective throughput --max-ppl 9
expect_fail "apply to --objective ppl and --max-ppl only" "$Q" search --model "$M" --objective throughput --text "$TXT"
expect_fail "--max-ppl goes with --objective throughput" run --max-ppl 9 --history "$T/d.jsonl"
expect_fail "it is the objective" "$Q" search --model "$M" --objective error --max-size 1 --max-error 0.1
expect_fail "--max-error \"-0.1\"" "$Q" search --model "$M" --objective throughput --max-error -0.1
expect_fail "no initial plan meets the limits" run --max-size 0.00001 --history "$T/d.jsonl"
expect_fail "no initial plan meets the limits" "$Q" search --model "$M" --objective throughput --max-error 0.0001 \
  --history "$T/d.jsonl"
expect_fail "--max-size \"abc\"" run --max-size abc --history "$T/d.jsonl"
expect_fail "--quant-cache \"-1\"" run --quant-cache -1 --history "$T/d.jsonl"
if [ "$(uname)" = Linux ]; then # an unwritable plot prefix: a clear error after the trials; the history stays whole
  expect_fail "/nonexistent-dir/p_pareto.png" run --trials 5 --history "$T/p.jsonl" --output "$T/p.csv" --plots /nonexistent-dir/p
  [ "$(wc -l < "$T/p.jsonl")" -eq 6 ] && ok || bad "history after the plot failure: $(wc -l < "$T/p.jsonl") lines"
fi
cat > "$T/space_overlap.json" <<'EOF'
{"parameters": [{"name": "bitwidth", "name_format": "bitwidth.{i}.", "layers": [
  {"range": [0, 3], "type": "choice", "values": [4, 8]}, {"range": [2, 5], "type": "choice", "values": [3]}]},
 {"name": "groupsize", "name_format": "groupsize.{i}.", "layers": [{"range": [0, 5], "type": "choice", "values": [64]}]}]}
EOF
expect_fail "space_overlap.json" run --space "$T/space_overlap.json" --history "$T/e.jsonl"
echo '{"initial_samples": [{"bitwidth.0.": 7}]}' > "$T/bad_samples.json"
expect_fail "bad_samples.json" run --initial-samples "$T/bad_samples.json" --history "$T/f.jsonl"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
