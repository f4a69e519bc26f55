/* package_write.c — manifest + 64-byte-aligned arrays, written atomically. */
#include "package_write.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qj_io.h"
#include "qj_package.h"

static const char *source_name(qj_source_kind k) {
    switch (k) {
    case QJ_SOURCE_HF: return "hf";
    case QJ_SOURCE_LLAMA2C: return "llama2c";
    case QJ_SOURCE_SYNTHETIC: return "synthetic";
    case QJ_SOURCE_PACKAGE: return "package";
    }
    return "?";
}

cJSON *qj_config_to_cjson(const qj_config *c, const qj_model *m) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "arch", qj_arch_name(c->arch));
    cJSON_AddNumberToObject(o, "dim", c->dim);
    cJSON_AddNumberToObject(o, "hidden_dim", c->hidden_dim);
    cJSON_AddNumberToObject(o, "n_layers", c->n_layers);
    cJSON_AddNumberToObject(o, "n_heads", c->n_heads);
    cJSON_AddNumberToObject(o, "n_kv_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(o, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(o, "seq_len", c->seq_len);
    cJSON_AddNumberToObject(o, "rope_theta", (double)c->rope_theta);
    cJSON_AddNumberToObject(o, "rms_eps", (double)c->rms_eps);
    cJSON_AddBoolToObject(o, "tied_embeddings", c->tied_embeddings);
    cJSON_AddBoolToObject(o, "qkv_bias", c->qkv_bias);
    cJSON_AddStringToObject(o, "rope_style", c->rope_style == QJ_ROPE_HALF ? "half" : "interleaved");
    cJSON_AddNumberToObject(o, "bos_id", c->bos_id);
    cJSON_AddNumberToObject(o, "eos_id", c->eos_id);
    if (m) {
        cJSON_AddStringToObject(o, "source", source_name(m->source));
        cJSON_AddStringToObject(o, "origin", m->origin);
        cJSON_AddBoolToObject(o, "synthetic", m->synthetic);
    }
    return o;
}

typedef struct blob {
    const void *data;
    uint64_t bytes, offset;
} blob;

typedef struct layout {
    blob *blobs;
    int n, cap;
    uint64_t end;
    cJSON *tensors;
} layout;

static cJSON *add_blob(layout *L, const void *data, uint64_t bytes) {
    if (L->n == L->cap) {
        int cap = L->cap ? 2 * L->cap : 64;
        blob *nb = realloc(L->blobs, (size_t)cap * sizeof *nb);
        if (!nb) return NULL;
        L->blobs = nb;
        L->cap = cap;
    }
    uint64_t off = (L->end + QJ_PACKAGE_ALIGN - 1) / QJ_PACKAGE_ALIGN * QJ_PACKAGE_ALIGN;
    L->blobs[L->n++] = (blob){data, bytes, off};
    L->end = off + bytes;
    cJSON *o = cJSON_CreateObject();
    char sum[17];
    snprintf(sum, sizeof sum, "%016" PRIx64, qj_checksum(data, (size_t)bytes));
    cJSON_AddNumberToObject(o, "offset", (double)off);
    cJSON_AddNumberToObject(o, "bytes", (double)bytes);
    cJSON_AddStringToObject(o, "xxh3", sum);
    return o;
}

static qj_status add_tensor(const qj_tensor *t, void *ctx) {
    layout *L = ctx;
    cJSON *o = cJSON_CreateObject(), *sh = cJSON_CreateArray(), *b;
    cJSON_AddItemToArray(L->tensors, o);
    cJSON_AddStringToObject(o, "name", t->name);
    for (int i = 0; i < t->ndim; i++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[i]));
    cJSON_AddItemToObject(o, "shape", sh);
    cJSON_AddStringToObject(o, "dtype", qj_dtype_name(t->dtype));
    if (t->dtype == QJ_DTYPE_Q) {
        cJSON_AddNumberToObject(o, "bits", t->q.bits);
        cJSON_AddNumberToObject(o, "group", t->q.group);
        cJSON_AddBoolToObject(o, "symmetric", t->q.symmetric);
        cJSON_AddStringToObject(o, "scale_dtype", qj_dtype_name(t->q.scale_dtype));
    }
    if (!(b = add_blob(L, t->data, t->nbytes))) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    cJSON_AddItemToObject(o, "data", b);
    if (t->dtype == QJ_DTYPE_Q) {
        if (!(b = add_blob(L, t->scales, t->scales_nbytes))) return qj_fail(QJ_ERR_NOMEM, "out of memory");
        cJSON_AddItemToObject(o, "scales", b);
        if (!t->q.symmetric) {
            if (!(b = add_blob(L, t->zeros, t->zeros_nbytes))) return qj_fail(QJ_ERR_NOMEM, "out of memory");
            cJSON_AddItemToObject(o, "zeros", b);
        }
    }
    return QJ_OK;
}

