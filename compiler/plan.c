/* plan.c — quantization plans: shorthands ("int4-g128"), the plan-JSON format
 * (the seed's "bitwidth.i."/"groupsize.i." sample plus qjit's extensions),
 * resolution of overrides, and canonical JSON output. Parameter spaces and
 * initial samples live in plan_space.c; docs/FORMATS.md describes the formats.
 */
#include "plan.h"
#include "quant.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan_internal.h"
#include "qj_io.h"
#include "qj_layout.h"

/* ---- shared JSON helpers (declared in plan_internal.h) ------------------- */

qj_status qj_plan_json_fail(qj_status s, const char *where, const char *path, const char *fmt, ...) {
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!where || !*where) where = "plan";
    if (path && *path) return qj_fail(s, "%s: %s: %s", where, path, msg);
    return qj_fail(s, "%s: %s", where, msg);
}

qj_status qj_plan_json_load(const char *text, const char *where, cJSON **out) {
    *out = NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (root) {
        *out = root;
        return QJ_OK;
    }
    if (!end || end < text) end = text;
    int line = 1, col = 1;
    for (const char *c = text; c < end && *c; c++) {
        if (*c == '\n') line++, col = 1;
        else col++;
    }
    if (!*end)
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, NULL,
                                 "malformed JSON at line %d, column %d (byte %zu): unexpected end of input",
                                 line, col, (size_t)(end - text));
    char near[24];
    size_t k = 0;
    for (const char *c = end; *c && k < 16; c++) near[k++] = (*c == '\n' || *c == '\r' || *c == '\t') ? ' ' : *c;
    near[k] = '\0';
    return qj_plan_json_fail(QJ_ERR_FORMAT, where, NULL, "malformed JSON at line %d, column %d (byte %zu) near \"%s\"",
                             line, col, (size_t)(end - text), near);
}

const char *qj_plan_json_type(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "an invalid value";
}

const char *qj_plan_json_show(const cJSON *v, char *buf, size_t n) {
    char *s = cJSON_PrintUnformatted(v);
    if (!s) {
        snprintf(buf, n, "?");
        return buf;
    }
    size_t len = strlen(s);
    if (len < n) memcpy(buf, s, len + 1);
    else if (n > 4) {
        memcpy(buf, s, n - 4);
        memcpy(buf + n - 4, "...", 4);
    } else if (n) buf[0] = '\0';
    cJSON_free(s);
    return buf;
}

int qj_plan_json_int(const cJSON *v, int *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= -2147483648.0 && d <= 2147483647.0)) return -2;
    int i = (int)d;
    if ((double)i != d) return -2;
    *out = i;
    return 0;
}

const cJSON *qj_plan_json_dup(const cJSON *obj) {
    for (const cJSON *a = obj->child; a; a = a->next)
        for (const cJSON *b = obj->child; b != a; b = b->next)
            if (a->string && b->string && strcmp(a->string, b->string) == 0) return a;
    return NULL;
}

int qj_plan_layer_key(const char *key, const char *prefix, int *idx) {
    size_t n = strlen(prefix);
    if (strncmp(key, prefix, n) != 0) return 0;
    const char *p = key + n;
    if (*p++ != '.') return -1;
    if (*p < '0' || *p > '9') return -1;
    if (p[0] == '0' && p[1] >= '0' && p[1] <= '9') return -1; /* no leading zeros */
    long v = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        if (v < 1000000000L) v = v * 10 + (*p - '0');
    if (p[0] != '.' || p[1] != '\0') return -1;
    *idx = (int)v;
    return 1;
}

const char *qj_plan_int_list(const int *v, int n, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && k < cap; i++) {
        int w = snprintf(buf + k, cap - k, i ? ",%d" : "%d", v[i]);
        if (w < 0) break;
        k += (size_t)w;
    }
    return buf;
}

const char *qj_plan_basename(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int qj_plan_bits_ok(int bits) { return bits >= QJ_MIN_BITS && bits <= QJ_MAX_BITS; }

int qj_plan_group_ok(int group) {
    return group == 0 || group == 32 || group == 64 || group == 128 || group == 256 || group == 512;
}

/* ---- tensor settings ------------------------------------------------------ */

static qj_tensor_plan tp_dense(qj_dtype t) {
    qj_tensor_plan r;
    memset(&r, 0, sizeof r);
    r.dtype = t;
    return r;
}

static qj_tensor_plan tp_quant(int bits, int group, int symmetric, qj_dtype scale) {
    qj_tensor_plan r;
    memset(&r, 0, sizeof r);
    r.dtype = QJ_DTYPE_Q;
    r.q.bits = bits;
    r.q.group = group;
    r.q.symmetric = symmetric ? 1 : 0;
    r.q.scale_dtype = scale;
    return r;
}

int64_t qj_plan_group_size(const qj_qformat *q, int64_t K) {
    if (K <= 0) return q->group > 0 ? q->group : QJ_BLOCK;
    return qj_qformat_group(q, K); /* the quantizer's rule, so plans and packed tensors agree */
}

int qj_tensor_plan_equal(const qj_tensor_plan *a, const qj_tensor_plan *b) {
    if (a->dtype != b->dtype) return 0;
    if (a->dtype != QJ_DTYPE_Q) return 1;
    return a->q.bits == b->q.bits && a->q.group == b->q.group && !a->q.symmetric == !b->q.symmetric &&
           a->q.scale_dtype == b->q.scale_dtype;
}

static const char *dense_name(qj_dtype t) {
    return t == QJ_PLAN_DTYPE_SOURCE ? "source" : qj_dtype_name(t);
}

/* Shorthand of t; the -sym/-asym and -f16/-bf16 suffixes are written only
 * where they differ from the given defaults. */
static const char *setting_str(const qj_tensor_plan *t, int def_sym, qj_dtype def_scale, char *buf,
                               size_t n) {
    if (t->dtype != QJ_DTYPE_Q) {
        snprintf(buf, n, "%s", dense_name(t->dtype));
        return buf;
    }
    char g[16];
    if (t->q.group) snprintf(g, sizeof g, "g%d", t->q.group);
    else snprintf(g, sizeof g, "pc");
    const char *sym = !t->q.symmetric == !def_sym ? "" : t->q.symmetric ? "-sym" : "-asym";
    const char *scale = t->q.scale_dtype == def_scale ? ""
                        : t->q.scale_dtype == QJ_DTYPE_BF16 ? "-bf16" : "-f16";
    snprintf(buf, n, "int%d-%s%s%s", t->q.bits, g, sym, scale);
    return buf;
}

const char *qj_tensor_plan_str(const qj_tensor_plan *t, char *buf, size_t n) {
    return setting_str(t, 0, QJ_DTYPE_F16, buf, n);
}

/* Reads 1..5 decimal digits. */
static int read_uint(const char **pp, int *out) {
    const char *p = *pp;
    int v = 0, k = 0;
    while (*p >= '0' && *p <= '9' && k < 6) v = v * 10 + (*p++ - '0'), k++;
    if (k == 0 || k > 5) return 0;
    *pp = p;
    *out = v;
    return 1;
}

static int dense_parse(const char *s, qj_dtype *out) {
    static const struct { const char *name; qj_dtype t; } names[] = {
        {"f32", QJ_DTYPE_F32},   {"fp32", QJ_DTYPE_F32}, {"f16", QJ_DTYPE_F16},
        {"fp16", QJ_DTYPE_F16},  {"bf16", QJ_DTYPE_BF16}, {"source", QJ_PLAN_DTYPE_SOURCE},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].t;
            return 1;
        }
    return 0;
}

