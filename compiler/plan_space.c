/* plan_space.c — parameter spaces (the seed's *_parameters.json: per-block
 * allowed bit widths and group sizes) and initial samples
 * ({"initial_samples": [plan, ...]}), with the checks that a sample or a
 * resolved plan lies inside a space. docs/FORMATS.md describes both formats.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "plan_internal.h"
#include "qj_io.h"

static const char *const param_names[QJ_SPACE_NPARAMS] = {"bitwidth", "groupsize"};
static const char *const param_formats[QJ_SPACE_NPARAMS] = {"bitwidth.{i}.", "groupsize.{i}."};
static const char *const param_rules[QJ_SPACE_NPARAMS] = {
    "bit widths are 2..8, 16 (bf16 dense) or 32 (f32 dense)",
    "group sizes are 32, 64, 128, 256, 512 or 0 (per-channel)"};

static int value_ok(int param, int v) {
    return param == QJ_SPACE_BITWIDTH ? (qj_plan_bits_ok(v) || v == 16 || v == 32) : qj_plan_group_ok(v);
}

void qj_space_free(qj_space *s) {
    if (!s) return;
    for (int p = 0; p < QJ_SPACE_NPARAMS; p++) free(s->params[p].layers);
    free(s);
}

static qj_status space_alloc(int n_layers, const char *name, qj_space **out) {
    *out = NULL;
    qj_space *s = calloc(1, sizeof *s);
    if (!s) return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", name);
    s->n_layers = n_layers;
    snprintf(s->name, sizeof s->name, "%s", name);
    for (int p = 0; p < QJ_SPACE_NPARAMS; p++) {
        snprintf(s->params[p].name, sizeof s->params[p].name, "%s", param_names[p]);
        snprintf(s->params[p].name_format, sizeof s->params[p].name_format, "%s", param_formats[p]);
        s->params[p].layers = calloc((size_t)n_layers, sizeof *s->params[p].layers);
        if (!s->params[p].layers) {
            qj_space_free(s);
            return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", name);
        }
    }
    *out = s;
    return QJ_OK;
}

qj_status qj_space_default(int n_layers, qj_space **out) {
    static const int bits[] = {2, 3, 4, 5, 6, 8}, groups[] = {32, 64, 128, 256, 512};
    *out = NULL;
    if (n_layers < 1 || n_layers > QJ_PLAN_MAX_LAYERS)
        return qj_fail(QJ_ERR_INVALID, "default space: %d layers is out of range (1..%d)", n_layers,
                       QJ_PLAN_MAX_LAYERS);
    qj_space *s;
    qj_status st = space_alloc(n_layers, "default", &s);
    if (st) return st;
    for (int i = 0; i < n_layers; i++) {
        qj_space_choice *b = &s->params[QJ_SPACE_BITWIDTH].layers[i], *g = &s->params[QJ_SPACE_GROUPSIZE].layers[i];
        b->n_values = (int)(sizeof bits / sizeof bits[0]);
        memcpy(b->values, bits, sizeof bits);
        g->n_values = (int)(sizeof groups / sizeof groups[0]);
        memcpy(g->values, groups, sizeof groups);
    }
    *out = s;
    return QJ_OK;
}

int qj_space_allows(const qj_space *s, qj_space_param_id param, int layer, int v) {
    if ((unsigned)param >= QJ_SPACE_NPARAMS || layer < 0 || layer >= s->n_layers) return 0;
    const qj_space_choice *c = &s->params[param].layers[layer];
    for (int k = 0; k < c->n_values; k++)
        if (c->values[k] == v) return 1;
    return 0;
}

/* "choices 2,3,4,5,6,8" or "fixed at 5". */
static const char *choice_str(const qj_space_choice *c, char *buf, size_t n) {
    char list[160];
    qj_plan_int_list(c->values, c->n_values, list, sizeof list);
    snprintf(buf, n, "%s %s", c->fixed ? "fixed at" : "choices", list);
    return buf;
}

/* ---- parsing ---------------------------------------------------------------- */

typedef struct segment {
    int start, end; /* [start, end) */
    int entry;      /* index in the parameter's "layers" array */
    qj_space_choice choice;
} segment;