qj_status qj_package_write(const qj_model *m, const qj_plan *plan, const char *path) {
    qj_status s = qj_model_validate(m);
    if (s) return s;
    layout L = {0};
    cJSON *root = cJSON_CreateObject();
    char *manifest = NULL;
    qj_afile f = {0};
    cJSON_AddStringToObject(root, "format", "qjit-package");
    cJSON_AddNumberToObject(root, "format_version", QJ_PACKAGE_VERSION);
    cJSON_AddStringToObject(root, "generator", "qjit 0.1.0");
    cJSON_AddItemToObject(root, "model", qj_config_to_cjson(&m->cfg, m));
    if (plan) {
        cJSON *pj = NULL;
        if ((s = qj_plan_to_cjson(plan, &pj))) goto done;
        cJSON_AddItemToObject(root, "plan", pj);
        cJSON_AddStringToObject(root, "plan_desc", plan->desc);
    }
    L.tensors = cJSON_AddArrayToObject(root, "tensors");
    if ((s = qj_model_each_tensor(m, add_tensor, &L))) goto done;
    if (m->tokenizer_blob) {
        cJSON *tb = add_blob(&L, m->tokenizer_blob, m->tokenizer_blob_len);
        if (!tb) { s = qj_fail(QJ_ERR_NOMEM, "out of memory"); goto done; }
        cJSON_AddStringToObject(tb, "kind", m->tokenizer_kind);
        cJSON_AddItemToObject(root, "tokenizer", tb);
    }
    if (m->n_kernels) {
        cJSON *ka = cJSON_AddArrayToObject(root, "kernels");
        for (int i = 0; i < m->n_kernels; i++) {
            cJSON *kb = add_blob(&L, m->kernels[i].image, m->kernels[i].len);
            if (!kb) { s = qj_fail(QJ_ERR_NOMEM, "out of memory"); goto done; }
            cJSON_AddStringToObject(kb, "name", m->kernels[i].name);
            cJSON_AddStringToObject(kb, "arch", m->kernels[i].arch);
            cJSON_AddItemToArray(ka, kb);
        }
    }
    if (m->n_cpu_code) {
        cJSON *ca = cJSON_AddArrayToObject(root, "cpu_code");
        for (int i = 0; i < m->n_cpu_code; i++) {
            const qj_cpu_code *c = &m->cpu_code[i];
            cJSON *cb = add_blob(&L, c->object, c->len);
            if (!cb) { s = qj_fail(QJ_ERR_NOMEM, "out of memory"); goto done; }
            cJSON_AddStringToObject(cb, "triple", c->triple);
            cJSON_AddStringToObject(cb, "cpu", c->cpu);
            cJSON_AddStringToObject(cb, "level", c->level);
            cJSON_AddStringToObject(cb, "features", c->features ? c->features : "");
            cJSON_AddStringToObject(cb, "llvm", c->llvm);
            cJSON_AddNumberToObject(cb, "abi", c->abi);
            cJSON *kk = cJSON_AddArrayToObject(cb, "kernels");
            for (int k = 0; k < c->n_kernels; k++) {
                const qj_cpu_code_kernel *e = &c->kernels[k];
                cJSON *ko = cJSON_CreateObject();
                cJSON_AddStringToObject(ko, "symbol", e->symbol);
                cJSON_AddNumberToObject(ko, "bits", e->bits);
                cJSON_AddNumberToObject(ko, "group", e->group);
                cJSON_AddNumberToObject(ko, "N", (double)e->N);
                cJSON_AddNumberToObject(ko, "K", (double)e->K);
                cJSON_AddBoolToObject(ko, "symmetric", e->symmetric);
                cJSON_AddStringToObject(ko, "scale_dtype", e->scale_bf16 ? "bf16" : "f16");
                cJSON_AddItemToArray(kk, ko);
            }
            cJSON_AddItemToArray(ca, cb);
        }
    }
    qj_size_info z;
    qj_model_size(m, &z);
    cJSON_AddItemToObject(root, "size", qj_size_to_cjson(&z));
    manifest = cJSON_Print(root);
    if (!manifest) { s = qj_fail(QJ_ERR_NOMEM, "out of memory printing the manifest"); goto done; }
    uint64_t mlen = strlen(manifest);
    uint64_t doff = (QJ_PACKAGE_HEADER + mlen + QJ_PACKAGE_DATA_ALIGN - 1) / QJ_PACKAGE_DATA_ALIGN * QJ_PACKAGE_DATA_ALIGN;
    uint64_t dlen = L.end;
    unsigned char hdr[QJ_PACKAGE_HEADER] = {0};
    uint32_t ver = QJ_PACKAGE_VERSION;
    memcpy(hdr, QJ_PACKAGE_MAGIC, 8);
    memcpy(hdr + 8, &ver, 4);
    memcpy(hdr + 16, &mlen, 8);
    memcpy(hdr + 24, &doff, 8);
    memcpy(hdr + 32, &dlen, 8);
    if ((s = qj_afile_open(&f, path))) goto done;
    if ((s = qj_afile_write(&f, hdr, sizeof hdr)) || (s = qj_afile_write(&f, manifest, mlen)) ||
        (s = qj_afile_align(&f, QJ_PACKAGE_DATA_ALIGN)))
        goto done;
    for (int i = 0; i < L.n; i++) {
        if ((s = qj_afile_align(&f, QJ_PACKAGE_ALIGN))) goto done;
        if ((s = qj_afile_write(&f, L.blobs[i].data, L.blobs[i].bytes))) goto done;
    }
    s = qj_afile_commit(&f);
done:
    if (f.fp) qj_afile_abort(&f);
    free(manifest);
    free(L.blobs);
    cJSON_Delete(root);
    return s;
}