#define SHORTHAND_HELP "f32, f16, bf16, source, int<B>-g<G> or int<B>-pc with optional -sym and -bf16"

/* 1: parsed into *out; 0: not shaped like a shorthand; -1: shaped like one
 * but invalid (why says how). Unspecified symmetry and scale dtype take the
 * given defaults. Case-insensitive. */
static int parse_shorthand(const char *spec, int def_sym, qj_dtype def_scale, qj_tensor_plan *out,
                           char *why, size_t nwhy) {
    char s[64];
    size_t len = strlen(spec);
    if (len >= sizeof s) return 0;
    for (size_t i = 0; i <= len; i++)
        s[i] = (char)((spec[i] >= 'A' && spec[i] <= 'Z') ? spec[i] - 'A' + 'a' : spec[i]);
    qj_dtype dt;
    if (dense_parse(s, &dt)) {
        *out = tp_dense(dt);
        return 1;
    }
    if (strncmp(s, "int", 3) != 0) return 0;
    const char *p = s + 3;
    int bits, group;
    if (!read_uint(&p, &bits)) {
        snprintf(why, nwhy, "expected int<bits>-g<group> or int<bits>-pc");
        return -1;
    }
    if (!qj_plan_bits_ok(bits)) {
        snprintf(why, nwhy, "%d bits is out of range (2..8)", bits);
        return -1;
    }
    if (strncmp(p, "-pc", 3) == 0 && (p[3] == '\0' || p[3] == '-')) {
        group = 0;
        p += 3;
    } else if (strncmp(p, "-g", 2) == 0) {
        p += 2;
        if (!read_uint(&p, &group)) {
            snprintf(why, nwhy, "expected a group size after -g");
            return -1;
        }
        if (group == 0 || !qj_plan_group_ok(group)) {
            snprintf(why, nwhy, "group size %d is not one of 32,64,128,256,512 (write -pc for per-channel)",
                     group);
            return -1;
        }
    } else if (*p == '\0') {
        snprintf(why, nwhy, "missing group size: write int%d-g<group> (32,64,128,256,512) or int%d-pc", bits,
                 bits);
        return -1;
    } else {
        snprintf(why, nwhy, "expected -g<group> or -pc after int%d", bits);
        return -1;
    }
    int sym = def_sym, seen_sym = 0, seen_scale = 0;
    qj_dtype scale = def_scale;
    while (*p) {
        const char *tok = p + 1;
        size_t n = strcspn(tok, "-");
        if (*p != '-' || n == 0) {
            snprintf(why, nwhy, "unexpected \"%s\"", p);
            return -1;
        }
        int is_sym = (n == 3 && strncmp(tok, "sym", 3) == 0), is_asym = (n == 4 && strncmp(tok, "asym", 4) == 0);
        int is_f16 = (n == 3 && strncmp(tok, "f16", 3) == 0), is_bf16 = (n == 4 && strncmp(tok, "bf16", 4) == 0);
        if ((is_sym || is_asym) && !seen_sym) {
            sym = is_sym;
            seen_sym = 1;
        } else if ((is_f16 || is_bf16) && !seen_scale) {
            scale = is_bf16 ? QJ_DTYPE_BF16 : QJ_DTYPE_F16;
            seen_scale = 1;
        } else if (is_sym || is_asym || is_f16 || is_bf16) {
            snprintf(why, nwhy, "suffix \"-%.*s\" conflicts with an earlier one", (int)n, tok);
            return -1;
        } else {
            snprintf(why, nwhy, "unknown suffix \"-%.*s\" (expected -sym, -asym, -f16 or -bf16)", (int)n, tok);
            return -1;
        }
        p = tok + n;
    }
    *out = tp_quant(bits, group, sym, scale);
    return 1;
}

/* ---- plan objects --------------------------------------------------------- */

