/* search.c — spaces as point sets, exact sizes, initial points and the
 * acquisition's optimiser for the Bayesian-optimisation search (see search.h). */
#include "search.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "qj_package.h"
#include "qj_progress.h"

struct qj_search {
    int layers, nc, ndim;
    int *nv;       /* (nc) values per coordinate */
    int *val;      /* (nc * QJ_SPACE_MAX_VALUES) */
    double *enc;   /* (nc * QJ_SPACE_MAX_VALUES) the GP coordinate of each value */
    int *dim;      /* (nc) GP dimension of a coordinate, -1 when fixed */
    uint64_t base; /* bytes of everything but the layers' linears */
    uint64_t *tab; /* (layers * MAXV * MAXV) bytes of layer i's linears at (bit choice, group choice) */
    double *err2;  /* NULL, or (layers * MAXV * MAXV) sum over layer i's linears of the squared relative
                    * output error at (bit choice, group choice) (qj_search_measure_error) */
    int err_terms; /* linears per point the error averages over */
    double max_error; /* 0, or points of larger error are infeasible */
};

#define MAXV QJ_SPACE_MAX_VALUES

static uint64_t sm64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static int rnd(uint64_t *s, int n) { return (int)(sm64(s) % (uint64_t)n); }

void qj_search_free(qj_search *s) {
    if (!s) return;
    free(s->nv);
    free(s->val);
    free(s->enc);
    free(s->dim);
    free(s->tab);
    free(s->err2);
    free(s);
}

int qj_search_nchoice(const qj_search *s) { return s->nc; }
int qj_search_ndim(const qj_search *s) { return s->ndim; }
int qj_search_nvalues(const qj_search *s, int coord) { return s->nv[coord]; }
int qj_search_value(const qj_search *s, int coord, int c) { return s->val[coord * MAXV + c]; }

