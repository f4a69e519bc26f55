/* qj_package.c — reads qjit packages (header, manifest, tensor arrays),
 * model sizes, and the canonical tensor order. */
#include "qj_package.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "qj_layout.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t qj_checksum(const void *data, size_t n) { return XXH3_64bits(data, n); }

int qj_package_sniff(const void *head, size_t n) {
    return n >= 8 && memcmp(head, QJ_PACKAGE_MAGIC, 8) == 0;
}

qj_load_params qj_load_default_params(void) {
    qj_load_params p = {1};
    return p;
}

qj_status qj_model_each_tensor(const qj_model *m, qj_tensor_fn fn, void *ctx) {
    qj_status s;
    if ((s = fn(&m->tok_embedding, ctx))) return s;
    for (int i = 0; i < m->cfg.n_layers; i++) {
        const qj_layer *L = &m->layers[i];
        const qj_tensor *order[] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->bq, &L->bk, &L->bv,
                                    &L->wo, &L->ffn_norm, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
            if (order[k]->data && (s = fn(order[k], ctx))) return s;
    }
    if ((s = fn(&m->final_norm, ctx))) return s;
    if (!m->cfg.tied_embeddings && (s = fn(&m->lm_head, ctx))) return s;
    return QJ_OK;
}

static qj_status add_size(const qj_tensor *t, void *ctx) {
    qj_size_info *z = ctx;
    z->bytes += qj_tensor_bytes(t);
    z->params += (uint64_t)qj_tensor_numel(t);
    return QJ_OK;
}

void qj_model_size(const qj_model *m, qj_size_info *out) {
    memset(out, 0, sizeof *out);
    qj_model_each_tensor(m, add_size, out);
    out->gb = (double)out->bytes / 1e9;
    out->gib = (double)out->bytes / (double)(1ull << 30);
    out->bits_per_weight = out->params ? (double)out->bytes * 8.0 / (double)out->params : 0.0;
}

void *qj_size_to_cjson(const qj_size_info *z) {
    cJSON *sz = cJSON_CreateObject();
    cJSON_AddNumberToObject(sz, "bytes", (double)z->bytes);
    cJSON_AddNumberToObject(sz, "params", (double)z->params);
    cJSON_AddNumberToObject(sz, "gb", z->gb);
    cJSON_AddNumberToObject(sz, "gib", z->gib);
    cJSON_AddNumberToObject(sz, "bits_per_weight", z->bits_per_weight);
    return sz;
}

/* ---- reading ---- */

typedef struct reader {
    const char *path;
    const unsigned char *data; /* data section */
    uint64_t data_len;
    int verify;
} reader;

static qj_status get_int(const cJSON *obj, const char *key, const char *where, int64_t lo, int64_t hi, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int64_t)v->valuedouble)
        return qj_fail(QJ_ERR_FORMAT, "%s.%s: expected an integer", where, key);
    int64_t x = (int64_t)v->valuedouble;
    if (x < lo || x > hi)
        return qj_fail(QJ_ERR_FORMAT, "%s.%s: %" PRId64 " out of range (%" PRId64 "..%" PRId64 ")", where, key, x, lo, hi);
    *out = x;
    return QJ_OK;
}

static qj_status get_num(const cJSON *obj, const char *key, const char *where, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v)) return qj_fail(QJ_ERR_FORMAT, "%s.%s: expected a number", where, key);
    *out = v->valuedouble;
    return QJ_OK;
}

static qj_status get_bool(const cJSON *obj, const char *key, const char *where, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsBool(v)) return qj_fail(QJ_ERR_FORMAT, "%s.%s: expected true or false", where, key);
    *out = cJSON_IsTrue(v);
    return QJ_OK;
}

