/* compile.c — plan → compiled model (RTN quantization, dtype conversion). */
#include "compile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qj_progress.h"
#include "quant.h"

typedef struct qcache_entry {
    const qj_tensor *src; /* the source tensor (its address: one source model per cache) */
    qj_qformat fmt;
    qj_qbuf buf;
    uint64_t bytes, used; /* used: the compile generation that last took it */
} qcache_entry;

struct qj_quant_cache {
    qcache_entry *e;
    int n, cap;
    uint64_t bytes, max_bytes, gen;
};

qj_status qj_quant_cache_new(uint64_t max_bytes, qj_quant_cache **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    (*out)->max_bytes = max_bytes;
    return QJ_OK;
}

static void qcache_drop(qcache_entry *e) {
    free(e->buf.q);
    free(e->buf.scales);
    free(e->buf.zeros);
}

void qj_quant_cache_free(qj_quant_cache *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) qcache_drop(&c->e[i]);
    free(c->e);
    free(c);
}

int qj_quant_cache_entries(const qj_quant_cache *c) { return c->n; }
uint64_t qj_quant_cache_bytes(const qj_quant_cache *c) { return c->bytes; }

static int same_fmt(const qj_qformat *a, const qj_qformat *b) {
    return a->bits == b->bits && a->group == b->group && a->symmetric == b->symmetric && a->scale_dtype == b->scale_dtype;
}

/* The cached quantization of src under fmt, made and stored when missing (evicting entries the
 * running compile has not taken, oldest first, to stay within the budget). */
static qj_status qcache_get(qj_quant_cache *c, const qj_tensor *src, const qj_qformat *fmt, const qj_qbuf **out,
                            int *hit) {
    for (int i = 0; i < c->n; i++)
        if (c->e[i].src == src && same_fmt(&c->e[i].fmt, fmt)) {
            c->e[i].used = c->gen;
            *out = &c->e[i].buf;
            *hit = 1;
            return QJ_OK;
        }
    *hit = 0;
    qj_qbuf b;
    qj_status s = qj_quantize(src, fmt, &b);
    if (s) return s;
    const uint64_t bytes = b.q_bytes + b.scales_bytes + b.zeros_bytes;
    while (c->max_bytes && c->bytes + bytes > c->max_bytes) {
        int victim = -1;
        for (int i = 0; i < c->n; i++)
            if (c->e[i].used != c->gen && (victim < 0 || c->e[i].used < c->e[victim].used)) victim = i;
        if (victim < 0) break; /* everything is in use by this compile: over budget for now */
        c->bytes -= c->e[victim].bytes;
        qcache_drop(&c->e[victim]);
        c->e[victim] = c->e[--c->n];
    }
    if (c->n == c->cap) {
        const int cap = c->cap ? 2 * c->cap : 64;
        qcache_entry *ne = realloc(c->e, (size_t)cap * sizeof *ne);
        if (!ne) {
            free(b.q);
            free(b.scales);
            free(b.zeros);
            return qj_fail(QJ_ERR_NOMEM, "out of memory");
        }
        c->e = ne;
        c->cap = cap;
    }
    c->e[c->n] = (qcache_entry){src, *fmt, b, bytes, c->gen};
    c->bytes += bytes;
    *out = &c->e[c->n++].buf;
    return QJ_OK;
}

/* Make dst the tensor `src` becomes under tp. Buffers go to m (or stay in cache, borrowed). */
static qj_status apply(qj_model *m, const qj_tensor *src, const qj_tensor_plan *tp, qj_tensor *dst,
                       qj_compile_stats *st, qj_quant_cache *cache) {
    if (src->dtype == QJ_DTYPE_Q) {
        /* already compiled (a package): kept as it is */
        *dst = *src;
        st->kept_tensors++;
        return QJ_OK;
    }
    qj_dtype target = qj_tensor_plan_dtype(tp, src->dtype);
    if (target == QJ_DTYPE_Q && cache) {
        const qj_qbuf *cb = NULL;
        int hit = 0;
        qj_status s = qcache_get(cache, src, &tp->q, &cb, &hit);
        if (s) return s;
        qj_tensor_set_quant(dst, src->name, src->shape[0], src->shape[1], &tp->q, cb);
        if (hit) st->cached_tensors++;
        else st->quantized_tensors++;
        return QJ_OK;
    }
    if (target == QJ_DTYPE_Q) {
        qj_qbuf b;
        qj_status s = qj_quantize(src, &tp->q, &b);
        if (s) return s;
        void *parts[3] = {b.q, b.scales, b.zeros};
        size_t lens[3] = {b.q_bytes, b.scales_bytes, b.zeros_bytes};
        for (int i = 0; i < 3; i++)
            if (parts[i] && (s = qj_model_adopt(m, parts[i], lens[i], 0))) {
                for (int j = i; j < 3; j++) free(parts[j]); /* not yet owned by m */
                return s;
            }
        qj_tensor_set_quant(dst, src->name, src->shape[0], src->shape[1], &tp->q, &b);
        st->quantized_tensors++;
        return QJ_OK;
    }
    if (target == src->dtype) {
        *dst = *src; /* borrowed */
        st->kept_tensors++;
        return QJ_OK;
    }
    size_t n = (size_t)qj_tensor_numel(src), bytes = n * qj_dtype_size(target);
    void *p = malloc(bytes ? bytes : 1);
    if (!p) return qj_fail(QJ_ERR_NOMEM, "%s: out of memory converting to %s", src->name, qj_dtype_name(target));
    qj_status s = qj_model_adopt(m, p, bytes, 0);
    if (s) { free(p); return s; }
    if (src->dtype == QJ_DTYPE_F32) qj_convert_from_f32(p, target, src->data, n);
    else if (target == QJ_DTYPE_F32) qj_convert_to_f32(p, src->data, src->dtype, n);
    else {
        const size_t chunk = 4096;
        float tmp[4096];
        for (size_t i = 0; i < n; i += chunk) {
            size_t k = n - i < chunk ? n - i : chunk;
            qj_convert_to_f32(tmp, (const uint16_t *)src->data + i, src->dtype, k);
            qj_convert_from_f32((uint16_t *)p + i, target, tmp, k);
        }
    }
    qj_tensor_set(dst, src->name, target, src->ndim, src->shape, p);
    st->converted_tensors++;
    return QJ_OK;
}

