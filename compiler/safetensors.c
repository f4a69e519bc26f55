/* safetensors.c — validating reader (memory-mapped) and streaming writer for
 * .safetensors files. See safetensors.h for the format and the checks. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "qj_io.h"

struct qj_st_file {
    char *path;
    void *map;               /* whole file, read-only */
    size_t map_len;
    int map_given;           /* 1: the map (and copies) now belong to a qj_model */
    uint64_t data_start;     /* file offset of the data section: 8 + header length */
    int n;
    qj_tensor *tensors;      /* (n) header order */
    char **names;            /* (n) full names, owned */
    uint64_t *begin;         /* (n) data_offsets[0] */
    int *by_name;            /* (n) indices sorted by name */
    void **copies;           /* aligned copies of misaligned tensors, owned until given */
    int n_copies;
    char **meta;             /* (2*n_meta) key, value, ... owned */
    int n_meta;
};

/* ---- dtypes ------------------------------------------------------------ */

const char *qj_st_dtype_name(qj_dtype t) {
    switch (t) {
    case QJ_DTYPE_F32: return "F32";
    case QJ_DTYPE_F16: return "F16";
    case QJ_DTYPE_BF16: return "BF16";
    default: return NULL;
    }
}

/* Dtypes of the format that qjit does not read; named so the error says
 * "unsupported" rather than "unknown". */