static const char *get_str(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A {"offset", "bytes", "xxh3"} array reference; checks range, alignment, checksum. */
static qj_status get_blob(const reader *r, const cJSON *t, const char *key, const char *name, uint64_t expect,
                          const void **out) {
    char where[256];
    snprintf(where, sizeof where, "tensor %s: %s", name, key);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(t, key);
    if (!cJSON_IsObject(b)) return qj_fail(QJ_ERR_FORMAT, "%s: missing", where);
    int64_t off, bytes;
    qj_status s;
    if ((s = get_int(b, "offset", where, 0, INT64_MAX, &off)) || (s = get_int(b, "bytes", where, 0, INT64_MAX, &bytes)))
        return s;
    if ((uint64_t)bytes != expect)
        return qj_fail(QJ_ERR_FORMAT, "%s: %" PRId64 " bytes, the shape and format imply %" PRIu64, where, bytes, expect);
    if ((uint64_t)off > r->data_len || (uint64_t)bytes > r->data_len - (uint64_t)off)
        return qj_fail(QJ_ERR_FORMAT, "%s: bytes [%" PRId64 ", %" PRId64 ") lie outside the data section (%" PRIu64 " bytes)",
                       where, off, off + bytes, r->data_len);
    if (off % QJ_PACKAGE_ALIGN) return qj_fail(QJ_ERR_FORMAT, "%s: offset %" PRId64 " is not 64-byte aligned", where, off);
    const char *sum = get_str(b, "xxh3");
    if (!sum) return qj_fail(QJ_ERR_FORMAT, "%s: missing checksum \"xxh3\"", where);
    if (r->verify) {
        char buf[17];
        snprintf(buf, sizeof buf, "%016" PRIx64, qj_checksum(r->data + off, (size_t)bytes));
        if (strcmp(buf, sum))
            return qj_fail(QJ_ERR_FORMAT, "%s: checksum mismatch (manifest %s, data %s): the file is corrupted", where,
                           sum, buf);
    }
    *out = r->data + off;
    return QJ_OK;
}

static qj_status read_tensor(const reader *r, qj_model *m, const cJSON *t, int index) {
    char where[64];
    snprintf(where, sizeof where, "tensors[%d]", index);
    const char *name = get_str(t, "name");
    if (!name) return qj_fail(QJ_ERR_FORMAT, "%s: missing \"name\"", where);
    qj_tensor *slot = qj_model_slot(m, name);
    if (!slot || (strstr(name, ".bias") && !m->cfg.qkv_bias) ||
        (!strcmp(name, "lm_head.weight") && m->cfg.tied_embeddings))
        return qj_fail(QJ_ERR_FORMAT, "%s: unexpected tensor \"%s\" for this model", where, name);
    if (slot->data) return qj_fail(QJ_ERR_FORMAT, "%s: tensor \"%s\" appears twice", where, name);
    const char *dt = get_str(t, "dtype");
    qj_dtype dtype;
    if (!dt) return qj_fail(QJ_ERR_FORMAT, "tensor %s: missing \"dtype\"", name);
    if (!strcmp(dt, "q")) dtype = QJ_DTYPE_Q;
    else if (qj_dtype_parse(dt, &dtype)) return qj_fail(QJ_ERR_FORMAT, "tensor %s: unknown dtype \"%s\"", name, dt);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    int ndim = cJSON_GetArraySize(shape);
    if (!cJSON_IsArray(shape) || ndim < 1 || ndim > 2)
        return qj_fail(QJ_ERR_FORMAT, "tensor %s: \"shape\" must be an array of 1 or 2 integers", name);
    int64_t dims[2] = {0, 0};
    for (int i = 0; i < ndim; i++) {
        const cJSON *d = cJSON_GetArrayItem(shape, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < 1 || d->valuedouble > 1e9 || d->valuedouble != (double)(int64_t)d->valuedouble)
            return qj_fail(QJ_ERR_FORMAT, "tensor %s: shape[%d] is not a positive integer", name, i);
        dims[i] = (int64_t)d->valuedouble;
    }
    qj_status s;
    if (dtype != QJ_DTYPE_Q) {
        const void *data;
        qj_tensor_set(slot, name, dtype, ndim, dims, NULL);
        if ((s = get_blob(r, t, "data", name, slot->nbytes, &data))) return s;
        slot->data = data;
        return QJ_OK;
    }
    if (ndim != 2) return qj_fail(QJ_ERR_FORMAT, "tensor %s: a quantized tensor must be 2-D", name);
    int64_t bits, group, sym;
    const char *sd = get_str(t, "scale_dtype");
    qj_qformat f = {0};
    int symmetric = 0;
    if ((s = get_int(t, "bits", name, QJ_MIN_BITS, QJ_MAX_BITS, &bits)) ||
        (s = get_int(t, "group", name, 32, 1 << 30, &group)) || (s = get_bool(t, "symmetric", name, &symmetric)))
        return s;
    sym = symmetric;
    if (group % 32) return qj_fail(QJ_ERR_FORMAT, "tensor %s: group %" PRId64 " is not a multiple of 32", name, group);
    if (!sd || qj_dtype_parse(sd, &f.scale_dtype) || (f.scale_dtype != QJ_DTYPE_F16 && f.scale_dtype != QJ_DTYPE_BF16))
        return qj_fail(QJ_ERR_FORMAT, "tensor %s: \"scale_dtype\" must be \"f16\" or \"bf16\"", name);
    f.bits = (int)bits;
    f.group = (int)group;
    f.symmetric = (int)sym;
    int64_t N = dims[0], K = dims[1], ng = QJ_NGROUPS(K, group);
    uint64_t qbytes = (uint64_t)N * (uint64_t)QJ_ROW_WORDS(K, bits) * 4, sbytes = (uint64_t)N * (uint64_t)ng * 2;
    const void *q, *sc, *z = NULL;
    if ((s = get_blob(r, t, "data", name, qbytes, &q)) || (s = get_blob(r, t, "scales", name, sbytes, &sc)) ||
        (!sym && (s = get_blob(r, t, "zeros", name, sbytes, &z))))
        return s;
    qj_tensor_set(slot, name, QJ_DTYPE_Q, 2, dims, q);
    slot->nbytes = qbytes;
    slot->q = f;
    slot->scales = sc;
    slot->zeros = z;
    slot->scales_nbytes = sbytes;
    slot->zeros_nbytes = sym ? 0 : sbytes;
    return QJ_OK;
}

static qj_status read_config(const cJSON *mj, qj_config *c, int *synthetic) {
    const char *w = "model";
    int64_t v[9];
    static const char *keys[9] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads",
                                  "head_dim", "vocab_size", "seq_len", "bos_id"};
    qj_status s;
    if (!cJSON_IsObject(mj)) return qj_fail(QJ_ERR_FORMAT, "missing \"model\" object");
    for (int i = 0; i < 9; i++)
        if ((s = get_int(mj, keys[i], w, i == 8 ? -1 : 1, 1 << 24, &v[i]))) return s;
    int64_t eos;
    if ((s = get_int(mj, "eos_id", w, -1, 1 << 24, &eos))) return s;
    double theta = 0, eps = 0;
    int tied = 0, bias = 0;
    if ((s = get_num(mj, "rope_theta", w, &theta)) || (s = get_num(mj, "rms_eps", w, &eps)) ||
        (s = get_bool(mj, "tied_embeddings", w, &tied)) || (s = get_bool(mj, "qkv_bias", w, &bias)) ||
        (s = get_bool(mj, "synthetic", w, synthetic)))
        return s;
    const char *arch = get_str(mj, "arch"), *rope = get_str(mj, "rope_style");
    memset(c, 0, sizeof *c);
    if (!arch) return qj_fail(QJ_ERR_FORMAT, "model.arch: missing");
    if (!strcmp(arch, "llama")) c->arch = QJ_ARCH_LLAMA;
    else if (!strcmp(arch, "mistral")) c->arch = QJ_ARCH_MISTRAL;
    else if (!strcmp(arch, "qwen2")) c->arch = QJ_ARCH_QWEN2;
    else return qj_fail(QJ_ERR_FORMAT, "model.arch: unknown architecture \"%s\"", arch);
    if (!rope || (strcmp(rope, "interleaved") && strcmp(rope, "half")))
        return qj_fail(QJ_ERR_FORMAT, "model.rope_style: expected \"interleaved\" or \"half\"");
    c->rope_style = strcmp(rope, "half") ? QJ_ROPE_INTERLEAVED : QJ_ROPE_HALF;
    c->dim = (int)v[0];
    c->hidden_dim = (int)v[1];
    c->n_layers = (int)v[2];
    c->n_heads = (int)v[3];
    c->n_kv_heads = (int)v[4];
    c->head_dim = (int)v[5];
    c->vocab_size = (int)v[6];
    c->seq_len = (int)v[7];
    c->bos_id = (int)v[8];
    c->eos_id = (int)eos;
    c->rope_theta = (float)theta;
    c->rms_eps = (float)eps;
    c->tied_embeddings = tied;
    c->qkv_bias = bias;
    return QJ_OK;
}