static const qj_tensor_plan keep = {QJ_PLAN_DTYPE_SOURCE, {0, 0, 0, QJ_DTYPE_F32}};

qj_status qj_compile_model(const qj_model *src, const qj_plan *plan, int progress, qj_model **out,
                           qj_compile_stats *stats) {
    return qj_compile_model_cached(src, plan, NULL, progress, out, stats);
}

qj_status qj_compile_model_cached(const qj_model *src, const qj_plan *plan, qj_quant_cache *cache, int progress,
                                  qj_model **out, qj_compile_stats *stats) {
    *out = NULL;
    if (cache) cache->gen++;
    const qj_config *c = &src->cfg;
    if (plan->n_layers != c->n_layers)
        return qj_fail(QJ_ERR_INVALID, "plan has %d layers, model has %d", plan->n_layers, c->n_layers);
    qj_compile_stats st = {0};
    double t0 = qj_now();
    qj_model *m;
    qj_status s = qj_model_alloc(&m, c);
    if (s) return s;
    m->source = src->source;
    m->synthetic = src->synthetic;
    snprintf(m->origin, sizeof m->origin, "%s", src->origin);
    snprintf(m->plan_desc, sizeof m->plan_desc, "%s", plan->desc);
    if (src->tokenizer_blob) {
        m->tokenizer_blob = malloc(src->tokenizer_blob_len);
        if (!m->tokenizer_blob) { s = qj_fail(QJ_ERR_NOMEM, "out of memory"); goto fail; }
        memcpy(m->tokenizer_blob, src->tokenizer_blob, src->tokenizer_blob_len);
        m->tokenizer_blob_len = src->tokenizer_blob_len;
        snprintf(m->tokenizer_kind, sizeof m->tokenizer_kind, "%s", src->tokenizer_kind);
    }
    qj_progress prog;
    qj_progress_begin(&prog, "compile", "layers", (size_t)c->n_layers);
    if (!progress) prog.enabled = 0;
    if ((s = apply(m, &src->tok_embedding, &plan->embed, &m->tok_embedding, &st, cache))) goto fail;
    if ((s = apply(m, &src->final_norm, &keep, &m->final_norm, &st, cache))) goto fail;
    int tied = c->tied_embeddings && qj_tensor_plan_equal(&plan->embed, &plan->lm_head);
    if (tied) {
        m->lm_head = m->tok_embedding;
    } else {
        if ((s = apply(m, &src->lm_head, &plan->lm_head, &m->lm_head, &st, cache))) goto fail;
        if (c->tied_embeddings) snprintf(m->lm_head.name, sizeof m->lm_head.name, "lm_head.weight");
    }
    m->cfg.tied_embeddings = tied;
    for (int i = 0; i < c->n_layers; i++) {
        const qj_layer *S = &src->layers[i];
        qj_layer *D = &m->layers[i];
        if ((s = apply(m, &S->attn_norm, &keep, &D->attn_norm, &st, cache)) ||
            (s = apply(m, &S->ffn_norm, &keep, &D->ffn_norm, &st, cache)))
            goto fail;
        if (c->qkv_bias && ((s = apply(m, &S->bq, &keep, &D->bq, &st, cache)) || (s = apply(m, &S->bk, &keep, &D->bk, &st, cache)) ||
                            (s = apply(m, &S->bv, &keep, &D->bv, &st, cache))))
            goto fail;
        for (int l = 0; l < QJ_LIN_COUNT; l++) {
            qj_layer *SS = (qj_layer *)S; /* qj_layer_linear takes a non-const layer; nothing is written */
            if ((s = apply(m, qj_layer_linear(SS, (qj_linear)l), qj_plan_linear(plan, i, (qj_linear)l),
                           qj_layer_linear(D, (qj_linear)l), &st, cache)))
                goto fail;
        }
        qj_progress_add(&prog, 1);
    }
    qj_progress_end(&prog);
    if ((s = qj_model_validate(m))) goto fail;
    st.seconds = qj_now() - t0;
    if (stats) *stats = st;
    *out = m;
    return QJ_OK;
fail:
    qj_model_free(m);
    return s;
}