qj_status qj_plan_alloc(int n_layers, qj_plan **out) {
    *out = NULL;
    if (n_layers < 1 || n_layers > QJ_PLAN_MAX_LAYERS)
        return qj_fail(QJ_ERR_INVALID, "plan: %d layers is out of range (1..%d)", n_layers, QJ_PLAN_MAX_LAYERS);
    qj_plan *p = calloc(1, sizeof *p);
    if (!p) return qj_fail(QJ_ERR_NOMEM, "plan: out of memory");
    p->linear = malloc((size_t)n_layers * QJ_LIN_COUNT * sizeof *p->linear);
    if (!p->linear) {
        free(p);
        return qj_fail(QJ_ERR_NOMEM, "plan: out of memory");
    }
    p->n_layers = n_layers;
    for (size_t i = 0; i < (size_t)n_layers * QJ_LIN_COUNT; i++) p->linear[i] = tp_dense(QJ_PLAN_DTYPE_SOURCE);
    p->embed = p->lm_head = tp_dense(QJ_PLAN_DTYPE_SOURCE);
    snprintf(p->method, sizeof p->method, "rtn");
    snprintf(p->desc, sizeof p->desc, "source");
    *out = p;
    return QJ_OK;
}

qj_status qj_plan_clone(const qj_plan *src, qj_plan **out) {
    qj_plan *p;
    qj_status s = qj_plan_alloc(src->n_layers, &p);
    if (s) return s;
    memcpy(p->linear, src->linear, (size_t)src->n_layers * QJ_LIN_COUNT * sizeof *p->linear);
    p->embed = src->embed;
    p->lm_head = src->lm_head;
    memcpy(p->method, src->method, sizeof p->method);
    memcpy(p->desc, src->desc, sizeof p->desc);
    *out = p;
    return QJ_OK;
}

void qj_plan_free(qj_plan *p) {
    if (!p) return;
    free(p->linear);
    free(p);
}

int qj_plan_layer_uniform(const qj_plan *p, int layer) {
    for (int l = 1; l < QJ_LIN_COUNT; l++)
        if (!qj_tensor_plan_equal(qj_plan_linear(p, layer, (qj_linear)l), qj_plan_linear(p, layer, QJ_LIN_Q)))
            return 0;
    return 1;
}

int qj_plan_equal(const qj_plan *a, const qj_plan *b) {
    if (a->n_layers != b->n_layers || strcmp(a->method, b->method) != 0) return 0;
    if (!qj_tensor_plan_equal(&a->embed, &b->embed) || !qj_tensor_plan_equal(&a->lm_head, &b->lm_head)) return 0;
    for (size_t i = 0; i < (size_t)a->n_layers * QJ_LIN_COUNT; i++)
        if (!qj_tensor_plan_equal(&a->linear[i], &b->linear[i])) return 0;
    return 1;
}

void qj_plan_describe(qj_plan *p, const char *origin) {
    const qj_tensor_plan *first = &p->linear[0];
    int uniform = 1;
    for (size_t i = 1; i < (size_t)p->n_layers * QJ_LIN_COUNT && uniform; i++)
        uniform = qj_tensor_plan_equal(&p->linear[i], first);
    qj_tensor_plan src = tp_dense(QJ_PLAN_DTYPE_SOURCE);
    const qj_tensor_plan *ends[2] = {&p->embed, &p->lm_head};
    for (int k = 0; k < 2 && uniform; k++)
        uniform = qj_tensor_plan_equal(ends[k], &src) || qj_tensor_plan_equal(ends[k], first);
    char what[64];
    if (uniform) qj_tensor_plan_str(first, what, sizeof what);
    else snprintf(what, sizeof what, "mixed");
    if (origin) snprintf(p->desc, sizeof p->desc, "%s (%s)", what, origin);
    else snprintf(p->desc, sizeof p->desc, "%s", what);
}

/* Why t is not a valid setting, or NULL. */
static const char *setting_problem(const qj_tensor_plan *t, char *buf, size_t n) {
    switch (t->dtype) {
    case QJ_DTYPE_F32:
    case QJ_DTYPE_F16:
    case QJ_DTYPE_BF16:
    case QJ_PLAN_DTYPE_SOURCE: return NULL;
    case QJ_DTYPE_Q: break;
    default: snprintf(buf, n, "dtype %d is not a plan dtype", (int)t->dtype); return buf;
    }
    if (!qj_plan_bits_ok(t->q.bits)) snprintf(buf, n, "%d bits is out of range (2..8)", t->q.bits);
    else if (!qj_plan_group_ok(t->q.group))
        snprintf(buf, n, "group size %d is not one of 32,64,128,256,512 or 0 (per-channel)", t->q.group);
    else if (t->q.scale_dtype != QJ_DTYPE_F16 && t->q.scale_dtype != QJ_DTYPE_BF16)
        snprintf(buf, n, "scale dtype %s is not f16 or bf16", qj_dtype_name(t->q.scale_dtype));
    else if (t->q.symmetric != 0 && t->q.symmetric != 1) snprintf(buf, n, "symmetric is %d, not 0 or 1", t->q.symmetric);
    else return NULL;
    return buf;
}

static qj_status check_method(const char *m, const char *where) {
    if (strcmp(m, "rtn") == 0) return QJ_OK;
    return qj_plan_json_fail(QJ_ERR_UNSUPPORTED, where, "\"method\"", "\"%s\" is not supported (only \"rtn\" for now)", m);
}