/* One cpu_code entry: target, kernels (symbol + spec), object. */
static qj_status read_cpu_code(const reader *r, const cJSON *e, int index, qj_cpu_code *c) {
    char where[64];
    snprintf(where, sizeof where, "cpu_code[%d]", index);
    static const struct {
        const char *key;
        size_t off, size;
    } strs[] = {{"triple", offsetof(qj_cpu_code, triple), sizeof c->triple},
                {"cpu", offsetof(qj_cpu_code, cpu), sizeof c->cpu},
                {"level", offsetof(qj_cpu_code, level), sizeof c->level},
                {"llvm", offsetof(qj_cpu_code, llvm), sizeof c->llvm}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        const char *v = get_str(e, strs[i].key);
        if (!v || strlen(v) >= strs[i].size)
            return qj_fail(QJ_ERR_FORMAT, "manifest.%s.%s: missing, not a string or longer than %zu bytes", where,
                           strs[i].key, strs[i].size - 1);
        snprintf((char *)c + strs[i].off, strs[i].size, "%s", v);
    }
    const char *feat = get_str(e, "features");
    if (!feat) return qj_fail(QJ_ERR_FORMAT, "manifest.%s.features: missing or not a string", where);
    if (!(c->features = strdup(feat))) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    int64_t abi, bytes;
    qj_status s;
    if ((s = get_int(e, "abi", where, 0, 1 << 30, &abi)) || (s = get_int(e, "bytes", where, 1, INT64_MAX, &bytes))) return s;
    c->abi = (int)abi;
    const cJSON *ks = cJSON_GetObjectItemCaseSensitive(e, "kernels");
    if (!cJSON_IsArray(ks)) return qj_fail(QJ_ERR_FORMAT, "manifest.%s.kernels: missing or not an array", where);
    int nk = cJSON_GetArraySize(ks);
    c->kernels = calloc((size_t)(nk ? nk : 1), sizeof *c->kernels);
    if (!c->kernels) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    for (int k = 0; k < nk; k++) {
        const cJSON *ke = cJSON_GetArrayItem(ks, k);
        qj_cpu_code_kernel *q = &c->kernels[k];
        char kw[96];
        snprintf(kw, sizeof kw, "manifest.%s.kernels[%d]", where, k);
        const char *sym = get_str(ke, "symbol"), *sd = get_str(ke, "scale_dtype");
        int64_t bits, group, N, K;
        int sym_ = 0;
        if (!sym || strlen(sym) >= sizeof q->symbol || !*sym)
            return qj_fail(QJ_ERR_FORMAT, "%s.symbol: missing, empty or longer than %zu bytes", kw, sizeof q->symbol - 1);
        if ((s = get_int(ke, "bits", kw, QJ_MIN_BITS, QJ_MAX_BITS, &bits)) || (s = get_int(ke, "group", kw, 32, 1 << 30, &group)) ||
            (s = get_int(ke, "N", kw, 1, 1 << 30, &N)) || (s = get_int(ke, "K", kw, 1, 1 << 30, &K)) ||
            (s = get_bool(ke, "symmetric", kw, &sym_)))
            return s;
        if (!sd || (strcmp(sd, "f16") && strcmp(sd, "bf16")))
            return qj_fail(QJ_ERR_FORMAT, "%s.scale_dtype: expected \"f16\" or \"bf16\"", kw);
        snprintf(q->symbol, sizeof q->symbol, "%s", sym);
        q->bits = (int)bits;
        q->group = (int)group;
        q->N = N;
        q->K = K;
        q->symmetric = sym_;
        q->scale_bf16 = !strcmp(sd, "bf16");
        c->n_kernels++;
    }
    cJSON *wrap = cJSON_CreateObject(); /* get_blob looks up a key: wrap the entry */
    if (!wrap) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    cJSON_AddItemReferenceToObject(wrap, "object", (cJSON *)e);
    s = get_blob(r, wrap, "object", where, (uint64_t)bytes, &c->object);
    cJSON_Delete(wrap);
    c->len = (size_t)bytes;
    return s;
}

