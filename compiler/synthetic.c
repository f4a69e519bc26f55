/* synthetic.c — random-weight models of real shapes (Llama-3-8B, Llama-2-7B,
 * Mistral-7B, small ones), deterministic from a seed. Used to measure speed at
 * real sizes; every report labels such a model synthetic. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_model.h"
#include "loaders.h"

typedef struct preset {
    const char *name;
    qj_config cfg;
} preset;

/* arch, dim, hidden, layers, heads, kv heads, head_dim, vocab, seq, theta, eps, tied, bias, rope, bos, eos */
static const preset presets[] = {
    {"llama3-8b", {QJ_ARCH_LLAMA, 4096, 14336, 32, 32, 8, 128, 128256, 8192, 500000.0f, 1e-5f, 0, 0, QJ_ROPE_HALF, 128000, 128001}},
    {"llama2-7b", {QJ_ARCH_LLAMA, 4096, 11008, 32, 32, 32, 128, 32000, 4096, 10000.0f, 1e-5f, 0, 0, QJ_ROPE_HALF, 1, 2}},
    {"mistral-7b", {QJ_ARCH_MISTRAL, 4096, 14336, 32, 32, 8, 128, 32000, 32768, 10000.0f, 1e-5f, 0, 0, QJ_ROPE_HALF, 1, 2}},
    {"qwen2-0.5b", {QJ_ARCH_QWEN2, 896, 4864, 24, 14, 2, 64, 151936, 32768, 1000000.0f, 1e-6f, 1, 1, QJ_ROPE_HALF, 151643, 151645}},
    {"small", {QJ_ARCH_LLAMA, 512, 1376, 8, 8, 2, 64, 4096, 1024, 10000.0f, 1e-5f, 0, 0, QJ_ROPE_HALF, 1, 2}},
    {"tiny", {QJ_ARCH_LLAMA, 128, 344, 2, 4, 2, 32, 512, 256, 10000.0f, 1e-5f, 1, 0, QJ_ROPE_HALF, 1, 2}},
};
#define N_PRESETS (sizeof presets / sizeof presets[0])

const char *const *qj_synthetic_presets(void) {
    static const char *names[N_PRESETS + 1];
    for (size_t i = 0; i < N_PRESETS; i++) names[i] = presets[i].name;
    names[N_PRESETS] = NULL;
    return names;
}

qj_status qj_synthetic_config(const char *name, qj_config *cfg) {
    for (size_t i = 0; i < N_PRESETS; i++)
        if (!strcmp(presets[i].name, name)) {
            *cfg = presets[i].cfg;
            return QJ_OK;
        }
    char list[256] = "";
    for (size_t i = 0; i < N_PRESETS; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, presets[i].name, sizeof list - strlen(list) - 1);
    }
    return qj_fail(QJ_ERR_INVALID, "unknown synthetic preset \"%s\" (expected one of: %s, or a config.json path)",
                   name, list);
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Fill n values ~ N(0, std^2) (sum of four uniforms, rescaled), or constant
 * `fill` when std == 0. Chunks of 64Ki values get their own stream so the
 * result does not depend on the number of threads. */
static void fill_random(void *dst, qj_dtype dt, size_t n, uint64_t seed, float std, float fill) {
    const size_t chunk = 1 << 16;
    size_t nchunks = (n + chunk - 1) / chunk;
    #pragma omp parallel for schedule(static)
    for (size_t c = 0; c < nchunks; c++) {
        uint64_t st = seed ^ (0xd1b54a32d192ed03ull * (c + 1));
        float buf[256];
        size_t i0 = c * chunk, i1 = i0 + chunk < n ? i0 + chunk : n;
        for (size_t i = i0; i < i1; i += 256) {
            size_t m = i1 - i < 256 ? i1 - i : 256;
            for (size_t j = 0; j < m; j++) {
                if (std == 0.0f) { buf[j] = fill; continue; }
                uint64_t r = splitmix64(&st);
                float u = (float)(r & 0xffff) + (float)((r >> 16) & 0xffff) + (float)((r >> 32) & 0xffff) +
                          (float)(r >> 48);
                buf[j] = (u / 65536.0f - 2.0f) * 1.7320508f * std; /* variance of the sum of 4 U(0,1) = 1/3 */
            }
            qj_convert_from_f32((char *)dst + i * qj_dtype_size(dt), dt, buf, m);
        }
    }
}

