// ctest-labels: unit
/* test_search.c — the search's point set: the exact size of a point equals
 * the size of the model compiled from it (random points, uniform plans, a
 * space with per-channel groups and dense layers); the GP encoding (ordinal
 * log2 in [0, 1], fixed coordinates left out); quant_config round trips and
 * refusals; Latin-hypercube initial points (stratified, under the size limit);
 * the acquisition optimiser (feasible, never a tried point, at least as good
 * as the best of many random feasible points, and a short BO loop on a known
 * function that improves on its initial design). Skips the GP parts (77)
 * without LAPACKE. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "loaders.h"
#include "qj_package.h"
#include "qj_test.h"
#include "search.h"

static void squote(char *s) {
    for (; *s; s++)
        if (*s == '\'') *s = '"';
}

static uint64_t compiled_bytes(const qj_model *src, const qj_search *s, const int *c) {
    qj_plan *p = NULL;
    qj_model *m = NULL;
    uint64_t b = 0;
    QJ_CHECK_OK(qj_search_plan(s, c, &p));
    if (p) QJ_CHECK_OK(qj_compile_model(src, p, 0, &m, NULL));
    if (m) {
        qj_size_info z;
        qj_model_size(m, &z);
        b = z.bytes;
    }
    qj_model_free(m);
    qj_plan_free(p);
    return b;
}

/* a known objective over the encoding: a bowl with its minimum off-centre */
static double bowl(const qj_search *s, const int *c) {
    double x[64], f = 0;
    qj_search_encode(s, c, x);
    for (int k = 0; k < qj_search_ndim(s); k++) f += (x[k] - 0.3 - 0.05 * (k % 3)) * (x[k] - 0.3 - 0.05 * (k % 3));
    return f;
}

