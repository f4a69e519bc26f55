/* tokenizer_hf.c — Hugging Face tokenizer.json: the reader (BPE models of the
 * Llama-2 / Mistral kind) and the writer (qj_tokenizer_save_hf_json), which
 * also turns a llama2.c vocab with scores into a ranked merge list. */
#include "tokenizer_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qj_io.h"

#define HF_MAX_IDS (1 << 24)
#define SPACE_MARK "\xe2\x96\x81" /* U+2581 '▁' */

/* ---------------------------------------------------------------- reader */

static const cJSON *jget(const cJSON *o, const char *key) {
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static int jnull(const cJSON *v) { return !v || cJSON_IsNull(v); }

/* An integer-valued JSON number in [0, HF_MAX_IDS), or -1. */
static long jid(const cJSON *v) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d < HF_MAX_IDS) || d != floor(d)) return -1;
    return (long)d;
}

static qj_status add_norm(qj_tokenizer *t, int op, const char *a, const char *b, const char *name) {
    tok_norm *nn = realloc(t->norm, (size_t)(t->n_norm + 1) * sizeof *nn);
    if (!nn) return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", name);
    t->norm = nn;
    tok_norm *n = &t->norm[t->n_norm];
    n->op = op;
    n->a = strdup(a);
    n->b = b ? strdup(b) : NULL;
    t->n_norm++;
    if (!n->a || (b && !n->b)) return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", name);
    return QJ_OK;
}

static qj_status parse_normalizer(qj_tokenizer *t, const cJSON *n, const char *path, const char *name,
                                  int depth) {
    if (jnull(n)) return QJ_OK;
    const cJSON *type = jget(n, "type");
    if (!cJSON_IsString(type))
        return qj_fail(QJ_ERR_FORMAT, "%s: %s.type is missing or not a string", name, path);
    const char *ty = type->valuestring;
    char sub[256];
    if (!strcmp(ty, "Sequence")) {
        const cJSON *arr = jget(n, "normalizers");
        if (!cJSON_IsArray(arr))
            return qj_fail(QJ_ERR_FORMAT, "%s: %s.normalizers is missing or not an array", name, path);
        if (depth > 8) return qj_fail(QJ_ERR_UNSUPPORTED, "%s: %s: Sequence nested too deeply", name, path);
        int i = 0;
        for (const cJSON *c = arr->child; c; c = c->next, i++) {
            snprintf(sub, sizeof sub, "%s.normalizers[%d]", path, i);
            qj_status s = parse_normalizer(t, c, sub, name, depth + 1);
            if (s != QJ_OK) return s;
        }
        return QJ_OK;
    }
    if (!strcmp(ty, "Prepend")) {
        const cJSON *p = jget(n, "prepend");
        if (!cJSON_IsString(p))
            return qj_fail(QJ_ERR_FORMAT, "%s: %s.prepend is missing or not a string", name, path);
        return add_norm(t, TOK_NORM_PREPEND, p->valuestring, NULL, name);
    }
    if (!strcmp(ty, "Replace")) {
        const cJSON *pat = jget(n, "pattern"), *content = jget(n, "content");
        const cJSON *str = jget(pat, "String");
        if (jget(pat, "Regex"))
            return qj_fail(QJ_ERR_UNSUPPORTED, "%s: %s.pattern: Regex patterns are not supported (only String)",
                           name, path);
        if (!cJSON_IsString(str) || !str->valuestring[0])
            return qj_fail(QJ_ERR_FORMAT, "%s: %s.pattern.String is missing or empty", name, path);
        if (!cJSON_IsString(content))
            return qj_fail(QJ_ERR_FORMAT, "%s: %s.content is missing or not a string", name, path);
        return add_norm(t, TOK_NORM_REPLACE, str->valuestring, content->valuestring, name);
    }
    return qj_fail(QJ_ERR_UNSUPPORTED,
                   "%s: %s.type \"%s\" is not supported (qjit supports Sequence, Prepend and Replace)", name,
                   path, ty);
}

