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

qj_status qj_eval_nll(const qj_model *m, const int *ids, size_t n_ids, const qj_eval_params *p,
                      qj_eval_result *out) {
    memset(out, 0, sizeof *out);
    const qj_config *c = &m->cfg;
    int ctx = p->ctx > 0 ? p->ctx : c->seq_len;
    if (ctx < 2 || ctx > c->seq_len)
        return qj_fail(QJ_ERR_INVALID, "--ctx %d out of range (2..%d, the model's context)", ctx, c->seq_len);
    size_t n = p->max_tokens && p->max_tokens < n_ids ? p->max_tokens : n_ids;
    if (n == 0) return qj_fail(QJ_ERR_INVALID, "no tokens to evaluate");
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return qj_fail(QJ_ERR_INVALID, "token %zu has id %d, outside the vocabulary (0..%d)", i, ids[i],
                           c->vocab_size - 1);
    size_t chunk = (size_t)ctx - 1, nw = (n + chunk - 1) / chunk;
    double *sums = calloc(nw, sizeof *sums);
    if (!sums) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    int nthreads = omp_get_max_threads();
    int parallel_windows = nw >= (size_t)nthreads && nthreads > 1;
    qj_progress prog;
    qj_progress_begin(&prog, "eval", "tok", n);
    if (!p->progress) prog.enabled = 0;
    qj_status status = QJ_OK;
    char err[512] = "";
    double t0 = qj_now();
    #pragma omp parallel num_threads(parallel_windows ? nthreads : 1)
    {
        qj_state *st = NULL;
        qj_status s = qj_state_alloc(m, ctx, &st);
        #pragma omp for schedule(dynamic, 1)
        for (size_t w = 0; w < nw; w++) {
            if (s) continue;
            size_t a = w * chunk, len = a + chunk <= n ? chunk : n - a;
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
    double el = qj_now() - t0;
    if (status) {
        free(sums);
        return qj_fail(status, "%s", err);
    }
    double total = 0.0;
    for (size_t w = 0; w < nw; w++) total += sums[w];
    free(sums);
    out->tokens = n;
    out->windows = nw;
    out->ctx = ctx;
    out->nll = total / (double)n;
    out->ppl = exp(out->nll);
    out->seconds = el;
    out->tokens_per_s = el > 0 ? (double)n / el : 0.0;
    return QJ_OK;
}

qj_status qj_eval_nll_with(const qj_config *c, int max_ctx, qj_forward_fn fn, void *fn_ctx, const int *ids,
                           size_t n_ids, const qj_eval_params *p, qj_eval_result *out) {
    memset(out, 0, sizeof *out);
    int ctx = p->ctx > 0 ? p->ctx : max_ctx;
    if (ctx < 2 || ctx > max_ctx)
        return qj_fail(QJ_ERR_INVALID, "--ctx %d out of range (2..%d, the model's context)", ctx, max_ctx);
    size_t n = p->max_tokens && p->max_tokens < n_ids ? p->max_tokens : n_ids;
    if (n == 0) return qj_fail(QJ_ERR_INVALID, "no tokens to evaluate");
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return qj_fail(QJ_ERR_INVALID, "token %zu has id %d, outside the vocabulary (0..%d)", i, ids[i],
                           c->vocab_size - 1);
    size_t chunk = (size_t)ctx - 1, nw = (n + chunk - 1) / chunk;
    qj_progress prog;
    qj_progress_begin(&prog, "eval", "tok", n);
    if (!p->progress) prog.enabled = 0;
    double total = 0.0, t0 = qj_now();
    for (size_t w = 0; w < nw; w++) {
        size_t a = w * chunk, len = a + chunk <= n ? chunk : n - a;
        double sum;
        qj_status s = eval_window(fn, fn_ctx, c, ids + a, len, &sum, &prog);
        if (s) return s;
        total += sum;
    }
    qj_progress_end(&prog);
    double el = qj_now() - t0;
    out->tokens = n;
    out->windows = nw;
    out->ctx = ctx;
    out->nll = total / (double)n;
    out->ppl = exp(out->nll);
    out->seconds = el;
    out->tokens_per_s = el > 0 ? (double)n / el : 0.0;
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
