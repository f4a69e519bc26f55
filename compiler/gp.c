/* gp.c — Gaussian-process surrogate and acquisition closed forms (see gp.h). */
#include "gp.h"

#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef QJ_HAVE_LAPACKE
#define QJ_HAVE_LAPACKE 0
#endif
#if QJ_HAVE_LAPACKE
#include <lapacke.h>
#endif

struct qj_gp {
    int n, d;
    double *X;     /* n x d */
    double *y;     /* standardised */
    double *noise; /* per-point extra noise variance, standardised (zeros when none) */
    double ymean, ystd;
    qj_gp_hyper h;
    double *L;     /* lower Cholesky factor of K, n x n row-major */
    double *alpha; /* K^-1 y */
    double lml;
};

#define SQRT5 2.23606797749978969640

double qj_matern52(double r) { return (1.0 + SQRT5 * r + 5.0 / 3.0 * r * r) * exp(-SQRT5 * r); }
double qj_norm_pdf(double z) { return exp(-0.5 * z * z) * 0.39894228040143267794; }
double qj_norm_cdf(double z) { return 0.5 * erfc(-z * 0.70710678118654752440); }

double qj_expected_improvement(double mu, double sigma, double best) {
    if (!(sigma > 0)) return best > mu ? best - mu : 0.0;
    const double z = (best - mu) / sigma;
    return (best - mu) * qj_norm_cdf(z) + sigma * qj_norm_pdf(z);
}

double qj_prob_below(double mu, double sigma, double limit) {
    if (!(sigma > 0)) return mu <= limit ? 1.0 : 0.0;
    return qj_norm_cdf((limit - mu) / sigma);
}

qj_gp_opts qj_gp_default_opts(void) {
    qj_gp_opts o = {1, 4, 150, 1, 1e-6, NULL};
    return o;
}

int qj_gp_available(void) { return QJ_HAVE_LAPACKE; }

void qj_gp_free(qj_gp *g) {
    if (!g) return;
    free(g->X);
    free(g->y);
    free(g->noise);
    free(g->L);
    free(g->alpha);
    free(g);
}

/* scaled distance between rows a and b */
static double dist(const qj_gp *g, const qj_gp_hyper *h, const double *a, const double *b) {
    double s = 0;
    for (int k = 0; k < g->d; k++) {
        const double t = (a[k] - b[k]) / h->ls[k];
        s += t * t;
    }
    return sqrt(s);
}

#if QJ_HAVE_LAPACKE
/* K (n x n) at h, factored in place into L; alpha = K^-1 y; *lml. Non-zero when K is not
 * positive definite. */
static int factor(const qj_gp *g, const qj_gp_hyper *h, double *L, double *alpha, double *lml) {
    const int n = g->n;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < i; j++) L[(size_t)i * n + j] = h->sf2 * qj_matern52(dist(g, h, g->X + (size_t)i * g->d, g->X + (size_t)j * g->d));
        L[(size_t)i * n + i] = h->sf2 + h->sn2 + g->noise[i];
        for (int j = i + 1; j < n; j++) L[(size_t)i * n + j] = 0.0;
    }
    if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', n, L, n) != 0) return 1;
    memcpy(alpha, g->y, (size_t)n * sizeof *alpha);
    if (LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', n, 1, L, n, alpha, 1) != 0) return 1;
    double q = 0, ld = 0;
    for (int i = 0; i < n; i++) {
        q += g->y[i] * alpha[i];
        ld += log(L[(size_t)i * n + i]);
    }
    *lml = -0.5 * q - ld - 0.5 * n * log(2.0 * M_PI);
    return isfinite(*lml) ? 0 : 1;
}
#endif

qj_status qj_gp_lml_at(const qj_gp *g, const qj_gp_hyper *h, double *lml, double *grad) {
#if QJ_HAVE_LAPACKE
    const int n = g->n, d = g->d;
    double *L = malloc((size_t)n * n * sizeof *L), *alpha = malloc((size_t)n * sizeof *alpha);
    double *Ki = grad ? malloc((size_t)n * n * sizeof *Ki) : NULL;
    qj_status st = QJ_OK;
    if (!L || !alpha || (grad && !Ki)) {
        st = qj_fail(QJ_ERR_NOMEM, "GP: out of memory (%d points)", n);
        goto done;
    }
    if (factor(g, h, L, alpha, lml)) {
        st = qj_fail(QJ_ERR_INVALID, "GP: the kernel matrix of %d points is not positive definite at these "
                     "hyperparameters", n);
        goto done;
    }
    if (grad) {
        /* d lml / d theta = 1/2 tr((alpha alpha^T - K^-1) dK/dtheta) */
        memcpy(Ki, L, (size_t)n * n * sizeof *Ki);
        if (LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', n, Ki, n) != 0) {
            st = qj_fail(QJ_ERR_INVALID, "GP: cannot invert the kernel matrix");
            goto done;
        }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++) Ki[(size_t)j * n + i] = Ki[(size_t)i * n + j];
        for (int k = 0; k < d + 2; k++) grad[k] = 0.0;
        for (int i = 0; i < n; i++) {
            const double *xi = g->X + (size_t)i * d;
            for (int j = 0; j < n; j++) {
                const double w = alpha[i] * alpha[j] - Ki[(size_t)i * n + j];
                if (i == j) {
                    grad[d] += 0.5 * w * h->sf2;
                    grad[d + 1] += 0.5 * w * h->sn2;
                    continue;
                }
                const double *xj = g->X + (size_t)j * d;
                const double r = dist(g, h, xi, xj), e = exp(-SQRT5 * r);
                grad[d] += 0.5 * w * h->sf2 * (1.0 + SQRT5 * r + 5.0 / 3.0 * r * r) * e;
                const double c = 0.5 * w * h->sf2 * (5.0 / 3.0) * (1.0 + SQRT5 * r) * e;
                for (int k = 0; k < d; k++) {
                    const double t = (xi[k] - xj[k]) / h->ls[k];
                    grad[k] += c * t * t;
                }
            }
        }
    }