qj_status qj_plan_validate(const qj_plan *p) {
    char why[128];
    const char *w;
    if (p->n_layers < 1 || p->n_layers > QJ_PLAN_MAX_LAYERS || !p->linear)
        return qj_fail(QJ_ERR_INVALID, "plan: %d layers is out of range (1..%d)", p->n_layers, QJ_PLAN_MAX_LAYERS);
    for (int i = 0; i < p->n_layers; i++)
        for (int l = 0; l < QJ_LIN_COUNT; l++)
            if ((w = setting_problem(qj_plan_linear(p, i, (qj_linear)l), why, sizeof why)))
                return qj_fail(QJ_ERR_INVALID, "plan: layers.%d.%s: %s", i, qj_linear_name((qj_linear)l), w);
    if ((w = setting_problem(&p->embed, why, sizeof why))) return qj_fail(QJ_ERR_INVALID, "plan: embed: %s", w);
    if ((w = setting_problem(&p->lm_head, why, sizeof why))) return qj_fail(QJ_ERR_INVALID, "plan: lm_head: %s", w);
    if (!memchr(p->method, '\0', sizeof p->method)) return qj_fail(QJ_ERR_INVALID, "plan: method is not a string");
    return check_method(p->method, "plan");
}

/* ---- plan JSON ------------------------------------------------------------ */

static const char *const top_keys[] = {"bitwidth", "groupsize", "symmetric", "scale_dtype",
                                       "dense_dtype", "method",  "overrides"};

static int edit_distance(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    if (na > 31 || nb > 31) return 99;
    int d[32][32];
    for (size_t i = 0; i <= na; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= nb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= na; i++)
        for (size_t j = 1; j <= nb; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            d[i][j] = best;
        }
    return d[na][nb];
}

/* A hint for an unknown top-level key of a plan ("" when none). */
static const char *unknown_key_hint(const char *key, char *buf, size_t n) {
    if (strcmp(key, "parameters") == 0) return " (this looks like a parameter space file, not a plan)";
    if (strcmp(key, "initial_samples") == 0) return " (this looks like an initial-samples file, not a plan)";
    char head[32];
    size_t k = strcspn(key, ".");
    if (k >= sizeof head) return "";
    memcpy(head, key, k);
    head[k] = '\0';
    for (size_t i = 0; i < sizeof top_keys / sizeof top_keys[0]; i++)
        if (edit_distance(head, top_keys[i]) <= 2) {
            int layer = i < 2;
            snprintf(buf, n, " (did you mean \"%s%s\"?)", top_keys[i], layer ? ".<layer>." : "");
            return buf;
        }
    return "";
}

static qj_status parse_dtype_value(const cJSON *v, int allow_f32_source, qj_dtype *out, const char *where,
                                   const char *path) {
    char show[64];
    if (!cJSON_IsString(v))
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "expected a string, got %s %s", qj_plan_json_type(v),
                                 qj_plan_json_show(v, show, sizeof show));
    qj_dtype t;
    if (dense_parse(v->valuestring, &t) && (allow_f32_source || t == QJ_DTYPE_F16 || t == QJ_DTYPE_BF16)) {
        *out = t;
        return QJ_OK;
    }
    return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "\"%s\" is not %s", v->valuestring,
                             allow_f32_source ? "a dtype (f32, f16, bf16 or source)" : "a scale dtype (f16 or bf16)");
}

static qj_status parse_bool_value(const cJSON *v, int *out, const char *where, const char *path) {
    char show[64];
    if (!cJSON_IsBool(v))
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "expected true or false, got %s %s",
                                 qj_plan_json_type(v), qj_plan_json_show(v, show, sizeof show));
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return QJ_OK;
}

static qj_status parse_int_value(const cJSON *v, int *out, const char *where, const char *path) {
    char show[64];
    int r = qj_plan_json_int(v, out);
    if (r == -1)
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "expected an integer, got %s %s", qj_plan_json_type(v),
                                 qj_plan_json_show(v, show, sizeof show));
    if (r == -2)
        return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "%s is not an integer",
                                 qj_plan_json_show(v, show, sizeof show));
    return QJ_OK;
}

/* One override setting: a shorthand string or an object. */
static qj_status parse_setting(const cJSON *v, int def_sym, qj_dtype def_scale, qj_tensor_plan *out,
                               const char *where, const char *path) {
    char why[192], show[64], sub[340];
    if (cJSON_IsString(v)) {
        int r = parse_shorthand(v->valuestring, def_sym, def_scale, out, why, sizeof why);
        if (r == 1) return QJ_OK;
        if (r == 0)
            return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "\"%s\" is not a setting (expected " SHORTHAND_HELP ")",
                                     v->valuestring);
        return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "\"%s\": %s", v->valuestring, why);
    }
    if (!cJSON_IsObject(v))
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "expected a string or an object, got %s %s",
                                 qj_plan_json_type(v), qj_plan_json_show(v, show, sizeof show));
    const cJSON *dup = qj_plan_json_dup(v);
    if (dup) return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "duplicate key \"%s\"", dup->string);
    const cJSON *bits = NULL, *group = NULL, *sym = NULL, *scale = NULL, *dtype = NULL;
    for (const cJSON *m = v->child; m; m = m->next) {
        if (strcmp(m->string, "bits") == 0) bits = m;
        else if (strcmp(m->string, "group") == 0) group = m;
        else if (strcmp(m->string, "symmetric") == 0) sym = m;
        else if (strcmp(m->string, "scale_dtype") == 0) scale = m;
        else if (strcmp(m->string, "dtype") == 0) dtype = m;
        else
            return qj_plan_json_fail(QJ_ERR_FORMAT, where, path,
                                     "unknown key \"%s\" (expected bits, group, symmetric, scale_dtype or dtype)",
                                     m->string);
    }
    qj_status s;
    if (dtype) {
        const cJSON *other = bits ? bits : group ? group : sym ? sym : scale;
        if (other)
            return qj_plan_json_fail(QJ_ERR_INVALID, where, path,
                                     "\"dtype\" (dense) cannot be combined with \"%s\" (quantized)", other->string);
        snprintf(sub, sizeof sub, "%s.dtype", path);
        qj_dtype t;
        if ((s = parse_dtype_value(dtype, 1, &t, where, sub))) return s;
        *out = tp_dense(t);
        return QJ_OK;
    }
    if (!bits)
        return qj_plan_json_fail(QJ_ERR_INVALID, where, path,
                                 "expected \"bits\" (quantized) or \"dtype\" (dense) in the setting");
    int b, g = 128, sy = def_sym;
    qj_dtype sc = def_scale;
    snprintf(sub, sizeof sub, "%s.bits", path);
    if ((s = parse_int_value(bits, &b, where, sub))) return s;
    if (!qj_plan_bits_ok(b))
        return qj_plan_json_fail(QJ_ERR_INVALID, where, sub,
                                 "%d is not a bit width (2..8; write {\"dtype\": \"bf16\"} for a dense tensor)", b);
    if (group) {
        snprintf(sub, sizeof sub, "%s.group", path);
        if ((s = parse_int_value(group, &g, where, sub))) return s;
        if (!qj_plan_group_ok(g))
            return qj_plan_json_fail(QJ_ERR_INVALID, where, sub,
                                     "%d is not a group size (32, 64, 128, 256, 512, or 0 = per-channel)", g);
    }
    if (sym) {
        snprintf(sub, sizeof sub, "%s.symmetric", path);
        if ((s = parse_bool_value(sym, &sy, where, sub))) return s;
    }
    if (scale) {
        snprintf(sub, sizeof sub, "%s.scale_dtype", path);
        if ((s = parse_dtype_value(scale, 0, &sc, where, sub))) return s;
    }
    *out = tp_quant(b, g, sy, sc);
    return QJ_OK;
}