int main(void) {
    qj_model *src = NULL;
    QJ_CHECK_OK(qj_load_synthetic("tiny", 3, QJ_DTYPE_F32, &src));
    if (!src) return qj_test_finish();
    const int L = src->cfg.n_layers;
    qj_space *sp = NULL;
    qj_search *s = NULL;
    QJ_CHECK_OK(qj_space_default(L, &sp));
    if (sp) QJ_CHECK_OK(qj_search_setup(src, sp, &s));
    if (!s) return qj_test_finish();
    const int nc = qj_search_nchoice(s);
    QJ_CHECK(nc == 2 * L && qj_search_ndim(s) == 2 * L);
    int c[64], c2[64];
    /* sizes: exact against the compiled model */
    uint64_t rng = 77;
    for (int t = 0; t < 12; t++) {
        for (int k = 0; k < nc; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            c[k] = (int)((rng >> 33) % (uint64_t)qj_search_nvalues(s, k));
        }
        const uint64_t pred = qj_search_bytes(s, c), real = compiled_bytes(src, s, c);
        QJ_CHECK_MSG(pred == real, "point %d: predicted %llu bytes, compiled %llu", t, (unsigned long long)pred,
                     (unsigned long long)real);
    }
    QJ_CHECK_OK(qj_search_uniform(s, 4, 64, c));
    QJ_CHECK(qj_search_bytes(s, c) == compiled_bytes(src, s, c));
    /* the quantization cache: a (tensor, format) seen before is not quantized again, and the
     * compiled model is the same, bit for bit, with or without it (also under a tight budget) */
    for (int budgeted = 0; budgeted < 2; budgeted++) {
        qj_quant_cache *qc = NULL;
        QJ_CHECK_OK(qj_quant_cache_new(budgeted ? qj_search_bytes(s, c) : 0, &qc));
        const int per = L * QJ_LIN_COUNT;
        for (int round = 0; qc && round < 6; round++) {
            for (int k = 0; k < nc; k++) c2[k] = round % 3 == 0 ? c[k] : (k + round) % qj_search_nvalues(s, k);
            qj_plan *p = NULL;
            qj_model *a = NULL, *b = NULL;
            qj_compile_stats st;
            QJ_CHECK_OK(qj_search_plan(s, c2, &p));
            if (p) QJ_CHECK_OK(qj_compile_model_cached(src, p, qc, 0, &a, &st));
            if (p) QJ_CHECK_OK(qj_compile_model(src, p, 0, &b, NULL));
            if (a && b) {
                QJ_CHECK(st.quantized_tensors + st.cached_tensors == per);
                if (round == 3 && !budgeted) QJ_CHECK_MSG(st.cached_tensors == per, "round 3: %d cached", st.cached_tensors);
                if (round == 0) QJ_CHECK(st.cached_tensors == 0);
                int same = 1;
                for (int i = 0; i < L; i++)
                    for (int l = 0; l < QJ_LIN_COUNT; l++) {
                        const qj_tensor *ta = qj_layer_linear(&a->layers[i], (qj_linear)l),
                                        *tb = qj_layer_linear(&b->layers[i], (qj_linear)l);
                        same &= ta->nbytes == tb->nbytes && !memcmp(ta->data, tb->data, ta->nbytes) &&
                                ta->scales_nbytes == tb->scales_nbytes && !memcmp(ta->scales, tb->scales, ta->scales_nbytes);
                    }
                QJ_CHECK_MSG(same, "round %d (budget %d): the cached compile differs", round, budgeted);
                if (budgeted) QJ_CHECK(qj_quant_cache_bytes(qc) <= 2 * qj_search_bytes(s, c));
            }
            qj_model_free(a);
            qj_model_free(b);
            qj_plan_free(p);
        }
        qj_quant_cache_free(qc);
    }
    QJ_CHECK_FAILS(qj_search_uniform(s, 7, 64, c), "does not allow bit width 7 in layer 0");
    /* encoding: 2 -> 0, 8 -> 1, 4 -> log2 position 1/2; group 32 -> 0, 512 -> 1 */
    {
        double x[64];
        QJ_CHECK_OK(qj_search_uniform(s, 4, 128, c));
        qj_search_encode(s, c, x);
        QJ_CHECK(fabs(x[0] - 0.5) < 1e-12 && fabs(x[1] - 0.5) < 1e-12);
        QJ_CHECK_OK(qj_search_uniform(s, 8, 512, c));
        qj_search_encode(s, c, x);
        QJ_CHECK(x[0] == 1.0 && x[1] == 1.0);
        QJ_CHECK_OK(qj_search_uniform(s, 2, 32, c));
        qj_search_encode(s, c, x);
        QJ_CHECK(x[0] == 0.0 && x[1] == 0.0);
    }
    /* quant_config round trip and refusals */
    {
        QJ_CHECK_OK(qj_search_uniform(s, 5, 256, c));
        c[0] = 0;
        cJSON *cfg = qj_search_config(s, c);
        QJ_CHECK(cfg != NULL);
        QJ_CHECK_OK(qj_search_from_config(s, cfg, "sample", c2));
        QJ_CHECK(!memcmp(c, c2, (size_t)nc * sizeof *c));
        cJSON_ReplaceItemInObject(cfg, "groupsize.1.", cJSON_CreateNumber(96));
        QJ_CHECK_FAILS(qj_search_from_config(s, cfg, "sample", c2), "\"groupsize.1.\": 96 is outside the space");
        cJSON_DeleteItemFromObject(cfg, "bitwidth.0.");
        QJ_CHECK_FAILS(qj_search_from_config(s, cfg, "sample", c2), "\"bitwidth.0.\" is missing");
        cJSON_Delete(cfg);
    }
    /* a space with a fixed layer, per-channel groups and a dense width: fewer GP dimensions, exact sizes */
    {
        char json[1024];
        snprintf(json, sizeof json,
                 "{'parameters': [{'name': 'bitwidth', 'name_format': 'bitwidth.{i}.', 'layers': ["
                 "{'range': [0, 1], 'type': 'fixed', 'value': 5}, {'range': [1, %d], 'type': 'choice', 'values': [3, 16, 8]}]},"
                 "{'name': 'groupsize', 'name_format': 'groupsize.{i}.', 'layers': ["
                 "{'range': [0, %d], 'type': 'choice', 'values': [64, 0]}]}]}",
                 L, L);
        squote(json);
        qj_space *fx = NULL;
        qj_search *sf = NULL;
        QJ_CHECK_OK(qj_space_parse_json(json, "fixed.json", L, &fx));
        if (fx) QJ_CHECK_OK(qj_search_setup(src, fx, &sf));
        if (sf) {
            QJ_CHECK(qj_search_ndim(sf) == 2 * L - 1 && qj_search_nvalues(sf, 0) == 1);
            for (int t = 0; t < 6; t++) {
                for (int k = 0; k < nc; k++) c[k] = (t + k) % qj_search_nvalues(sf, k);
                QJ_CHECK(qj_search_bytes(sf, c) == compiled_bytes(src, sf, c));
            }
            double x[64];
            for (int k = 0; k < nc; k++) c[k] = qj_search_nvalues(sf, k) - 1; /* 8-bit, per-channel */
            qj_search_encode(sf, c, x);
            /* group per-channel: past 64 -> 1; bits 8 among 3, 16, 8 on the log2 scale */
            const double e8 = (3.0 - log2(3.0)) / (4.0 - log2(3.0));
            QJ_CHECK_MSG(fabs(x[0] - 1.0) < 1e-12 && fabs(x[1] - e8) < 1e-12, "x %g %g", x[0], x[1]);
        }
        qj_search_free(sf);
        qj_space_free(fx);
    }
    /* Latin hypercube: 12 points, every free coordinate's 6 (or 5) values in whole strata */
    {
        int pts[12 * 64];
        QJ_CHECK(qj_search_initial(s, 12, 5, 0, pts) == 12);
        for (int k = 0; k < nc; k++) {
            int cnt[16] = {0};
            for (int j = 0; j < 12; j++) cnt[pts[j * nc + k]]++;
            const int nv = qj_search_nvalues(s, k);
            for (int v = 0; v < nv; v++) QJ_CHECK_MSG(cnt[v] >= 12 / nv && cnt[v] <= 12 / nv + 1, "coord %d value %d: %d", k, v, cnt[v]);
        }
        int again[12 * 64];
        QJ_CHECK(qj_search_initial(s, 12, 5, 0, again) == 12 && !memcmp(pts, again, sizeof(int) * 12 * (size_t)nc));
        QJ_CHECK_OK(qj_search_uniform(s, 4, 64, c));
        const uint64_t lim = qj_search_bytes(s, c);
        const int n = qj_search_initial(s, 12, 9, lim, pts);
        QJ_CHECK(n >= 8);
        for (int j = 0; j < n; j++) QJ_CHECK(qj_search_bytes(s, pts + (size_t)j * nc) <= lim);
    }
    if (!qj_gp_available()) {
        printf("SKIP: the acquisition part (this qjit was built without LAPACKE)\n");
        qj_search_free(s);
        qj_space_free(sp);
        qj_model_free(src);
        qj_test_finish();
        return 77;
    }
    /* the acquisition optimiser on a known function, under the int4-g64 size */
    {
        enum { N0 = 10, NB = 15 };
        const int d = qj_search_ndim(s);
        int pts[(N0 + NB) * 64];
        double X[(N0 + NB) * 64], y[N0 + NB];
        QJ_CHECK_OK(qj_search_uniform(s, 4, 64, c));
        const uint64_t lim = qj_search_bytes(s, c);
        int n = qj_search_initial(s, N0, 11, lim, pts);
        double best0 = INFINITY;
        for (int j = 0; j < n; j++) {
            y[j] = bowl(s, pts + (size_t)j * nc);
            qj_search_encode(s, pts + (size_t)j * nc, X + (size_t)j * d);
            best0 = fmin(best0, y[j]);
        }
        double best = best0;
        for (int it = 0; it < NB; it++) {
            qj_gp *g = NULL;
            qj_gp_opts o = qj_gp_default_opts();
            o.seed = (uint64_t)it;
            QJ_CHECK_OK(qj_gp_fit(X, y, NULL, n, d, &o, &g));
            if (!g) break;
            qj_acq_params ap = qj_acq_default_params();
            ap.max_bytes = lim;
            ap.best = best;
            ap.seed = (uint64_t)it + 1;
            ap.exclude = pts;
            ap.n_exclude = n;
            double a = 0;
            int *nx = pts + (size_t)n * nc;
            QJ_CHECK_OK(qj_search_propose(s, g, &ap, nx, &a));
            QJ_CHECK(qj_search_bytes(s, nx) <= lim);
            for (int j = 0; j < n; j++) QJ_CHECK(memcmp(pts + (size_t)j * nc, nx, (size_t)nc * sizeof *nx) != 0);
            if (it == 0) { /* at least as good as the best of 2000 random feasible untried points */
                uint64_t r2 = 5;
                double xr[64], rbest = 0;
                for (int t = 0; t < 2000; t++) {
                    for (int k = 0; k < nc; k++) {
                        r2 = r2 * 6364136223846793005ull + 1442695040888963407ull;
                        c[k] = (int)((r2 >> 33) % (uint64_t)qj_search_nvalues(s, k));
                    }
                    if (qj_search_bytes(s, c) > lim) continue;
                    qj_search_encode(s, c, xr);
                    double mu, v;
                    qj_gp_predict(g, xr, &mu, &v);
                    rbest = fmax(rbest, qj_expected_improvement(mu, sqrt(v), best));
                }
                QJ_CHECK_MSG(a >= rbest * (1 - 1e-9), "optimised EI %.6g below random %.6g", a, rbest);
                /* a constraint predicted violated everywhere takes the acquisition to ~0 */
                qj_acq_params cp = ap;
                cp.constraint = g;
                cp.limit = -1e6;
                double ca = 1;
                QJ_CHECK_OK(qj_search_propose(s, g, &cp, c, &ca));
                QJ_CHECK_MSG(ca < 1e-12, "constrained acquisition %.3g", ca);
            }
            if (it == 1) { /* local search from next to given starts: still feasible and untried */
                qj_acq_params sp2 = ap;
                sp2.starts = pts;
                sp2.n_starts = 3;
                sp2.candidates = 4;
                double a2 = 0;
                QJ_CHECK_OK(qj_search_propose(s, g, &sp2, c, &a2));
                QJ_CHECK(qj_search_bytes(s, c) <= lim && a2 > 0);
                for (int j = 0; j < n; j++) QJ_CHECK(memcmp(pts + (size_t)j * nc, c, (size_t)nc * sizeof *c) != 0);
            }
            y[n] = bowl(s, nx);
            qj_search_encode(s, nx, X + (size_t)n * d);
            best = fmin(best, y[n]);
            n++;
            qj_gp_free(g);
        }
        printf("bowl: best of %d initial points %.4f, after %d BO steps %.4f\n", N0, best0, NB, best);
        QJ_CHECK(best < best0);
        /* random search: feasible, never a given point, reproducible */
        for (int t = 0; t < 20; t++) {
            QJ_CHECK_OK(qj_search_random(s, (uint64_t)t, lim, pts, n, c));
            QJ_CHECK_OK(qj_search_random(s, (uint64_t)t, lim, pts, n, c2));
            QJ_CHECK(qj_search_bytes(s, c) <= lim && !memcmp(c, c2, (size_t)nc * sizeof *c));
            for (int j = 0; j < n; j++) QJ_CHECK(memcmp(pts + (size_t)j * nc, c, (size_t)nc * sizeof *c) != 0);
        }
        QJ_CHECK_OK(qj_search_uniform(s, 2, 512, c));
        QJ_CHECK_FAILS(qj_search_random(s, 1, qj_search_bytes(s, c) - 1, NULL, 0, c2), "no untried point fits");
    }
    qj_search_free(s);
    qj_space_free(sp);
    qj_model_free(src);
    return qj_test_finish();
}
