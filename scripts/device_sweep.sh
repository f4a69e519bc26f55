#!/usr/bin/env bash
# device_sweep.sh — on the GPU machine: time the packed GEMV kernels of a
# one-layer Llama-3-8B-shaped model over the tuning knobs (rows per block,
# warps, activation staging) for several plans; prints one line per setting.
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.device/lib:${LD_LIBRARY_PATH:-} QJ_CACHE_DIR=${QJ_CACHE_DIR:-/tmp/qjcache}
cat > /tmp/l3_1layer.json <<'JSON'
{"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 1,
 "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000, "max_position_embeddings": 8192,
 "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": false, "hidden_act": "silu"}
JSON
for plan in "$@"; do
  for rows in 4 8 16; do for warps in 4 8; do for stage in 0 1; do
    [ $rows -eq 16 ] && [ $warps -eq 8 ] && continue
    line=$(QJ_GEMV_ROWS=$rows QJ_GEMV_WARPS=$warps QJ_GEMV_STAGE=$stage ./build-gpu/qjit bench --kernels \
      --synthetic /tmp/l3_1layer.json --plan "$plan" --iters 60 2>&1 | grep -E "^layers" | awk '{printf "%s %s%% ", $1, $9}')
    echo "$plan rows=$rows warps=$warps stage=$stage | $line"
  done; done; done
done
