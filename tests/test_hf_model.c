// ctest-labels: unit
/* test_hf_model.c — Hugging Face directories: qj_save_hf -> qj_load_hf round
 * trips (single file and shards, f32/f16/bf16, tied, GQA, Qwen2 biases), the
 * interleaved -> half RoPE permutation, and the loader's and converter's errors. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hf_model.h"
#include "qj_io.h"
#include "qj_test.h"
#include "safetensors.h"
#include "loaders.h"
#include "qj_forward.h"

/* ---- helpers ----------------------------------------------------------- */

static uint32_t rng = 1;
static float rnd(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* Remove a directory and the files in it (our outputs are flat). */
static void rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[4300];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < sizeof p) unlink(p);
            }
        closedir(d);
    }
    rmdir(dir);
}

/* A scratch directory path, removed if left over from an earlier run. */
static const char *fresh(const char *name) {
    const char *p = qj_test_tmp(name);
    rm_tree(p);
    return p;
}

/* 1 when a "<prefix>.tmp." entry is left in the scratch directory. */
static int temp_left(const char *prefix) {
    DIR *d = opendir(qj_test_tmp(""));
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    size_t n = strlen(prefix);
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, prefix, n) && !strncmp(e->d_name + n, ".tmp.", 5)) found = 1;
    closedir(d);
    return found;
}

