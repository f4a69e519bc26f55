/* search.h — the discrete side of the Bayesian-optimisation search: a
 * parameter space (the seed's per-layer bit widths and group sizes, `fixed`
 * layers honoured) turned into a point set the GP works on, the exact size of
 * every point without compiling it, points as plans and as the seed's
 * quant_config, space-filling initial points, and the acquisition's optimiser
 * (expected improvement, or constrained expected improvement, over the
 * feasible points: random candidates, then local search by one-step moves).
 *
 * A point is a choice index per (layer, parameter): choice[2*i + p] indexes
 * the space's values of parameter p (0 bit width, 1 group size) of layer i.
 * Encoding for the GP: each free (non-fixed, more than one value) coordinate
 * as the ordinal position of log2 of its value in [0, 1] (per-channel groups
 * count as twice the largest group); fixed coordinates are left out.
 *
 * Ownership: qj_search borrows the model and space only during setup; it owns
 * its tables; qj_search_free(NULL) is a no-op.
 */
#ifndef QJ_SEARCH_H
#define QJ_SEARCH_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "gp.h"
#include "plan.h"
#include "qj_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qj_search qj_search;

qj_status qj_search_setup(const qj_model *src, const qj_space *space, qj_search **out);
void qj_search_free(qj_search *s);

int qj_search_nchoice(const qj_search *s); /* 2 * layers */
int qj_search_ndim(const qj_search *s);    /* free coordinates (the GP's dimension) */
/* Values a coordinate may take, and the value of choice index c. */
int qj_search_nvalues(const qj_search *s, int coord);
int qj_search_value(const qj_search *s, int coord, int c);

/* GP coordinates of a point (qj_search_ndim values). */
void qj_search_encode(const qj_search *s, const int *choice, double *x);
/* Exact bytes of the compiled model for a point (packed weights, scales, zero points, the
 * dense rest), from tables made at setup: nothing is compiled. */
uint64_t qj_search_bytes(const qj_search *s, const int *choice);
/* The data-free layer-output error: for every layer and every (bits, group) of the space, each
 * of the layer's linears quantized (qj_quant_output_error over max_rows sampled rows, seed) and
 * its squared relative output error summed; progress: a progress line on a terminal. Then
 * qj_search_error(point) = sqrt(mean over the blocks' linears of the squared relative output
 * error), exact for any point without compiling it (-1 before the measurement). */
qj_status qj_search_measure_error(qj_search *s, const qj_model *src, int64_t max_rows, uint64_t seed, int progress);
double qj_search_error(const qj_search *s, const int *choice);
/* The same measure for any plan of src (its lm_head and embedding are not counted). */
qj_status qj_plan_output_error(const qj_model *src, const qj_plan *plan, int64_t max_rows, uint64_t seed, double *err);
/* Points of error above max_error (0: none) are infeasible from now on: qj_search_initial,
 * qj_search_propose and qj_search_random never return one (needs qj_search_measure_error). */
void qj_search_set_max_error(qj_search *s, double max_error);
/* At most max_bytes (0 = no limit) and within the error limit. */
int qj_search_feasible(const qj_search *s, const int *choice, uint64_t max_bytes);
/* The point as the seed's quant_config {"bitwidth.0.": b, "groupsize.0.": g, ...} (caller
 * deletes) and as a plan (caller frees). */
cJSON *qj_search_config(const qj_search *s, const int *choice);
qj_status qj_search_plan(const qj_search *s, const int *choice, qj_plan **out);
/* A point from a JSON sample ({"bitwidth.i.": ...}): every key present and inside the space. */
qj_status qj_search_from_config(const qj_search *s, const cJSON *cfg, const char *where, int *choice);
/* The point with every layer at (bits, group); QJ_ERR_INVALID when the space does not allow it. */
qj_status qj_search_uniform(const qj_search *s, int bits, int group, int *choice);

/* n space-filling points (Latin hypercube over the choice indices, seeded), each of at most
 * max_bytes (0 = no limit; points over it are redrawn, up to a bound; fewer may come back). */
int qj_search_initial(const qj_search *s, int n, uint64_t seed, uint64_t max_bytes, int *choices);

typedef struct qj_acq_params {
    uint64_t max_bytes;   /* feasible points only (0 = no limit) */
    double best;          /* best objective so far (minimised) */
    const qj_gp *constraint; /* NULL, or a GP of a constrained quantity: EI x P(g <= limit) */
    double limit;
    int candidates;       /* random feasible starts (default 256) */
    int local_steps;      /* one-step moves tried from the best few (default 64 rounds) */
    uint64_t seed;
    const int *exclude;   /* n_exclude points not to propose again (the history) */
    int n_exclude;
    int log_bytes_mean;   /* 1: the objective's GP models y - log(bytes - bytes_offset) of each point (for
                           * throughput, -log tokens/s less log bytes read: minus the log of the achieved
                           * bandwidth), and the acquisition adds the exact log bytes of the candidate back,
                           * so what the bytes explain is known, not learnt */
    uint64_t bytes_offset; /* bytes of a point that are not read per step (the embedding table) */
    const int *starts;    /* n_starts points (e.g. the best tried) whose one-step neighbours also start
                           * the local search (exploitation next to what worked) */
    int n_starts;
} qj_acq_params;
qj_acq_params qj_acq_default_params(void);

/* The point maximising the acquisition under the GP of the objective (minimised); *acq its
 * value. QJ_ERR_INVALID when no feasible point is left. */
qj_status qj_search_propose(const qj_search *s, const qj_gp *objective, const qj_acq_params *p, int *choice,
                            double *acq);

/* A uniformly random point of at most max_bytes (0 = no limit) that is not among the n_exclude
 * points (random search, the baseline the BO search is measured against); QJ_ERR_INVALID when
 * 100000 draws find none. */
qj_status qj_search_random(const qj_search *s, uint64_t seed, uint64_t max_bytes, const int *exclude, int n_exclude,
                           int *choice);

#ifdef __cplusplus
}
#endif
#endif
