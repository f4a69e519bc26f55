"""llama_ref.py - an independent NumPy reference for qjit's forward pass,
perplexity protocol and round-to-nearest (RTN) weight quantizer.

Written from the format/semantics description only (llama2.c checkpoints,
run.c forward semantics); it shares no code with qjit's C implementation.
The forward pass runs in float64 so that it is a tight reference for the
float32 C code.

Public API:
    load_checkpoint(path)                     -> model dict (float32 arrays)
    quantize_rtn(W, bits, group, symmetric)   -> dequantized float32 W
    quantize_model(model, bits, group, sym)   -> model dict, layer linears RTN'd
    quantize_model_plan(model, plan_name)     -> same, from "int4-g32-sym" etc.
    forward_logits(model, tokens)             -> (T, vocab) float64 logits
    forward_nll(model, ids, ctx=None)         -> (mean nll, count)
    write_checkpoint_v1(model, path)          -> write the version-1 format

Run as a script for a quick standalone check:
    python3 llama_ref.py MODEL.bin IDS_FILE [--ctx N] [--plan P ...]
"""
import os
import struct
import sys

# small matrices: one BLAS thread is fastest (only effective before numpy loads)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

BOS = 1
V1_MAGIC = 0x616B3432
LINEARS = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")
RMS_EPS = 1e-5
ROPE_THETA = 10000.0


# ---------------------------------------------------------------- loading

def _derive(cfg):
    cfg["head_size"] = cfg["dim"] // cfg["n_heads"]
    cfg["kv_dim"] = cfg["dim"] * cfg["n_kv_heads"] // cfg["n_heads"]
    return cfg


def load_checkpoint(path):
    """Read a llama2.c checkpoint (legacy header or version-1 header).

    Returns a dict with the config ints (dim, hidden_dim, n_layers, n_heads,
    n_kv_heads, vocab_size, seq_len, head_size, kv_dim, shared_classifier)
    and float32 arrays: tok_emb (V, D), rms_att (L, D), rms_ffn (L, D),
    rms_final (D,), wq/wk/wv/wo/w1/w2/w3 (L, out, in), wcls (V, D).
    """
    with open(path, "rb") as f:
        raw = f.read()
    magic = struct.unpack_from("<I", raw, 0)[0]
    if magic == V1_MAGIC:
        version = struct.unpack_from("<i", raw, 4)[0]
        if version != 1:
            raise ValueError("%s: unsupported checkpoint version %d" % (path, version))
        p = struct.unpack_from("<7i", raw, 8)
        shared = raw[36] != 0
        offset = 256
        order = ["rms_att", "rms_ffn", "rms_final", "tok_emb",
                 "wq", "wk", "wv", "wo", "w1", "w2", "w3"]
    else:
        version = 0
        p = struct.unpack_from("<7i", raw, 0)
        shared = p[5] > 0
        offset = 28
        order = ["tok_emb", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn",
                 "w1", "w2", "w3", "rms_final", "freq_cis_real", "freq_cis_imag"]
    cfg = _derive(dict(dim=p[0], hidden_dim=p[1], n_layers=p[2], n_heads=p[3],
                       n_kv_heads=p[4], vocab_size=abs(p[5]), seq_len=p[6]))
    D, F, L, V = cfg["dim"], cfg["hidden_dim"], cfg["n_layers"], cfg["vocab_size"]
    KV, hs = cfg["kv_dim"], cfg["head_size"]
    shapes = {
        "tok_emb": (V, D), "rms_att": (L, D), "rms_ffn": (L, D), "rms_final": (D,),
        "wq": (L, D, D), "wk": (L, KV, D), "wv": (L, KV, D), "wo": (L, D, D),
        "w1": (L, F, D), "w2": (L, D, F), "w3": (L, F, D),
        "freq_cis_real": (cfg["seq_len"], hs // 2), "freq_cis_imag": (cfg["seq_len"], hs // 2),
        "wcls": (V, D),
    }
    if not shared:
        order.append("wcls")
    model = dict(cfg)
    model["shared_classifier"] = shared
    model["version"] = version
    for name in order:
        shape = shapes[name]
        n = int(np.prod(shape))
        if offset + 4 * n > len(raw):
            raise ValueError("%s: truncated checkpoint (reading %s)" % (path, name))
        model[name] = np.frombuffer(raw, dtype="<f4", count=n, offset=offset).reshape(shape).astype(np.float32)
        offset += 4 * n
    if shared:
        model["wcls"] = model["tok_emb"]
    model.pop("freq_cis_real", None)  # RoPE is computed, not read (run.c does the same)
    model.pop("freq_cis_imag", None)
    return model


def write_checkpoint_v1(model, path):
    """Write `model` in the version-1 llama2.c format (used to test the loader)."""
    hdr = struct.pack("<Ii7iB", V1_MAGIC, 1, model["dim"], model["hidden_dim"], model["n_layers"],
                      model["n_heads"], model["n_kv_heads"], model["vocab_size"], model["seq_len"],
                      1 if model["shared_classifier"] else 0)
    hdr += b"\0" * (256 - len(hdr))
    names = ["rms_att", "rms_ffn", "rms_final", "tok_emb"] + list(LINEARS)
    if not model["shared_classifier"]:
        names.append("wcls")
    with open(path, "wb") as f:
        f.write(hdr)
        for n in names:
            f.write(np.ascontiguousarray(model[n], dtype="<f4").tobytes())


def write_checkpoint_legacy(model, path):
    """Write `model` in the legacy llama2.c format (negative vocab = untied)."""
    V = model["vocab_size"] if model["shared_classifier"] else -model["vocab_size"]
    hs = model["head_size"]
    hdr = struct.pack("<7i", model["dim"], model["hidden_dim"], model["n_layers"], model["n_heads"],
                      model["n_kv_heads"], V, model["seq_len"])
    ang = np.arange(model["seq_len"])[:, None] / ROPE_THETA ** (np.arange(0, hs, 2) / hs)[None, :]
    arrays = [model[n] for n in ("tok_emb", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn",
                                 "w1", "w2", "w3", "rms_final")] + [np.cos(ang), np.sin(ang)]
    if not model["shared_classifier"]:
        arrays.append(model["wcls"])
    with open(path, "wb") as f:
        f.write(hdr)
        for a in arrays:
            f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())