typedef struct param_src {
    int index;      /* index in "parameters", -1 when absent */
    int n_seg;
    segment *seg;   /* (n_seg) */
    int max_end;
} param_src;

static qj_status parse_value(const cJSON *v, int param, int *out, const char *where, const char *path) {
    char show[64];
    int r = qj_plan_json_int(v, out);
    if (r == -1)
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "expected an integer, got %s %s", qj_plan_json_type(v),
                                 qj_plan_json_show(v, show, sizeof show));
    if (r == -2)
        return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "%s is not an integer",
                                 qj_plan_json_show(v, show, sizeof show));
    if (!value_ok(param, *out))
        return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "%d is not allowed (%s)", *out, param_rules[param]);
    return QJ_OK;
}

static qj_status parse_segment(const cJSON *e, int param, int n_layers, segment *sg, const char *where,
                               const char *epath) {
    char path[200], show[64];
    if (!cJSON_IsObject(e))
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, epath, "expected an object, got %s %s", qj_plan_json_type(e),
                                 qj_plan_json_show(e, show, sizeof show));
    const cJSON *dup = qj_plan_json_dup(e);
    if (dup) return qj_plan_json_fail(QJ_ERR_FORMAT, where, epath, "duplicate key \"%s\"", dup->string);
    const cJSON *range = NULL, *type = NULL, *value = NULL, *values = NULL;
    for (const cJSON *m = e->child; m; m = m->next) {
        if (strcmp(m->string, "range") == 0) range = m;
        else if (strcmp(m->string, "type") == 0) type = m;
        else if (strcmp(m->string, "value") == 0) value = m;
        else if (strcmp(m->string, "values") == 0) values = m;
        else
            return qj_plan_json_fail(QJ_ERR_FORMAT, where, epath,
                                     "unknown key \"%s\" (expected range, type, value or values)", m->string);
    }
    snprintf(path, sizeof path, "%s.range", epath);
    if (!range) return qj_plan_json_fail(QJ_ERR_FORMAT, where, epath, "missing \"range\"");
    if (!cJSON_IsArray(range) || cJSON_GetArraySize(range) != 2)
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "expected [start, end], got %s",
                                 qj_plan_json_show(range, show, sizeof show));
    int ends[2];
    for (int k = 0; k < 2; k++) {
        const cJSON *x = cJSON_GetArrayItem(range, k);
        if (qj_plan_json_int(x, &ends[k]) != 0)
            return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "expected [start, end] of integers, got %s",
                                     qj_plan_json_show(range, show, sizeof show));
    }
    sg->start = ends[0];
    sg->end = ends[1];
    if (sg->start < 0)
        return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "[%d, %d] starts below 0", sg->start, sg->end);
    if (sg->start >= sg->end)
        return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "[%d, %d] is empty (start must be < end; end is exclusive)",
                                 sg->start, sg->end);
    if (n_layers > 0 && sg->end > n_layers)
        return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "[%d, %d] is out of bounds (model has %d layers)",
                                 sg->start, sg->end, n_layers);
    if (sg->end > QJ_PLAN_MAX_LAYERS)
        return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "[%d, %d] is out of bounds (at most %d layers)",
                                 sg->start, sg->end, QJ_PLAN_MAX_LAYERS);

    snprintf(path, sizeof path, "%s.type", epath);
    if (!type) return qj_plan_json_fail(QJ_ERR_FORMAT, where, epath, "missing \"type\" (\"fixed\" or \"choice\")");
    if (!cJSON_IsString(type))
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "expected a string, got %s %s", qj_plan_json_type(type),
                                 qj_plan_json_show(type, show, sizeof show));
    qj_space_choice *c = &sg->choice;
    if (strcmp(type->valuestring, "fixed") == 0) {
        if (values)
            return qj_plan_json_fail(QJ_ERR_FORMAT, where, epath, "\"values\" belongs to \"type\": \"choice\" (a fixed range has \"value\")");
        if (!value) return qj_plan_json_fail(QJ_ERR_FORMAT, where, epath, "missing \"value\" for \"type\": \"fixed\"");
        snprintf(path, sizeof path, "%s.value", epath);
        c->fixed = 1;
        c->n_values = 1;
        return parse_value(value, param, &c->values[0], where, path);
    }
    if (strcmp(type->valuestring, "choice") != 0)
        return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "\"%s\" is not \"fixed\" or \"choice\"",
                                 type->valuestring);
    if (value)
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, epath, "\"value\" belongs to \"type\": \"fixed\" (a choice has \"values\")");
    if (!values) return qj_plan_json_fail(QJ_ERR_FORMAT, where, epath, "missing \"values\" for \"type\": \"choice\"");
    snprintf(path, sizeof path, "%s.values", epath);
    if (!cJSON_IsArray(values))
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "expected an array, got %s %s", qj_plan_json_type(values),
                                 qj_plan_json_show(values, show, sizeof show));
    int n = cJSON_GetArraySize(values);
    if (n == 0) return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "empty choice list");
    if (n > QJ_SPACE_MAX_VALUES)
        return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "%d choices, at most %d", n, QJ_SPACE_MAX_VALUES);
    c->fixed = 0;
    c->n_values = 0;
    for (const cJSON *x = values->child; x; x = x->next) {
        char vpath[240];
        snprintf(vpath, sizeof vpath, "%s.values[%d]", epath, c->n_values);
        int v;
        qj_status s2 = parse_value(x, param, &v, where, vpath);
        if (s2) return s2;
        for (int k = 0; k < c->n_values; k++)
            if (c->values[k] == v) return qj_plan_json_fail(QJ_ERR_INVALID, where, vpath, "%d appears twice", v);
        c->values[c->n_values++] = v;
    }
    return QJ_OK;
}