enum { OV_EMBED, OV_HEAD, OV_LIN_ALL, OV_LIN_LAYER };

typedef struct override {
    const char *pattern;
    int kind;  /* OV_* */
    int layer; /* OV_LIN_LAYER */
    qj_linear lin;
    int star;  /* OV_LIN_ALL written as "layers.*.<linear>" */
    qj_tensor_plan set;
} override;

static int linear_parse(const char *s, qj_linear *out) {
    for (int l = 0; l < QJ_LIN_COUNT; l++)
        if (strcmp(s, qj_linear_name((qj_linear)l)) == 0) {
            *out = (qj_linear)l;
            return 1;
        }
    return 0;
}

#define LINEAR_NAMES "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj or down_proj"
#define PATTERN_HELP "expected \"embed\", \"lm_head\", \"<linear>\", \"layers.*.<linear>\" or \"layers.<i>.<linear>\""

static qj_status parse_pattern(override *o, const char *where, const char *path) {
    const char *k = o->pattern;
    if (strcmp(k, "embed") == 0) o->kind = OV_EMBED;
    else if (strcmp(k, "lm_head") == 0) o->kind = OV_HEAD;
    else if (linear_parse(k, &o->lin)) o->kind = OV_LIN_ALL;
    else if (strncmp(k, "layers.", 7) == 0) {
        const char *p = k + 7, *name;
        if (p[0] == '*' && p[1] == '.') {
            o->kind = OV_LIN_ALL;
            o->star = 1;
            name = p + 2;
        } else {
            int v = 0, n = 0;
            for (; *p >= '0' && *p <= '9'; p++, n++)
                if (v < 100000000) v = v * 10 + (*p - '0');
            if (n == 0 || *p != '.' || (n > 1 && k[7] == '0'))
                return qj_plan_json_fail(QJ_ERR_INVALID, where, path,
                                         "malformed layer index (expected \"layers.<i>.<linear>\" or \"layers.*.<linear>\")");
            o->kind = OV_LIN_LAYER;
            o->layer = v;
            name = p + 1;
        }
        if (!linear_parse(name, &o->lin))
            return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "unknown tensor \"%s\" (expected " LINEAR_NAMES ")",
                                     name);
    } else
        return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "unknown override pattern (" PATTERN_HELP ")");
    return QJ_OK;
}