# ---------------------------------------------------------------- quantizer

def _round_f16(x):
    """Round float32 values to float16 (nearest-even) and back to float32."""
    with np.errstate(over="ignore"):
        return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


def quantize_rtn(W, bits, group, symmetric=False):
    """RTN-quantize a weight W (N, K) and return the dequantized float32 W.

    Groups run along K (the input dimension) within each row; `group` is a
    multiple of 32, or None/0/-1 for per-channel (one group = the whole row).
    The last group of a row may be shorter than `group` (ragged K).
    Scales (and zeros) are stored as float16 and used rounded.
    """
    W = np.asarray(W, dtype=np.float32)
    if W.ndim != 2:
        raise ValueError("quantize_rtn expects a 2-D (N, K) weight")
    N, K = W.shape
    G = K if (group is None or group <= 0 or group >= K) else int(group)
    out = np.empty_like(W)
    qmax = (1 << bits) - 1
    half = 1 << (bits - 1)
    for k0 in range(0, K, G):
        w = W[:, k0:k0 + G]                      # (N, g), g <= G for the last group
        if symmetric:
            # signed value of largest magnitude; argmax returns the first on ties
            idx = np.argmax(np.abs(w), axis=1)
            a = w[np.arange(N), idx]
            s = _round_f16(a / np.float32(-half))[:, None]
            zero = s == 0
            with np.errstate(divide="ignore", invalid="ignore"):
                q = np.rint(w / np.where(zero, np.float32(1), s)) + half
            c = np.clip(q, 0, qmax)
            c = np.where(zero, np.float32(half), c).astype(np.float32)
            out[:, k0:k0 + G] = (c - np.float32(half)) * s
        else:
            xmin = w.min(axis=1)
            xmax = w.max(axis=1)
            s = _round_f16((xmax - xmin) / np.float32(qmax))[:, None]
            m = _round_f16(xmin)[:, None]
            zero = s == 0
            with np.errstate(divide="ignore", invalid="ignore"):
                q = np.rint((w - m) / np.where(zero, np.float32(1), s))
            c = np.clip(q, 0, qmax)
            c = np.where(zero, np.float32(0), c).astype(np.float32)
            out[:, k0:k0 + G] = c * s + m
    return out


def parse_plan(plan):
    """'fp32' -> None; 'int8-pc' -> (8, None, False); 'int4-g32-sym' -> (4, 32, True)."""
    if plan in ("fp32", "f32", "none"):
        return None
    parts = plan.split("-")
    if not parts[0].startswith("int"):
        raise ValueError("unknown plan %r" % plan)
    bits = int(parts[0][3:])
    group, sym = None, False
    for p in parts[1:]:
        if p == "pc":
            group = None
        elif p.startswith("g"):
            group = int(p[1:])
        elif p == "sym":
            sym = True
        elif p == "asym":
            sym = False
        else:
            raise ValueError("unknown plan component %r in %r" % (p, plan))
    return bits, group, sym


def quantize_model(model, bits, group, symmetric=False):
    """Copy of `model` with the 7 linear weights of every layer RTN-quantized
    (dequantized back to float32). Embedding, norms and classifier stay."""
    q = dict(model)
    q.pop("_f64", None)
    for name in LINEARS:
        q[name] = np.stack([quantize_rtn(model[name][l], bits, group, symmetric)
                            for l in range(model["n_layers"])])
    return q


def quantize_model_plan(model, plan):
    spec = parse_plan(plan)
    return model if spec is None else quantize_model(model, *spec)


# ---------------------------------------------------------------- forward

def _rmsnorm(x, w):
    return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + RMS_EPS))