static qj_status parse_param(const cJSON *pobj, int j, int n_layers, param_src *src, const char *where) {
    char path[64], sub[96], show[64];
    qj_status s;
    snprintf(path, sizeof path, "parameters[%d]", j);
    if (!cJSON_IsObject(pobj))
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "expected an object, got %s %s", qj_plan_json_type(pobj),
                                 qj_plan_json_show(pobj, show, sizeof show));
    const cJSON *dup = qj_plan_json_dup(pobj);
    if (dup) return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "duplicate key \"%s\"", dup->string);
    const cJSON *name = NULL, *fmt = NULL, *layers = NULL;
    for (const cJSON *m = pobj->child; m; m = m->next) {
        if (strcmp(m->string, "name") == 0) name = m;
        else if (strcmp(m->string, "name_format") == 0) fmt = m;
        else if (strcmp(m->string, "layers") == 0) layers = m;
        else
            return qj_plan_json_fail(QJ_ERR_FORMAT, where, path,
                                     "unknown key \"%s\" (expected name, name_format or layers)", m->string);
    }
    snprintf(sub, sizeof sub, "%s.name", path);
    if (!name) return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "missing \"name\"");
    if (!cJSON_IsString(name))
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, sub, "expected a string, got %s %s", qj_plan_json_type(name),
                                 qj_plan_json_show(name, show, sizeof show));
    int param = -1;
    for (int p = 0; p < QJ_SPACE_NPARAMS; p++)
        if (strcmp(name->valuestring, param_names[p]) == 0) param = p;
    if (param < 0)
        return qj_plan_json_fail(QJ_ERR_INVALID, where, sub,
                                 "unknown parameter \"%s\" (expected \"bitwidth\" or \"groupsize\")", name->valuestring);
    if (src[param].index >= 0)
        return qj_plan_json_fail(QJ_ERR_INVALID, where, sub, "\"%s\" appears twice (also parameters[%d])",
                                 name->valuestring, src[param].index);
    src[param].index = j;

    snprintf(sub, sizeof sub, "%s.name_format", path);
    if (!fmt) return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "missing \"name_format\"");
    if (!cJSON_IsString(fmt))
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, sub, "expected a string, got %s %s", qj_plan_json_type(fmt),
                                 qj_plan_json_show(fmt, show, sizeof show));
    if (!strstr(fmt->valuestring, "{i}"))
        return qj_plan_json_fail(QJ_ERR_INVALID, where, sub, "\"%s\" has no \"{i}\" for the layer index",
                                 fmt->valuestring);
    if (strcmp(fmt->valuestring, param_formats[param]) != 0)
        return qj_plan_json_fail(QJ_ERR_UNSUPPORTED, where, sub,
                                 "\"%s\" must be \"%s\" (plans and samples use these keys)", fmt->valuestring,
                                 param_formats[param]);

    snprintf(sub, sizeof sub, "%s.layers", path);
    if (!layers) return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "missing \"layers\"");
    if (!cJSON_IsArray(layers))
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, sub, "expected an array, got %s %s", qj_plan_json_type(layers),
                                 qj_plan_json_show(layers, show, sizeof show));
    int n = cJSON_GetArraySize(layers);
    if (n == 0) return qj_plan_json_fail(QJ_ERR_INVALID, where, sub, "no ranges");
    src[param].seg = calloc((size_t)n, sizeof *src[param].seg);
    if (!src[param].seg) return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", where);
    int k = 0;
    for (const cJSON *e = layers->child; e; e = e->next, k++) {
        char epath[128];
        snprintf(epath, sizeof epath, "%s.layers[%d]", path, k);
        segment *sg = &src[param].seg[k];
        sg->entry = k;
        if ((s = parse_segment(e, param, n_layers, sg, where, epath))) return s;
        src[param].n_seg = k + 1;
        if (sg->end > src[param].max_end) src[param].max_end = sg->end;
    }
    return QJ_OK;
}