static qj_status make_tensor(qj_model *m, qj_tensor *t, const char *name, qj_dtype dt, int64_t d0, int64_t d1,
                             uint64_t seed, float std, float fill) {
    int64_t shape[2] = {d0, d1};
    int ndim = d1 ? 2 : 1;
    size_t n = (size_t)d0 * (size_t)(d1 ? d1 : 1), bytes = n * qj_dtype_size(dt);
    void *p = malloc(bytes ? bytes : 1);
    if (!p) return qj_fail(QJ_ERR_NOMEM, "out of memory for synthetic tensor %s (%zu bytes)", name, bytes);
    qj_status s = qj_model_adopt(m, p, bytes, 0);
    if (s) { free(p); return s; }
    fill_random(p, dt, n, seed, std, fill);
    qj_tensor_set(t, name, dt, ndim, shape, p);
    return QJ_OK;
}

qj_status qj_load_synthetic(const char *preset_name, uint64_t seed, qj_dtype dtype, qj_model **out) {
    *out = NULL;
    qj_config cfg;
    size_t plen = strlen(preset_name);
    int is_config = plen > 5 && !strcmp(preset_name + plen - 5, ".json");
    qj_status s = is_config ? qj_hf_config_read(preset_name, &cfg, NULL) : qj_synthetic_config(preset_name, &cfg);
    if (s) return s;
    if (dtype != QJ_DTYPE_F32 && dtype != QJ_DTYPE_F16 && dtype != QJ_DTYPE_BF16)
        return qj_fail(QJ_ERR_INVALID, "synthetic weights must be f32, f16 or bf16");
    qj_model *m;
    if ((s = qj_model_alloc(&m, &cfg))) return s;
    m->source = QJ_SOURCE_SYNTHETIC;
    m->synthetic = 1;
    snprintf(m->origin, sizeof m->origin, "synthetic:%s (seed %llu)", preset_name, (unsigned long long)seed);
    const qj_config *c = &cfg;
    int64_t qd = (int64_t)c->n_heads * c->head_dim, kvd = (int64_t)c->n_kv_heads * c->head_dim;
    uint64_t id = 0;
#define SEED (seed * 0x9e3779b97f4a7c15ull + (++id) * 0x632be59bd9b4e019ull)
    char name[QJ_NAME_MAX];
    if ((s = make_tensor(m, &m->tok_embedding, "model.embed_tokens.weight", dtype, c->vocab_size, c->dim, SEED, 1.0f, 0)))
        goto fail;
    if ((s = make_tensor(m, &m->final_norm, "model.norm.weight", dtype, c->dim, 0, SEED, 0, 1.0f))) goto fail;
    if (c->tied_embeddings) {
        m->lm_head = m->tok_embedding;
    } else if ((s = make_tensor(m, &m->lm_head, "lm_head.weight", dtype, c->vocab_size, c->dim, SEED,
                                1.0f / sqrtf((float)c->dim), 0)))
        goto fail;
    for (int i = 0; i < c->n_layers; i++) {
        qj_layer *L = &m->layers[i];
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", i);
        if ((s = make_tensor(m, &L->attn_norm, name, dtype, c->dim, 0, SEED, 0, 1.0f))) goto fail;
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", i);
        if ((s = make_tensor(m, &L->ffn_norm, name, dtype, c->dim, 0, SEED, 0, 1.0f))) goto fail;
        for (int l = 0; l < QJ_LIN_COUNT; l++) {
            int64_t rows, cols;
            switch (l) {
            case QJ_LIN_Q: rows = qd; cols = c->dim; break;
            case QJ_LIN_K:
            case QJ_LIN_V: rows = kvd; cols = c->dim; break;
            case QJ_LIN_O: rows = c->dim; cols = qd; break;
            case QJ_LIN_DOWN: rows = c->dim; cols = c->hidden_dim; break;
            default: rows = c->hidden_dim; cols = c->dim; break;
            }
            qj_hf_linear_name(name, sizeof name, i, (qj_linear)l);
            if ((s = make_tensor(m, qj_layer_linear(L, (qj_linear)l), name, dtype, rows, cols, SEED,
                                 1.0f / sqrtf((float)cols), 0)))
                goto fail;
        }
        if (c->qkv_bias) {
            snprintf(name, sizeof name, "model.layers.%d.self_attn.q_proj.bias", i);
            if ((s = make_tensor(m, &L->bq, name, dtype, qd, 0, SEED, 0.02f, 0))) goto fail;
            snprintf(name, sizeof name, "model.layers.%d.self_attn.k_proj.bias", i);
            if ((s = make_tensor(m, &L->bk, name, dtype, kvd, 0, SEED, 0.02f, 0))) goto fail;
            snprintf(name, sizeof name, "model.layers.%d.self_attn.v_proj.bias", i);
            if ((s = make_tensor(m, &L->bv, name, dtype, kvd, 0, SEED, 0.02f, 0))) goto fail;
        }
    }
#undef SEED
    if ((s = qj_model_validate(m))) goto fail;
    *out = m;
    return QJ_OK;
fail:
    qj_model_free(m);
    return s;
}
