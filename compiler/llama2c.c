/* llama2c.c — loads llama2.c checkpoints (legacy and version-1 headers). */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "loaders.h"

#define LLAMA2C_MAGIC 0x616b3432u /* "ak42" */

void qj_hf_linear_name(char *buf, size_t n, int layer, qj_linear l) {
    const char *part = (l <= QJ_LIN_O) ? "self_attn" : "mlp";
    snprintf(buf, n, "model.layers.%d.%s.%s.weight", layer, part, qj_linear_name(l));
}

typedef struct cursor {
    const unsigned char *base; /* file start */
    const float *p;   /* next weight */
    const float *end; /* end of the file */
} cursor;

/* Take count floats from the cursor, or fail naming what was being read. */
static qj_status take(cursor *c, uint64_t count, const char *what, const float **out) {
    if ((uint64_t)(c->end - c->p) < count)
        return qj_fail(QJ_ERR_FORMAT, "truncated: %s needs %llu floats at byte offset %llu, %llu remain",
                       what, (unsigned long long)count,
                       (unsigned long long)((const unsigned char *)c->p - c->base),
                       (unsigned long long)(c->end - c->p));
    *out = c->p;
    c->p += count;
    return QJ_OK;
}

static void set1(qj_tensor *t, const char *name, const float *data, int64_t d0) {
    qj_tensor_set(t, name, QJ_DTYPE_F32, 1, &d0, data);
}

static void set2(qj_tensor *t, const char *name, const float *data, int64_t d0, int64_t d1) {
    int64_t shape[2] = {d0, d1};
    qj_tensor_set(t, name, QJ_DTYPE_F32, 2, shape, data);
}