static int exists(const char *dir, const char *name) {
    char p[4300];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* A random f32 tensor owned by m. */
static void fill(qj_model *m, qj_tensor *t, const char *name, int64_t d0, int64_t d1) {
    int64_t shape[2] = {d0, d1};
    size_t n = (size_t)(d0 * (d1 ? d1 : 1));
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = rnd();
    qj_model_adopt(m, p, n * sizeof *p, 0);
    qj_tensor_set(t, name, QJ_DTYPE_F32, d1 ? 2 : 1, shape, p);
}

static qj_config base_config(void) {
    qj_config c = {0};
    c.arch = QJ_ARCH_LLAMA;
    c.dim = 32;
    c.hidden_dim = 48;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 4;
    c.head_dim = 8;
    c.vocab_size = 40;
    c.seq_len = 64;
    c.rope_theta = 10000.0f;
    c.rms_eps = 1e-5f;
    c.tied_embeddings = 1;
    c.rope_style = QJ_ROPE_HALF;
    c.bos_id = 1;
    c.eos_id = 2;
    return c;
}

static qj_model *make_model(const qj_config *cfg, uint32_t seed) {
    rng = seed;
    qj_model *m;
    if (qj_model_alloc(&m, cfg)) return NULL;
    int64_t D = cfg->dim, H = cfg->hidden_dim, V = cfg->vocab_size, qd = (int64_t)cfg->n_heads * cfg->head_dim,
            kvd = (int64_t)cfg->n_kv_heads * cfg->head_dim;
    fill(m, &m->tok_embedding, "tok", V, D);
    fill(m, &m->final_norm, "norm", D, 0);
    if (cfg->tied_embeddings) m->lm_head = m->tok_embedding;
    else fill(m, &m->lm_head, "lm_head", V, D);
    for (int i = 0; i < cfg->n_layers; i++) {
        qj_layer *L = &m->layers[i];
        fill(m, &L->attn_norm, "attn_norm", D, 0);
        fill(m, &L->wq, "wq", qd, D);
        fill(m, &L->wk, "wk", kvd, D);
        fill(m, &L->wv, "wv", kvd, D);
        fill(m, &L->wo, "wo", D, qd);
        if (cfg->qkv_bias) {
            fill(m, &L->bq, "bq", qd, 0);
            fill(m, &L->bk, "bk", kvd, 0);
            fill(m, &L->bv, "bv", kvd, 0);
        }
        fill(m, &L->ffn_norm, "ffn_norm", D, 0);
        fill(m, &L->w_gate, "w_gate", H, D);
        fill(m, &L->w_up, "w_up", H, D);
        fill(m, &L->w_down, "w_down", D, H);
    }
    return m;
}

/* Element i of t as f32 bits. */
static uint32_t bits_at(const qj_tensor *t, size_t i) {
    float f = qj_load_f32(t->data, t->dtype, i);
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

/* Original value rounded through dtype, as f32 bits. */
static uint32_t rounded_bits(float v, qj_dtype dt) {
    float r = dt == QJ_DTYPE_BF16 ? qj_bf16_to_f32(qj_f32_to_bf16(v))
              : dt == QJ_DTYPE_F16 ? qj_f16_to_f32(qj_f32_to_f16(v))
                                   : v;
    uint32_t b;
    memcpy(&b, &r, 4);
    return b;
}

/* Loaded tensor b equals original a written as dtype dt; rows of a may be
 * permuted (perm_hd > 0: interleaved -> half within heads of perm_hd rows). */
static int same_tensor(const qj_tensor *a, const qj_tensor *b, qj_dtype dt, int perm_hd) {
    if (!b->data || b->dtype != dt || a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    int64_t rows = a->shape[0], K = a->ndim == 2 ? a->shape[1] : 1;
    for (int64_t r = 0; r < rows; r++) {
        int64_t sr = r;
        if (perm_hd) {
            int64_t h = r / perm_hd, j = r % perm_hd, half = perm_hd / 2;
            sr = h * perm_hd + (j < half ? 2 * j : 2 * (j - half) + 1);
        }
        for (int64_t k = 0; k < K; k++)
            if (bits_at(b, (size_t)(r * K + k)) != rounded_bits(qj_load_f32(a->data, a->dtype, (size_t)(sr * K + k)), dt))
                return 0;
    }
    return 1;
}

/* Every tensor of b is a's, written as dt (wq/wk/bq/bk permuted when a is interleaved). */
static void check_same_model(const qj_model *a, const qj_model *b, qj_dtype dt, const char *what) {
    const qj_config *ca = &a->cfg, *cb = &b->cfg;
    QJ_CHECK_MSG(ca->arch == cb->arch && ca->dim == cb->dim && ca->hidden_dim == cb->hidden_dim &&
                     ca->n_layers == cb->n_layers && ca->n_heads == cb->n_heads &&
                     ca->n_kv_heads == cb->n_kv_heads && ca->head_dim == cb->head_dim &&
                     ca->vocab_size == cb->vocab_size && ca->seq_len == cb->seq_len &&
                     ca->rope_theta == cb->rope_theta && ca->rms_eps == cb->rms_eps &&
                     ca->tied_embeddings == cb->tied_embeddings && ca->qkv_bias == cb->qkv_bias &&
                     ca->bos_id == cb->bos_id && ca->eos_id == cb->eos_id,
                 "%s: config differs", what);
    QJ_CHECK(cb->rope_style == QJ_ROPE_HALF);
    QJ_CHECK(b->source == QJ_SOURCE_HF);
    int hd = ca->rope_style == QJ_ROPE_INTERLEAVED ? ca->head_dim : 0;
    QJ_CHECK_MSG(same_tensor(&a->tok_embedding, &b->tok_embedding, dt, 0), "%s: embedding", what);
    QJ_CHECK_MSG(same_tensor(&a->final_norm, &b->final_norm, dt, 0), "%s: final norm", what);
    QJ_CHECK_MSG(same_tensor(&a->lm_head, &b->lm_head, dt, 0), "%s: lm_head", what);
    if (ca->tied_embeddings) QJ_CHECK(b->lm_head.data == b->tok_embedding.data);
    else QJ_CHECK(b->lm_head.data != b->tok_embedding.data);
    for (int i = 0; i < ca->n_layers; i++) {
        const qj_layer *x = &a->layers[i], *y = &b->layers[i];
        int ok = same_tensor(&x->attn_norm, &y->attn_norm, dt, 0) && same_tensor(&x->wq, &y->wq, dt, hd) &&
                 same_tensor(&x->wk, &y->wk, dt, hd) && same_tensor(&x->wv, &y->wv, dt, 0) &&
                 same_tensor(&x->wo, &y->wo, dt, 0) && same_tensor(&x->ffn_norm, &y->ffn_norm, dt, 0) &&
                 same_tensor(&x->w_gate, &y->w_gate, dt, 0) && same_tensor(&x->w_up, &y->w_up, dt, 0) &&
                 same_tensor(&x->w_down, &y->w_down, dt, 0);
        if (ca->qkv_bias)
            ok = ok && same_tensor(&x->bq, &y->bq, dt, hd) && same_tensor(&x->bk, &y->bk, dt, hd) &&
                 same_tensor(&x->bv, &y->bv, dt, 0);
        QJ_CHECK_MSG(ok, "%s: layer %d differs", what, i);
    }
}

/* ---- round trips ------------------------------------------------------- */

static void roundtrip(const qj_config *cfg, qj_dtype dt, int shards, const char *name) {
    qj_model *m = make_model(cfg, 7u + (uint32_t)shards);
    QJ_CHECK(m != NULL);
    if (!m) return;
    const char *dir = fresh(name);
    qj_hf_save_info info;
    QJ_CHECK_OK(qj_save_hf_ex(m, dir, dt, shards, &info));
    int expect_tensors = 3 + cfg->n_layers * (9 + 3 * cfg->qkv_bias) - (cfg->tied_embeddings ? 1 : 0);
    QJ_CHECK_MSG(info.n_tensors == expect_tensors, "%s: %d tensors, expected %d", name, info.n_tensors,
                 expect_tensors);
    QJ_CHECK(info.n_files == (shards > 1 ? shards : 1));
    QJ_CHECK(info.tied == cfg->tied_embeddings);
    QJ_CHECK(info.rope_permuted == (cfg->rope_style == QJ_ROPE_INTERLEAVED));
    QJ_CHECK(exists(dir, "config.json"));
    if (shards > 1) {
        char f[64];
        snprintf(f, sizeof f, "model-00001-of-%05d.safetensors", shards);
        QJ_CHECK(exists(dir, f));
        snprintf(f, sizeof f, "model-%05d-of-%05d.safetensors", shards, shards);
        QJ_CHECK(exists(dir, f));
        QJ_CHECK(exists(dir, "model.safetensors.index.json"));
        QJ_CHECK(!exists(dir, "model.safetensors"));
    } else {
        QJ_CHECK(exists(dir, "model.safetensors"));
        QJ_CHECK(!exists(dir, "model.safetensors.index.json"));
    }
    QJ_CHECK(!temp_left(name));
    qj_model *b = NULL;
    QJ_CHECK_OK(qj_load_hf(dir, &b));
    if (b) check_same_model(m, b, dt, name);
    /* a reloaded model converts again to an identical directory content */
    if (b && shards <= 1) {
        const char *dir2 = fresh("hf_again");
        QJ_CHECK_OK(qj_save_hf(b, dir2, dt, 1));
        char p1[4300], p2[4300], *d1 = NULL, *d2 = NULL;
        size_t n1 = 0, n2 = 0;
        snprintf(p1, sizeof p1, "%s/model.safetensors", dir);
        snprintf(p2, sizeof p2, "%s/model.safetensors", dir2);
        QJ_CHECK_OK(qj_read_file(p1, &d1, &n1));
        QJ_CHECK_OK(qj_read_file(p2, &d2, &n2));
        QJ_CHECK_MSG(cfg->rope_style == QJ_ROPE_INTERLEAVED || (n1 == n2 && d1 && d2 && !memcmp(d1, d2, n1)),
                     "%s: second conversion differs", name);
        free(d1);
        free(d2);
    }
    qj_model_free(b);
    qj_model_free(m);
}

/* RoPE applied to one head vector x (length hd) at position pos. */
static void rope(float *x, int hd, int pos, float theta, qj_rope_style st) {
    for (int i = 0; i < hd / 2; i++) {
        float freq = powf(theta, -2.0f * (float)i / (float)hd), a = (float)pos * freq;
        float c = cosf(a), s = sinf(a);
        int i0 = st == QJ_ROPE_INTERLEAVED ? 2 * i : i, i1 = st == QJ_ROPE_INTERLEAVED ? 2 * i + 1 : i + hd / 2;
        float x0 = x[i0], x1 = x[i1];
        x[i0] = x0 * c - x1 * s;
        x[i1] = x0 * s + x1 * c;
    }
}

/* Attention score of head h (query at pos 5, key at pos 2) under the model's RoPE. */
static double score(const qj_model *m, int layer, int h, const float *xq, const float *xk) {
    const qj_config *c = &m->cfg;
    int hd = c->head_dim, kh = h / (c->n_heads / c->n_kv_heads);
    float q[64], k[64];
    const qj_layer *L = &m->layers[layer];
    for (int r = 0; r < hd; r++) {
        double sq = 0, sk = 0;
        for (int j = 0; j < c->dim; j++) {
            sq += (double)qj_load_f32(L->wq.data, L->wq.dtype, (size_t)(h * hd + r) * (size_t)c->dim + (size_t)j) * xq[j];
            sk += (double)qj_load_f32(L->wk.data, L->wk.dtype, (size_t)(kh * hd + r) * (size_t)c->dim + (size_t)j) * xk[j];
        }
        if (c->qkv_bias) {
            sq += qj_load_f32(L->bq.data, L->bq.dtype, (size_t)(h * hd + r));
            sk += qj_load_f32(L->bk.data, L->bk.dtype, (size_t)(kh * hd + r));
        }
        q[r] = (float)sq;
        k[r] = (float)sk;
    }
    rope(q, hd, 5, c->rope_theta, c->rope_style);
    rope(k, hd, 2, c->rope_theta, c->rope_style);
    double s = 0;
    for (int r = 0; r < hd; r++) s += (double)q[r] * k[r];
    return s;
}

/* A llama2.c-style (interleaved) model converts to a half-RoPE model whose
 * attention scores are the same. */
static void test_interleaved(void) {
    qj_config c = base_config();
    c.rope_style = QJ_ROPE_INTERLEAVED;
    c.n_kv_heads = 2;
    c.qkv_bias = 1; /* exercise the bias permutation too */
    c.arch = QJ_ARCH_QWEN2;
    c.tied_embeddings = 0;
    qj_model *m = make_model(&c, 99);
    const char *dir = fresh("hf_interleaved");
    QJ_CHECK_OK(qj_save_hf(m, dir, QJ_DTYPE_F32, 1));
    qj_model *b = NULL;
    QJ_CHECK_OK(qj_load_hf(dir, &b));
    if (b) {
        check_same_model(m, b, QJ_DTYPE_F32, "interleaved");
        /* the first rows of head 1 of wq: half order takes the even rows first */
        const float *oq = m->layers[0].wq.data, *nq = b->layers[0].wq.data;
        int D = c.dim, hd = c.head_dim;
        QJ_CHECK(!memcmp(nq + (size_t)(hd + 1) * D, oq + (size_t)(hd + 2) * D, (size_t)D * 4));
        QJ_CHECK(!memcmp(nq + (size_t)(hd + hd / 2) * D, oq + (size_t)(hd + 1) * D, (size_t)D * 4));
        float xq[64], xk[64];
        for (int j = 0; j < D; j++) {
            xq[j] = rnd();
            xk[j] = rnd();
        }
        double worst = 0;
        for (int l = 0; l < c.n_layers; l++)
            for (int h = 0; h < c.n_heads; h++) {
                double s0 = score(m, l, h, xq, xk), s1 = score(b, l, h, xq, xk);
                double e = fabs(s0 - s1) / (1.0 + fabs(s0));
                if (e > worst) worst = e;
            }
        QJ_CHECK_MSG(worst < 1e-5, "attention scores differ after conversion: rel %.3g", worst);
    }
    qj_model_free(b);
    qj_model_free(m);
}

/* ---- errors ------------------------------------------------------------ */

typedef enum edit_kind { EDIT_DROP, EDIT_RESHAPE, EDIT_EXTRA, EDIT_INV_FREQ, EDIT_MIXED } edit_kind;

/* Copy dir (single-file) to out with model.safetensors edited. */
static void make_edited(const char *dir, const char *out, edit_kind kind, const char *target) {
    rm_tree(out);
    mkdir(out, 0755);
    char p[4300], *text;
    size_t len;
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (qj_read_file(p, &text, &len) == QJ_OK) {
        snprintf(p, sizeof p, "%s/config.json", out);
        qj_write_file_atomic(p, text, len);
        free(text);
    }
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    qj_st_file *f;
    if (qj_st_open(p, &f)) return;
    int n = qj_st_count(f), k = 0;
    qj_tensor *t = calloc((size_t)n + 1, sizeof *t);
    float *extra = calloc(4096, sizeof *extra);
    uint16_t *half = NULL;
    for (int i = 0; i < n; i++) {
        const qj_tensor *src = qj_st_tensor(f, i);
        int hit = !strcmp(qj_st_name(f, i), target);
        if (hit && kind == EDIT_DROP) continue;
        t[k] = *src;
        if (hit && kind == EDIT_RESHAPE) { /* same bytes, wrong shape */
            t[k].shape[0] = src->shape[1];
            t[k].shape[1] = src->shape[0];
            if (t[k].shape[0] == t[k].shape[1]) t[k].ndim = 1, t[k].shape[0] *= t[k].shape[1];
        }
        if (hit && kind == EDIT_MIXED) { /* this one in f16, the rest stays f32 */
            size_t ne = (size_t)qj_tensor_numel(src);
            half = malloc(ne * 2);
            for (size_t e = 0; e < ne; e++) half[e] = qj_f32_to_f16(((const float *)src->data)[e]);
            t[k].dtype = QJ_DTYPE_F16;
            t[k].data = half;
        }
        k++;
    }
    if (kind == EDIT_EXTRA || kind == EDIT_INV_FREQ) {
        int64_t sh[1] = {4};
        qj_tensor_set(&t[k++], target, QJ_DTYPE_F32, 1, sh, extra);
    }
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    qj_st_write(p, t, k, NULL, 0);
    qj_st_close(f);
    free(half);
    free(extra);
    free(t);
}

static void write_text(const char *dir, const char *name, const char *text) {
    char p[4300];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    qj_write_file_atomic(p, text, strlen(text));
}

static void test_load_errors(void) {
    qj_config c = base_config();
    qj_model *m = make_model(&c, 3);
    const char *good = fresh("hf_good");
    QJ_CHECK_OK(qj_save_hf(m, good, QJ_DTYPE_F32, 1));
    qj_model *b = (qj_model *)1;
    const char *bad = qj_test_tmp("hf_bad");
    char p[4300];

    make_edited(good, bad, EDIT_DROP, "model.layers.1.mlp.up_proj.weight");
    QJ_CHECK_FAILS(qj_load_hf(bad, &b), "missing tensor \"model.layers.1.mlp.up_proj.weight\"");
    QJ_CHECK(b == NULL);
    make_edited(good, bad, EDIT_DROP, "model.norm.weight");
    QJ_CHECK_FAILS(qj_load_hf(bad, &b), "missing tensor \"model.norm.weight\"");
    make_edited(good, bad, EDIT_RESHAPE, "model.layers.0.mlp.down_proj.weight");
    QJ_CHECK_FAILS(qj_load_hf(bad, &b), "model.layers.0.mlp.down_proj.weight has shape (48, 32), expected (32, 48)");
    make_edited(good, bad, EDIT_EXTRA, "model.layers.0.self_attn.q_norm.weight");
    QJ_CHECK_FAILS(qj_load_hf(bad, &b), "unexpected tensor \"model.layers.0.self_attn.q_norm.weight\"");
    QJ_CHECK(strstr(qj_last_error(), "model.safetensors") != NULL);
    make_edited(good, bad, EDIT_EXTRA, "model.layers.7.mlp.up_proj.weight");
    QJ_CHECK_FAILS(qj_load_hf(bad, &b), "belongs to layer 7, but num_hidden_layers is 2");
    make_edited(good, bad, EDIT_EXTRA, "model.layers.0.self_attn.q_proj.bias"); /* llama: no biases */
    QJ_CHECK_FAILS(qj_load_hf(bad, &b), "unexpected tensor \"model.layers.0.self_attn.q_proj.bias\"");
    make_edited(good, bad, EDIT_EXTRA, "vision_tower.weight");
    QJ_CHECK_FAILS(qj_load_hf(bad, &b), "unexpected tensor \"vision_tower.weight\"");
    /* accepted: rotary inv_freq buffers; mixed dtypes (each tensor keeps its own) */
    make_edited(good, bad, EDIT_INV_FREQ, "model.layers.1.self_attn.rotary_emb.inv_freq");
    b = NULL;
    QJ_CHECK_OK(qj_load_hf(bad, &b));
    qj_model_free(b);
    make_edited(good, bad, EDIT_MIXED, "model.layers.0.self_attn.k_proj.weight");
    b = NULL;
    QJ_CHECK_OK(qj_load_hf(bad, &b));
    if (b) {
        QJ_CHECK(b->layers[0].wk.dtype == QJ_DTYPE_F16 && b->layers[0].wq.dtype == QJ_DTYPE_F32);
        QJ_CHECK(same_tensor(&m->layers[0].wk, &b->layers[0].wk, QJ_DTYPE_F16, 0));
    }
    qj_model_free(b);

    /* config.json problems, through a directory (the message names the file) */
    make_edited(good, bad, EDIT_INV_FREQ, "model.layers.1.self_attn.rotary_emb.inv_freq");
    write_text(bad, "config.json", "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 32}");
    QJ_CHECK_FAILS(qj_load_hf(bad, &b), "config.json: missing field \"intermediate_size\"");
    write_text(bad, "config.json", "{\"architectures\": [\"LlamaForCausalLM\"], ");
    QJ_CHECK_FAILS(qj_load_hf(bad, &b), "config.json: not valid JSON");
    unlink(qj_test_tmp("hf_bad/config.json"));
    QJ_CHECK_FAILS(qj_load_hf(bad, &b), "no config.json");
    QJ_CHECK_FAILS(qj_load_hf(qj_test_tmp("hf_does_not_exist"), &b), "no config.json");
    /* no weights */
    rm_tree(bad);
    mkdir(bad, 0755);
    write_text(bad, "config.json",
               "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":32,\"intermediate_size\":48,"
               "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":40,\"max_position_embeddings\":64}");
    QJ_CHECK_FAILS(qj_load_hf(bad, &b), "no model.safetensors or model.safetensors.index.json");
    /* a corrupt weights file: the reader's message comes through */
    snprintf(p, sizeof p, "%s/model.safetensors", bad);
    qj_write_file_atomic(p, "\x08\0\0\0\0\0\0\0{\"a\": 1", 16);
    QJ_CHECK_FAILS(qj_load_hf(bad, &b), "model.safetensors: header is not valid JSON");
    rm_tree(bad);
    qj_model_free(m);
}

static void test_config_errors(void) {
    qj_config c;
    const char *P = "x/config.json";
#define BASE "\"hidden_size\":32,\"intermediate_size\":48,\"num_hidden_layers\":2,\"num_attention_heads\":4," \
             "\"vocab_size\":40,\"max_position_embeddings\":64"
    QJ_CHECK_OK(qj_hf_config_parse("{\"architectures\":[\"LlamaForCausalLM\"]," BASE "}", P, &c, NULL));
    QJ_CHECK(c.n_kv_heads == 4 && c.head_dim == 8 && c.rope_theta == 10000.0f && c.rms_eps == 1e-6f &&
             c.tied_embeddings == 0 && c.bos_id == 1 && c.eos_id == 2 && c.qkv_bias == 0 &&
             c.rope_style == QJ_ROPE_HALF && c.arch == QJ_ARCH_LLAMA);
    qj_dtype td;
    QJ_CHECK_OK(qj_hf_config_parse("{\"architectures\":[\"Qwen2ForCausalLM\"]," BASE
                                   ",\"num_key_value_heads\":2,\"head_dim\":16,\"rope_theta\":1000000.0,"
                                   "\"rms_norm_eps\":1e-5,\"tie_word_embeddings\":true,\"bos_token_id\":null,"
                                   "\"eos_token_id\":[7,8],\"torch_dtype\":\"bfloat16\",\"sliding_window\":4096}",
                                   P, &c, &td));
    QJ_CHECK(c.arch == QJ_ARCH_QWEN2 && c.qkv_bias == 1 && c.n_kv_heads == 2 && c.head_dim == 16 &&
             c.rope_theta == 1e6f && c.rms_eps == 1e-5f && c.tied_embeddings == 1 && c.bos_id == 1 &&
             c.eos_id == 7 && td == QJ_DTYPE_BF16);
    QJ_CHECK_OK(qj_hf_config_parse("{\"model_type\":\"mistral\"," BASE "}", P, &c, NULL));
    QJ_CHECK(c.arch == QJ_ARCH_MISTRAL);

    QJ_CHECK_FAILS(qj_hf_config_parse("{" BASE "}", P, &c, NULL), "x/config.json: missing field \"architectures\"");
    QJ_CHECK_FAILS(qj_hf_config_parse("{\"architectures\":[\"GPT2LMHeadModel\"]," BASE "}", P, &c, NULL),
                   "\"GPT2LMHeadModel\" is not supported");
    QJ_CHECK_FAILS(qj_hf_config_parse("{\"architectures\":\"LlamaForCausalLM\"," BASE "}", P, &c, NULL),
                   "\"architectures\" must be an array");
    QJ_CHECK_FAILS(qj_hf_config_parse("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":\"32\"}", P, &c, NULL),
                   "field \"hidden_size\" must be an integer, got a string");
    QJ_CHECK_FAILS(qj_hf_config_parse("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":32,"
                                      "\"intermediate_size\":48,\"num_hidden_layers\":2,\"num_attention_heads\":0,"
                                      "\"vocab_size\":40,\"max_position_embeddings\":64}",
                                      P, &c, NULL),
                   "field \"num_attention_heads\" must be positive, got 0");
    QJ_CHECK_FAILS(qj_hf_config_parse("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":32.5}", P, &c, NULL),
                   "field \"hidden_size\" must be an integer");
    QJ_CHECK_FAILS(qj_hf_config_parse("{\"architectures\":[\"LlamaForCausalLM\"]," BASE ",\"num_key_value_heads\":3}",
                                      P, &c, NULL),
                   "not a multiple of num_key_value_heads 3");
    QJ_CHECK_FAILS(qj_hf_config_parse("{\"architectures\":[\"LlamaForCausalLM\"]," BASE ",\"rms_norm_eps\":-1}",
                                      P, &c, NULL),
                   "\"rms_norm_eps\" must be a positive number");
    QJ_CHECK_FAILS(qj_hf_config_parse("{\"architectures\":[\"LlamaForCausalLM\"]," BASE ",\"tie_word_embeddings\":1}",
                                      P, &c, NULL),
                   "\"tie_word_embeddings\" must be true or false");
    QJ_CHECK_FAILS(qj_hf_config_parse("{\"architectures\":[\"LlamaForCausalLM\"]," BASE
                                      ",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0}}",
                                      P, &c, NULL),
                   "\"rope_scaling\" (llama3) is not supported");
    QJ_CHECK_FAILS(qj_hf_config_parse("{\"architectures\":[\"LlamaForCausalLM\"]," BASE ",\"hidden_act\":\"gelu\"}",
                                      P, &c, NULL),
                   "\"hidden_act\"");
    QJ_CHECK_FAILS(qj_hf_config_parse("{\"architectures\":[\"LlamaForCausalLM\"]," BASE ",\"attention_bias\":true}",
                                      P, &c, NULL),
                   "attention_bias");
    QJ_CHECK_FAILS(qj_hf_config_parse("[1]", P, &c, NULL), "not a JSON object");
#undef BASE
    /* config.json writer -> parser round trip */
    qj_config w = base_config();
    w.arch = QJ_ARCH_MISTRAL;
    w.rope_theta = 500000.0f;
    w.rms_eps = 1e-5f;
    w.bos_id = 128000;
    w.eos_id = 128001;
    const char *cp = qj_test_tmp("hf_config_rt.json");
    QJ_CHECK_OK(qj_hf_config_write(cp, &w, QJ_DTYPE_BF16));
    QJ_CHECK_OK(qj_hf_config_read(cp, &c, &td));
    QJ_CHECK(c.arch == w.arch && c.dim == w.dim && c.rope_theta == w.rope_theta && c.rms_eps == w.rms_eps &&
             c.bos_id == w.bos_id && c.eos_id == w.eos_id && c.tied_embeddings == 1 && td == QJ_DTYPE_BF16);
    char *text;
    QJ_CHECK_OK(qj_read_file(cp, &text, NULL));
    QJ_CHECK(text && strstr(text, "1e-05") != NULL); /* the float's shortest form */
    free(text);
}

static void test_shard_errors(void) {
    qj_config c = base_config();
    qj_model *m = make_model(&c, 5);
    const char *dir = fresh("hf_sharded");
    QJ_CHECK_OK(qj_save_hf(m, dir, QJ_DTYPE_BF16, 3));
    char p[4300], *index = NULL;
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    QJ_CHECK_OK(qj_read_file(p, &index, NULL));
    QJ_CHECK(index && strstr(index, "\"total_size\"") != NULL);
    qj_model *b = NULL;
    /* a name mapped to a shard that lacks it */
    char *moved = index ? malloc(strlen(index) + 1) : NULL;
    if (moved) {
        strcpy(moved, index);
        char *at = strstr(moved, "\"model.norm.weight\":");
        char *f = at ? strstr(at, "model-00003-of-00003") : NULL;
        if (f) f[10] = '1'; /* -> model-00001-of-00003 */
        write_text(dir, "model.safetensors.index.json", moved);
        QJ_CHECK_FAILS(qj_load_hf(dir, &b),
                       "tensor \"model.norm.weight\" is mapped to model-00001-of-00003.safetensors, which does not contain it");
        write_text(dir, "model.safetensors.index.json", "{\"metadata\": {}}");
        QJ_CHECK_FAILS(qj_load_hf(dir, &b), "missing \"weight_map\"");
        write_text(dir, "model.safetensors.index.json",
                   "{\"weight_map\": {\"model.norm.weight\": \"../model-00001-of-00003.safetensors\"}}");
        QJ_CHECK_FAILS(qj_load_hf(dir, &b), "is not a plain file name");
        write_text(dir, "model.safetensors.index.json", index);
        QJ_CHECK_OK(qj_load_hf(dir, &b));
        if (b) check_same_model(m, b, QJ_DTYPE_BF16, "sharded again");
        qj_model_free(b);
        b = NULL;
    }
    free(moved);
    free(index);
    /* a missing shard */
    snprintf(p, sizeof p, "%s/model-00002-of-00003.safetensors", dir);
    unlink(p);
    QJ_CHECK_FAILS(qj_load_hf(dir, &b), "shard \"model-00002-of-00003.safetensors\" named in weight_map");
    QJ_CHECK(strstr(qj_last_error(), "No such file") != NULL);
    QJ_CHECK(b == NULL);
    qj_model_free(m);
}

static void test_convert_errors(void) {
    qj_config c = base_config();
    qj_model *m = make_model(&c, 11);
    const char *dir = fresh("hf_conv");
    QJ_CHECK_OK(qj_save_hf(m, dir, QJ_DTYPE_F16, 1));
    /* refuses an existing directory, and leaves it alone */
    QJ_CHECK_FAILS(qj_save_hf(m, dir, QJ_DTYPE_F32, 1), "already exists");
    QJ_CHECK(exists(dir, "model.safetensors"));
    char slash[4300];
    snprintf(slash, sizeof slash, "%s/", dir);
    QJ_CHECK_FAILS(qj_save_hf(m, slash, QJ_DTYPE_F32, 1), "already exists");
    /* failures after the temporary directory exists leave nothing behind */
    const char *fdir = fresh("hf_fail");
    for (int after = 0; after <= 3; after++) {
        qj_hf_save_inject_failure(after);
        QJ_CHECK_FAILS(qj_save_hf(m, fdir, QJ_DTYPE_BF16, 3), "injected failure");
        QJ_CHECK(access(fdir, F_OK) != 0);
        QJ_CHECK_MSG(!temp_left("hf_fail"), "temporary directory left after failure %d", after);
    }
    qj_hf_save_inject_failure(-1);
    QJ_CHECK_FAILS(qj_save_hf(m, fdir, QJ_DTYPE_BF16, 1000), "1000 shards requested");
    QJ_CHECK_FAILS(qj_save_hf(m, fdir, QJ_DTYPE_Q, 1), "cannot write dtype q");
    QJ_CHECK_FAILS(qj_save_hf(m, qj_test_tmp("no_such_parent/out"), QJ_DTYPE_F32, 1),
                   "cannot create the output directory");
    /* quantized tensors cannot be written */
    qj_tensor keep = m->layers[1].wv;
    m->layers[1].wv.dtype = QJ_DTYPE_Q;
    QJ_CHECK_FAILS(qj_save_hf(m, fdir, QJ_DTYPE_F32, 1), "\"model.layers.1.self_attn.v_proj.weight\" is quantized");
    m->layers[1].wv = keep;
    /* an invalid model is refused before anything is written */
    m->layers[0].w_up.data = NULL;
    QJ_CHECK_FAILS(qj_save_hf(m, fdir, QJ_DTYPE_F32, 1), "missing tensor");
    QJ_CHECK(access(fdir, F_OK) != 0 && !temp_left("hf_fail"));
    qj_model_free(m);
}

/* stories260K (llama2.c, interleaved RoPE) -> HF -> reload: wq/wk permuted, rest identical. */
static void test_stories260k(void) {
    const char *bin = qj_test_shared("models/stories260K/stories260K.bin");
    if (!bin) {
        printf("skip: stories260K not found (QJ_SHARED)\n");
        return;
    }
    qj_model *m = NULL, *b = NULL;
    QJ_CHECK_OK(qj_load_llama2c(bin, &m));
    if (!m) return;
    QJ_CHECK(m->cfg.rope_style == QJ_ROPE_INTERLEAVED);
    const char *dir = fresh("hf_stories260k");
    qj_hf_save_info info;
    QJ_CHECK_OK(qj_save_hf_ex(m, dir, QJ_DTYPE_F32, 2, &info));
    QJ_CHECK(info.rope_permuted == 1 && info.n_files == 2);
    QJ_CHECK_OK(qj_load_hf(dir, &b));
    if (b) {
        check_same_model(m, b, QJ_DTYPE_F32, "stories260K");
        /* the permutation inverts: half -> interleaved gives back the original rows */
        int hd = m->cfg.head_dim, D = m->cfg.dim;
        int ok = 1;
        for (int l = 0; l < m->cfg.n_layers; l++)
            for (int r = 0; r < m->cfg.n_kv_heads * hd; r++) {
                int h = r / hd, j = r % hd;
                int nr = h * hd + (j % 2 == 0 ? j / 2 : j / 2 + hd / 2);
                const float *o = (const float *)m->layers[l].wk.data + (size_t)r * (size_t)D;
                const float *n = (const float *)b->layers[l].wk.data + (size_t)nr * (size_t)D;
                if (memcmp(o, n, (size_t)D * 4)) ok = 0;
            }
        QJ_CHECK_MSG(ok, "wk permutation does not invert");
        /* the forward pass computes the same logits from both */
        qj_state *sa = NULL, *sb = NULL;
        QJ_CHECK_OK(qj_state_alloc(m, 16, &sa));
        QJ_CHECK_OK(qj_state_alloc(b, 16, &sb));
        double worst = 0;
        static const int toks[12] = {1, 403, 261, 270, 300, 5, 17, 499, 260, 310, 2, 42};
        for (int pos = 0; sa && sb && pos < 12; pos++) {
            const float *la, *lb;
            if (qj_forward(sa, toks[pos], pos, &la) || qj_forward(sb, toks[pos], pos, &lb)) {
                QJ_CHECK_MSG(0, "forward failed: %s", qj_last_error());
                break;
            }
            for (int v = 0; v < m->cfg.vocab_size; v++) {
                double e = fabs((double)la[v] - lb[v]) / (1.0 + fabs((double)la[v]));
                if (e > worst) worst = e;
            }
        }
        QJ_CHECK_MSG(worst < 1e-4, "logits of the converted model differ: rel %.3g", worst);
        qj_state_free(sa);
        qj_state_free(sb);
    }
    qj_model_free(b);
    qj_model_free(m);
    rm_tree(dir);
}

/* qjit convert: a thin layer over the above; errors say "qjit convert: ". */
static void test_cli(void) {
    const char *qjit = getenv("QJIT");
    const char *bin = qj_test_shared("models/stories260K/stories260K.bin");
    if (!qjit || !bin) {
        printf("skip: qjit convert (QJIT or QJ_SHARED not set)\n");
        return;
    }
    const char *dir = fresh("hf_cli"), *log = qj_test_tmp("hf_cli.log");
    char cmd[8192], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' convert --model '%s' -o '%s' --dtype bf16 --shards 2 >'%s' 2>&1", qjit, bin, dir,
             log);
    QJ_CHECK(system(cmd) == 0);
    QJ_CHECK_OK(qj_read_file(log, &out, NULL));
    QJ_CHECK_MSG(out && strstr(out, "47 in 2 files") && strstr(out, "permuted"), "convert printed: %s",
                 out ? out : "");
    free(out);
    QJ_CHECK(exists(dir, "model-00002-of-00002.safetensors") && exists(dir, "config.json"));
    qj_model *b = NULL;
    QJ_CHECK_OK(qj_load_hf(dir, &b));
    if (b) QJ_CHECK(b->tok_embedding.dtype == QJ_DTYPE_BF16 && b->cfg.n_layers == 5);
    qj_model_free(b);
    /* again: the directory exists, refused with a message, non-zero status */
    QJ_CHECK(system(cmd) != 0);
    out = NULL;
    QJ_CHECK_OK(qj_read_file(log, &out, NULL));
    QJ_CHECK_MSG(out && strstr(out, "qjit convert: ") && strstr(out, "already exists"), "convert printed: %s",
                 out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' convert --model '%s' -o '%s' --dtype int3 >'%s' 2>&1", qjit, bin,
             qj_test_tmp("hf_cli2"), log);
    QJ_CHECK(system(cmd) != 0);
    QJ_CHECK(access(qj_test_tmp("hf_cli2"), F_OK) != 0);
    rm_tree(dir);
}

int main(void) {
    qj_config c = base_config();
    roundtrip(&c, QJ_DTYPE_F32, 1, "hf_rt_tied_f32");
    roundtrip(&c, QJ_DTYPE_BF16, 3, "hf_rt_tied_bf16_3");
    roundtrip(&c, QJ_DTYPE_F16, 1, "hf_rt_tied_f16");
    roundtrip(&c, QJ_DTYPE_F32, 20, "hf_rt_tied_20"); /* one tensor per shard */
    qj_config g = base_config(); /* GQA, untied, mistral, non-default theta/eps/ids */
    g.arch = QJ_ARCH_MISTRAL;
    g.dim = 48;
    g.hidden_dim = 72;
    g.n_layers = 3;
    g.n_heads = 6;
    g.n_kv_heads = 2;
    g.vocab_size = 50;
    g.tied_embeddings = 0;
    g.rope_theta = 500000.0f;
    g.rms_eps = 1e-6f;
    g.bos_id = 0;
    g.eos_id = 5;
    roundtrip(&g, QJ_DTYPE_F32, 1, "hf_rt_gqa_f32");
    roundtrip(&g, QJ_DTYPE_BF16, 3, "hf_rt_gqa_bf16_3");
    qj_config q = base_config(); /* qwen2: q/k/v biases, head_dim != dim/heads */
    q.arch = QJ_ARCH_QWEN2;
    q.qkv_bias = 1;
    q.n_kv_heads = 2;
    q.head_dim = 16;
    q.tied_embeddings = 0;
    roundtrip(&q, QJ_DTYPE_F32, 1, "hf_rt_qwen2_f32");
    roundtrip(&q, QJ_DTYPE_BF16, 3, "hf_rt_qwen2_bf16_3");
    test_interleaved();
    test_config_errors();
    test_load_errors();
    test_shard_errors();
    test_convert_errors();
    test_stories260k();
    test_cli();
    return qj_test_finish();
}