/* Layers [a, b] of "layers N..M" wording. */
static void layer_span(int a, int b, char *buf, size_t n) {
    if (a == b) snprintf(buf, n, "layer %d has", a);
    else snprintf(buf, n, "layers %d..%d have", a, b);
}

static qj_status space_from_obj(const cJSON *root, const char *where, int n_layers, qj_space **out) {
    char show[64];
    qj_status s = QJ_OK;
    param_src src[QJ_SPACE_NPARAMS];
    int *owner = NULL;
    qj_space *sp = NULL;
    *out = NULL;
    memset(src, 0, sizeof src);
    for (int p = 0; p < QJ_SPACE_NPARAMS; p++) src[p].index = -1;
    if (n_layers < 0 || n_layers > QJ_PLAN_MAX_LAYERS)
        return qj_plan_json_fail(QJ_ERR_INVALID, where, NULL, "%d layers is out of range (1..%d)", n_layers,
                                 QJ_PLAN_MAX_LAYERS);
    if (!cJSON_IsObject(root))
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, NULL, "expected a JSON object, got %s", qj_plan_json_type(root));
    const cJSON *dup = qj_plan_json_dup(root);
    if (dup) return qj_plan_json_fail(QJ_ERR_FORMAT, where, NULL, "duplicate key \"%s\"", dup->string);
    const cJSON *params = NULL;
    for (const cJSON *m = root->child; m; m = m->next) {
        if (strcmp(m->string, "parameters") == 0) params = m;
        else
            return qj_plan_json_fail(QJ_ERR_FORMAT, where, NULL, "unknown key \"%s\" (a space has only \"parameters\")%s",
                                     m->string,
                                     strcmp(m->string, "initial_samples") == 0 ? "; this looks like an initial-samples file"
                                     : strncmp(m->string, "bitwidth.", 9) == 0 ? "; this looks like a plan"
                                                                               : "");
    }
    if (!params) return qj_plan_json_fail(QJ_ERR_FORMAT, where, NULL, "missing \"parameters\"");
    if (!cJSON_IsArray(params))
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, "parameters", "expected an array, got %s %s",
                                 qj_plan_json_type(params), qj_plan_json_show(params, show, sizeof show));
    int j = 0;
    for (const cJSON *pobj = params->child; pobj; pobj = pobj->next, j++)
        if ((s = parse_param(pobj, j, n_layers, src, where))) goto fail;
    for (int p = 0; p < QJ_SPACE_NPARAMS; p++)
        if (src[p].index < 0) {
            s = qj_plan_json_fail(QJ_ERR_INVALID, where, "parameters",
                                  "missing parameter \"%s\" (a space needs both \"bitwidth\" and \"groupsize\")",
                                  param_names[p]);
            goto fail;
        }

    /* Overlaps and gaps, per parameter. */
    int N = n_layers;
    for (int p = 0; p < QJ_SPACE_NPARAMS; p++)
        if (src[p].max_end > N) N = src[p].max_end;
    owner = malloc((size_t)N * QJ_SPACE_NPARAMS * sizeof *owner);
    if (!owner) {
        s = qj_fail(QJ_ERR_NOMEM, "%s: out of memory", where);
        goto fail;
    }
    for (int p = 0; p < QJ_SPACE_NPARAMS; p++) {
        int *own = owner + (size_t)p * (size_t)N;
        for (int i = 0; i < N; i++) own[i] = -1;
        for (int k = 0; k < src[p].n_seg; k++) {
            const segment *sg = &src[p].seg[k];
            for (int i = sg->start; i < sg->end; i++) {
                if (own[i] >= 0) {
                    const segment *o = &src[p].seg[own[i]];
                    char path[96];
                    snprintf(path, sizeof path, "parameters[%d].layers[%d].range", src[p].index, k);
                    s = qj_plan_json_fail(QJ_ERR_INVALID, where, path,
                                          "[%d, %d] overlaps parameters[%d].layers[%d] (range [%d, %d]) at layer %d",
                                          sg->start, sg->end, src[p].index, o->entry, o->start, o->end, i);
                    goto fail;
                }
                own[i] = k;
            }
        }
        for (int i = 0; i < src[p].max_end; i++)
            if (own[i] < 0) {
                int e = i;
                while (e + 1 < src[p].max_end && own[e + 1] < 0) e++;
                char path[64], span[64];
                snprintf(path, sizeof path, "parameters[%d] (\"%s\")", src[p].index, param_names[p]);
                layer_span(i, e, span, sizeof span);
                s = qj_plan_json_fail(QJ_ERR_INVALID, where, path, "%s no value (a gap between ranges)", span);
                goto fail;
            }
    }
    if (src[QJ_SPACE_BITWIDTH].max_end != src[QJ_SPACE_GROUPSIZE].max_end) {
        s = qj_plan_json_fail(QJ_ERR_INVALID, where, "parameters",
                              "\"bitwidth\" covers layers [0, %d) but \"groupsize\" covers [0, %d): both must cover the "
                              "same layers",
                              src[QJ_SPACE_BITWIDTH].max_end, src[QJ_SPACE_GROUPSIZE].max_end);
        goto fail;
    }
    if (src[0].max_end < N) {
        char span[64];
        layer_span(src[0].max_end, N - 1, span, sizeof span);
        s = qj_plan_json_fail(QJ_ERR_INVALID, where, "parameters", "%s no value (model has %d layers)", span, N);
        goto fail;
    }

    if ((s = space_alloc(N, where, &sp))) goto fail;
    for (int p = 0; p < QJ_SPACE_NPARAMS; p++)
        for (int k = 0; k < src[p].n_seg; k++)
            for (int i = src[p].seg[k].start; i < src[p].seg[k].end; i++) sp->params[p].layers[i] = src[p].seg[k].choice;
    *out = sp;
    sp = NULL;
