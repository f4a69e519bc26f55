/* qj_model.c — model allocation, ownership of maps, shape validation. */
#include "qj_model.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const char *qj_arch_name(qj_arch a) {
    switch (a) {
    case QJ_ARCH_LLAMA: return "llama";
    case QJ_ARCH_MISTRAL: return "mistral";
    case QJ_ARCH_QWEN2: return "qwen2";
    }
    return "?";
}

static const char *const linear_names[QJ_LIN_COUNT] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                       "gate_proj", "up_proj", "down_proj"};

const char *qj_linear_name(qj_linear l) {
    return (unsigned)l < QJ_LIN_COUNT ? linear_names[l] : "?";
}

qj_tensor *qj_layer_linear(qj_layer *layer, qj_linear l) {
    switch (l) {
    case QJ_LIN_Q: return &layer->wq;
    case QJ_LIN_K: return &layer->wk;
    case QJ_LIN_V: return &layer->wv;
    case QJ_LIN_O: return &layer->wo;
    case QJ_LIN_GATE: return &layer->w_gate;
    case QJ_LIN_UP: return &layer->w_up;
    case QJ_LIN_DOWN: return &layer->w_down;
    default: return NULL;
    }
}

qj_status qj_model_alloc(qj_model **out, const qj_config *cfg) {
    *out = NULL;
    if (cfg->n_layers <= 0 || cfg->n_layers > 4096)
        return qj_fail(QJ_ERR_INVALID, "n_layers %d out of range (1..4096)", cfg->n_layers);
    qj_model *m = calloc(1, sizeof *m);
    if (!m) return qj_fail(QJ_ERR_NOMEM, "out of memory allocating model");
    m->layers = calloc((size_t)cfg->n_layers, sizeof *m->layers);
    if (!m->layers) {
        free(m);
        return qj_fail(QJ_ERR_NOMEM, "out of memory allocating %d layers", cfg->n_layers);
    }
    m->cfg = *cfg;
    *out = m;
    return QJ_OK;
}

qj_status qj_model_adopt(qj_model *m, void *addr, size_t len, int is_mmap) {
    if (m->n_maps == m->cap_maps) {
        int cap = m->cap_maps ? 2 * m->cap_maps : 8;
        qj_mapping *maps = realloc(m->maps, (size_t)cap * sizeof *maps);
        if (!maps) return qj_fail(QJ_ERR_NOMEM, "out of memory");
        m->maps = maps;
        m->cap_maps = cap;
    }
    m->maps[m->n_maps++] = (qj_mapping){addr, len, is_mmap};
    return QJ_OK;
}

void qj_model_free(qj_model *m) {
    if (!m) return;
    for (int i = m->n_maps - 1; i >= 0; i--) {
        if (m->maps[i].is_mmap) munmap(m->maps[i].addr, m->maps[i].len);
        else free(m->maps[i].addr);
    }
    free(m->maps);
    free(m->kernels);
    qj_cpu_code_free(m->cpu_code, m->n_cpu_code);
    free(m->layers);
    free(m->tokenizer_blob);
    free(m);
}

void qj_tensor_set(qj_tensor *t, const char *name, qj_dtype dtype, int ndim, const int64_t *shape,
                   const void *data) {
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
    t->nbytes = (size_t)qj_tensor_numel(t) * qj_dtype_size(dtype);
}

static qj_status check_shape(const qj_tensor *t, const char *what, int64_t d0, int64_t d1) {
    int ndim = d1 ? 2 : 1;
    if (!t->data)
        return qj_fail(QJ_ERR_FORMAT, "missing tensor %s (expected shape %s%lld%s%lld%s)", what,
                       "(", (long long)d0, ndim == 2 ? ", " : "", ndim == 2 ? (long long)d1 : 0LL, ")");
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        char got[96] = "(";
        for (int i = 0; i < t->ndim; i++) {
            char buf[32];
            snprintf(buf, sizeof buf, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
            strncat(got, buf, sizeof got - strlen(got) - 2);
        }
        strcat(got, ")");
        if (ndim == 2)
            return qj_fail(QJ_ERR_FORMAT, "tensor %s has shape %s, expected (%lld, %lld)",
                           t->name[0] ? t->name : what, got, (long long)d0, (long long)d1);
        return qj_fail(QJ_ERR_FORMAT, "tensor %s has shape %s, expected (%lld)",
                       t->name[0] ? t->name : what, got, (long long)d0);
    }
    return QJ_OK;
}