static qj_status parse_pre_tokenizer(qj_tokenizer *t, const cJSON *p, const char *name) {
    if (jnull(p)) return QJ_OK;
    const cJSON *type = jget(p, "type");
    if (!cJSON_IsString(type))
        return qj_fail(QJ_ERR_FORMAT, "%s: pre_tokenizer.type is missing or not a string", name);
    if (strcmp(type->valuestring, "Metaspace") != 0)
        return qj_fail(QJ_ERR_UNSUPPORTED,
                       "%s: pre_tokenizer.type \"%s\" is not supported (qjit supports Metaspace or null)", name,
                       type->valuestring);
    const cJSON *rep = jget(p, "replacement"), *scheme = jget(p, "prepend_scheme");
    const cJSON *aps = jget(p, "add_prefix_space"), *split = jget(p, "split");
    if (!cJSON_IsString(rep) || !rep->valuestring[0] || strlen(rep->valuestring) >= sizeof t->ms_rep ||
        qj_utf8_validate(rep->valuestring, strlen(rep->valuestring), name) != QJ_OK)
        return qj_fail(QJ_ERR_FORMAT, "%s: pre_tokenizer.replacement must be one character", name);
    t->metaspace = 1;
    strcpy(t->ms_rep, rep->valuestring);
    t->ms_prepend = 1;
    if (cJSON_IsString(scheme)) {
        const char *s = scheme->valuestring;
        if (!strcmp(s, "always")) t->ms_prepend = 1;
        else if (!strcmp(s, "first")) t->ms_prepend = 2;
        else if (!strcmp(s, "never")) t->ms_prepend = 0;
        else
            return qj_fail(QJ_ERR_FORMAT,
                           "%s: pre_tokenizer.prepend_scheme \"%s\" is not one of always, first, never", name, s);
    }
    if (cJSON_IsFalse(aps)) t->ms_prepend = 0;
    t->ms_split = split ? cJSON_IsTrue(split) : 1;
    return QJ_OK;
}