static int st_dtype_known_unsupported(const char *s) {
    static const char *const other[] = {"BOOL", "U8",  "I8",  "I16",     "U16",     "I32",
                                        "U32",  "I64", "U64", "F64",     "F8_E5M2", "F8_E4M3",
                                        "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (!strcmp(s, other[i])) return 1;
    return 0;
}

/* ---- reader ------------------------------------------------------------ */

void qj_st_close(qj_st_file *f) {
    if (!f) return;
    if (!f->map_given) {
        if (f->map) munmap(f->map, f->map_len);
        for (int i = 0; i < f->n_copies; i++) free(f->copies[i]);
    }
    free(f->copies);
    if (f->names)
        for (int i = 0; i < f->n; i++) free(f->names[i]);
    free(f->names);
    for (int i = 0; i < 2 * f->n_meta; i++) free(f->meta[i]);
    free(f->meta);
    free(f->tensors);
    free(f->begin);
    free(f->by_name);
    free(f->path);
    free(f);
}

const char *qj_st_path(const qj_st_file *f) { return f->path; }
int qj_st_count(const qj_st_file *f) { return f->n; }
const qj_tensor *qj_st_tensor(const qj_st_file *f, int i) {
    return i >= 0 && i < f->n ? &f->tensors[i] : NULL;
}
const char *qj_st_name(const qj_st_file *f, int i) { return i >= 0 && i < f->n ? f->names[i] : NULL; }
uint64_t qj_st_file_offset(const qj_st_file *f, int i) {
    return i >= 0 && i < f->n ? f->data_start + f->begin[i] : 0;
}

const qj_tensor *qj_st_find(const qj_st_file *f, const char *name) {
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(f->names[f->by_name[mid]], name);
        if (c == 0) return &f->tensors[f->by_name[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

const char *qj_st_metadata(const qj_st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
    return NULL;
}

qj_status qj_st_give_to_model(qj_st_file *f, qj_model *m) {
    if (f->map_given) return qj_fail(QJ_ERR_INTERNAL, "%s: map already given to a model", f->path);
    /* Adopt copies first, then the map; on a failure part-way, what was adopted
     * belongs to the model and the rest stays with f. */
    for (int i = 0; i < f->n_copies; i++) {
        qj_status s = qj_model_adopt(m, f->copies[i], 0, 0);
        if (s) {
            memmove(f->copies, f->copies + i, (size_t)(f->n_copies - i) * sizeof *f->copies);
            f->n_copies -= i;
            return s;
        }
    }
    f->n_copies = 0;
    qj_status s = qj_model_adopt(m, f->map, f->map_len, 1);
    if (s) return s;
    f->map_given = 1;
    return QJ_OK;
}

static int is_json_space(uint8_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0';
}

/* A JSON number that is an integer in [0, 2^53]. */
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740992.0 || floor(d) != d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static void shape_str(char *buf, size_t cap, const qj_tensor *t) {
    size_t k = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < t->ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, ")");
}

/* Parse one header entry into f's slot i. */
static qj_status parse_entry(qj_st_file *f, int i, const cJSON *e, uint64_t data_len, uint64_t *end_out) {
    const char *path = f->path, *name = f->names[i];
    if (!cJSON_IsObject(e))
        return qj_fail(QJ_ERR_FORMAT, "%s: tensor \"%s\": header entry is not an object", path, name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!jd) return qj_fail(QJ_ERR_FORMAT, "%s: tensor \"%s\": missing \"dtype\"", path, name);
    if (!js) return qj_fail(QJ_ERR_FORMAT, "%s: tensor \"%s\": missing \"shape\"", path, name);
    if (!jo) return qj_fail(QJ_ERR_FORMAT, "%s: tensor \"%s\": missing \"data_offsets\"", path, name);

    if (!cJSON_IsString(jd))
        return qj_fail(QJ_ERR_FORMAT, "%s: tensor \"%s\": \"dtype\" is not a string", path, name);
    qj_dtype dt;
    const char *ds = jd->valuestring;
    if (!strcmp(ds, "F32")) dt = QJ_DTYPE_F32;
    else if (!strcmp(ds, "F16")) dt = QJ_DTYPE_F16;
    else if (!strcmp(ds, "BF16")) dt = QJ_DTYPE_BF16;
    else if (st_dtype_known_unsupported(ds))
        return qj_fail(QJ_ERR_UNSUPPORTED,
                       "%s: tensor \"%s\": unsupported dtype \"%s\" (qjit reads F32, F16 and BF16)", path,
                       name, ds);
    else
        return qj_fail(QJ_ERR_FORMAT, "%s: tensor \"%s\": unknown dtype \"%s\"", path, name, ds);

    if (!cJSON_IsArray(js))
        return qj_fail(QJ_ERR_FORMAT, "%s: tensor \"%s\": \"shape\" is not an array", path, name);
    int nd = cJSON_GetArraySize(js);
    if (nd > QJ_MAX_DIMS)
        return qj_fail(QJ_ERR_UNSUPPORTED, "%s: tensor \"%s\": %d dimensions, qjit handles at most %d", path,
                       name, nd, QJ_MAX_DIMS);
    qj_tensor *t = &f->tensors[i];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dt;
    t->ndim = nd;
    uint64_t numel = 1;
    int overflow = 0;
    for (int d = 0; d < nd; d++) {
        const cJSON *jv = cJSON_GetArrayItem(js, d);
        if (cJSON_IsNumber(jv) && jv->valuedouble < 0)
            return qj_fail(QJ_ERR_FORMAT, "%s: tensor \"%s\": shape[%d] is negative (%.0f)", path, name, d,
                           jv->valuedouble);
        uint64_t v;
        if (!json_uint(jv, &v))
            return qj_fail(QJ_ERR_FORMAT, "%s: tensor \"%s\": shape[%d] is not a non-negative integer", path,
                           name, d);
        t->shape[d] = (int64_t)v;
        if (v && numel > UINT64_MAX / v) overflow = 1;
        else numel *= v;
    }

    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return qj_fail(QJ_ERR_FORMAT, "%s: tensor \"%s\": \"data_offsets\" is not an array of two integers",
                       path, name);
    uint64_t b, en;
    if (!json_uint(cJSON_GetArrayItem(jo, 0), &b) || !json_uint(cJSON_GetArrayItem(jo, 1), &en))
        return qj_fail(QJ_ERR_FORMAT,
                       "%s: tensor \"%s\": \"data_offsets\" must hold two non-negative integers", path, name);
    if (en < b)
        return qj_fail(QJ_ERR_FORMAT, "%s: tensor \"%s\": data_offsets [%llu, %llu] decrease", path, name,
                       (unsigned long long)b, (unsigned long long)en);
    if (en > data_len)
        return qj_fail(QJ_ERR_FORMAT,
                       "%s: tensor \"%s\": data_offsets [%llu, %llu] run past the end of the data section "
                       "(%llu bytes from file offset %llu; the tensor would end at file offset %llu, the file "
                       "has %zu bytes: truncated?)",
                       path, name, (unsigned long long)b, (unsigned long long)en,
                       (unsigned long long)data_len, (unsigned long long)f->data_start,
                       (unsigned long long)(f->data_start + en), f->map_len);
    size_t es = qj_dtype_size(dt);
    if (overflow || numel > UINT64_MAX / es || numel * es != en - b) {
        char sh[128];
        shape_str(sh, sizeof sh, t);
        return qj_fail(QJ_ERR_FORMAT,
                       "%s: tensor \"%s\": byte length mismatch: data_offsets [%llu, %llu] hold %llu bytes but "
                       "shape %s of %s needs %s%llu (file offset %llu)",
                       path, name, (unsigned long long)b, (unsigned long long)en,
                       (unsigned long long)(en - b), sh, ds, overflow ? "more than " : "",
                       overflow ? (unsigned long long)UINT64_MAX : (unsigned long long)(numel * es),
                       (unsigned long long)(f->data_start + b));
    }
    f->begin[i] = b;
    *end_out = en;
    t->nbytes = (size_t)(en - b);
    const uint8_t *p = (const uint8_t *)f->map + f->data_start + b;
    if ((uintptr_t)p % es) { /* legal but misaligned for its element type: copy */
        void *c = malloc(t->nbytes ? t->nbytes : 1);
        if (!c) return qj_fail(QJ_ERR_NOMEM, "%s: tensor \"%s\": out of memory", path, name);
        memcpy(c, p, t->nbytes);
        f->copies[f->n_copies++] = c;
        p = c;
    }
    t->data = p;
    return QJ_OK;
}

typedef struct span { uint64_t b, e; int i; } span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->b != y->b) return x->b < y->b ? -1 : 1;
    if (x->e != y->e) return x->e < y->e ? -1 : 1;
    return 0;
}

typedef struct name_ref { const char *name; int i; } name_ref;

static int name_cmp(const void *a, const void *b) {
    return strcmp(((const name_ref *)a)->name, ((const name_ref *)b)->name);
}

static qj_status parse_metadata(qj_st_file *f, const cJSON *jm) {
    if (!cJSON_IsObject(jm))
        return qj_fail(QJ_ERR_FORMAT, "%s: \"__metadata__\" is not an object", f->path);
    int n = cJSON_GetArraySize(jm);
    f->meta = calloc((size_t)(2 * n + 1), sizeof *f->meta);
    if (!f->meta) return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", f->path);
    for (const cJSON *kv = jm->child; kv; kv = kv->next) {
        if (!cJSON_IsString(kv))
            return qj_fail(QJ_ERR_FORMAT, "%s: \"__metadata__\".\"%s\" is not a string", f->path, kv->string);
        char *k = dup_str(kv->string), *v = dup_str(kv->valuestring);
        if (!k || !v) {
            free(k);
            free(v);
            return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", f->path);
        }
        f->meta[2 * f->n_meta] = k;
        f->meta[2 * f->n_meta + 1] = v;
        f->n_meta++;
    }
    return QJ_OK;
}

static qj_status parse_header(qj_st_file *f, const cJSON *root, uint64_t data_len) {
    const char *path = f->path;
    int total = cJSON_GetArraySize(root);
    f->tensors = calloc((size_t)total + 1, sizeof *f->tensors);
    f->names = calloc((size_t)total + 1, sizeof *f->names);
    f->begin = calloc((size_t)total + 1, sizeof *f->begin);
    f->by_name = calloc((size_t)total + 1, sizeof *f->by_name);
    f->copies = calloc((size_t)total + 1, sizeof *f->copies);
    span *sp = calloc((size_t)total + 1, sizeof *sp);
    name_ref *nr = calloc((size_t)total + 1, sizeof *nr);
    qj_status s = QJ_OK;
    if (!f->tensors || !f->names || !f->begin || !f->by_name || !f->copies || !sp || !nr) {
        s = qj_fail(QJ_ERR_NOMEM, "%s: out of memory reading %d header entries", path, total);
        goto done;
    }
    int have_meta = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            if (have_meta++) {
                s = qj_fail(QJ_ERR_FORMAT, "%s: \"__metadata__\" appears twice", path);
                goto done;
            }
            if ((s = parse_metadata(f, e))) goto done;
            continue;
        }
        int i = f->n;
        if (!(f->names[i] = dup_str(e->string))) {
            s = qj_fail(QJ_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        f->n++;
        if (!e->string[0]) {
            s = qj_fail(QJ_ERR_FORMAT, "%s: a tensor has an empty name", path);
            goto done;
        }
        uint64_t end = 0;
        if ((s = parse_entry(f, i, e, data_len, &end))) goto done;
        sp[i] = (span){f->begin[i], end, i};
        nr[i] = (name_ref){f->names[i], i};
    }
    /* duplicate names (cJSON keeps both copies of a repeated key) */
    qsort(nr, (size_t)f->n, sizeof *nr, name_cmp);
    for (int k = 0; k < f->n; k++) {
        if (k && !strcmp(nr[k].name, nr[k - 1].name)) {
            s = qj_fail(QJ_ERR_FORMAT, "%s: tensor \"%s\" appears twice in the header", path, nr[k].name);
            goto done;
        }
        f->by_name[k] = nr[k].i;
    }
    /* overlapping data (empty tensors overlap nothing) */
    qsort(sp, (size_t)f->n, sizeof *sp, span_cmp);
    int prev = -1;
    for (int k = 0; k < f->n; k++) {
        if (sp[k].b == sp[k].e) continue;
        if (prev >= 0 && sp[k].b < sp[prev].e) {
            s = qj_fail(QJ_ERR_FORMAT,
                        "%s: tensors \"%s\" [%llu, %llu] and \"%s\" [%llu, %llu] overlap (data byte %llu, "
                        "file offset %llu)",
                        path, f->names[sp[prev].i], (unsigned long long)sp[prev].b,
                        (unsigned long long)sp[prev].e, f->names[sp[k].i], (unsigned long long)sp[k].b,
                        (unsigned long long)sp[k].e, (unsigned long long)sp[k].b,
                        (unsigned long long)(f->data_start + sp[k].b));
            goto done;
        }
        if (prev < 0 || sp[k].e > sp[prev].e) prev = k;
    }
done:
    free(sp);
    free(nr);
    return s;
}

qj_status qj_st_open(const char *path, qj_st_file **out) {
    *out = NULL;
    qj_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = dup_str(path))) {
        free(f);
        return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", path);
    }
    cJSON *root = NULL;
    qj_status s = qj_map_file(path, &f->map, &f->map_len);
    if (s) goto fail;
    const uint8_t *p = f->map;
    if (f->map_len < 8) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: truncated: %zu bytes, shorter than the 8-byte header length", path,
                    f->map_len);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int k = 7; k >= 0; k--) hlen = hlen << 8 | p[k];
    if (hlen > QJ_ST_MAX_HEADER) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: header length %llu at byte offset 0 is absurd (limit %u)%s", path,
                    (unsigned long long)hlen, QJ_ST_MAX_HEADER,
                    hlen > f->map_len - 8 ? "; it also runs past the end of the file" : "");
        goto fail;
    }
    if (hlen > f->map_len - 8) {
        s = qj_fail(QJ_ERR_FORMAT,
                    "%s: header length %llu at byte offset 0 runs past the end of the file (%zu bytes)", path,
                    (unsigned long long)hlen, f->map_len);
        goto fail;
    }
    if (hlen < 2) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: header length %llu is too small for a JSON object", path,
                    (unsigned long long)hlen);
        goto fail;
    }
    f->data_start = 8 + hlen;
    const char *hdr = (const char *)p + 8;
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root) {
        size_t at = end && end >= hdr && end <= hdr + hlen ? (size_t)(end - hdr) : 0;
        s = qj_fail(QJ_ERR_FORMAT, "%s: header is not valid JSON (error near byte offset %zu)", path, 8 + at);
        goto fail;
    }
    for (const char *q = end; q && q < hdr + hlen; q++)
        if (!is_json_space((uint8_t)*q)) {
            s = qj_fail(QJ_ERR_FORMAT, "%s: header has trailing bytes after the JSON value (byte offset %zu)",
                        path, (size_t)(8 + (q - hdr)));
            goto fail;
        }
    if (!cJSON_IsObject(root)) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: header is JSON but not an object", path);
        goto fail;
    }
    if ((s = parse_header(f, root, (uint64_t)f->map_len - f->data_start))) goto fail;
    cJSON_Delete(root);
    *out = f;
    return QJ_OK;
