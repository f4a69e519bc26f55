/* qj_eval.c — perplexity over non-overlapping BOS-prefixed windows. */
#include "qj_eval.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "qj_forward.h"
#include "qj_io.h"
#include "qj_progress.h"

qj_eval_params qj_eval_default_params(void) {
    qj_eval_params p = {0, 0, 1};
    return p;
}

static qj_status cpu_forward(void *ctx, int token, int pos, const float **logits) {
    return qj_forward((qj_state *)ctx, token, pos, logits);
}

/* NLL sum of one window: BOS + ids[0..n) predicts ids[0..n). */
static qj_status eval_window(qj_forward_fn fn, void *ctx, const qj_config *c, const int *ids, size_t n, double *nll_sum,
                             qj_progress *prog) {
    double sum = 0.0;
    int tok = c->bos_id;
    for (size_t p = 0; p < n; p++) {
        const float *logits;
        qj_status s = fn(ctx, tok, (int)p, &logits);
        if (s) return s;
        float mx = logits[0];
        for (int v = 1; v < c->vocab_size; v++) mx = logits[v] > mx ? logits[v] : mx;
        double z = 0.0;
        for (int v = 0; v < c->vocab_size; v++) z += exp((double)(logits[v] - mx));
        double lp = (double)(logits[ids[p]] - mx) - log(z);
        if (!isfinite(lp)) return qj_fail(QJ_ERR_INVALID, "non-finite log-probability at position %zu", p);
        sum -= lp;
        tok = ids[p];
        if (prog) qj_progress_add(prog, 1);
    }
    *nll_sum = sum;
    return QJ_OK;
}

/* The windows of an evaluation: checks the arguments once for both entry points. */
typedef struct windows {
    int ctx;
    size_t n, chunk, count;
} windows;