done:
    free(L);
    free(alpha);
    free(Ki);
    return st;
#else
    (void)g;
    (void)h;
    (void)lml;
    (void)grad;
    return qj_fail(QJ_ERR_UNSUPPORTED, "this qjit was built without LAPACKE, which the search's GP needs");
#endif
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double unif(uint64_t *s) { return (double)(splitmix(s) >> 11) * (1.0 / 9007199254740992.0); }

/* theta = (log ls, log sf2, log sn2) <-> hyperparameters, clamped to the search box */
static void clamp_theta(double *th, int d, double min_sn2) {
    for (int k = 0; k < d; k++) th[k] = fmin(fmax(th[k], log(1e-2)), log(1e2));
    th[d] = fmin(fmax(th[d], log(1e-3)), log(1e2));
    th[d + 1] = fmin(fmax(th[d + 1], log(min_sn2)), log(1.0));
}
static void theta_to_h(const double *th, int d, qj_gp_hyper *h) {
    for (int k = 0; k < d; k++) h->ls[k] = exp(th[k]);
    h->sf2 = exp(th[d]);
    h->sn2 = exp(th[d + 1]);
}

/* The GP's matrices are small (one row per trial): OpenBLAS's threads only contend with
 * qjit's own (measured: 0.13 s single-threaded against 51 s with its pool on 2 busy cores).
 * Found at run time, so any LAPACKE/BLAS pair works. */
static void blas_single_thread(void) {
    static int done;
    if (done) return;
    done = 1;
    void *sym = dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    void (*set)(int) = NULL;
    memcpy(&set, &sym, sizeof set);
    if (set) set(1);
}