fail:
    cJSON_Delete(root);
    qj_st_close(f);
    return s;
}

/* ---- writer ------------------------------------------------------------ */

struct qj_st_writer {
    qj_afile af;
    int n;
    uint64_t *size; /* (n) bytes of each entry */
    int *order;     /* (n) data-section order */
    int pos;        /* index into order of the entry being filled, -1 before the first */
    uint64_t filled; /* bytes put for order[pos] */
    uint64_t file_bytes;
    char **names;   /* (n) copies of the entries' names, for messages */
    qj_status err;  /* first failure (its message is the last error); commit refuses */
};

static void writer_free(qj_st_writer *w) {
    if (!w) return;
    if (w->names)
        for (int i = 0; i < w->n; i++) free(w->names[i]);
    free(w->names);
    free(w->size);
    free(w->order);
    free(w);
}

void qj_st_writer_abort(qj_st_writer *w) {
    if (!w) return;
    qj_afile_abort(&w->af);
    writer_free(w);
}

uint64_t qj_st_writer_file_bytes(const qj_st_writer *w) { return w->file_bytes; }

static qj_status build_header(const char *path, const qj_st_entry *entries, int n, const uint64_t *off,
                              const uint64_t *size, const char *const *meta_kv, int n_meta, char **out) {
    *out = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root) return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", path);
    if (n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (int k = 0; m && k < n_meta; k++)
            if (!cJSON_AddStringToObject(m, meta_kv[2 * k], meta_kv[2 * k + 1])) m = NULL;
        if (!m) goto nomem;
    }
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(root, entries[i].name);
        if (!e || !cJSON_AddStringToObject(e, "dtype", qj_st_dtype_name(entries[i].dtype))) goto nomem;
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        cJSON *of = cJSON_AddArrayToObject(e, "data_offsets");
        if (!sh || !of) goto nomem;
        for (int d = 0; d < entries[i].ndim; d++) {
            cJSON *v = cJSON_CreateNumber((double)entries[i].shape[d]);
            if (!v || !cJSON_AddItemToArray(sh, v)) goto nomem;
        }
        cJSON *b = cJSON_CreateNumber((double)off[i]), *e2 = cJSON_CreateNumber((double)(off[i] + size[i]));
        if (!b || !cJSON_AddItemToArray(of, b)) { cJSON_Delete(e2); goto nomem; }
        if (!e2 || !cJSON_AddItemToArray(of, e2)) goto nomem;
    }
    *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!*out) return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", path);
    return QJ_OK;
