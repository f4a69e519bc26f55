/* gp.h — the Bayesian-optimisation search's surrogate: a Gaussian process
 * over encoded plans (points in [0,1]^d), Matérn-5/2 kernel with one length
 * scale per dimension, a signal variance and a noise variance (plus optional
 * per-point noise variances from repeated measurements), hyperparameters fitted
 * by maximising the log marginal likelihood (analytic gradients, Adam in log
 * space from several deterministic starts). Linear algebra: LAPACKE (Cholesky).
 * Also the acquisition's closed forms: expected improvement and the
 * probability that a constrained quantity stays under its limit.
 *
 * Ownership: qj_gp_fit copies X, y and noise; the qj_gp owns everything it
 * points at; qj_gp_free(NULL) is a no-op. Targets are standardised inside
 * (mean 0, variance 1); predictions come back in the caller's units.
 */
#ifndef QJ_GP_H
#define QJ_GP_H

#include <stdint.h>

#include "qj_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QJ_GP_MAX_DIM 512

typedef struct qj_gp_hyper {
    double ls[QJ_GP_MAX_DIM]; /* length scales, in units of the [0,1] encoding */
    double sf2;               /* signal variance (standardised targets) */
    double sn2;               /* noise variance added to every point (standardised) */
} qj_gp_hyper;

typedef struct qj_gp_opts {
    int fit;         /* 1: maximise the marginal likelihood; 0: use `init` as given */
    int restarts;    /* starts of the optimiser (the first from `init` or the defaults) */
    int iters;       /* Adam steps per start */
    uint64_t seed;   /* for the restarts' starting points */
    double min_sn2;  /* floor of the learned noise (standardised), keeps K well conditioned */
    const qj_gp_hyper *init; /* NULL: ls 0.5, sf2 1, sn2 1e-2 */
} qj_gp_opts;
qj_gp_opts qj_gp_default_opts(void);

typedef struct qj_gp qj_gp;

/* Fit on n points X (n x d, row-major) with targets y (n) and optional extra
 * noise variances noise (n, caller's units squared; NULL = none). Errors: n < 1,
 * d out of 1..QJ_GP_MAX_DIM, a non-finite input, a kernel matrix Cholesky
 * cannot factor, LAPACKE missing from this build. */
qj_status qj_gp_fit(const double *X, const double *y, const double *noise, int n, int d, const qj_gp_opts *o,
                    qj_gp **out);
void qj_gp_free(qj_gp *g);

/* Posterior mean and variance of the latent function at x (d values); var excludes the noise. */
void qj_gp_predict(const qj_gp *g, const double *x, double *mean, double *var);
/* The fitted hyperparameters and their log marginal likelihood (standardised targets). */
const qj_gp_hyper *qj_gp_hyperparams(const qj_gp *g);
double qj_gp_lml(const qj_gp *g);
/* Log marginal likelihood and its gradient with respect to (log ls_1..d, log sf2, log sn2) at
 * hyperparameters h, on the data of g (for tests and the optimiser). grad may be NULL. */
qj_status qj_gp_lml_at(const qj_gp *g, const qj_gp_hyper *h, double *lml, double *grad);

/* Matérn-5/2 correlation at scaled distance r >= 0: (1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r). */
double qj_matern52(double r);
/* Standard normal pdf and cdf. */
double qj_norm_pdf(double z);
double qj_norm_cdf(double z);
/* Expected improvement over `best` of a normal prediction (mu, sigma) when minimising:
 * E[max(best - f, 0)] = (best - mu) Phi(z) + sigma phi(z), z = (best - mu) / sigma;
 * sigma = 0 gives max(best - mu, 0). Maximising: pass -mu and -best. */
double qj_expected_improvement(double mu, double sigma, double best);
/* P(f <= limit) for f ~ N(mu, sigma^2) (sigma = 0: 1 or 0). */
double qj_prob_below(double mu, double sigma, double limit);

/* Whether this build has LAPACKE (the GP needs it). */
int qj_gp_available(void);

#ifdef __cplusplus
}
#endif
#endif