fail:
    qj_space_free(sp);
    free(owner);
    for (int p = 0; p < QJ_SPACE_NPARAMS; p++) free(src[p].seg);
    return s;
}

qj_status qj_space_parse_json(const char *json_text, const char *name_for_errors, int n_layers, qj_space **out) {
    cJSON *root;
    *out = NULL;
    if (!name_for_errors || !*name_for_errors) name_for_errors = "space";
    qj_status s = qj_plan_json_load(json_text, name_for_errors, &root);
    if (s) return s;
    s = space_from_obj(root, name_for_errors, n_layers, out);
    cJSON_Delete(root);
    return s;
}

qj_status qj_space_parse(const char *path, int n_layers, qj_space **out) {
    char *text;
    *out = NULL;
    qj_status s = qj_read_file(path, &text, NULL);
    if (s) return s;
    s = qj_space_parse_json(text, path, n_layers, out);
    free(text);
    return s;
}

/* ---- membership --------------------------------------------------------------- */

/* The key of parameter p for layer i: name_format with {i} replaced. */
static void param_key(const qj_space *s, int p, int i, char *buf, size_t n) {
    const char *fmt = s->params[p].name_format, *at = strstr(fmt, "{i}");
    if (!at) {
        snprintf(buf, n, "%s", fmt);
        return;
    }
    snprintf(buf, n, "%.*s%d%s", (int)(at - fmt), fmt, i, at + 3);
}