static qj_status load_image(const unsigned char *b, size_t len, void *map, const char *path, const qj_load_params *p,
                            qj_model **out);

qj_status qj_package_load(const char *path, const qj_load_params *p, qj_model **out) {
    *out = NULL;
    void *map;
    size_t len;
    qj_status s = qj_map_file(path, &map, &len);
    if (s) return s;
    return load_image(map, len, map, path, p, out);
}

qj_status qj_package_load_mem(const void *data, size_t len, const char *name, const qj_load_params *p, qj_model **out) {
    *out = NULL;
    return load_image(data, len, NULL, name, p, out);
}

/* map: the file's mapping, which the model takes (NULL: b is borrowed). */
static qj_status load_image(const unsigned char *b, size_t len, void *map, const char *path, const qj_load_params *p,
                            qj_model **out) {
    qj_load_params defaults = qj_load_default_params();
    if (!p) p = &defaults;
    qj_status s;
    cJSON *root = NULL;
    qj_model *m = NULL;
    if (len < QJ_PACKAGE_HEADER || !qj_package_sniff(b, len)) {
        s = qj_fail(QJ_ERR_FORMAT, "not a qjit package (bad magic or shorter than the %d-byte header)", QJ_PACKAGE_HEADER);
        goto fail;
    }
    uint32_t version;
    uint64_t mlen, doff, dlen;
    memcpy(&version, b + 8, 4);
    memcpy(&mlen, b + 16, 8);
    memcpy(&doff, b + 24, 8);
    memcpy(&dlen, b + 32, 8);
    if (version > QJ_PACKAGE_VERSION) {
        s = qj_fail(QJ_ERR_UNSUPPORTED,
                    "package format version %u is newer than this qjit supports (%d): rebuild it with this qjit or "
                    "upgrade qjit", version, QJ_PACKAGE_VERSION);
        goto fail;
    }
    if (version == 0) { s = qj_fail(QJ_ERR_FORMAT, "package format version 0 is invalid"); goto fail; }
    if (mlen > len - QJ_PACKAGE_HEADER || doff < QJ_PACKAGE_HEADER + mlen || doff > len || dlen != len - doff) {
        s = qj_fail(QJ_ERR_FORMAT,
                    "header is inconsistent with the file size %zu (manifest %" PRIu64 " bytes, data at %" PRIu64
                    " with %" PRIu64 " bytes): truncated or corrupted", len, mlen, doff, dlen);
        goto fail;
    }
    root = cJSON_ParseWithLength((const char *)b + QJ_PACKAGE_HEADER, (size_t)mlen);
    if (!cJSON_IsObject(root)) { s = qj_fail(QJ_ERR_FORMAT, "manifest is not valid JSON"); goto fail; }
    const char *fmt = get_str(root, "format");
    if (!fmt || strcmp(fmt, "qjit-package")) { s = qj_fail(QJ_ERR_FORMAT, "manifest.format is not \"qjit-package\""); goto fail; }
    qj_config cfg;
    int synthetic = 0;
    if ((s = read_config(cJSON_GetObjectItemCaseSensitive(root, "model"), &cfg, &synthetic))) goto fail;
    if ((s = qj_model_alloc(&m, &cfg))) goto fail;
    if (map) {
        if ((s = qj_model_adopt(m, map, len, 1))) goto fail;
        map = NULL; /* owned by m now */
    }
    m->source = QJ_SOURCE_PACKAGE;
    m->synthetic = synthetic;
    snprintf(m->origin, sizeof m->origin, "%s", path);
    const char *pd = get_str(root, "plan_desc");
    snprintf(m->plan_desc, sizeof m->plan_desc, "%s", pd ? pd : "");
    reader r = {path, b + doff, dlen, p->verify_checksums};
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    if (!cJSON_IsArray(tensors)) { s = qj_fail(QJ_ERR_FORMAT, "manifest.tensors: missing or not an array"); goto fail; }
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tensors) {
        if ((s = read_tensor(&r, m, t, i++))) goto fail;
    }
    if (cfg.tied_embeddings) m->lm_head = m->tok_embedding;
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(root, "tokenizer");
    if (tok) {
        const char *kind = get_str(tok, "kind");
        const void *blob;
        int64_t tb;
        if (!kind || strlen(kind) >= sizeof m->tokenizer_kind) { s = qj_fail(QJ_ERR_FORMAT, "tokenizer.kind: missing"); goto fail; }
        if ((s = get_int(tok, "bytes", "tokenizer", 1, INT64_MAX, &tb)) || (s = get_blob(&r, root, "tokenizer", "tokenizer", (uint64_t)tb, &blob)))
            goto fail;
        m->tokenizer_blob = malloc((size_t)tb);
        if (!m->tokenizer_blob) { s = qj_fail(QJ_ERR_NOMEM, "out of memory"); goto fail; }
        memcpy(m->tokenizer_blob, blob, (size_t)tb);
        m->tokenizer_blob_len = (size_t)tb;
        snprintf(m->tokenizer_kind, sizeof m->tokenizer_kind, "%s", kind);
    }
    const cJSON *ks = cJSON_GetObjectItemCaseSensitive(root, "kernels");
    if (ks) {
        int nk = cJSON_GetArraySize(ks);
        if (!cJSON_IsArray(ks)) { s = qj_fail(QJ_ERR_FORMAT, "manifest.kernels: not an array"); goto fail; }
        m->kernels = calloc((size_t)(nk ? nk : 1), sizeof *m->kernels);
        if (!m->kernels) { s = qj_fail(QJ_ERR_NOMEM, "out of memory"); goto fail; }
        for (int k = 0; k < nk; k++) {
            cJSON *wrap = cJSON_CreateObject(); /* get_blob looks up a key: wrap the entry */
            const cJSON *e = cJSON_GetArrayItem(ks, k);
            const char *kn = get_str(e, "name"), *ka = get_str(e, "arch");
            int64_t kbytes;
            char where[64];
            snprintf(where, sizeof where, "kernels[%d]", k);
            if (!kn || !ka || strlen(kn) >= sizeof m->kernels[k].name || strlen(ka) >= sizeof m->kernels[k].arch) {
                cJSON_Delete(wrap);
                s = qj_fail(QJ_ERR_FORMAT, "manifest.%s: missing or overlong \"name\"/\"arch\"", where);
                goto fail;
            }
            s = get_int(e, "bytes", where, 1, INT64_MAX, &kbytes);
            if (!s) {
                cJSON_AddItemReferenceToObject(wrap, "kernel", (cJSON *)e);
                s = get_blob(&r, wrap, "kernel", kn, (uint64_t)kbytes, &m->kernels[k].image);
            }
            cJSON_Delete(wrap);
            if (s) goto fail;
            snprintf(m->kernels[k].name, sizeof m->kernels[k].name, "%s", kn);
            snprintf(m->kernels[k].arch, sizeof m->kernels[k].arch, "%s", ka);
            m->kernels[k].len = (size_t)kbytes;
            m->n_kernels++;
        }
    }
    const cJSON *cc = cJSON_GetObjectItemCaseSensitive(root, "cpu_code");
    if (cc) {
        int nc = cJSON_GetArraySize(cc);
        if (!cJSON_IsArray(cc)) { s = qj_fail(QJ_ERR_FORMAT, "manifest.cpu_code: not an array"); goto fail; }
        m->cpu_code = calloc((size_t)(nc ? nc : 1), sizeof *m->cpu_code);
        if (!m->cpu_code) { s = qj_fail(QJ_ERR_NOMEM, "out of memory"); goto fail; }
        for (int k = 0; k < nc; k++) {
            m->n_cpu_code++; /* counted first: a half-read entry is freed with the model */
            if ((s = read_cpu_code(&r, cJSON_GetArrayItem(cc, k), k, &m->cpu_code[k]))) goto fail;
        }
    }
    if ((s = qj_model_validate(m))) goto fail;
    cJSON_Delete(root);
    *out = m;
    return QJ_OK;
fail:
    cJSON_Delete(root);
    qj_model_free(m);
    if (map) munmap(map, len);
    return qj_fail_context(s, "%s", path);
}

qj_status qj_package_manifest(const char *path, char **json) {
    *json = NULL;
    void *map;
    size_t len;
    qj_status s = qj_map_file(path, &map, &len);
    if (s) return s;
    const unsigned char *b = map;
    uint64_t mlen = 0;
    if (len >= QJ_PACKAGE_HEADER && qj_package_sniff(b, len)) memcpy(&mlen, b + 16, 8);
    if (len < QJ_PACKAGE_HEADER || !qj_package_sniff(b, len) || mlen > len - QJ_PACKAGE_HEADER) {
        munmap(map, len);
        return qj_fail(QJ_ERR_FORMAT, "%s: not a qjit package or truncated header", path);
    }
    char *j = malloc((size_t)mlen + 1);
    if (!j) { munmap(map, len); return qj_fail(QJ_ERR_NOMEM, "out of memory"); }
    memcpy(j, b + QJ_PACKAGE_HEADER, (size_t)mlen);
    j[mlen] = '\0';
    munmap(map, len);
    *json = j;
    return QJ_OK;
}