qj_status tok_load_hf(const char *data, size_t len, const char *name, qj_tokenizer **out) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    if (!root) {
        size_t off = end && end >= data && end <= data + len ? (size_t)(end - data) : 0;
        return qj_fail(QJ_ERR_FORMAT, "%s: invalid JSON near byte offset %zu", name, off);
    }
    qj_tokenizer *t = NULL;
    const char **strs = NULL;  /* (n) piece of each id, borrowed from root */
    const char **where = NULL; /* (n) "model.vocab" or "added_tokens" */
    qj_status s;
    const cJSON *model = jget(root, "model");
    if (!cJSON_IsObject(model)) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: \"model\" is missing or not an object", name);
        goto fail;
    }
    const cJSON *type = jget(model, "type"), *vocab = jget(model, "vocab"), *merges = jget(model, "merges");
    if (type && !(cJSON_IsString(type) && !strcmp(type->valuestring, "BPE"))) {
        s = qj_fail(QJ_ERR_UNSUPPORTED, "%s: model.type \"%s\" is not supported (qjit reads BPE models)", name,
                    cJSON_IsString(type) ? type->valuestring : "?");
        goto fail;
    }
    if (!type && !merges) {
        s = qj_fail(QJ_ERR_UNSUPPORTED, "%s: model.type is missing and there are no model.merges: not a BPE model",
                    name);
        goto fail;
    }
    const cJSON *dropout = jget(model, "dropout");
    if (!jnull(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0)) {
        s = qj_fail(QJ_ERR_UNSUPPORTED, "%s: model.dropout is not supported (must be null)", name);
        goto fail;
    }
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON *a = jget(model, affixes[i]);
        if (!jnull(a) && !(cJSON_IsString(a) && !a->valuestring[0])) {
            s = qj_fail(QJ_ERR_UNSUPPORTED, "%s: model.%s is not supported (must be null)", name, affixes[i]);
            goto fail;
        }
    }
    if (!cJSON_IsObject(vocab)) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: model.vocab is missing or not an object", name);
        goto fail;
    }
    if (!cJSON_IsArray(merges)) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: model.merges is missing or not an array", name);
        goto fail;
    }
    const cJSON *added = jget(root, "added_tokens");
    if (added && !cJSON_IsArray(added)) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: added_tokens is not an array", name);
        goto fail;
    }
    size_t nv = (size_t)cJSON_GetArraySize(vocab), na = added ? (size_t)cJSON_GetArraySize(added) : 0;
    size_t cap = nv + na; /* ids must be below the number of entries */

    t = tok_alloc();
    strs = calloc(cap ? cap : 1, sizeof *strs);
    where = calloc(cap ? cap : 1, sizeof *where);
    if (!t || !strs || !where) {
        s = qj_fail(QJ_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    t->kind = TOK_KIND_HF;
    t->flags = calloc(cap ? cap : 1, 1);
    if (!t->flags) {
        s = qj_fail(QJ_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    long max_id = -1;
    for (const cJSON *c = vocab->child; c; c = c->next) {
        long id = jid(c);
        if (id < 0 || (size_t)id >= cap) {
            if (cJSON_IsNumber(c) && id >= 0)
                s = qj_fail(QJ_ERR_FORMAT, "%s: model.vocab[\"%s\"]: id %ld is out of range (%zu tokens)", name,
                            c->string, id, cap);
            else if (cJSON_IsNumber(c))
                s = qj_fail(QJ_ERR_FORMAT, "%s: model.vocab[\"%s\"]: id %g is out of range (%zu tokens)", name,
                            c->string, c->valuedouble, cap);
            else
                s = qj_fail(QJ_ERR_FORMAT, "%s: model.vocab[\"%s\"]: the id is not a number", name, c->string);
            goto fail;
        }
        if (strs[id]) {
            s = qj_fail(QJ_ERR_FORMAT, "%s: model.vocab: \"%s\" and \"%s\" both have id %ld", name, strs[id],
                        c->string, id);
            goto fail;
        }
        strs[id] = c->string;
        where[id] = "model.vocab";
        t->flags[id] |= TOK_MODEL;
        if (id > max_id) max_id = id;
    }
    int ai = 0;
    for (const cJSON *c = added ? added->child : NULL; c; c = c->next, ai++) {
        const cJSON *idj = jget(c, "id"), *content = jget(c, "content");
        if (!cJSON_IsString(content)) {
            s = qj_fail(QJ_ERR_FORMAT, "%s: added_tokens[%d].content is missing or not a string", name, ai);
            goto fail;
        }
        long id = jid(idj);
        if (id < 0 || (size_t)id >= cap) {
            s = qj_fail(QJ_ERR_FORMAT, "%s: added_tokens[%d] (\"%s\"): id is missing or out of range (%zu tokens)",
                        name, ai, content->valuestring, cap);
            goto fail;
        }
        if (strs[id] && strcmp(strs[id], content->valuestring) != 0) {
            s = qj_fail(QJ_ERR_FORMAT, "%s: added_tokens[%d]: \"%s\" has id %ld, which %s gives to \"%s\"", name,
                        ai, content->valuestring, id, where[id], strs[id]);
            goto fail;
        }
        strs[id] = content->valuestring;
        where[id] = "added_tokens";
        t->flags[id] |= TOK_ADDED;
        if (cJSON_IsTrue(jget(c, "special"))) t->flags[id] |= TOK_SPECIAL;
        if (id > max_id) max_id = id;
    }
    size_t n = (size_t)(max_id + 1), total = 0;
    for (size_t id = 0; id < n; id++) {
        if (!strs[id]) {
            s = qj_fail(QJ_ERR_FORMAT,
                        "%s: %s: id %ld (\"%s\") is out of range: no token has id %zu, so ids are not 0..%zu",
                        name, where[max_id], max_id, strs[max_id], id, n - 1);
            goto fail;
        }
        total += strlen(strs[id]);
    }
    if (n == 0) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: model.vocab is empty", name);
        goto fail;
    }
    if (total >= UINT32_MAX) {
        s = qj_fail(QJ_ERR_UNSUPPORTED, "%s: the vocab strings are too large", name);
        goto fail;
    }
    t->n_vocab = (int)n;
    t->pool = malloc(total + 1);
    t->off = malloc((n + 1) * sizeof *t->off);
    if (!t->pool || !t->off) {
        s = qj_fail(QJ_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    size_t o = 0;
    for (size_t id = 0; id < n; id++) {
        size_t l = strlen(strs[id]);
        t->off[id] = (uint32_t)o;
        memcpy(t->pool + o, strs[id], l);
        o += l;
    }
    t->off[n] = (uint32_t)o;

    if ((s = parse_normalizer(t, jget(root, "normalizer"), "normalizer", name, 0)) != QJ_OK) goto fail;
    if ((s = parse_pre_tokenizer(t, jget(root, "pre_tokenizer"), name)) != QJ_OK) goto fail;
    if (t->metaspace) {
        strcpy(t->space_marker, t->ms_rep);
    } else {
        for (int i = 0; i < t->n_norm; i++)
            if (t->norm[i].op == TOK_NORM_REPLACE && !strcmp(t->norm[i].a, " ") &&
                strlen(t->norm[i].b) < sizeof t->space_marker)
                strcpy(t->space_marker, t->norm[i].b);
    }
    t->byte_fallback = cJSON_IsTrue(jget(model, "byte_fallback"));
    t->fuse_unk = cJSON_IsTrue(jget(model, "fuse_unk"));
    t->ignore_merges = cJSON_IsTrue(jget(model, "ignore_merges"));
    if ((s = tok_finish(t, name)) != QJ_OK) goto fail;
    for (size_t id = 0; id < n; id++) {
        size_t l;
        const char *p = tok_raw(t, (int)id, &l);
        int other = tok_lookup(t, p, l);
        if (other != (int)id) {
            s = qj_fail(QJ_ERR_FORMAT, "%s: \"%s\" appears twice, with ids %d (%s) and %zu (%s)", name, strs[id],
                        other, where[other], id, where[id]);
            goto fail;
        }
    }
    for (int b = 0; b < 256; b++) {
        char hex[8];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        t->byte_id[b] = tok_lookup(t, hex, 6);
    }
    const cJSON *unk = jget(model, "unk_token");
    if (cJSON_IsString(unk)) {
        t->unk_id = tok_lookup(t, unk->valuestring, strlen(unk->valuestring));
        if (t->unk_id < 0) {
            s = qj_fail(QJ_ERR_FORMAT, "%s: model.unk_token \"%s\" is not in model.vocab", name, unk->valuestring);
            goto fail;
        }
    } else if (!jnull(unk)) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: model.unk_token is not a string", name);
        goto fail;
    }
    t->bos_id = tok_lookup(t, "<s>", 3);
    t->eos_id = tok_lookup(t, "</s>", 4);
    t->max_token_length = (int)t->max_piece;

    size_t nm = (size_t)cJSON_GetArraySize(merges);
    if (nm >= (size_t)INT32_MAX) {
        s = qj_fail(QJ_ERR_UNSUPPORTED, "%s: too many merges", name);
        goto fail;
    }
    if ((s = tok_pairs_init(t, nm)) != QJ_OK) {
        s = qj_fail_context(s, "%s", name);
        goto fail;
    }
    char *cat = malloc(2 * t->max_piece + 1);
    if (!cat) {
        s = qj_fail(QJ_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    int mi = 0;
    for (const cJSON *c = merges->child; c; c = c->next, mi++) {
        const char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        if (cJSON_IsString(c)) {
            const char *sp = strchr(c->valuestring, ' ');
            if (sp) {
                a = c->valuestring;
                la = (size_t)(sp - a);
                b = sp + 1;
                lb = strlen(b);
            }
        } else if (cJSON_IsArray(c) && cJSON_GetArraySize(c) == 2 && cJSON_IsString(c->child) &&
                   cJSON_IsString(c->child->next)) {
            a = c->child->valuestring;
            la = strlen(a);
            b = c->child->next->valuestring;
            lb = strlen(b);
        }
        if (!a || !la || !lb) {
            s = qj_fail(QJ_ERR_FORMAT, "%s: model.merges[%d]: expected \"a b\" or [\"a\", \"b\"]", name, mi);
            break;
        }
        int ia = tok_lookup(t, a, la), ib = tok_lookup(t, b, lb), im = -1;
        if (ia >= 0 && ib >= 0 && la + lb <= 2 * t->max_piece) {
            memcpy(cat, a, la);
            memcpy(cat + la, b, lb);
            im = tok_lookup(t, cat, la + lb);
        }
        if (ia < 0 || ib < 0) {
            s = qj_fail(QJ_ERR_FORMAT, "%s: model.merges[%d]: \"%.*s\" is not in model.vocab", name, mi,
                        (int)(ia < 0 ? la : lb), ia < 0 ? a : b);
            break;
        }
        if (im < 0) {
            s = qj_fail(QJ_ERR_FORMAT, "%s: model.merges[%d]: the merged token \"%.*s%.*s\" is not in model.vocab",
                        name, mi, (int)la, a, (int)lb, b);
            break;
        }
        tok_pairs_put(t, ia, ib, mi, im);
    }
    free(cat);
    if (s != QJ_OK) goto fail;
    free(strs);
    free(where);
    cJSON_Delete(root);
    *out = t;
    return QJ_OK;
fail:
    free(strs);
    free(where);
    qj_tokenizer_free(t);
    cJSON_Delete(root);
    return s;
}

/* ---------------------------------------------------------------- writer */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->n + n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0) return;
    sb_put(b, "", 0);
    if (b->oom) return;
    if (b->n + (size_t)n + 1 > b->cap) { /* grow, then print in place */
        size_t cap = b->cap;
        while (cap < b->n + (size_t)n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

/* The inside of a JSON string literal; with map_space, ' ' is written as '▁'. */
static void sb_jbody(sbuf *b, const char *s, size_t n, int map_space) {
    size_t run = 0; /* bytes copied verbatim, flushed lazily */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\t') esc = "\\t";
        else if (c == '\r') esc = "\\r";
        else if (c < 0x20) {
            snprintf(u, sizeof u, "\\u%04x", c);
            esc = u;
        } else if (c == ' ' && map_space) esc = SPACE_MARK;
        if (esc) {
            sb_put(b, s + i - run, run);
            run = 0;
            sb_puts(b, esc);
        } else {
            run++;
        }
    }
    sb_put(b, s + n - run, run);
}

static void sb_jstr(sbuf *b, const char *s, size_t n, int map_space) {
    sb_put(b, "\"", 1);
    sb_jbody(b, s, n, map_space);
    sb_put(b, "\"", 1);
}

/* The HF string of id (without quotes): llama2.c pieces get '▁' for ' ' and
 * BOS/EOS become <s>, </s>. */
static void sb_piece_body(sbuf *b, const qj_tokenizer *t, int id) {
    size_t l;
    const char *p = tok_raw(t, id, &l);
    if (t->kind == TOK_KIND_LLAMA2C && id == t->bos_id) sb_puts(b, "<s>");
    else if (t->kind == TOK_KIND_LLAMA2C && id == t->eos_id) sb_puts(b, "</s>");
    else sb_jbody(b, p, l, t->kind == TOK_KIND_LLAMA2C);
}

static void sb_piece(sbuf *b, const qj_tokenizer *t, int id) {
    sb_put(b, "\"", 1);
    sb_piece_body(b, t, id);
    sb_put(b, "\"", 1);
}

typedef struct merge {
    float score;
    int32_t rank; /* HF: the rank; llama2.c: unused */
    int32_t id, a, b;
    uint32_t len, left_len;
} merge;

static int merge_cmp_llama2c(const void *x, const void *y) {
    const merge *p = x, *q = y;
    if (p->score != q->score) return p->score > q->score ? -1 : 1;
    if (p->len != q->len) return p->len > q->len ? -1 : 1;
    if (p->left_len != q->left_len) return p->left_len > q->left_len ? -1 : 1;
    return p->id < q->id ? -1 : p->id > q->id;
}

static int merge_cmp_rank(const void *x, const void *y) {
    const merge *p = x, *q = y;
    return p->rank < q->rank ? -1 : p->rank > q->rank;
}

/* Check that a llama2.c vocab can be written as HF BPE. */
static qj_status check_llama2c(const qj_tokenizer *t, const char *path) {
    if (t->n_vocab < 259)
        return qj_fail(QJ_ERR_UNSUPPORTED,
                       "%s: a llama2.c vocab of %d tokens has no byte tokens <0x00>..<0xFF> at ids 3..258", path,
                       t->n_vocab);
    for (int b = 0; b < 256; b++) {
        size_t l;
        const char *p = tok_raw(t, b + 3, &l);
        if (tok_byte_piece(p, l) != b)
            return qj_fail(QJ_ERR_UNSUPPORTED,
                           "%s: token %d is \"%.*s\", not <0x%02X>: the vocab's byte fallback cannot be written "
                           "as HF byte_fallback",
                           path, b + 3, (int)l, p, b);
    }
    if (tok_lookup(t, "<s>", 3) >= 0 || tok_lookup(t, "</s>", 4) >= 0)
        return qj_fail(QJ_ERR_UNSUPPORTED, "%s: the vocab has a plain \"<s>\" or \"</s>\" token, which the HF "
                                           "file needs for BOS/EOS",
                       path);
    for (int id = 0; id < t->n_vocab; id++) {
        size_t l;
        const char *p = tok_raw(t, id, &l);
        if (tok_lookup(t, p, l) != id)
            return qj_fail(QJ_ERR_UNSUPPORTED, "%s: token %d \"%.*s\" duplicates token %d; HF vocabs are unique",
                           path, id, (int)l, p, tok_lookup(t, p, l));
        if (memchr(p, 0, l))
            return qj_fail(QJ_ERR_UNSUPPORTED, "%s: token %d contains a NUL byte", path, id);
        if (qj_utf8_validate(p, l, "token") != QJ_OK)
            return qj_fail(QJ_ERR_UNSUPPORTED, "%s: token %d is not valid UTF-8", path, id);
        for (size_t k = 0; k + 3 <= l; k++)
            if (!memcmp(p + k, SPACE_MARK, 3))
                return qj_fail(QJ_ERR_UNSUPPORTED,
                               "%s: token %d contains U+2581, which the HF file uses to stand for ' '", path, id);
    }
    return QJ_OK;
}

/* Every split of a token into two vocab tokens, in rank order. */
static qj_status llama2c_merges(const qj_tokenizer *t, merge **out, size_t *n_out) {
    size_t n = 0, cap = 1024;
    merge *m = malloc(cap * sizeof *m);
    if (!m) return qj_fail(QJ_ERR_NOMEM, "out of memory for merges");
    for (int id = 0; id < t->n_vocab; id++) {
        if (id == t->bos_id || id == t->eos_id) continue;
        float sc = t->score[id];
        if (!(sc > (float)-1e10)) continue; /* llama2.c never merges into it */
        size_t l;
        const char *p = tok_raw(t, id, &l);
        for (size_t k = 1; k < l; k++) {
            int a = tok_lookup(t, p, k), b = tok_lookup(t, p + k, l - k);
            if (a < 0 || b < 0 || a == t->bos_id || a == t->eos_id || b == t->bos_id || b == t->eos_id) continue;
            if (n == cap) {
                merge *nm = realloc(m, 2 * cap * sizeof *m);
                if (!nm) {
                    free(m);
                    return qj_fail(QJ_ERR_NOMEM, "out of memory for merges");
                }
                m = nm;
                cap *= 2;
            }
            m[n++] = (merge){sc, 0, id, a, b, (uint32_t)l, (uint32_t)k};
        }
    }
    qsort(m, n, sizeof *m, merge_cmp_llama2c);
    *out = m;
    *n_out = n;
    return QJ_OK;
}

static qj_status hf_merges(const qj_tokenizer *t, merge **out, size_t *n_out) {
    size_t n = 0;
    merge *m = malloc(((size_t)t->n_merges + 1) * sizeof *m);
    if (!m) return qj_fail(QJ_ERR_NOMEM, "out of memory for merges");
    for (size_t i = 0; t->ptab && i <= t->pmask; i++) {
        const tok_pair_slot *p = &t->ptab[i];
        if (p->key == TOK_PAIR_EMPTY) continue;
        m[n++] = (merge){0, p->rank, p->id, (int32_t)(p->key >> 32), (int32_t)(p->key & 0xffffffffu), 0, 0};
    }
    qsort(m, n, sizeof *m, merge_cmp_rank);
    *out = m;
    *n_out = n;
    return QJ_OK;
}

static void write_norm(sbuf *b, const qj_tokenizer *t) {
    if (t->kind == TOK_KIND_LLAMA2C) {
        sb_puts(b, "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"" SPACE_MARK
                   "\"}, {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"" SPACE_MARK
                   "\"}]}");
        return;
    }
    if (t->n_norm == 0) {
        sb_puts(b, "null");
        return;
    }
    sb_puts(b, "{\"type\": \"Sequence\", \"normalizers\": [");
    for (int i = 0; i < t->n_norm; i++) {
        if (i) sb_puts(b, ", ");
        if (t->norm[i].op == TOK_NORM_PREPEND) {
            sb_puts(b, "{\"type\": \"Prepend\", \"prepend\": ");
            sb_jstr(b, t->norm[i].a, strlen(t->norm[i].a), 0);
            sb_puts(b, "}");
        } else {
            sb_puts(b, "{\"type\": \"Replace\", \"pattern\": {\"String\": ");
            sb_jstr(b, t->norm[i].a, strlen(t->norm[i].a), 0);
            sb_puts(b, "}, \"content\": ");
            sb_jstr(b, t->norm[i].b, strlen(t->norm[i].b), 0);
            sb_puts(b, "}");
        }
    }
    sb_puts(b, "]}");
}

qj_status tok_save_hf(const qj_tokenizer *t, const char *path) {
    int l2c = t->kind == TOK_KIND_LLAMA2C;
    qj_status s = l2c ? check_llama2c(t, path) : QJ_OK;
    if (s != QJ_OK) return s;
    merge *m = NULL;
    size_t nm = 0;
    if ((s = l2c ? llama2c_merges(t, &m, &nm) : hf_merges(t, &m, &nm)) != QJ_OK)
        return qj_fail_context(s, "%s", path);

    sbuf b = {0};
    sb_puts(&b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [");
    int first = 1;
    for (int id = 0; id < t->n_vocab; id++) {
        int added = l2c ? id <= 2 : (t->flags[id] & TOK_ADDED) != 0;
        int special = l2c ? 1 : (t->flags[id] & TOK_SPECIAL) != 0;
        if (!added) continue;
        sb_printf(&b, "%s\n    {\"id\": %d, \"content\": ", first ? "" : ",", id);
        sb_piece(&b, t, id);
        sb_printf(&b, ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, "
                      "\"special\": %s}",
                  special ? "true" : "false");
        first = 0;
    }
    sb_puts(&b, "\n  ],\n  \"normalizer\": ");
    write_norm(&b, t);
    sb_puts(&b, ",\n  \"pre_tokenizer\": ");
    if (t->metaspace) {
        static const char *const schemes[] = {"never", "always", "first"};
        sb_puts(&b, "{\"type\": \"Metaspace\", \"replacement\": ");
        sb_jstr(&b, t->ms_rep, strlen(t->ms_rep), 0);
        sb_printf(&b, ", \"prepend_scheme\": \"%s\", \"split\": %s}", schemes[t->ms_prepend],
                  t->ms_split ? "true" : "false");
    } else {
        sb_puts(&b, "null");
    }
    sb_puts(&b, ",\n  \"post_processor\": ");
    if (t->bos_id >= 0) {
        sb_printf(&b, "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", "
                      "\"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"pair\": "
                      "[{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", "
                      "\"type_id\": 0}}, {\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 1}}, {\"Sequence\": "
                      "{\"id\": \"B\", \"type_id\": 1}}], \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": "
                      "[%d], \"tokens\": [\"<s>\"]}}}",
                  t->bos_id);
    } else {
        sb_puts(&b, "null");
    }
    const char *marker = l2c ? SPACE_MARK : t->space_marker;
    sb_puts(&b, ",\n  \"decoder\": {\"type\": \"Sequence\", \"decoders\": [");
    if (marker[0]) {
        sb_puts(&b, "{\"type\": \"Replace\", \"pattern\": {\"String\": ");
        sb_jstr(&b, marker, strlen(marker), 0);
        sb_puts(&b, "}, \"content\": \" \"}, ");
    }
    if (l2c || t->byte_fallback) sb_puts(&b, "{\"type\": \"ByteFallback\"}, ");
    sb_puts(&b, "{\"type\": \"Fuse\"}, {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]},\n");
    sb_puts(&b, "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": ");
    int unk = t->unk_id;
    if (l2c) {
        size_t l;
        const char *p = tok_raw(t, 0, &l);
        unk = l == 5 && !memcmp(p, "<unk>", 5) ? 0 : -1;
    }
    if (unk >= 0) sb_piece(&b, t, unk);
    else sb_puts(&b, "null");
    sb_printf(&b,
              ",\n    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"
              "    \"fuse_unk\": %s,\n    \"byte_fallback\": %s,\n    \"ignore_merges\": %s,\n    \"vocab\": {",
              l2c || t->fuse_unk ? "true" : "false", l2c || t->byte_fallback ? "true" : "false",
              t->ignore_merges ? "true" : "false");
    first = 1;
    for (int id = 0; id < t->n_vocab; id++) {
        if (!l2c && !(t->flags[id] & TOK_MODEL)) continue;
        sb_puts(&b, first ? "\n      " : ",\n      ");
        sb_piece(&b, t, id);
        sb_printf(&b, ": %d", id);
        first = 0;
    }
    /* merges as "a b" strings, which every tokenizers version reads, unless
     * a piece contains a space (then [a, b] pairs, tokenizers >= 0.20) */
    int pairs = 0;
    for (size_t i = 0; !l2c && i < nm; i++) {
        size_t la, lb;
        const char *pa = tok_raw(t, m[i].a, &la), *pb = tok_raw(t, m[i].b, &lb);
        if (memchr(pa, ' ', la) || memchr(pb, ' ', lb)) pairs = 1;
    }
    sb_puts(&b, "\n    },\n    \"merges\": [");
    for (size_t i = 0; i < nm; i++) {
        sb_puts(&b, i ? ",\n      " : "\n      ");
        if (pairs) {
            sb_puts(&b, "[");
            sb_piece(&b, t, m[i].a);
            sb_puts(&b, ", ");
            sb_piece(&b, t, m[i].b);
            sb_puts(&b, "]");
        } else {
            sb_puts(&b, "\"");
            sb_piece_body(&b, t, m[i].a);
            sb_puts(&b, " ");
            sb_piece_body(&b, t, m[i].b);
            sb_puts(&b, "\"");
        }
    }
    sb_puts(&b, "\n    ]\n  }\n}\n");
    free(m);
    if (b.oom) {
        free(b.p);
        return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", path);
    }
    s = qj_write_file_atomic(path, b.p, b.n);
    free(b.p);
    return s;
}