qj_status qj_space_check_json(const qj_space *s, const cJSON *sample, const char *where) {
    char key[64], path[80], show[64], allowed[200];
    if (!where || !*where) where = "sample";
    if (!cJSON_IsObject(sample))
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, NULL, "expected a JSON object, got %s",
                                 qj_plan_json_type(sample));
    for (const cJSON *m = sample->child; m; m = m->next) {
        int idx;
        for (int p = 0; p < QJ_SPACE_NPARAMS; p++)
            if (qj_plan_layer_key(m->string, param_names[p], &idx) == 1 && idx >= s->n_layers)
                return qj_plan_json_fail(QJ_ERR_INVALID, where, NULL,
                                         "\"%s\": layer %d is beyond the space (%d layers)", m->string, idx,
                                         s->n_layers);
    }
    for (int i = 0; i < s->n_layers; i++)
        for (int p = 0; p < QJ_SPACE_NPARAMS; p++) {
            param_key(s, p, i, key, sizeof key);
            snprintf(path, sizeof path, "\"%s\"", key);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(sample, key);
            if (!v)
                return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "missing (the space has %d layers)",
                                         s->n_layers);
            int x, r = qj_plan_json_int(v, &x);
            if (r == -1)
                return qj_plan_json_fail(QJ_ERR_FORMAT, where, path, "expected an integer, got %s %s",
                                         qj_plan_json_type(v), qj_plan_json_show(v, show, sizeof show));
            if (r == -2)
                return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "%s is not an integer",
                                         qj_plan_json_show(v, show, sizeof show));
            if (!qj_space_allows(s, (qj_space_param_id)p, i, x))
                return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "%d is not allowed by the space (%s)", x,
                                         choice_str(&s->params[p].layers[i], allowed, sizeof allowed));
        }
    return QJ_OK;
}

qj_status qj_space_check_plan(const qj_space *s, const qj_plan *p, const char *where) {
    char key[64], path[80], allowed[200], a[64], b[64];
    if (!where || !*where) where = p->desc[0] ? p->desc : "plan";
    if (p->n_layers != s->n_layers)
        return qj_plan_json_fail(QJ_ERR_INVALID, where, NULL, "the plan has %d layers, the space %d", p->n_layers,
                                 s->n_layers);
    for (int i = 0; i < p->n_layers; i++) {
        const qj_tensor_plan *t0 = qj_plan_linear(p, i, QJ_LIN_Q);
        for (int l = 1; l < QJ_LIN_COUNT; l++) {
            const qj_tensor_plan *t = qj_plan_linear(p, i, (qj_linear)l);
            if (!qj_tensor_plan_equal(t, t0))
                return qj_plan_json_fail(QJ_ERR_INVALID, where, NULL,
                                         "layer %d: q_proj is %s but %s is %s; a space gives one setting per layer", i,
                                         qj_tensor_plan_str(t0, a, sizeof a), qj_linear_name((qj_linear)l),
                                         qj_tensor_plan_str(t, b, sizeof b));
        }
        int bits, group = -1;
        if (t0->dtype == QJ_DTYPE_Q) bits = t0->q.bits, group = t0->q.group;
        else if (t0->dtype == QJ_DTYPE_BF16) bits = 16;
        else if (t0->dtype == QJ_DTYPE_F32) bits = 32;
        else
            return qj_plan_json_fail(QJ_ERR_INVALID, where, NULL,
                                     "layer %d is dense %s, which a space cannot express (bitwidth 16 = bf16, 32 = f32)",
                                     i, qj_tensor_plan_str(t0, a, sizeof a));
        const int vals[QJ_SPACE_NPARAMS] = {bits, group};
        for (int q = 0; q < QJ_SPACE_NPARAMS; q++) {
            if (q == QJ_SPACE_GROUPSIZE && group < 0) continue; /* dense: no group */
            if (qj_space_allows(s, (qj_space_param_id)q, i, vals[q])) continue;
            param_key(s, q, i, key, sizeof key);
            snprintf(path, sizeof path, "\"%s\"", key);
            return qj_plan_json_fail(QJ_ERR_INVALID, where, path, "%d is not allowed by the space (%s)", vals[q],
                                     choice_str(&s->params[q].layers[i], allowed, sizeof allowed));
        }
    }
    return QJ_OK;
}