def _rope(x, cos, sin):
    """Interleaved RoPE on x (T, n_heads, head_size): pairs (2i, 2i+1)."""
    a = x[..., 0::2]
    b = x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


def _f64(model):
    """float64 copies of the weights, cached in the dict."""
    keys = ["tok_emb", "rms_att", "rms_ffn", "rms_final", "wcls"] + list(LINEARS)
    c = model.get("_f64")
    # valid only for the very arrays it was made from (dict copies share it)
    if c is None or any(c["_src"][k] is not model[k] for k in keys):
        c = {k: np.asarray(model[k], dtype=np.float64) for k in keys}
        c["_src"] = {k: model[k] for k in keys}
        model["_f64"] = c
    return c


def forward_logits(model, tokens):
    """Logits (T, vocab) for the window `tokens` at positions 0..T-1."""
    W = _f64(model)
    tokens = np.asarray(tokens, dtype=np.int64)
    T = tokens.shape[0]
    H, KVH, hs = model["n_heads"], model["n_kv_heads"], model["head_size"]
    rep = H // KVH
    pos = np.arange(T, dtype=np.float64)
    freq = 1.0 / ROPE_THETA ** (np.arange(0, hs, 2, dtype=np.float64) / hs)
    ang = pos[:, None] * freq[None, :]                 # (T, hs/2)
    cos = np.cos(ang)[:, None, :]
    sin = np.sin(ang)[:, None, :]
    mask = np.triu(np.full((T, T), -np.inf), k=1)
    x = W["tok_emb"][tokens]                           # (T, D)
    for l in range(model["n_layers"]):
        xb = _rmsnorm(x, W["rms_att"][l])
        q = (xb @ W["wq"][l].T).reshape(T, H, hs)
        k = (xb @ W["wk"][l].T).reshape(T, KVH, hs)
        v = (xb @ W["wv"][l].T).reshape(T, KVH, hs)
        q = _rope(q, cos, sin).transpose(1, 0, 2)      # (H, T, hs)
        k = _rope(k, cos, sin).transpose(1, 0, 2)      # (KVH, T, hs)
        v = v.transpose(1, 0, 2)
        kh = k[np.arange(H) // rep]                    # GQA: head h uses kv head h // rep
        vh = v[np.arange(H) // rep]
        s = q @ kh.transpose(0, 2, 1) / np.sqrt(hs) + mask
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        att = (s @ vh).transpose(1, 0, 2).reshape(T, H * hs)
        x = x + att @ W["wo"][l].T
        xb = _rmsnorm(x, W["rms_ffn"][l])
        h1 = xb @ W["w1"][l].T
        h3 = xb @ W["w3"][l].T
        x = x + ((h1 / (1.0 + np.exp(-h1))) * h3) @ W["w2"][l].T
    x = _rmsnorm(x, W["rms_final"])
    return x @ W["wcls"].T


def forward_nll(model, ids, ctx=None):
    """Mean NLL of the id stream `ids` (no BOS) under qjit's eval protocol.

    The stream is cut into consecutive non-overlapping chunks of ctx-1 ids
    (the last may be shorter); each window is [BOS] + chunk; the logits at
    window position p predict window token p+1, so each id is predicted once.
    Returns (mean nll, number of predicted ids)."""
    ids = np.asarray(ids, dtype=np.int64)
    if ctx is None:
        ctx = model["seq_len"]
    if ctx < 2:
        raise ValueError("ctx must be >= 2")
    step = ctx - 1
    total = 0.0
    count = 0
    for start in range(0, ids.shape[0], step):
        chunk = ids[start:start + step]
        window = np.concatenate([[BOS], chunk])
        logits = forward_logits(model, window[:-1])    # position p predicts window[p+1]
        mx = logits.max(axis=-1, keepdims=True)
        lse = mx[:, 0] + np.log(np.exp(logits - mx).sum(axis=-1))
        total += float(np.sum(lse - logits[np.arange(chunk.shape[0]), chunk]))
        count += chunk.shape[0]
    return (total / count if count else float("nan")), count


def read_ids(path):
    with open(path) as f:
        return np.array([int(t) for t in f.read().split()], dtype=np.int64)


def _main(argv):
    import argparse
    import time
    ap = argparse.ArgumentParser(description="NumPy reference NLL for a llama2.c checkpoint")
    ap.add_argument("model")
    ap.add_argument("ids", help="file of whitespace-separated token ids (no BOS)")
    ap.add_argument("--ctx", type=int, default=None)
    ap.add_argument("--plan", action="append", default=None)
    a = ap.parse_args(argv)
    model = load_checkpoint(a.model)
    ids = read_ids(a.ids)
    for plan in a.plan or ["fp32"]:
        t0 = time.time()
        nll, n = forward_nll(quantize_model_plan(model, plan), ids, a.ctx)
        print("%-14s nll %.6f  ppl %.4f  tokens %d  (%.2fs)" % (plan, nll, np.exp(nll), n, time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