nomem:
    cJSON_Delete(root);
    return qj_fail(QJ_ERR_NOMEM, "%s: out of memory building the header", path);
}

qj_status qj_st_writer_open(qj_st_writer **out, const char *path, const qj_st_entry *entries, int n,
                            const char *const *meta_kv, int n_meta) {
    *out = NULL;
    if (n < 0 || n_meta < 0) return qj_fail(QJ_ERR_INVALID, "%s: negative tensor or metadata count", path);
    for (int k = 0; k < n_meta; k++)
        if (!meta_kv[2 * k] || !meta_kv[2 * k + 1])
            return qj_fail(QJ_ERR_INVALID, "%s: metadata entry %d is NULL", path, k);
    qj_st_writer *w = calloc(1, sizeof *w);
    if (!w) return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", path);
    w->n = n;
    w->pos = -1;
    w->size = calloc((size_t)n + 1, sizeof *w->size);
    w->order = calloc((size_t)n + 1, sizeof *w->order);
    w->names = calloc((size_t)n + 1, sizeof *w->names);
    uint64_t *off = calloc((size_t)n + 1, sizeof *off);
    name_ref *nr = calloc((size_t)n + 1, sizeof *nr);
    char *json = NULL;
    qj_status s = QJ_OK;
    if (!w->size || !w->order || !w->names || !off || !nr) {
        s = qj_fail(QJ_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        const qj_st_entry *e = &entries[i];
        if (!e->name || !e->name[0] || !strcmp(e->name, "__metadata__")) {
            s = qj_fail(QJ_ERR_INVALID, "%s: tensor %d has an invalid name \"%s\"", path, i,
                        e->name ? e->name : "(null)");
            goto fail;
        }
        if (!(w->names[i] = dup_str(e->name))) {
            s = qj_fail(QJ_ERR_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        if (!qj_st_dtype_name(e->dtype)) {
            s = qj_fail(QJ_ERR_UNSUPPORTED, "%s: tensor \"%s\": dtype %s cannot be written to safetensors",
                        path, e->name, qj_dtype_name(e->dtype));
            goto fail;
        }
        if (e->ndim < 0 || e->ndim > QJ_MAX_DIMS) {
            s = qj_fail(QJ_ERR_INVALID, "%s: tensor \"%s\": %d dimensions", path, e->name, e->ndim);
            goto fail;
        }
        uint64_t numel = 1;
        for (int d = 0; d < e->ndim; d++) {
            if (e->shape[d] < 0) {
                s = qj_fail(QJ_ERR_INVALID, "%s: tensor \"%s\": shape[%d] is negative", path, e->name, d);
                goto fail;
            }
            numel *= (uint64_t)e->shape[d];
        }
        w->size[i] = numel * qj_dtype_size(e->dtype);
        nr[i] = (name_ref){e->name, i};
    }
    qsort(nr, (size_t)n, sizeof *nr, name_cmp);
    for (int k = 1; k < n; k++)
        if (!strcmp(nr[k].name, nr[k - 1].name)) {
            s = qj_fail(QJ_ERR_INVALID, "%s: tensor \"%s\" given twice", path, nr[k].name);
            goto fail;
        }
    /* data order: sizes that are multiples of 8 first (aligned offsets), then the rest */
    int k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++)
            if ((w->size[i] % 8 == 0) == (pass == 0)) w->order[k++] = i;
    uint64_t at = 0;
    for (k = 0; k < n; k++) {
        off[w->order[k]] = at;
        at += w->size[w->order[k]];
    }
    if ((s = build_header(path, entries, n, off, w->size, meta_kv, n_meta, &json))) goto fail;
    size_t jlen = strlen(json), hlen = (jlen + 7) / 8 * 8;
    uint8_t len8[8];
    for (int b = 0; b < 8; b++) len8[b] = (uint8_t)((uint64_t)hlen >> (8 * b));
    w->file_bytes = 8 + hlen + at;
    if ((s = qj_afile_open(&w->af, path))) goto fail;
    if ((s = qj_afile_write(&w->af, len8, 8)) || (s = qj_afile_write(&w->af, json, jlen)) ||
        (s = qj_afile_write(&w->af, "        ", hlen - jlen))) {
        qj_afile_abort(&w->af);
        goto fail;
    }
    free(json);
    free(off);
    free(nr);
    *out = w;
    return QJ_OK;
fail:
    free(json);
    free(off);
    free(nr);
    writer_free(w);
    return s;
}

/* Record the writer's first failure; later calls keep it. */
static qj_status writer_error(qj_st_writer *w, qj_status s) {
    if (!w->err) w->err = s;
    return s;
}

int qj_st_writer_next(qj_st_writer *w) {
    if (!w->err && w->pos >= 0 && w->pos < w->n && w->filled != w->size[w->order[w->pos]]) {
        int i = w->order[w->pos];
        writer_error(w, qj_fail(QJ_ERR_INVALID, "%s: tensor \"%s\": %llu of its %llu bytes given", w->af.path,
                                w->names[i], (unsigned long long)w->filled, (unsigned long long)w->size[i]));
    }
    if (w->pos < w->n) w->pos++;
    w->filled = 0;
    return w->pos < w->n ? w->order[w->pos] : -1;
}

qj_status qj_st_writer_put(qj_st_writer *w, const void *data, size_t len) {
    if (w->err) return w->err;
    if (w->pos < 0 || w->pos >= w->n)
        return writer_error(w, qj_fail(QJ_ERR_INVALID, "%s: data given with no tensor pending", w->af.path));
    int i = w->order[w->pos];
    if (len > w->size[i] - w->filled)
        return writer_error(w, qj_fail(QJ_ERR_INVALID, "%s: tensor \"%s\": more than its %llu bytes given",
                                       w->af.path, w->names[i], (unsigned long long)w->size[i]));
    w->filled += len;
    return writer_error(w, qj_afile_write(&w->af, data, len));
}

qj_status qj_st_writer_commit(qj_st_writer *w) {
    if (!w->err) {
        if (w->pos >= 0 && w->pos < w->n && w->filled != w->size[w->order[w->pos]]) {
            (void)qj_st_writer_next(w); /* records the short tensor */
        } else {
            for (int k = w->pos + 1; k < w->n; k++)
                if (w->size[w->order[k]]) {
                    writer_error(w, qj_fail(QJ_ERR_INVALID, "%s: tensor \"%s\": no data given", w->af.path,
                                            w->names[w->order[k]]));
                    break;
                }
        }
    }
    qj_status s = w->err;
    if (s) qj_afile_abort(&w->af);
    else s = qj_afile_commit(&w->af);
    writer_free(w);
    return s;
}

qj_status qj_st_write(const char *path, const qj_tensor *tensors, int n, const char *const *meta_kv,
                      int n_meta) {
    qj_st_entry *e = calloc((size_t)n + 1, sizeof *e);
    if (!e) return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < n; i++) {
        const qj_tensor *t = &tensors[i];
        if (!qj_st_dtype_name(t->dtype) || t->ndim < 0 || t->ndim > QJ_MAX_DIMS ||
            (!t->data && qj_tensor_numel(t) != 0)) {
            free(e);
            return qj_fail(QJ_ERR_INVALID, "%s: tensor \"%s\": not a dense tensor with data (dtype %s)", path,
                           t->name, qj_dtype_name(t->dtype));
        }
        e[i].name = t->name;
        e[i].dtype = t->dtype;
        e[i].ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++) e[i].shape[d] = t->shape[d];
    }
    qj_st_writer *w;
    qj_status s = qj_st_writer_open(&w, path, e, n, meta_kv, n_meta);
    free(e);
    if (s) return s;
    for (int k = 0; k < n; k++) {
        int i = qj_st_writer_next(w);
        size_t bytes = (size_t)qj_tensor_numel(&tensors[i]) * qj_dtype_size(tensors[i].dtype);
        if ((s = qj_st_writer_put(w, tensors[i].data, bytes))) {
            qj_st_writer_abort(w);
            return s;
        }
    }
    return qj_st_writer_commit(w);
}