static qj_status plan_windows(const qj_config *c, int max_ctx, const int *ids, size_t n_ids, const qj_eval_params *p,
                              windows *w) {
    w->ctx = p->ctx > 0 ? p->ctx : max_ctx;
    if (w->ctx < 2 || w->ctx > max_ctx)
        return qj_fail(QJ_ERR_INVALID, "--ctx %d out of range (2..%d, the model's context)", w->ctx, max_ctx);
    w->n = p->max_tokens && p->max_tokens < n_ids ? p->max_tokens : n_ids;
    if (w->n == 0) return qj_fail(QJ_ERR_INVALID, "no tokens to evaluate");
    for (size_t i = 0; i < w->n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return qj_fail(QJ_ERR_INVALID, "token %zu has id %d, outside the vocabulary (0..%d)", i, ids[i],
                           c->vocab_size - 1);
    w->chunk = (size_t)w->ctx - 1;
    w->count = (w->n + w->chunk - 1) / w->chunk;
    return QJ_OK;
}

static void window_range(const windows *w, size_t i, size_t *start, size_t *len) {
    *start = i * w->chunk;
    *len = *start + w->chunk <= w->n ? w->chunk : w->n - *start;
}

static void fill_result(const windows *w, double nll_sum, double seconds, qj_eval_result *out) {
    out->tokens = w->n;
    out->windows = w->count;
    out->ctx = w->ctx;
    out->nll = nll_sum / (double)w->n;
    out->ppl = exp(out->nll);
    out->seconds = seconds;
    out->tokens_per_s = seconds > 0 ? (double)w->n / seconds : 0.0;
}

qj_status qj_eval_nll(const qj_model *m, const int *ids, size_t n_ids, const qj_eval_params *p,
                      qj_eval_result *out) {
    memset(out, 0, sizeof *out);
    const qj_config *c = &m->cfg;
    windows win;
    qj_status status = plan_windows(c, c->seq_len, ids, n_ids, p, &win);
    if (status) return status;
    double *sums = calloc(win.count, sizeof *sums);
    if (!sums) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    /* windows in parallel (one forward state per thread) when there are enough of
     * them; otherwise one at a time with the matrix-vector products in parallel */
    int nthreads = omp_get_max_threads();
    int parallel_windows = win.count >= (size_t)nthreads && nthreads > 1;
    qj_progress prog;
    qj_progress_begin(&prog, "eval", "tok", win.n);
    if (!p->progress) prog.enabled = 0;
    char err[512] = "";
    double t0 = qj_now();
    #pragma omp parallel num_threads(parallel_windows ? nthreads : 1)
    {
        qj_state *st = NULL;
        qj_status s = qj_state_alloc(m, win.ctx, &st);
        #pragma omp for schedule(dynamic, 1)
        for (size_t w = 0; w < win.count; w++) {
            if (s) continue;
            size_t a, len;
            window_range(&win, w, &a, &len);
            s = eval_window(cpu_forward, st, c, ids + a, len, &sums[w], &prog);
        }
        if (s) {
            #pragma omp critical(qj_eval_err)
            if (!status) {
                status = s;
                snprintf(err, sizeof err, "%s", qj_last_error());
            }
        }
        qj_state_free(st);
    }
    qj_progress_end(&prog);
    double el = qj_now() - t0, total = 0.0;
    for (size_t w = 0; w < win.count; w++) total += sums[w]; /* in window order: deterministic */
    free(sums);
    if (status) return qj_fail(status, "%s", err);
    fill_result(&win, total, el, out);
    return QJ_OK;
}

qj_status qj_eval_nll_with(const qj_config *c, int max_ctx, qj_forward_fn fn, void *fn_ctx, const int *ids,
                           size_t n_ids, const qj_eval_params *p, qj_eval_result *out) {
    memset(out, 0, sizeof *out);
    windows win;
    qj_status s = plan_windows(c, max_ctx, ids, n_ids, p, &win);
    if (s) return s;
    qj_progress prog;
    qj_progress_begin(&prog, "eval", "tok", win.n);
    if (!p->progress) prog.enabled = 0;
    double total = 0.0, t0 = qj_now();
    for (size_t w = 0; w < win.count; w++) {
        size_t a, len;
        double sum;
        window_range(&win, w, &a, &len);
        if ((s = eval_window(fn, fn_ctx, c, ids + a, len, &sum, &prog))) return s;
        total += sum;
    }
    qj_progress_end(&prog);
    fill_result(&win, total, qj_now() - t0, out);
    return QJ_OK;
}

qj_status qj_read_token_file(const char *path, int vocab_size, int **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    char *text;
    size_t len;
    qj_status s = qj_read_file(path, &text, &len);
    if (s) return s;
    size_t cap = 1024, cnt = 0;
    int *v = malloc(cap * sizeof *v);
    if (!v) { free(text); return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", path); }
    char *p = text;
    for (;;) {
        while (*p && isspace((unsigned char)*p)) p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || (*end && !isspace((unsigned char)*end)) || errno) {
            s = qj_fail(QJ_ERR_FORMAT, "%s: byte offset %zu: expected a token id (integer), found \"%.12s\"", path,
                        (size_t)(p - text), p);
            goto fail;
        }
        if (x < 0 || x >= vocab_size) {
            s = qj_fail(QJ_ERR_INVALID, "%s: token %zu (byte offset %zu) is %ld, outside the vocabulary 0..%d", path,
                        cnt, (size_t)(p - text), x, vocab_size - 1);
            goto fail;
        }
        if (cnt == cap) {
            int *nv = realloc(v, 2 * cap * sizeof *v);
            if (!nv) { s = qj_fail(QJ_ERR_NOMEM, "%s: out of memory", path); goto fail; }
            v = nv;
            cap *= 2;
        }
        v[cnt++] = (int)x;
        p = end;
    }
    free(text);
    if (cnt == 0) { free(v); return qj_fail(QJ_ERR_FORMAT, "%s: no token ids in file", path); }
    *ids = v;
    *n = cnt;
    return QJ_OK;
fail:
    free(text);
    free(v);
    return s;
}
