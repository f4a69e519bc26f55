/* compile.c — plan → compiled model (RTN quantization, dtype conversion). */
#include "compile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qj_progress.h"
#include "quant.h"

/* Make dst the tensor `src` becomes under tp. Buffers go to m. */
static qj_status apply(qj_model *m, const qj_tensor *src, const qj_tensor_plan *tp, qj_tensor *dst,
                       qj_compile_stats *st) {
    if (src->dtype == QJ_DTYPE_Q) {
        /* already compiled (a package): kept as it is */
        *dst = *src;
        st->kept_tensors++;
        return QJ_OK;
    }
    qj_dtype target = qj_tensor_plan_dtype(tp, src->dtype);
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
    *out = NULL;
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
    if ((s = apply(m, &src->tok_embedding, &plan->embed, &m->tok_embedding, &st))) goto fail;
    if ((s = apply(m, &src->final_norm, &keep, &m->final_norm, &st))) goto fail;
    int tied = c->tied_embeddings && qj_tensor_plan_equal(&plan->embed, &plan->lm_head);
    if (tied) {
        m->lm_head = m->tok_embedding;
    } else {
        if ((s = apply(m, &src->lm_head, &plan->lm_head, &m->lm_head, &st))) goto fail;
        if (c->tied_embeddings) snprintf(m->lm_head.name, sizeof m->lm_head.name, "lm_head.weight");
    }
    m->cfg.tied_embeddings = tied;
    for (int i = 0; i < c->n_layers; i++) {
        const qj_layer *S = &src->layers[i];
        qj_layer *D = &m->layers[i];
        if ((s = apply(m, &S->attn_norm, &keep, &D->attn_norm, &st)) ||
            (s = apply(m, &S->ffn_norm, &keep, &D->ffn_norm, &st)))
            goto fail;
        if (c->qkv_bias && ((s = apply(m, &S->bq, &keep, &D->bq, &st)) || (s = apply(m, &S->bk, &keep, &D->bk, &st)) ||
                            (s = apply(m, &S->bv, &keep, &D->bv, &st))))
            goto fail;
        for (int l = 0; l < QJ_LIN_COUNT; l++) {
            qj_layer *SS = (qj_layer *)S; /* qj_layer_linear takes a non-const layer; nothing is written */
            if ((s = apply(m, qj_layer_linear(SS, (qj_linear)l), qj_plan_linear(plan, i, (qj_linear)l),
                           qj_layer_linear(D, (qj_linear)l), &st)))
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
