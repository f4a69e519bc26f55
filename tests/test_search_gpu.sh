#!/usr/bin/env bash
# ctest-labels: gpu
# test_search_gpu.sh — qjit search with its trials on the GPU (--device cuda), on
# stories260K: a throughput search under the layer-output error limit builds every
# trial's kernels (through the kernel cache) and times its decode on the device, each
# trial within the limit; a throughput search under --max-ppl measures perplexity on
# the GPU, and the first trial's (a uniform plan) equals the CPU's for that plan
# within 1e-3 relative; --gpus runs the trials in worker processes, one per device.
# Skips (77) without a CUDA device or ../shared.
set -u
source "$(dirname "$0")/cli_lib.sh"
search_test_setup search_gpu
if ! "$Q" bench --model "$M" --device cuda --tokens 4 >"$T/probe.txt" 2>&1; then
  echo "SKIP: no CUDA device here ($(tail -1 "$T/probe.txt"))"; exit 77
fi
out=$("$Q" search --model "$M" --objective throughput --max-error 0.06 --device cuda --trials 5 --init 3 --repeats 2 \
  --decode-tokens 32 --history "$T/g.jsonl" --output "$T/g.csv" 2>&1) && ok || bad "GPU throughput search: $out"
python3 - "$T/g.jsonl" <<'EOF' && ok || bad "GPU throughput history: $(cat "$T/g.jsonl")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines[0]["search"]["device"] == "cuda"
tr = lines[1:]
assert len(tr) == 5
for t in tr:
    assert 0 < t["layer_error"] <= 0.06 and t["cal_throughput"] > 0 and len(t["throughput_runs"]) == 2, t
    assert t["gpu_kernels"] > 0 and 0 <= t["gpu_kernels_compiled"] <= t["gpu_kernels"], t
EOF
out=$("$Q" search --model "$M" --objective throughput --max-ppl 12 --text "$TXT" --max-tokens 300 --device cuda \
  --trials 3 --init 2 --repeats 2 --decode-tokens 16 --history "$T/p.jsonl" --output "$T/p.csv" 2>&1) && ok || bad "GPU max-ppl search: $out"
read -r gppl plan <<<"$(python3 - "$T/p.jsonl" <<'EOF'
import json, sys
t = json.loads(list(open(sys.argv[1]))[1])
q = t["quant_config"]
b, g = q["bitwidth.0."], q["groupsize.0."]
assert all(v == b for k, v in q.items() if k.startswith("bitwidth")) and all(v == g for k, v in q.items() if k.startswith("groupsize"))
print(t["cal_PPL"], "int%d-g%d" % (b, g))
EOF
)"
cppl=$("$Q" eval --model "$M" --plan "$plan" --text "$TXT" --max-tokens 300 --json |
       python3 -c 'import json,sys; print(json.load(sys.stdin)["ppl"])')
python3 -c 'import sys; g, c = map(float, sys.argv[1:]); sys.exit(0 if abs(g - c) <= 1e-3 * c else 1)' "${gppl:-0}" "${cppl:-1}" &&
  ok || bad "GPU trial perplexity $gppl differs from the CPU's $cppl for $plan"
# one worker process per device (two devices when there are two, else two workers on device 0)
ng=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
list=0,0; [ "${ng:-0}" -ge 2 ] && list=0,1
out=$("$Q" search --model "$M" --objective throughput --max-error 0.06 --gpus $list --trials 4 --init 2 --repeats 2 \
  --decode-tokens 16 --history "$T/w.jsonl" --output "$T/w.csv" 2>&1) && ok || bad "--gpus $list search: $out"
case "$out" in *"2 worker processes, on CUDA devices $list"*) ok ;; *) bad "no worker line for --gpus $list: $out" ;; esac
python3 - "$T/w.jsonl" <<'EOF' && ok || bad "--gpus history: $(cat "$T/w.jsonl")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines[0]["search"]["workers"] == 2 and lines[0]["search"]["device"] == "cuda"
tr = lines[1:]
assert [t["trial"] for t in tr] == [0, 1, 2, 3]
assert all(0 < t["layer_error"] <= 0.06 and t["cal_throughput"] > 0 and t["gpu_kernels"] > 0 for t in tr)
EOF
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