cJSON *qj_search_config(const qj_search *s, const int *choice) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    for (int i = 0; i < s->layers; i++) {
        char kb[32], kg[32];
        snprintf(kb, sizeof kb, "bitwidth.%d.", i);
        snprintf(kg, sizeof kg, "groupsize.%d.", i);
        if (!cJSON_AddNumberToObject(o, kb, qj_search_value(s, 2 * i, choice[2 * i])) ||
            !cJSON_AddNumberToObject(o, kg, qj_search_value(s, 2 * i + 1, choice[2 * i + 1]))) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

qj_status qj_search_plan(const qj_search *s, const int *choice, qj_plan **out) {
    *out = NULL;
    cJSON *cfg = qj_search_config(s, choice);
    if (!cfg) return qj_fail(QJ_ERR_NOMEM, "search: out of memory");
    qj_status st = qj_plan_from_cjson(cfg, "search point", s->layers, out);
    cJSON_Delete(cfg);
    return st;
}

static uint64_t linear_bytes(const qj_tensor *t, const qj_tensor_plan *tp) {
    const int64_t N = t->shape[0], K = t->shape[1];
    if (tp->dtype == QJ_DTYPE_Q) return (uint64_t)qj_quant_bytes(N, K, &tp->q);
    return (uint64_t)N * (uint64_t)K * qj_dtype_size(qj_tensor_plan_dtype(tp, t->dtype));
}

qj_status qj_search_setup(const qj_model *src, const qj_space *space, qj_search **out) {
    *out = NULL;
    const int L = src->cfg.n_layers;
    if (space->n_layers != L)
        return qj_fail(QJ_ERR_INVALID, "%s: a space of %d layers for a model of %d", space->name, space->n_layers, L);
    qj_search *s = calloc(1, sizeof *s);
    if (!s) return qj_fail(QJ_ERR_NOMEM, "search: out of memory");
    s->layers = L;
    s->nc = 2 * L;
    s->nv = calloc((size_t)s->nc, sizeof *s->nv);
    s->val = calloc((size_t)s->nc * MAXV, sizeof *s->val);
    s->enc = calloc((size_t)s->nc * MAXV, sizeof *s->enc);
    s->dim = calloc((size_t)s->nc, sizeof *s->dim);
    s->tab = calloc((size_t)L * MAXV * MAXV, sizeof *s->tab);
    if (!s->nv || !s->val || !s->enc || !s->dim || !s->tab) {
        qj_search_free(s);
        return qj_fail(QJ_ERR_NOMEM, "search: out of memory");
    }
    for (int i = 0; i < L; i++)
        for (int p = 0; p < 2; p++) {
            const qj_space_choice *c = &space->params[p].layers[i];
            const int k = 2 * i + p;
            s->nv[k] = c->fixed ? 1 : c->n_values;
            int maxg = 32;
            for (int j = 0; j < s->nv[k]; j++) {
                s->val[k * MAXV + j] = c->values[j];
                if (c->values[j] > maxg) maxg = c->values[j];
            }
            /* ordinal log2 position; per-channel (group 0) past the largest group */
            double lo = INFINITY, hi = -INFINITY, lg[MAXV];
            for (int j = 0; j < s->nv[k]; j++) {
                const int v = c->values[j];
                lg[j] = log2((double)(p == 1 && v == 0 ? 2 * maxg : v));
                lo = fmin(lo, lg[j]);
                hi = fmax(hi, lg[j]);
            }
            for (int j = 0; j < s->nv[k]; j++) s->enc[k * MAXV + j] = hi > lo ? (lg[j] - lo) / (hi - lo) : 0.0;
            s->dim[k] = s->nv[k] > 1 ? s->ndim++ : -1;
        }
    /* the linears' bytes per layer and setting, read from the plans the points become */
    int *ch = calloc((size_t)s->nc, sizeof *ch);
    if (!ch) {
        qj_search_free(s);
        return qj_fail(QJ_ERR_NOMEM, "search: out of memory");
    }
    qj_status st = QJ_OK;
    for (int bi = 0; bi < MAXV && !st; bi++)
        for (int gi = 0; gi < MAXV && !st; gi++) {
            int any = 0;
            for (int i = 0; i < L; i++) {
                ch[2 * i] = bi < s->nv[2 * i] ? bi : 0;
                ch[2 * i + 1] = gi < s->nv[2 * i + 1] ? gi : 0;
                any |= bi < s->nv[2 * i] && gi < s->nv[2 * i + 1];
            }
            if (!any) continue;
            qj_plan *plan = NULL;
            if ((st = qj_search_plan(s, ch, &plan))) break;
            for (int i = 0; i < L; i++) {
                if (bi >= s->nv[2 * i] || gi >= s->nv[2 * i + 1]) continue;
                uint64_t b = 0;
                for (int l = 0; l < QJ_LIN_COUNT; l++)
                    b += linear_bytes(qj_layer_linear((qj_layer *)&src->layers[i], (qj_linear)l),
                                      qj_plan_linear(plan, i, (qj_linear)l));
                s->tab[((size_t)i * MAXV + bi) * MAXV + gi] = b;
            }
            qj_plan_free(plan);
        }
    free(ch);
    if (st) {
        qj_search_free(s);
        return st;
    }
    qj_size_info z;
    qj_model_size(src, &z);
    uint64_t lin = 0;
    for (int i = 0; i < L; i++)
        for (int l = 0; l < QJ_LIN_COUNT; l++) lin += qj_tensor_bytes(qj_layer_linear((qj_layer *)&src->layers[i], (qj_linear)l));
    s->base = z.bytes - lin;
    *out = s;
    return QJ_OK;
}

void qj_search_encode(const qj_search *s, const int *choice, double *x) {
    for (int k = 0; k < s->nc; k++)
        if (s->dim[k] >= 0) x[s->dim[k]] = s->enc[k * MAXV + choice[k]];
}

uint64_t qj_search_bytes(const qj_search *s, const int *choice) {
    uint64_t b = s->base;
    for (int i = 0; i < s->layers; i++) b += s->tab[((size_t)i * MAXV + choice[2 * i]) * MAXV + choice[2 * i + 1]];
    return b;
}

/* Block i's linears under plan: *sum += each one's squared relative output error, *n += their
 * number (a linear the plan keeps dense adds 0 to the sum and 1 to n). */
static qj_status block_err2(const qj_model *src, const qj_plan *plan, int i, int64_t max_rows, uint64_t seed, double *sum,
                            int *n) {
    for (int l = 0; l < QJ_LIN_COUNT; l++) {
        const qj_tensor *w = qj_layer_linear((qj_layer *)&src->layers[i], (qj_linear)l);
        const qj_tensor_plan *tp = qj_plan_linear(plan, i, (qj_linear)l);
        (*n)++;
        if (qj_tensor_plan_dtype(tp, w->dtype) != QJ_DTYPE_Q) continue;
        double a, b;
        qj_status st = qj_quant_output_error(w, &tp->q, max_rows, seed, &a, &b);
        if (st) return st;
        *sum += b > 0 ? a / b : 0.0;
    }
    return QJ_OK;
}

qj_status qj_plan_output_error(const qj_model *src, const qj_plan *plan, int64_t max_rows, uint64_t seed, double *err) {
    double sum = 0;
    int n = 0;
    *err = -1;
    if (plan->n_layers != src->cfg.n_layers)
        return qj_fail(QJ_ERR_INVALID, "plan has %d layers, model has %d", plan->n_layers, src->cfg.n_layers);
    for (int i = 0; i < src->cfg.n_layers; i++) {
        qj_status st = block_err2(src, plan, i, max_rows, seed, &sum, &n);
        if (st) return st;
    }
    *err = n ? sqrt(sum / n) : 0.0;
    return QJ_OK;
}

qj_status qj_search_measure_error(qj_search *s, const qj_model *src, int64_t max_rows, uint64_t seed, int progress) {
    const int L = s->layers;
    double *e2 = calloc((size_t)L * MAXV * MAXV, sizeof *e2);
    int *ch = calloc((size_t)s->nc, sizeof *ch);
    if (!e2 || !ch) {
        free(e2);
        free(ch);
        return qj_fail(QJ_ERR_NOMEM, "search: out of memory");
    }
    size_t total = 0;
    for (int i = 0; i < L; i++) total += (size_t)s->nv[2 * i] * (size_t)s->nv[2 * i + 1];
    qj_progress prog;
    qj_progress_begin(&prog, "layer-output error", "settings", total);
    if (!progress) prog.enabled = 0;
    qj_status st = QJ_OK;
    int terms = 0;
    for (int i = 0; i < L && !st; i++)
        for (int bi = 0; bi < s->nv[2 * i] && !st; bi++)
            for (int gi = 0; gi < s->nv[2 * i + 1] && !st; gi++) {
                for (int k = 0; k < L; k++) ch[2 * k] = ch[2 * k + 1] = 0;
                ch[2 * i] = bi;
                ch[2 * i + 1] = gi;
                qj_plan *plan = NULL;
                if ((st = qj_search_plan(s, ch, &plan))) break;
                double sum = 0;
                int n = 0;
                st = block_err2(src, plan, i, max_rows, seed, &sum, &n);
                qj_plan_free(plan);
                e2[((size_t)i * MAXV + bi) * MAXV + gi] = sum;
                if (bi == 0 && gi == 0) terms += n;
                qj_progress_add(&prog, 1);
            }
    qj_progress_end(&prog);
    free(ch);
    if (st) {
        free(e2);
        return st;
    }
    free(s->err2);
    s->err2 = e2;
    s->err_terms = terms;
    return QJ_OK;
}

double qj_search_error(const qj_search *s, const int *choice) {
    if (!s->err2 || s->err_terms <= 0) return -1.0;
    double sum = 0;
    for (int i = 0; i < s->layers; i++) sum += s->err2[((size_t)i * MAXV + choice[2 * i]) * MAXV + choice[2 * i + 1]];
    return sqrt(sum / s->err_terms);
}

void qj_search_set_max_error(qj_search *s, double max_error) { s->max_error = max_error > 0 ? max_error : 0; }

int qj_search_feasible(const qj_search *s, const int *choice, uint64_t max_bytes) {
    if (max_bytes && qj_search_bytes(s, choice) > max_bytes) return 0;
    if (s->max_error > 0 && s->err2 && qj_search_error(s, choice) > s->max_error) return 0;
    return 1;
}

qj_status qj_search_from_config(const qj_search *s, const cJSON *cfg, const char *where, int *choice) {
    if (!cJSON_IsObject(cfg)) return qj_fail(QJ_ERR_FORMAT, "%s: expected an object of \"bitwidth.i.\" / \"groupsize.i.\"", where);
    for (int k = 0; k < s->nc; k++) {
        char key[32];
        snprintf(key, sizeof key, "%s.%d.", k % 2 ? "groupsize" : "bitwidth", k / 2);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
        if (!cJSON_IsNumber(v))
            return qj_fail(QJ_ERR_FORMAT, "%s: \"%s\" is missing or not a number", where, key);
        int c = -1;
        for (int j = 0; j < s->nv[k]; j++)
            if ((double)s->val[k * MAXV + j] == v->valuedouble) c = j;
        if (c < 0) return qj_fail(QJ_ERR_INVALID, "%s: \"%s\": %g is outside the space", where, key, v->valuedouble);
        choice[k] = c;
    }
    return QJ_OK;
}

qj_status qj_search_uniform(const qj_search *s, int bits, int group, int *choice) {
    for (int k = 0; k < s->nc; k++) {
        const int want = k % 2 ? group : bits;
        choice[k] = -1;
        for (int j = 0; j < s->nv[k]; j++)
            if (s->val[k * MAXV + j] == want) choice[k] = j;
        if (choice[k] < 0)
            return qj_fail(QJ_ERR_INVALID, "the space does not allow %s %d in layer %d", k % 2 ? "group size" : "bit width",
                           want, k / 2);
    }
    return QJ_OK;
}

static void random_point(const qj_search *s, uint64_t *rng, int *c) {
    for (int k = 0; k < s->nc; k++) c[k] = s->nv[k] > 1 ? rnd(rng, s->nv[k]) : 0;
}

/* Under an error limit a random point is seldom within it (one 2-bit layer of 32 can be over
 * it), so one over it is repaired: a random layer at a time moves to its next more accurate
 * setting (the smallest step down in error), until the point is within the limit; points land
 * near the limit, where the fast ones are. 1 when the point ends feasible. */
static int repair_error(const qj_search *s, uint64_t *rng, int *c, uint64_t max_bytes) {
    if (!(s->max_error > 0) || !s->err2) return qj_search_feasible(s, c, max_bytes);
    for (int it = 0; it < 64 * s->layers && qj_search_error(s, c) > s->max_error; it++) {
        const int i = rnd(rng, s->layers);
        const double *t = s->err2 + (size_t)i * MAXV * MAXV, cur = t[c[2 * i] * MAXV + c[2 * i + 1]];
        int bb = -1, bg = -1;
        for (int b = 0; b < s->nv[2 * i]; b++)
            for (int g = 0; g < s->nv[2 * i + 1]; g++)
                if (t[b * MAXV + g] < cur && (bb < 0 || t[b * MAXV + g] > t[bb * MAXV + bg])) bb = b, bg = g;
        if (bb >= 0) c[2 * i] = bb, c[2 * i + 1] = bg;
    }
    return qj_search_feasible(s, c, max_bytes);
}

int qj_search_initial(const qj_search *s, int n, uint64_t seed, uint64_t max_bytes, int *choices) {
    if (n <= 0) return 0;
    uint64_t rng = seed * 0xD1B54A32D192ED03ull + 99;
    int *perm = malloc((size_t)n * sizeof *perm);
    if (!perm) return 0;
    for (int j = 0; j < n; j++)
        for (int k = 0; k < s->nc; k++) choices[j * s->nc + k] = 0;
    /* Latin hypercube: per coordinate, point j takes stratum perm[j] of n */
    for (int k = 0; k < s->nc; k++) {
        if (s->nv[k] < 2) continue;
        for (int j = 0; j < n; j++) perm[j] = j;
        for (int j = n - 1; j > 0; j--) {
            const int r = rnd(&rng, j + 1), t = perm[j];
            perm[j] = perm[r];
            perm[r] = t;
        }
        /* stratum r of n gets value floor(r nv / n): every value floor(n/nv) or ceil(n/nv) times;
         * with fewer points than values a stratum spans several, one drawn at random */
        for (int j = 0; j < n; j++) {
            const double u = n < s->nv[k] ? (double)(sm64(&rng) >> 11) * (1.0 / 9007199254740992.0) : 0.0;
            const int v = (int)((perm[j] + u) * s->nv[k] / n);
            choices[j * s->nc + k] = v < s->nv[k] ? v : s->nv[k] - 1;
        }
    }
    free(perm);
    /* over the size limit: redrawn uniformly (up to 1000 times), else dropped */
    int kept = 0, *lhs = malloc((size_t)s->nc * sizeof *lhs);
    if (!lhs) return 0;
    for (int j = 0; j < n; j++) {
        int *c = choices + (size_t)j * s->nc, ok = qj_search_feasible(s, c, max_bytes);
        memcpy(lhs, c, (size_t)s->nc * sizeof *c);
        for (int t = 0; !ok && t < 1000; t++) {
            random_point(s, &rng, c);
            ok = qj_search_feasible(s, c, max_bytes);
        }
        if (!ok) { /* under an error limit: the hypercube point itself, repaired */
            memcpy(c, lhs, (size_t)s->nc * sizeof *c);
            ok = repair_error(s, &rng, c, max_bytes);
        }
        if (!ok) continue;
        if (kept != j) memmove(choices + (size_t)kept * s->nc, c, (size_t)s->nc * sizeof *c);
        kept++;
    }
    free(lhs);
    return kept;
}

qj_acq_params qj_acq_default_params(void) {
    qj_acq_params p;
    memset(&p, 0, sizeof p);
    p.candidates = 256;
    p.local_steps = 64;
    p.seed = 1;
    return p;
}

static int excluded(const qj_search *s, const qj_acq_params *p, const int *c) {
    for (int j = 0; j < p->n_exclude; j++)
        if (!memcmp(p->exclude + (size_t)j * s->nc, c, (size_t)s->nc * sizeof *c)) return 1;
    return 0;
}

/* the acquisition at a point; -1 for a point not allowed (over the size, or already tried) */
static double acq_at(const qj_search *s, const qj_gp *g, const qj_acq_params *p, const int *c, double *x) {
    if (!qj_search_feasible(s, c, p->max_bytes) || excluded(s, p, c)) return -1.0;
    qj_search_encode(s, c, x);
    double mu, var;
    qj_gp_predict(g, x, &mu, &var);
    if (p->log_bytes_mean) mu += log((double)(qj_search_bytes(s, c) - p->bytes_offset));
    double a = qj_expected_improvement(mu, sqrt(var), p->best);
    if (p->constraint) {
        double cm, cv;
        qj_gp_predict(p->constraint, x, &cm, &cv);
        a *= qj_prob_below(cm, sqrt(cv), p->limit);
    }
    return a;
}

qj_status qj_search_propose(const qj_search *s, const qj_gp *objective, const qj_acq_params *p, int *choice,
                            double *acq) {
    const int nc = s->nc, nstart = p->candidates > 0 ? p->candidates : 256, keep = 8;
    uint64_t rng = p->seed * 0x9E3779B97F4A7C15ull + 7;
    const int ncand = nstart + (p->n_starts > 0 ? p->n_starts : 0);
    int *cand = malloc((size_t)ncand * nc * sizeof *cand), *cur = malloc((size_t)nc * sizeof *cur);
    int *nb = malloc((size_t)nc * sizeof *nb);
    double *score = malloc((size_t)ncand * sizeof *score), *x = malloc((size_t)(s->ndim + 1) * sizeof *x);
    if (!cand || !cur || !nb || !score || !x) {
        free(cand); free(cur); free(nb); free(score); free(x);
        return qj_fail(QJ_ERR_NOMEM, "search: out of memory");
    }
    /* random starts (feasible ones: each drawn up to 64 times) */
    int n = 0;
    for (int j = 0; j < nstart; j++) {
        int *c = cand + (size_t)n * nc;
        double a = -1;
        for (int t = 0; t < 64 && a < 0; t++) {
            random_point(s, &rng, c);
            a = acq_at(s, objective, p, c, x);
        }
        if (a < 0 && repair_error(s, &rng, c, p->max_bytes)) a = acq_at(s, objective, p, c, x);
        if (a >= 0) score[n++] = a;
    }
    /* the best neighbour of each given start (the starts themselves are tried already) */
    for (int j = 0; j < p->n_starts; j++) {
        int *c = cand + (size_t)n * nc;
        memcpy(nb, p->starts + (size_t)j * nc, (size_t)nc * sizeof *nb);
        double ba = -1;
        for (int k = 0; k < nc; k++) {
            if (s->nv[k] < 2) continue;
            const int keepv = nb[k];
            for (int v = 0; v < s->nv[k]; v++) {
                if (v == keepv) continue;
                nb[k] = v;
                const double na = acq_at(s, objective, p, nb, x);
                if (na > ba) ba = na, memcpy(c, nb, (size_t)nc * sizeof *c);
            }
            nb[k] = keepv;
        }
        if (ba >= 0) score[n++] = ba;
    }
    double best = -1;
    for (int r = 0; r < keep && r < n; r++) {
        /* the r-th best start, then greedy one-step moves */
        int bi = -1;
        for (int j = 0; j < n; j++)
            if (score[j] >= 0 && (bi < 0 || score[j] > score[bi])) bi = j;
        if (bi < 0) break;
        memcpy(cur, cand + (size_t)bi * nc, (size_t)nc * sizeof *cur);
        double a = score[bi];
        score[bi] = -2; /* taken */
        for (int step = 0; step < (p->local_steps > 0 ? p->local_steps : 64); step++) {
            double ba = a;
            int bk = -1, bv = 0;
            memcpy(nb, cur, (size_t)nc * sizeof *nb);
            for (int k = 0; k < nc; k++) {
                if (s->nv[k] < 2) continue;
                for (int v = 0; v < s->nv[k]; v++) {
                    if (v == cur[k]) continue;
                    nb[k] = v;
                    const double na = acq_at(s, objective, p, nb, x);
                    if (na > ba) ba = na, bk = k, bv = v;
                }
                nb[k] = cur[k];
            }
            if (bk < 0) break;
            cur[bk] = bv;
            a = ba;
        }
        if (a > best) {
            best = a;
            memcpy(choice, cur, (size_t)nc * sizeof *choice);
        }
    }
    free(cand); free(cur); free(nb); free(score); free(x);
    if (best < 0)
        return qj_fail(QJ_ERR_INVALID, "search: no untried point meets the size%s limit",
                       s->max_error > 0 ? " and error" : "");
    *acq = best;
    return QJ_OK;
}

qj_status qj_search_random(const qj_search *s, uint64_t seed, uint64_t max_bytes, const int *exclude, int n_exclude,
                           int *choice) {
    uint64_t rng = seed * 0xA0761D6478BD642Full + 3;
    qj_acq_params p = qj_acq_default_params();
    p.exclude = exclude;
    p.n_exclude = n_exclude;
    for (int t = 0; t < 100000; t++) {
        random_point(s, &rng, choice);
        if (qj_search_feasible(s, choice, max_bytes) && !excluded(s, &p, choice)) return QJ_OK;
    }
    for (int t = 0; t < 1000; t++) { /* none by drawing: drawn points repaired to the error limit */
        random_point(s, &rng, choice);
        if (repair_error(s, &rng, choice, max_bytes) && !excluded(s, &p, choice)) return QJ_OK;
    }
    return qj_fail(QJ_ERR_INVALID, "search: no untried point meets the size%s limit", s->max_error > 0 ? " and error" : "");
}
