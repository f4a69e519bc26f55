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
#include "quant.h"
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
    /* the data-free layer-output error */
    {
        enum { N = 128, K = 512 };
        float *wd = malloc(sizeof(float) * N * K), *dq = malloc(sizeof(float) * K);
        QJ_CHECK(wd && dq);
        int64_t shape[2] = {N, K};
        qj_tensor w;
        memset(&w, 0, sizeof w);
        qj_tensor_set(&w, "w", QJ_DTYPE_F32, 2, shape, wd);
        /* on the grid: integers 0..255 with 0 and 255 in every group of 32 quantize exactly at 8 bits */
        for (int i = 0; i < N * K; i++) wd[i] = i % 32 == 0 ? 0.0f : i % 32 == 1 ? 255.0f : (float)((i * 37) % 256);
        qj_qformat f8 = {8, 32, 0, QJ_DTYPE_F16};
        double e2 = -1, r2 = -1;
        QJ_CHECK_OK(qj_quant_output_error(&w, &f8, 0, 1, &e2, &r2));
        QJ_CHECK_MSG(e2 == 0.0 && r2 > 0, "exact weights: err2 %g ref2 %g", e2, r2);
        /* Gaussian weights: E (w.x - q.x)^2 / E (w.x)^2 over N(0,1) inputs is the squared
         * Frobenius ratio ||w - q||^2 / ||w||^2; eight inputs x 128 rows land near it */
        uint64_t gr = 12345;
        for (int i = 0; i < N * K; i += 2) {
            double u[2];
            for (int j = 0; j < 2; j++) {
                gr = gr * 6364136223846793005ull + 1442695040888963407ull;
                u[j] = ((double)(gr >> 11) + 0.5) / 9007199254740992.0;
            }
            wd[i] = (float)(sqrt(-2 * log(u[0])) * cos(6.283185307179586 * u[1]));
            wd[i + 1] = (float)(sqrt(-2 * log(u[0])) * sin(6.283185307179586 * u[1]));
        }
        double prev = INFINITY;
        const int widths[] = {2, 3, 4, 6, 8};
        for (int b = 0; b < 5; b++) {
            qj_qformat f = {widths[b], 128, 0, QJ_DTYPE_F16};
            qj_qbuf qb;
            QJ_CHECK_OK(qj_quantize(&w, &f, &qb));
            qj_tensor qt;
            memset(&qt, 0, sizeof qt);
            qj_tensor_set_quant(&qt, "w", N, K, &f, &qb);
            double fe = 0, fr = 0;
            for (int n = 0; n < N; n++) {
                qj_tensor_row_f32(&qt, n, dq);
                for (int k = 0; k < K; k++) {
                    const double dd = (double)wd[(size_t)n * K + k] - dq[k];
                    fe += dd * dd;
                    fr += (double)wd[(size_t)n * K + k] * wd[(size_t)n * K + k];
                }
            }
            qj_qbuf_free(&qb);
            QJ_CHECK_OK(qj_quant_output_error(&w, &f, 0, 1, &e2, &r2));
            const double rel = e2 / r2, frob = fe / fr;
            QJ_CHECK_MSG(rel > 0.75 * frob && rel < 1.33 * frob, "int%d: output error^2 %g, Frobenius ratio %g", widths[b], rel,
                         frob);
            QJ_CHECK_MSG(rel < prev, "int%d: error %g not below the narrower width's %g", widths[b], rel, prev);
            prev = rel;
            double s2, sr2; /* 32 of the 128 rows */
            QJ_CHECK_OK(qj_quant_output_error(&w, &f, 32, 1, &s2, &sr2));
            QJ_CHECK_MSG(s2 / sr2 > 0.6 * rel && s2 / sr2 < 1.67 * rel, "int%d: sampled %g, all rows %g", widths[b], s2 / sr2, rel);
            double a2, ar2; /* deterministic */
            QJ_CHECK_OK(qj_quant_output_error(&w, &f, 32, 1, &a2, &ar2));
            QJ_CHECK(a2 == s2 && ar2 == sr2);
        }
        qj_qformat bad = {9, 128, 0, QJ_DTYPE_F16};
        QJ_CHECK_FAILS(qj_quant_output_error(&w, &bad, 0, 1, &e2, &r2), "bits 9");
        free(wd);
        free(dq);
        /* a point's error: the root mean square over the blocks' linears, as measured one by one */
        QJ_CHECK(qj_search_error(s, c) == -1.0);
        QJ_CHECK_OK(qj_search_measure_error(s, src, 0, 1, 0));
        QJ_CHECK_OK(qj_search_uniform(s, 4, 64, c));
        qj_plan *p = NULL;
        QJ_CHECK_OK(qj_search_plan(s, c, &p));
        double sum = 0;
        int terms = 0;
        for (int i = 0; p && i < L; i++)
            for (int l = 0; l < QJ_LIN_COUNT; l++) {
                QJ_CHECK_OK(qj_quant_output_error(qj_layer_linear(&src->layers[i], (qj_linear)l),
                                                  &qj_plan_linear(p, i, (qj_linear)l)->q, 0, 1, &e2, &r2));
                sum += e2 / r2;
                terms++;
            }
        double perr = -1;
        if (p) QJ_CHECK_OK(qj_plan_output_error(src, p, 0, 1, &perr));
        qj_plan_free(p);
        const double want = sqrt(sum / terms), got = qj_search_error(s, c);
        QJ_CHECK_MSG(fabs(got - want) <= 1e-12 * want, "point error %.15g, measured %.15g", got, want);
        QJ_CHECK_MSG(fabs(perr - want) <= 1e-12 * want, "the plan's error %.15g, measured %.15g", perr, want);
        /* under an error limit: initial and random points stay within it */
        const double elim = got;
        qj_search_set_max_error(s, elim);
        int pts[12 * 64];
        /* hypercube points over the limit are repaired, not dropped: all 12 come back, distinct */
        const int n = qj_search_initial(s, 12, 3, 0, pts);
        QJ_CHECK_MSG(n == 12, "%d initial points under the error limit", n);
        for (int j = 0; j < n; j++) {
            QJ_CHECK(qj_search_error(s, pts + (size_t)j * nc) <= elim);
            for (int i = 0; i < j; i++) QJ_CHECK(memcmp(pts + (size_t)i * nc, pts + (size_t)j * nc, (size_t)nc * sizeof *pts));
        }
        for (int t = 0; t < 20; t++) {
            QJ_CHECK_OK(qj_search_random(s, (uint64_t)t, 0, NULL, 0, c2));
            QJ_CHECK(qj_search_error(s, c2) <= elim && qj_search_feasible(s, c2, 0));
        }
        QJ_CHECK_OK(qj_search_uniform(s, 8, 32, c));
        qj_search_set_max_error(s, 0.5 * qj_search_error(s, c)); /* below the most accurate point */
        QJ_CHECK_FAILS(qj_search_random(s, 1, 0, NULL, 0, c2), "meets the size and error limit");
        qj_search_set_max_error(s, 0);
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
        QJ_CHECK_FAILS(qj_search_random(s, 1, qj_search_bytes(s, c) - 1, NULL, 0, c2), "no untried point meets the size limit");
    }
    /* the acquisition under an error limit proposes only points within it */
    {
        const int d = qj_search_ndim(s);
        QJ_CHECK_OK(qj_search_uniform(s, 4, 128, c));
        const double elim = qj_search_error(s, c);
        qj_search_set_max_error(s, elim);
        int pts[8 * 64];
        double X[8 * 64], y[8];
        const int n = qj_search_initial(s, 8, 21, 0, pts);
        for (int j = 0; j < n; j++) {
            y[j] = bowl(s, pts + (size_t)j * nc);
            qj_search_encode(s, pts + (size_t)j * nc, X + (size_t)j * d);
        }
        qj_gp *g = NULL;
        qj_gp_opts o = qj_gp_default_opts();
        if (n > 0) QJ_CHECK_OK(qj_gp_fit(X, y, NULL, n, d, &o, &g));
        for (int it = 0; g && it < 5; it++) {
            qj_acq_params ap = qj_acq_default_params();
            ap.best = y[0];
            ap.seed = (uint64_t)it + 3;
            double a = 0;
            QJ_CHECK_OK(qj_search_propose(s, g, &ap, c, &a));
            QJ_CHECK_MSG(qj_search_error(s, c) <= elim, "proposed error %g over the limit %g", qj_search_error(s, c), elim);
        }
        qj_gp_free(g);
        /* the bytes as a known part of the mean: with a flat residual (every point the same
         * bandwidth) the proposal is a point of fewest bytes within the limit, no worse than the
         * fewest of 500 random points within it */
        for (int j = 0; j < n; j++) y[j] = 0.01 * (double)(j % 3);
        g = NULL;
        if (n > 0) QJ_CHECK_OK(qj_gp_fit(X, y, NULL, n, d, &o, &g));
        if (g) {
            qj_acq_params ap = qj_acq_default_params();
            ap.log_bytes_mean = 1;
            ap.best = INFINITY;
            for (int j = 0; j < n; j++) ap.best = fmin(ap.best, y[j] + log((double)qj_search_bytes(s, pts + (size_t)j * nc)));
            double a = 0;
            QJ_CHECK_OK(qj_search_propose(s, g, &ap, c, &a));
            uint64_t fewest = UINT64_MAX;
            for (int t = 0; t < 500; t++) {
                QJ_CHECK_OK(qj_search_random(s, (uint64_t)t + 100, 0, NULL, 0, c2));
                if (qj_search_bytes(s, c2) < fewest) fewest = qj_search_bytes(s, c2);
            }
            QJ_CHECK_MSG(qj_search_bytes(s, c) <= fewest && qj_search_error(s, c) <= elim,
                         "proposal of %llu bytes (error %g), the fewest of 500 random %llu",
                         (unsigned long long)qj_search_bytes(s, c), qj_search_error(s, c), (unsigned long long)fewest);
        }
        qj_gp_free(g);
        qj_search_set_max_error(s, 0);
    }
    qj_search_free(s);
    qj_space_free(sp);
    qj_model_free(src);
    return qj_test_finish();
}