qj_status qj_load_llama2c(const char *path, qj_model **out) {
    *out = NULL;
    void *map;
    size_t len;
    qj_status s = qj_map_file(path, &map, &len);
    if (s) return s;
    const unsigned char *bytes = map;
    int32_t h[7];
    size_t header = 0;
    int shared = 1;
    uint32_t magic = 0;
    if (len >= 4) memcpy(&magic, bytes, 4);
    if (magic == LLAMA2C_MAGIC) {
        int32_t version;
        if (len < 256) { s = qj_fail(QJ_ERR_FORMAT, "%s: truncated version header (%zu bytes, need 256)", path, len); goto fail; }
        memcpy(&version, bytes + 4, 4);
        if (version != 1) {
            s = qj_fail(QJ_ERR_UNSUPPORTED, "%s: llama2.c checkpoint version %d is not supported (fp32 versions 0 and 1 are)",
                        path, version);
            goto fail;
        }
        memcpy(h, bytes + 8, sizeof h);
        shared = bytes[36] != 0;
        header = 256;
    } else {
        if (len < sizeof h) { s = qj_fail(QJ_ERR_FORMAT, "%s: truncated header (%zu bytes, need 28)", path, len); goto fail; }
        memcpy(h, bytes, sizeof h);
        shared = h[5] > 0;
        if (h[5] < 0) h[5] = -h[5];
        header = sizeof h;
    }
    qj_config cfg = {0};
    cfg.arch = QJ_ARCH_LLAMA;
    cfg.dim = h[0];
    cfg.hidden_dim = h[1];
    cfg.n_layers = h[2];
    cfg.n_heads = h[3];
    cfg.n_kv_heads = h[4];
    cfg.vocab_size = h[5];
    cfg.seq_len = h[6];
    cfg.rope_theta = 10000.0f;
    cfg.rms_eps = 1e-5f;
    cfg.tied_embeddings = shared;
    cfg.rope_style = QJ_ROPE_INTERLEAVED;
    cfg.bos_id = 1;
    cfg.eos_id = 2;
    const char *names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    for (int i = 0; i < 7; i++)
        if (h[i] <= 0 || h[i] > (1 << 24)) {
            s = qj_fail(QJ_ERR_FORMAT, "%s: header field %s = %d is out of range (1..%d)", path, names[i], h[i], 1 << 24);
            goto fail;
        }
    if (cfg.n_layers > 4096 || cfg.dim % cfg.n_heads || cfg.n_heads % cfg.n_kv_heads) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: inconsistent header: dim %d, n_heads %d, n_kv_heads %d, n_layers %d", path,
                    cfg.dim, cfg.n_heads, cfg.n_kv_heads, cfg.n_layers);
        goto fail;
    }
    cfg.head_dim = cfg.dim / cfg.n_heads;
    if (cfg.head_dim % 2) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: head size %d must be even", path, cfg.head_dim);
        goto fail;
    }
    uint64_t L = (uint64_t)cfg.n_layers, D = (uint64_t)cfg.dim, H = (uint64_t)cfg.hidden_dim,
             V = (uint64_t)cfg.vocab_size, KV = D * (uint64_t)cfg.n_kv_heads / (uint64_t)cfg.n_heads,
             hs = (uint64_t)cfg.head_dim;
    uint64_t expect = V * D + L * D * 2 + D + L * (D * D * 2 + KV * D * 2 + H * D * 3) + (shared ? 0 : V * D);
    if (header == 28) expect += (uint64_t)cfg.seq_len * hs; /* freq_cis_real + imag (legacy only) */
    if ((len - header) % 4 != 0 || (len - header) / 4 != expect) {
        s = qj_fail(QJ_ERR_FORMAT,
                    "%s: file has %zu bytes of weights, the header (dim %d, hidden %d, layers %d, heads %d, "
                    "kv heads %d, vocab %d, seq %d, %s classifier) implies %llu",
                    path, len - header, cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads,
                    cfg.vocab_size, cfg.seq_len, shared ? "shared" : "separate",
                    (unsigned long long)(expect * 4));
        goto fail;
    }
    qj_model *m;
    if ((s = qj_model_alloc(&m, &cfg))) goto fail;
    if ((s = qj_model_adopt(m, map, len, 1))) { qj_model_free(m); goto fail; }
    m->source = QJ_SOURCE_LLAMA2C;
    snprintf(m->origin, sizeof m->origin, "%s", path);
    cursor c = {bytes, (const float *)(bytes + header), (const float *)(bytes + len)};
    const float *emb = NULL, *rms_att = NULL, *rms_ffn = NULL, *rms_final = NULL, *wq = NULL, *wk = NULL,
                *wv = NULL, *wo = NULL, *w1 = NULL, *w2 = NULL, *w3 = NULL, *wcls = NULL, *skip = NULL;
    /* sizes were checked above, so take() cannot fail; keep the checks anyway */
    if (header == 256) {
        if ((s = take(&c, L * D, "rms_att", &rms_att)) || (s = take(&c, L * D, "rms_ffn", &rms_ffn)) ||
            (s = take(&c, D, "rms_final", &rms_final)) || (s = take(&c, V * D, "token_embedding", &emb)))
            goto fail_m;
    } else {
        if ((s = take(&c, V * D, "token_embedding", &emb)) || (s = take(&c, L * D, "rms_att", &rms_att)))
            goto fail_m;
    }
    if ((s = take(&c, L * D * D, "wq", &wq)) || (s = take(&c, L * KV * D, "wk", &wk)) ||
        (s = take(&c, L * KV * D, "wv", &wv)) || (s = take(&c, L * D * D, "wo", &wo)))
        goto fail_m;
    if (header == 28 && (s = take(&c, L * D, "rms_ffn", &rms_ffn))) goto fail_m;
    if ((s = take(&c, L * H * D, "w1", &w1)) || (s = take(&c, L * D * H, "w2", &w2)) ||
        (s = take(&c, L * H * D, "w3", &w3)))
        goto fail_m;
    if (header == 28) {
        if ((s = take(&c, D, "rms_final", &rms_final)) || (s = take(&c, (uint64_t)cfg.seq_len * hs, "freq_cis", &skip)))
            goto fail_m;
    }
    wcls = emb;
    if (!shared && (s = take(&c, V * D, "wcls", &wcls))) goto fail_m;

    set2(&m->tok_embedding, "model.embed_tokens.weight", emb, (int64_t)V, (int64_t)D);
    set1(&m->final_norm, "model.norm.weight", rms_final, (int64_t)D);
    set2(&m->lm_head, shared ? "model.embed_tokens.weight" : "lm_head.weight", wcls, (int64_t)V, (int64_t)D);
    for (uint64_t i = 0; i < L; i++) {
        qj_layer *ly = &m->layers[i];
        char name[QJ_NAME_MAX];
        int li = (int)i;
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", li);
        set1(&ly->attn_norm, name, rms_att + i * D, (int64_t)D);
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", li);
        set1(&ly->ffn_norm, name, rms_ffn + i * D, (int64_t)D);
        qj_hf_linear_name(name, sizeof name, li, QJ_LIN_Q);
        set2(&ly->wq, name, wq + i * D * D, (int64_t)D, (int64_t)D);
        qj_hf_linear_name(name, sizeof name, li, QJ_LIN_K);
        set2(&ly->wk, name, wk + i * KV * D, (int64_t)KV, (int64_t)D);
        qj_hf_linear_name(name, sizeof name, li, QJ_LIN_V);
        set2(&ly->wv, name, wv + i * KV * D, (int64_t)KV, (int64_t)D);
        qj_hf_linear_name(name, sizeof name, li, QJ_LIN_O);
        set2(&ly->wo, name, wo + i * D * D, (int64_t)D, (int64_t)D);
        qj_hf_linear_name(name, sizeof name, li, QJ_LIN_GATE);
        set2(&ly->w_gate, name, w1 + i * H * D, (int64_t)H, (int64_t)D);
        qj_hf_linear_name(name, sizeof name, li, QJ_LIN_DOWN);
        set2(&ly->w_down, name, w2 + i * D * H, (int64_t)D, (int64_t)H);
        qj_hf_linear_name(name, sizeof name, li, QJ_LIN_UP);
        set2(&ly->w_up, name, w3 + i * H * D, (int64_t)H, (int64_t)D);
    }
    if ((s = qj_model_validate(m))) goto fail_m;
    *out = m;
    return QJ_OK;
fail_m:
    qj_model_free(m);
    return qj_fail_context(s, "%s", path);
fail:
    munmap(map, len);
    return s;
}