qj_status qj_model_validate(const qj_model *m) {
    const qj_config *c = &m->cfg;
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 ||
        c->vocab_size <= 0 || c->seq_len <= 0 || c->head_dim <= 0)
        return qj_fail(QJ_ERR_INVALID,
                       "model config has a non-positive size (dim %d, hidden %d, heads %d, kv heads %d, "
                       "head_dim %d, vocab %d, seq_len %d)",
                       c->dim, c->hidden_dim, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size,
                       c->seq_len);
    if (c->n_heads % c->n_kv_heads != 0)
        return qj_fail(QJ_ERR_INVALID, "n_heads %d is not a multiple of n_kv_heads %d", c->n_heads,
                       c->n_kv_heads);
    if (c->rope_style == QJ_ROPE_HALF || c->rope_style == QJ_ROPE_INTERLEAVED) {
        if (c->head_dim % 2)
            return qj_fail(QJ_ERR_INVALID, "head_dim %d must be even for RoPE", c->head_dim);
    }
    int64_t qd = (int64_t)c->n_heads * c->head_dim, kvd = (int64_t)c->n_kv_heads * c->head_dim;
    qj_status s;
    if ((s = check_shape(&m->tok_embedding, "tok_embedding", c->vocab_size, c->dim))) return s;
    if ((s = check_shape(&m->final_norm, "final_norm", c->dim, 0))) return s;
    if ((s = check_shape(&m->lm_head, "lm_head", c->vocab_size, c->dim))) return s;
    for (int i = 0; i < c->n_layers; i++) {
        const qj_layer *L = &m->layers[i];
        char w[64];
#define CHK(field, d0, d1)                                                  \
    snprintf(w, sizeof w, "layers.%d.%s", i, #field);                       \
    if ((s = check_shape(&L->field, w, d0, d1))) return s;
        CHK(attn_norm, c->dim, 0);
        CHK(wq, qd, c->dim);
        CHK(wk, kvd, c->dim);
        CHK(wv, kvd, c->dim);
        CHK(wo, c->dim, qd);
        CHK(ffn_norm, c->dim, 0);
        CHK(w_gate, c->hidden_dim, c->dim);
        CHK(w_up, c->hidden_dim, c->dim);
        CHK(w_down, c->dim, c->hidden_dim);
        if (c->qkv_bias) {
            CHK(bq, qd, 0);
            CHK(bk, kvd, 0);
            CHK(bv, kvd, 0);
        }
#undef CHK
    }
    return QJ_OK;
}

qj_status qj_map_file(const char *path, void **addr, size_t *len) {
    *addr = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return qj_fail(QJ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return qj_fail(QJ_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return qj_fail(QJ_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return qj_fail(QJ_ERR_FORMAT, "%s: file is empty", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return qj_fail(QJ_ERR_IO, "%s: cannot mmap: %s", path, strerror(e));
    *addr = p;
    *len = (size_t)st.st_size;
    return QJ_OK;
}

qj_tensor *qj_model_slot(qj_model *m, const char *name) {
    if (!strcmp(name, "model.embed_tokens.weight")) return &m->tok_embedding;
    if (!strcmp(name, "model.norm.weight")) return &m->final_norm;
    if (!strcmp(name, "lm_head.weight")) return &m->lm_head;
    int layer, n = 0;
    char rest[96];
    if (sscanf(name, "model.layers.%d.%95s%n", &layer, rest, &n) != 2 || name[n] != '\0') return NULL;
    char check[160];
    snprintf(check, sizeof check, "model.layers.%d.%s", layer, rest);
    if (strcmp(check, name) || layer < 0 || layer >= m->cfg.n_layers) return NULL; /* rejects "03", "+3" */
    qj_layer *L = &m->layers[layer];
    static const struct { const char *suffix; size_t off; } slots[] = {
        {"input_layernorm.weight", offsetof(qj_layer, attn_norm)},
        {"post_attention_layernorm.weight", offsetof(qj_layer, ffn_norm)},
        {"self_attn.q_proj.weight", offsetof(qj_layer, wq)},
        {"self_attn.k_proj.weight", offsetof(qj_layer, wk)},
        {"self_attn.v_proj.weight", offsetof(qj_layer, wv)},
        {"self_attn.o_proj.weight", offsetof(qj_layer, wo)},
        {"self_attn.q_proj.bias", offsetof(qj_layer, bq)},
        {"self_attn.k_proj.bias", offsetof(qj_layer, bk)},
        {"self_attn.v_proj.bias", offsetof(qj_layer, bv)},
        {"mlp.gate_proj.weight", offsetof(qj_layer, w_gate)},
        {"mlp.up_proj.weight", offsetof(qj_layer, w_up)},
        {"mlp.down_proj.weight", offsetof(qj_layer, w_down)},
    };
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
        if (!strcmp(rest, slots[i].suffix)) return (qj_tensor *)((char *)L + slots[i].off);
    return NULL;
}

const qj_kernel_blob *qj_model_find_kernel(const qj_model *m, const char *name, const char *arch) {
    for (int i = 0; i < m->n_kernels; i++)
        if (!strcmp(m->kernels[i].name, name) && !strcmp(m->kernels[i].arch, arch)) return &m->kernels[i];
    return NULL;
}

void qj_kernel_blobs_free(qj_kernel_blob *b, int n) {
    if (!b) return;
    for (int i = 0; i < n; i++) free((void *)b[i].image);
    free(b);
}

void qj_cpu_code_free(qj_cpu_code *c, int n) {
    if (!c) return;
    for (int i = 0; i < n; i++) {
        free(c[i].features);
        free(c[i].kernels);
    }
    free(c);
}