qj_status qj_gp_fit(const double *X, const double *y, const double *noise, int n, int d, const qj_gp_opts *o,
                    qj_gp **out) {
    *out = NULL;
    blas_single_thread();
    qj_gp_opts defaults = qj_gp_default_opts();
    if (!o) o = &defaults;
    if (!qj_gp_available())
        return qj_fail(QJ_ERR_UNSUPPORTED, "this qjit was built without LAPACKE, which the search's GP needs");
    if (n < 1) return qj_fail(QJ_ERR_INVALID, "GP: no points to fit");
    if (d < 1 || d > QJ_GP_MAX_DIM) return qj_fail(QJ_ERR_INVALID, "GP: %d dimensions (1..%d)", d, QJ_GP_MAX_DIM);
    for (int i = 0; i < n; i++) {
        if (!isfinite(y[i])) return qj_fail(QJ_ERR_INVALID, "GP: target %d is not finite (%g)", i, y[i]);
        if (noise && !(noise[i] >= 0 && isfinite(noise[i])))
            return qj_fail(QJ_ERR_INVALID, "GP: noise variance %d is not a finite non-negative number (%g)", i, noise[i]);
        for (int k = 0; k < d; k++)
            if (!isfinite(X[(size_t)i * d + k]))
                return qj_fail(QJ_ERR_INVALID, "GP: point %d, coordinate %d is not finite", i, k);
    }
    qj_gp *g = calloc(1, sizeof *g);
    if (!g) return qj_fail(QJ_ERR_NOMEM, "GP: out of memory");
    g->n = n;
    g->d = d;
    g->X = malloc((size_t)n * d * sizeof *g->X);
    g->y = malloc((size_t)n * sizeof *g->y);
    g->noise = calloc((size_t)n, sizeof *g->noise);
    g->L = malloc((size_t)n * n * sizeof *g->L);
    g->alpha = malloc((size_t)n * sizeof *g->alpha);
    if (!g->X || !g->y || !g->noise || !g->L || !g->alpha) {
        qj_gp_free(g);
        return qj_fail(QJ_ERR_NOMEM, "GP: out of memory (%d points)", n);
    }
    memcpy(g->X, X, (size_t)n * d * sizeof *g->X);
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) m += y[i];
    m /= n;
    for (int i = 0; i < n; i++) v += (y[i] - m) * (y[i] - m);
    v = n > 1 ? v / (n - 1) : 0.0;
    g->ymean = m;
    g->ystd = v > 0 ? sqrt(v) : 1.0;
    for (int i = 0; i < n; i++) {
        g->y[i] = (y[i] - m) / g->ystd;
        if (noise) g->noise[i] = noise[i] / (g->ystd * g->ystd);
    }
    qj_gp_hyper h0;
    if (o->init) h0 = *o->init;
    else {
        for (int k = 0; k < d; k++) h0.ls[k] = 0.5;
        h0.sf2 = 1.0;
        h0.sn2 = 1e-2;
    }
    const double min_sn2 = o->min_sn2 > 0 ? o->min_sn2 : 1e-6;
    if (h0.sn2 < min_sn2) h0.sn2 = min_sn2;
    qj_gp_hyper best = h0;
    double best_lml = -INFINITY;
    qj_status st = QJ_OK;
    if (o->fit) {
        double th[QJ_GP_MAX_DIM + 2], gr[QJ_GP_MAX_DIM + 2], m1[QJ_GP_MAX_DIM + 2], m2[QJ_GP_MAX_DIM + 2];
        uint64_t rs = o->seed * 0x2545F4914F6CDD1Dull + 17;
        const int restarts = o->restarts > 0 ? o->restarts : 1, iters = o->iters > 0 ? o->iters : 1;
        for (int r = 0; r < restarts; r++) {
            for (int k = 0; k < d; k++) th[k] = r == 0 ? log(h0.ls[k]) : log(0.1) + unif(&rs) * (log(2.0) - log(0.1));
            th[d] = r == 0 ? log(h0.sf2) : log(0.3) + unif(&rs) * (log(3.0) - log(0.3));
            th[d + 1] = r == 0 ? log(h0.sn2) : log(1e-4) + unif(&rs) * (log(1e-1) - log(1e-4));
            clamp_theta(th, d, min_sn2);
            memset(m1, 0, sizeof(double) * (size_t)(d + 2));
            memset(m2, 0, sizeof(double) * (size_t)(d + 2));
            for (int it = 1; it <= iters; it++) {
                qj_gp_hyper h;
                theta_to_h(th, d, &h);
                double l;
                if (qj_gp_lml_at(g, &h, &l, gr)) { /* not positive definite here: this start ends */
                    qj_clear_error();
                    break;
                }
                if (l > best_lml) best_lml = l, best = h;
                /* Adam ascent */
                const double lr = 0.05, b1 = 0.9, b2 = 0.999;
                for (int k = 0; k < d + 2; k++) {
                    m1[k] = b1 * m1[k] + (1 - b1) * gr[k];
                    m2[k] = b2 * m2[k] + (1 - b2) * gr[k] * gr[k];
                    const double mh = m1[k] / (1 - pow(b1, it)), vh = m2[k] / (1 - pow(b2, it));
                    th[k] += lr * mh / (sqrt(vh) + 1e-8);
                }
                clamp_theta(th, d, min_sn2);
            }
        }
        if (!isfinite(best_lml)) {
            qj_gp_free(g);
            return qj_fail(QJ_ERR_INVALID, "GP: no hyperparameters made the kernel matrix of %d points positive definite", n);
        }
    }
    g->h = best;
#if QJ_HAVE_LAPACKE
    if (factor(g, &g->h, g->L, g->alpha, &g->lml)) st = qj_fail(QJ_ERR_INVALID, "GP: the kernel matrix of %d points is "
                                                                "not positive definite", n);
#endif
    if (st) {
        qj_gp_free(g);
        return st;
    }
    *out = g;
    return QJ_OK;
}

void qj_gp_predict(const qj_gp *g, const double *x, double *mean, double *var) {
    const int n = g->n;
    double *k = malloc((size_t)n * sizeof *k);
    if (!k) {
        *mean = g->ymean;
        *var = g->h.sf2 * g->ystd * g->ystd;
        return;
    }
    double mu = 0;
    for (int i = 0; i < n; i++) {
        k[i] = g->h.sf2 * qj_matern52(dist(g, &g->h, x, g->X + (size_t)i * g->d));
        mu += k[i] * g->alpha[i];
    }
    double v = g->h.sf2;
#if QJ_HAVE_LAPACKE
    if (LAPACKE_dtrtrs(LAPACK_ROW_MAJOR, 'L', 'N', 'N', n, 1, g->L, n, k, 1) == 0)
        for (int i = 0; i < n; i++) v -= k[i] * k[i];
#endif
    free(k);
    *mean = g->ymean + mu * g->ystd;
    *var = (v > 0 ? v : 0.0) * g->ystd * g->ystd;
}

const qj_gp_hyper *qj_gp_hyperparams(const qj_gp *g) { return &g->h; }
double qj_gp_lml(const qj_gp *g) { return g->lml; }