static qj_status plan_from_obj(const cJSON *root, const char *where, int n_layers, qj_plan **out) {
    char path[300], show[64], hint[96];
    qj_status s = QJ_OK;
    override *ov = NULL;
    int *bits = NULL, *group = NULL;
    qj_plan *p = NULL;
    *out = NULL;
    if (!where || !*where) where = "plan";
    if (n_layers < 0 || n_layers > QJ_PLAN_MAX_LAYERS)
        return qj_plan_json_fail(QJ_ERR_INVALID, where, NULL, "%d layers is out of range (1..%d)", n_layers,
                                 QJ_PLAN_MAX_LAYERS);
    if (!cJSON_IsObject(root))
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, NULL, "expected a JSON object, got %s", qj_plan_json_type(root));
    const cJSON *dup = qj_plan_json_dup(root);
    if (dup) return qj_plan_json_fail(QJ_ERR_FORMAT, where, NULL, "duplicate key \"%s\"", dup->string);

    /* Pass 1: key names and the global settings. */
    int sym = 0, max_layer = -1, idx, r;
    qj_dtype scale = QJ_DTYPE_F16, dense = QJ_PLAN_DTYPE_SOURCE;
    const char *method = "rtn";
    const cJSON *overrides = NULL;
    for (const cJSON *m = root->child; m; m = m->next) {
        const char *k = m->string;
        snprintf(path, sizeof path, "\"%s\"", k);
        if ((r = qj_plan_layer_key(k, "bitwidth", &idx)) != 0 || (r = qj_plan_layer_key(k, "groupsize", &idx)) != 0) {
            if (r < 0)
                return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "malformed key (expected \"%s.<layer>.\")",
                                         k[0] == 'b' ? "bitwidth" : "groupsize");
            if (idx > max_layer) max_layer = idx;
        } else if (strcmp(k, "symmetric") == 0) {
            if ((s = parse_bool_value(m, &sym, where, path))) return s;
        } else if (strcmp(k, "scale_dtype") == 0) {
            if ((s = parse_dtype_value(m, 0, &scale, where, path))) return s;
        } else if (strcmp(k, "dense_dtype") == 0) {
            if ((s = parse_dtype_value(m, 1, &dense, where, path))) return s;
        } else if (strcmp(k, "method") == 0) {
            if (!cJSON_IsString(m))
                return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "expected a string, got %s %s",
                                         qj_plan_json_type(m), qj_plan_json_show(m, show, sizeof show));
            if ((s = check_method(m->valuestring, where))) return s;
            method = m->valuestring;
        } else if (strcmp(k, "overrides") == 0) {
            if (!cJSON_IsObject(m))
                return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "expected an object, got %s %s",
                                         qj_plan_json_type(m), qj_plan_json_show(m, show, sizeof show));
            if ((dup = qj_plan_json_dup(m)))
                return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "duplicate key \"%s\"", dup->string);
            overrides = m;
        } else
            return qj_plan_json_fail(QJ_ERR_FORMAT, where, NULL, "unknown key \"%s\"%s", k,
                                     unknown_key_hint(k, hint, sizeof hint));
    }

    /* Override patterns and settings (the globals above are their defaults). */
    int n_ov = overrides ? cJSON_GetArraySize(overrides) : 0;
    ov = calloc((size_t)n_ov + 1, sizeof *ov);
    if (!ov) return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", where);
    {
        int j = 0;
        for (const cJSON *m = overrides ? overrides->child : NULL; m; m = m->next, j++) {
            snprintf(path, sizeof path, "overrides.\"%s\"", m->string);
            ov[j].pattern = m->string;
            if ((s = parse_pattern(&ov[j], where, path))) goto fail;
            if ((s = parse_setting(m, sym, scale, &ov[j].set, where, path))) goto fail;
            if (ov[j].kind == OV_LIN_LAYER && ov[j].layer > max_layer) max_layer = ov[j].layer;
            for (int i = 0; i < j; i++)
                if (ov[i].kind == OV_LIN_ALL && ov[j].kind == OV_LIN_ALL && ov[i].lin == ov[j].lin) {
                    s = qj_plan_json_fail(QJ_ERR_INVALID, where, "overrides",
                                          "\"%s\" and \"%s\" both set %s of every layer", ov[i].pattern,
                                          ov[j].pattern, qj_linear_name(ov[j].lin));
                    goto fail;
                }
        }
    }

    int infer = n_layers == 0;
    if (infer) {
        if (max_layer < 0) {
            s = qj_plan_json_fail(QJ_ERR_INVALID, where, NULL,
                                  "cannot infer the number of layers: the plan names no layer (give the model)");
            goto fail;
        }
        n_layers = max_layer < QJ_PLAN_MAX_LAYERS ? max_layer + 1 : QJ_PLAN_MAX_LAYERS;
    }
    char bound[64];
    if (infer) snprintf(bound, sizeof bound, "at most %d layers", QJ_PLAN_MAX_LAYERS);
    else snprintf(bound, sizeof bound, "model has %d layers", n_layers);

    /* Pass 2: per-block values. */
    bits = calloc((size_t)n_layers, sizeof *bits);
    group = malloc((size_t)n_layers * sizeof *group);
    if (!bits || !group) {
        s = qj_fail(QJ_ERR_NOMEM, "%s: out of memory", where);
        goto fail;
    }
    for (int i = 0; i < n_layers; i++) group[i] = -1;
    for (const cJSON *m = root->child; m; m = m->next) {
        int is_bits = qj_plan_layer_key(m->string, "bitwidth", &idx) == 1;
        if (!is_bits && qj_plan_layer_key(m->string, "groupsize", &idx) != 1) continue;
        snprintf(path, sizeof path, "\"%s\"", m->string);
        if (idx >= n_layers) {
            s = qj_plan_json_fail(QJ_ERR_INVALID, where, path, "layer %d out of range (%s)", idx, bound);
            goto fail;
        }
        int v;
        if ((s = parse_int_value(m, &v, where, path))) goto fail;
        if (is_bits) {
            if (!qj_plan_bits_ok(v) && v != 16 && v != 32) {
                s = qj_plan_json_fail(QJ_ERR_INVALID, where, path,
                                      "%d is not a bit width (2..8, or 16 = bf16 / 32 = f32 dense)", v);
                goto fail;
            }
            bits[idx] = v;
        } else {
            if (!qj_plan_group_ok(v)) {
                s = qj_plan_json_fail(QJ_ERR_INVALID, where, path,
                                      "%d is not a group size (32, 64, 128, 256, 512, or 0 = per-channel)", v);
                goto fail;
            }
            group[idx] = v;
        }
    }
    for (int i = 0; i < n_layers; i++)
        if (group[i] >= 0 && bits[i] == 0) {
            snprintf(path, sizeof path, "\"groupsize.%d.\"", i);
            s = qj_plan_json_fail(QJ_ERR_INVALID, where, path, "given but \"bitwidth.%d.\" is missing", i);
            goto fail;
        }
    for (int j = 0; j < n_ov; j++)
        if (ov[j].kind == OV_LIN_LAYER && ov[j].layer >= n_layers) {
            snprintf(path, sizeof path, "overrides.\"%s\"", ov[j].pattern);
            s = qj_plan_json_fail(QJ_ERR_INVALID, where, path, "layer %d out of range (%s)", ov[j].layer, bound);
            goto fail;
        }

    /* Resolve: block settings, then overrides from least to most specific. */
    if ((s = qj_plan_alloc(n_layers, &p))) goto fail;
    for (int i = 0; i < n_layers; i++) {
        qj_tensor_plan base = bits[i] == 0    ? tp_dense(dense)
                              : bits[i] == 16 ? tp_dense(QJ_DTYPE_BF16)
                              : bits[i] == 32 ? tp_dense(QJ_DTYPE_F32)
                                              : tp_quant(bits[i], group[i] < 0 ? 128 : group[i], sym, scale);
        for (int l = 0; l < QJ_LIN_COUNT; l++) *qj_plan_linear(p, i, (qj_linear)l) = base;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int j = 0; j < n_ov; j++) {
            const override *o = &ov[j];
            if (pass == 0 && o->kind == OV_EMBED) p->embed = o->set;
            else if (pass == 0 && o->kind == OV_HEAD) p->lm_head = o->set;
            else if (pass == 0 && o->kind == OV_LIN_ALL)
                for (int i = 0; i < n_layers; i++) *qj_plan_linear(p, i, o->lin) = o->set;
            else if (pass == 1 && o->kind == OV_LIN_LAYER) *qj_plan_linear(p, o->layer, o->lin) = o->set;
        }
    snprintf(p->method, sizeof p->method, "%s", method);
    qj_plan_describe(p, qj_plan_basename(where));
    *out = p;
    p = NULL;