/* ---- initial samples ---------------------------------------------------------- */

void qj_samples_free(qj_samples *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) qj_plan_free(s->plans[i]);
    free(s->plans);
    free(s);
}

static qj_status samples_from_obj(const cJSON *root, const char *where, const qj_space *space, int n_layers,
                                  qj_samples **out) {
    char show[64];
    *out = NULL;
    if (!cJSON_IsObject(root))
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, NULL, "expected a JSON object, got %s", qj_plan_json_type(root));
    const cJSON *dup = qj_plan_json_dup(root);
    if (dup) return qj_plan_json_fail(QJ_ERR_FORMAT, where, NULL, "duplicate key \"%s\"", dup->string);
    const cJSON *arr = NULL;
    for (const cJSON *m = root->child; m; m = m->next) {
        if (strcmp(m->string, "initial_samples") == 0) arr = m;
        else
            return qj_plan_json_fail(
                QJ_ERR_FORMAT, where, NULL, "unknown key \"%s\" (an initial-samples file has only \"initial_samples\")%s",
                m->string,
                strcmp(m->string, "parameters") == 0 ? "; this looks like a parameter space file"
                : strncmp(m->string, "bitwidth.", 9) == 0
                    ? "; this looks like a single plan: wrap it as {\"initial_samples\": [plan]}"
                    : "");
    }
    if (!arr) return qj_plan_json_fail(QJ_ERR_FORMAT, where, NULL, "missing \"initial_samples\"");
    if (!cJSON_IsArray(arr))
        return qj_plan_json_fail(QJ_ERR_FORMAT, where, "initial_samples", "expected an array, got %s %s",
                                 qj_plan_json_type(arr), qj_plan_json_show(arr, show, sizeof show));
    if (space) {
        if (n_layers == 0) n_layers = space->n_layers;
        else if (n_layers != space->n_layers)
            return qj_plan_json_fail(QJ_ERR_INVALID, where, NULL, "the model has %d layers but the space (%s) has %d",
                                     n_layers, space->name, space->n_layers);
    }
    int n = cJSON_GetArraySize(arr);
    qj_samples *S = calloc(1, sizeof *S);
    if (!S || !(S->plans = calloc((size_t)n + 1, sizeof *S->plans))) {
        free(S);
        return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", where);
    }
    const char *base = qj_plan_basename(where);
    int j = 0;
    for (const cJSON *e = arr->child; e; e = e->next, j++) {
        char w[600];
        snprintf(w, sizeof w, "%s: initial_samples[%d]", where, j);
        qj_status s = qj_plan_from_cjson(e, w, n_layers, &S->plans[j]);
        if (!s && space) s = qj_space_check_json(space, e, w);
        if (s) {
            S->n = j + 1;
            qj_samples_free(S);
            return s;
        }
        char origin[300];
        snprintf(origin, sizeof origin, "%s initial_samples[%d]", base, j);
        qj_plan_describe(S->plans[j], origin);
    }
    S->n = j;
    *out = S;
    return QJ_OK;
}

qj_status qj_samples_parse_json(const char *json_text, const char *name_for_errors, const qj_space *space,
                                int n_layers, qj_samples **out) {
    cJSON *root;
    *out = NULL;
    if (!name_for_errors || !*name_for_errors) name_for_errors = "initial samples";
    qj_status s = qj_plan_json_load(json_text, name_for_errors, &root);
    if (s) return s;
    s = samples_from_obj(root, name_for_errors, space, n_layers, out);
    cJSON_Delete(root);
    return s;
}

qj_status qj_samples_parse(const char *path, const qj_space *space, int n_layers, qj_samples **out) {
    char *text;
    *out = NULL;
    qj_status s = qj_read_file(path, &text, NULL);
    if (s) return s;
    s = qj_samples_parse_json(text, path, space, n_layers, out);
    free(text);
    return s;
}
