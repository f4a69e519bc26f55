// ctest-labels: unit
/* test_gp.c — the search's Gaussian process and acquisition closed forms
 * against known answers: normal pdf/cdf values, expected improvement against
 * numerical integration, probability of feasibility, the posterior of two points
 * against the explicit 2x2 algebra, a known function (sin) recovered from 15
 * points, the likelihood gradient against finite differences, ARD length scales
 * that find the irrelevant dimension, per-point noise, and bad input refused.
 * Skips (77) when qjit was built without LAPACKE. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gp.h"
#include "qj_test.h"

/* E[max(best - f, 0)], f ~ N(mu, sigma^2), by the trapezoid rule over mu +- 12 sigma */
static double ei_numeric(double mu, double sigma, double best) {
    const int n = 400000;
    const double a = mu - 12 * sigma, b = mu + 12 * sigma, hstep = (b - a) / n;
    double s = 0;
    for (int i = 0; i <= n; i++) {
        const double f = a + i * hstep, w = (i == 0 || i == n) ? 0.5 : 1.0;
        const double imp = best > f ? best - f : 0.0;
        s += w * imp * qj_norm_pdf((f - mu) / sigma) / sigma;
    }
    return s * hstep;
}

int main(void) {
    /* normal distribution */
    QJ_CHECK(fabs(qj_norm_cdf(0.0) - 0.5) < 1e-15);
    QJ_CHECK(fabs(qj_norm_cdf(1.0) - 0.8413447460685429) < 1e-13);
    QJ_CHECK(fabs(qj_norm_cdf(-1.96) - 0.024997895148220435) < 1e-13);
    QJ_CHECK(fabs(qj_norm_pdf(0.0) - 0.3989422804014327) < 1e-15);
    QJ_CHECK(fabs(qj_norm_pdf(2.0) - 0.05399096651318806) < 1e-15);
    /* expected improvement: closed form = the integral; known value at the best */
    QJ_CHECK(fabs(qj_expected_improvement(0, 1, 0) - 0.3989422804014327) < 1e-15);
    const double cases[][3] = {{0, 1, 0}, {1, 0.5, 0.2}, {-1, 2, 0.3}, {3, 0.1, 2.5}, {0.5, 3, 4}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const double mu = cases[i][0], sg = cases[i][1], best = cases[i][2];
        const double cf = qj_expected_improvement(mu, sg, best), nu = ei_numeric(mu, sg, best);
        QJ_CHECK_MSG(fabs(cf - nu) < 1e-7 * (1 + nu), "EI(%g, %g, %g): closed %.12g numeric %.12g", mu, sg, best, cf, nu);
    }
    QJ_CHECK(qj_expected_improvement(1.0, 0.0, 3.0) == 2.0 && qj_expected_improvement(3.0, 0.0, 1.0) == 0.0);
    /* probability of feasibility */
    QJ_CHECK(fabs(qj_prob_below(0, 1, 0) - 0.5) < 1e-15);
    QJ_CHECK(fabs(qj_prob_below(1, 2, 3) - 0.8413447460685429) < 1e-13);
    QJ_CHECK(fabs(qj_prob_below(5, 1, 3) - qj_norm_cdf(-2.0)) < 1e-15);
    QJ_CHECK(qj_prob_below(2, 0, 3) == 1.0 && qj_prob_below(4, 0, 3) == 0.0);
    QJ_CHECK(fabs(qj_matern52(0.0) - 1.0) < 1e-15 && fabs(qj_matern52(1.0) - (1 + sqrt(5.0) + 5.0 / 3) * exp(-sqrt(5.0))) < 1e-15);

    if (!qj_gp_available()) {
        printf("SKIP: the GP part (this qjit was built without LAPACKE)\n");
        qj_test_finish();
        return 77;
    }
    /* two points, fixed hyperparameters: the posterior by explicit 2x2 algebra */
    {
        const double X[2] = {0.2, 0.7}, y[2] = {1.0, 3.0};
        qj_gp_hyper h;
        h.ls[0] = 0.4;
        h.sf2 = 1.3;
        h.sn2 = 0.05;
        qj_gp_opts o = qj_gp_default_opts();
        o.fit = 0;
        o.init = &h;
        qj_gp *g = NULL;
        QJ_CHECK_OK(qj_gp_fit(X, y, NULL, 2, 1, &o, &g));
        if (g) {
            const double ym = 2.0, ys = sqrt(2.0), yt[2] = {-1 / sqrt(2.0), 1 / sqrt(2.0)};
            const double k12 = h.sf2 * qj_matern52(0.5 / h.ls[0]), a = h.sf2 + h.sn2, det = a * a - k12 * k12;
            const double Ki[2][2] = {{a / det, -k12 / det}, {-k12 / det, a / det}};
            const double xs[3] = {0.4, 0.2, 0.95};
            for (int t = 0; t < 3; t++) {
                const double ks[2] = {h.sf2 * qj_matern52(fabs(xs[t] - X[0]) / h.ls[0]),
                                      h.sf2 * qj_matern52(fabs(xs[t] - X[1]) / h.ls[0])};
                double m = 0, q = 0;
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) {
                        m += ks[i] * Ki[i][j] * yt[j];
                        q += ks[i] * Ki[i][j] * ks[j];
                    }
                const double em = ym + ys * m, ev = ys * ys * (h.sf2 - q);
                double pm, pv;
                qj_gp_predict(g, &xs[t], &pm, &pv);
                QJ_CHECK_MSG(fabs(pm - em) < 1e-12 && fabs(pv - ev) < 1e-12, "x=%g: mean %.15g/%.15g var %.15g/%.15g", xs[t],
                             pm, em, pv, ev);
            }
            const double lml_expect = -0.5 * (yt[0] * (Ki[0][0] * yt[0] + Ki[0][1] * yt[1]) +
                                              yt[1] * (Ki[1][0] * yt[0] + Ki[1][1] * yt[1])) -
                                      0.5 * log(det) - log(2 * M_PI);
            QJ_CHECK_MSG(fabs(qj_gp_lml(g) - lml_expect) < 1e-12, "lml %.15g expected %.15g", qj_gp_lml(g), lml_expect);
        }
        qj_gp_free(g);
    }
    /* a known function from 15 points, hyperparameters fitted */
    {
        double X[15], y[15];
        for (int i = 0; i < 15; i++) {
            X[i] = i / 14.0;
            y[i] = sin(2 * M_PI * X[i]);
        }
        qj_gp *g = NULL;
        qj_gp_opts o = qj_gp_default_opts();
        QJ_CHECK_OK(qj_gp_fit(X, y, NULL, 15, 1, &o, &g));
        if (g) {
            double worst = 0, wvar = 0;
            for (int i = 0; i < 14; i++) {
                const double x = (i + 0.5) / 14.0;
                double m, v;
                qj_gp_predict(g, &x, &m, &v);
                worst = fmax(worst, fabs(m - sin(2 * M_PI * x)));
                wvar = fmax(wvar, v);
            }
            printf("sin from 15 points: worst mean error %.2e, largest variance %.2e, ls %.3f sf2 %.3f sn2 %.2e\n", worst,
                   wvar, qj_gp_hyperparams(g)->ls[0], qj_gp_hyperparams(g)->sf2, qj_gp_hyperparams(g)->sn2);
            QJ_CHECK_MSG(worst < 0.02 && wvar < 1e-2, "sin: error %.3g, variance %.3g", worst, wvar);
            double m, v, far = 30.0; /* far from the data: back to the prior (mean of the data, large variance) */
            qj_gp_predict(g, &far, &m, &v);
            QJ_CHECK_MSG(fabs(m) < 1e-6 && v > 100 * wvar, "far: mean %.3g variance %.3g", m, v);
        }
        qj_gp_free(g);
    }
    /* gradient against finite differences; fitting raises the likelihood; ARD */
    {
        enum { N = 30, D = 2 };
        double X[N * D], y[N];
        uint64_t s = 12345;
        for (int i = 0; i < N; i++) {
            for (int k = 0; k < D; k++) {
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                X[i * D + k] = (double)(s >> 11) / 9007199254740992.0;
            }
            y[i] = sin(4 * X[i * D]) + 0.5 * X[i * D] * X[i * D]; /* x1 is irrelevant */
        }
        qj_gp_hyper h0;
        h0.ls[0] = 0.7;
        h0.ls[1] = 0.3;
        h0.sf2 = 0.8;
        h0.sn2 = 0.02;
        qj_gp_opts o = qj_gp_default_opts();
        o.fit = 0;
        o.init = &h0;
        qj_gp *g0 = NULL;
        QJ_CHECK_OK(qj_gp_fit(X, y, NULL, N, D, &o, &g0));
        if (g0) {
            double l0, gr[D + 2];
            QJ_CHECK_OK(qj_gp_lml_at(g0, &h0, &l0, gr));
            QJ_CHECK(fabs(l0 - qj_gp_lml(g0)) < 1e-10);
            for (int k = 0; k < D + 2; k++) {
                const double e = 1e-6;
                qj_gp_hyper hp = h0, hm = h0;
                double *pp = k < D ? &hp.ls[k] : k == D ? &hp.sf2 : &hp.sn2, *pm = k < D ? &hm.ls[k] : k == D ? &hm.sf2 : &hm.sn2;
                *pp *= exp(e);
                *pm *= exp(-e);
                double lp, lm;
                QJ_CHECK_OK(qj_gp_lml_at(g0, &hp, &lp, NULL));
                QJ_CHECK_OK(qj_gp_lml_at(g0, &hm, &lm, NULL));
                const double fd = (lp - lm) / (2 * e);
                QJ_CHECK_MSG(fabs(fd - gr[k]) < 1e-5 * (1 + fabs(fd)), "d lml / d log theta_%d: analytic %.9g, differences %.9g",
                             k, gr[k], fd);
            }
            qj_gp *g = NULL;
            qj_gp_opts of = qj_gp_default_opts();
            of.init = &h0;
            QJ_CHECK_OK(qj_gp_fit(X, y, NULL, N, D, &of, &g));
            if (g) {
                const qj_gp_hyper *hf = qj_gp_hyperparams(g);
                printf("2-D fit: lml %.3f (start %.3f), ls %.3f %.3f\n", qj_gp_lml(g), l0, hf->ls[0], hf->ls[1]);
                QJ_CHECK(qj_gp_lml(g) > l0);
                QJ_CHECK_MSG(hf->ls[1] > 3 * hf->ls[0], "the irrelevant dimension's length scale %.3g vs %.3g", hf->ls[1],
                             hf->ls[0]);
                /* the same seed fits the same hyperparameters */
                qj_gp *g2 = NULL;
                QJ_CHECK_OK(qj_gp_fit(X, y, NULL, N, D, &of, &g2));
                if (g2) {
                    const qj_gp_hyper *h2 = qj_gp_hyperparams(g2);
                    QJ_CHECK(h2->ls[0] == hf->ls[0] && h2->ls[1] == hf->ls[1] && h2->sf2 == hf->sf2 && h2->sn2 == hf->sn2);
                }
                qj_gp_free(g2);
            }
            qj_gp_free(g);
        }
        qj_gp_free(g0);
    }
    /* per-point noise: a point measured with a large spread pulls the posterior less */
    {
        const double X[5] = {0.0, 0.25, 0.5, 0.75, 1.0}, y[5] = {0, 0, 2, 0, 0};
        const double quiet[5] = {0, 0, 0, 0, 0}, loud[5] = {0, 0, 4.0, 0, 0};
        qj_gp_hyper h;
        h.ls[0] = 0.3;
        h.sf2 = 1.0;
        h.sn2 = 1e-4;
        qj_gp_opts o = qj_gp_default_opts();
        o.fit = 0;
        o.init = &h;
        qj_gp *a = NULL, *b = NULL;
        QJ_CHECK_OK(qj_gp_fit(X, y, quiet, 5, 1, &o, &a));
        QJ_CHECK_OK(qj_gp_fit(X, y, loud, 5, 1, &o, &b));
        if (a && b) {
            double ma, va, mb, vb, x = 0.5;
            qj_gp_predict(a, &x, &ma, &va);
            qj_gp_predict(b, &x, &mb, &vb);
            QJ_CHECK_MSG(fabs(ma - 2.0) < 1e-2 && mb < ma - 0.2 && vb > va, "quiet %.4g (%.3g), loud %.4g (%.3g)", ma, va, mb, vb);
        }
        qj_gp_free(a);
        qj_gp_free(b);
    }
    /* bad input */
    {
        const double X[2] = {0.1, 0.2}, y[2] = {1, NAN}, yok[2] = {1, 2}, neg[2] = {0, -1};
        qj_gp *g = NULL;
        QJ_CHECK_FAILS(qj_gp_fit(X, yok, NULL, 0, 1, NULL, &g), "no points");
        QJ_CHECK_FAILS(qj_gp_fit(X, y, NULL, 2, 1, NULL, &g), "target 1 is not finite");
        QJ_CHECK_FAILS(qj_gp_fit(X, yok, NULL, 2, 0, NULL, &g), "0 dimensions");
        QJ_CHECK_FAILS(qj_gp_fit(X, yok, neg, 2, 1, NULL, &g), "noise variance 1");
        QJ_CHECK(g == NULL);
    }
    return qj_test_finish();
}