fail:
    qj_plan_free(p);
    free(group);
    free(bits);
    free(ov);
    return s;
}

qj_status qj_plan_from_cjson(const cJSON *obj, const char *name_for_errors, int n_layers, qj_plan **out) {
    return plan_from_obj(obj, name_for_errors, n_layers, out);
}

qj_status qj_plan_parse_json(const char *json_text, const char *name_for_errors, int n_layers, qj_plan **out) {
    cJSON *root;
    *out = NULL;
    if (!name_for_errors || !*name_for_errors) name_for_errors = "plan";
    qj_status s = qj_plan_json_load(json_text, name_for_errors, &root);
    if (s) return s;
    s = plan_from_obj(root, name_for_errors, n_layers, out);
    cJSON_Delete(root);
    return s;
}

qj_status qj_plan_parse(const char *spec, int n_layers, qj_plan **out) {
    *out = NULL;
    if (!spec || !*spec) return qj_fail(QJ_ERR_INVALID, "plan: empty plan spec (expected " SHORTHAND_HELP " or a JSON file)");
    const char *t = spec;
    while (*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r') t++;
    if (*t == '{') return qj_plan_parse_json(spec, "plan", n_layers, out);

    qj_tensor_plan set;
    char why[192];
    int r = parse_shorthand(spec, 0, QJ_DTYPE_F16, &set, why, sizeof why);
    if (r == 1) {
        if (n_layers <= 0)
            return qj_fail(QJ_ERR_INVALID, "plan \"%s\": a shorthand needs the model's layer count (got %d)", spec,
                           n_layers);
        qj_plan *p;
        qj_status s = qj_plan_alloc(n_layers, &p);
        if (s) return s;
        for (size_t i = 0; i < (size_t)n_layers * QJ_LIN_COUNT; i++) p->linear[i] = set;
        if (set.dtype != QJ_DTYPE_Q) p->embed = p->lm_head = set;
        qj_tensor_plan_str(&set, p->desc, sizeof p->desc);
        *out = p;
        return QJ_OK;
    }
    FILE *f = fopen(spec, "rb");
    if (f) {
        fclose(f);
        char *text;
        qj_status s = qj_read_file(spec, &text, NULL);
        if (s) return s;
        s = qj_plan_parse_json(text, spec, n_layers, out);
        free(text);
        return s;
    }
    if (r == -1) return qj_fail(QJ_ERR_INVALID, "plan \"%s\": %s (and no file of that name)", spec, why);
    return qj_fail(QJ_ERR_INVALID, "plan \"%s\": not a shorthand (" SHORTHAND_HELP ") and no such file", spec);
}

/* ---- canonical JSON ------------------------------------------------------- */

static int add_number(cJSON *obj, const char *key, int v) { return cJSON_AddNumberToObject(obj, key, v) != NULL; }

static int add_setting(cJSON *obj, const char *key, const qj_tensor_plan *t, int sym, qj_dtype scale) {
    char buf[64];
    return cJSON_AddStringToObject(obj, key, setting_str(t, sym, scale, buf, sizeof buf)) != NULL;
}

qj_status qj_plan_to_cjson(const qj_plan *p, cJSON **out) {
    *out = NULL;
    qj_status s = qj_plan_validate(p);
    if (s) return s;
    const int L = p->n_layers;
    const size_t nlin = (size_t)L * QJ_LIN_COUNT;

    /* Globals: the most common symmetry / scale dtype among quantized linears,
     * the most common dense dtype among dense ones (ties: asym, f16, source). */
    size_t nsym = 0, nasym = 0, nbf = 0, nf16 = 0, ndense[QJ_DTYPE_COUNT + 1] = {0};
    for (size_t i = 0; i < nlin; i++) {
        const qj_tensor_plan *t = &p->linear[i];
        if (t->dtype == QJ_DTYPE_Q) {
            if (t->q.symmetric) nsym++;
            else nasym++;
            if (t->q.scale_dtype == QJ_DTYPE_BF16) nbf++;
            else nf16++;
        } else ndense[t->dtype]++;
    }
    int gsym = nsym > nasym;
    qj_dtype gscale = nbf > nf16 ? QJ_DTYPE_BF16 : QJ_DTYPE_F16;
    static const qj_dtype dense_order[] = {QJ_PLAN_DTYPE_SOURCE, QJ_DTYPE_BF16, QJ_DTYPE_F16, QJ_DTYPE_F32};
    qj_dtype gdense = QJ_PLAN_DTYPE_SOURCE;
    for (size_t k = 1; k < 4; k++)
        if (ndense[dense_order[k]] > ndense[gdense]) gdense = dense_order[k];

    qj_tensor_plan *base = malloc((size_t)L * sizeof *base);
    cJSON *root = cJSON_CreateObject(), *ovr = cJSON_CreateObject();
    int ok = base && root && ovr;
    ok = ok && cJSON_AddStringToObject(root, "method", p->method) && cJSON_AddBoolToObject(root, "symmetric", gsym) &&
         cJSON_AddStringToObject(root, "scale_dtype", qj_dtype_name(gscale)) &&
         cJSON_AddStringToObject(root, "dense_dtype", dense_name(gdense));

    /* Per block: the most common setting that the block keys can express. */
    for (int i = 0; ok && i < L; i++) {
        int best = -1, best_count = 0;
        for (int l = 0; l < QJ_LIN_COUNT; l++) {
            const qj_tensor_plan *t = qj_plan_linear(p, i, (qj_linear)l);
            int expressible = t->dtype == QJ_DTYPE_Q ? (!t->q.symmetric == !gsym && t->q.scale_dtype == gscale)
                                                     : (t->dtype == gdense || t->dtype == QJ_DTYPE_BF16 ||
                                                        t->dtype == QJ_DTYPE_F32);
            if (!expressible) continue;
            int count = 0;
            for (int m = 0; m < QJ_LIN_COUNT; m++) count += qj_tensor_plan_equal(t, qj_plan_linear(p, i, (qj_linear)m));
            if (count > best_count) best = l, best_count = count;
        }
        base[i] = best < 0 ? tp_dense(gdense) : *qj_plan_linear(p, i, (qj_linear)best);
        char key[48];
        const qj_tensor_plan *b = &base[i];
        if (b->dtype == QJ_DTYPE_Q) {
            snprintf(key, sizeof key, "bitwidth.%d.", i);
            ok = ok && add_number(root, key, b->q.bits);
            snprintf(key, sizeof key, "groupsize.%d.", i);
            ok = ok && add_number(root, key, b->q.group);
        } else if (b->dtype != gdense) {
            snprintf(key, sizeof key, "bitwidth.%d.", i);
            ok = ok && add_number(root, key, b->dtype == QJ_DTYPE_BF16 ? 16 : 32);
        }
    }

    /* Overrides: embed, head, whole-linear wildcards, then single tensors. */
    qj_tensor_plan src = tp_dense(QJ_PLAN_DTYPE_SOURCE);
    if (ok && !qj_tensor_plan_equal(&p->embed, &src)) ok = add_setting(ovr, "embed", &p->embed, gsym, gscale);
    if (ok && !qj_tensor_plan_equal(&p->lm_head, &src)) ok = add_setting(ovr, "lm_head", &p->lm_head, gsym, gscale);
    /* A wildcard "<linear>" is written when it saves entries: with it, a
     * linear costs 1 + (layers that differ from the wildcard) entries,
     * without it (layers that differ from their block setting). The wildcard
     * takes the linear's most common setting (first layer on ties). */
    const qj_tensor_plan *wild[QJ_LIN_COUNT] = {NULL};
    for (int l = 0; ok && l < QJ_LIN_COUNT; l++) {
        int best = 0, best_count = 0, without = 0;
        for (int i = 0; i < L; i++) {
            const qj_tensor_plan *t = qj_plan_linear(p, i, (qj_linear)l);
            without += !qj_tensor_plan_equal(t, &base[i]);
            int count = 0;
            for (int k = 0; k < L; k++) count += qj_tensor_plan_equal(t, qj_plan_linear(p, k, (qj_linear)l));
            if (count > best_count) best = i, best_count = count;
        }
        if (1 + (L - best_count) < without) {
            wild[l] = qj_plan_linear(p, best, (qj_linear)l);
            ok = add_setting(ovr, qj_linear_name((qj_linear)l), wild[l], gsym, gscale);
        }
    }
    for (int i = 0; ok && i < L; i++)
        for (int l = 0; ok && l < QJ_LIN_COUNT; l++) {
            const qj_tensor_plan *t = qj_plan_linear(p, i, (qj_linear)l);
            const qj_tensor_plan *eff = wild[l] ? wild[l] : &base[i];
            if (qj_tensor_plan_equal(t, eff)) continue;
            char key[64];
            snprintf(key, sizeof key, "layers.%d.%s", i, qj_linear_name((qj_linear)l));
            ok = add_setting(ovr, key, t, gsym, gscale);
        }
    if (ok && ovr->child) {
        ok = cJSON_AddItemToObject(root, "overrides", ovr);
        if (ok) ovr = NULL;
    }
    free(base);
    cJSON_Delete(ovr);
    if (!ok) {
        cJSON_Delete(root);
        return qj_fail(QJ_ERR_NOMEM, "plan: out of memory writing JSON");
    }
    *out = root;
    return QJ_OK;
}

qj_status qj_plan_to_json(const qj_plan *p, char **out) {
    *out = NULL;
    cJSON *root;
    qj_status s = qj_plan_to_cjson(p, &root);
    if (s) return s;
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return qj_fail(QJ_ERR_NOMEM, "plan: out of memory writing JSON");
    size_t n = strlen(text);
    char *copy = malloc(n + 1);
    if (copy) memcpy(copy, text, n + 1);
    cJSON_free(text);
    if (!copy) return qj_fail(QJ_ERR_NOMEM, "plan: out of memory writing JSON");
    *out = copy;
    return QJ_OK;
}
