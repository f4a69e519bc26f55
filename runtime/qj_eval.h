/* qj_eval.h — perplexity of a model on a token stream.
 *
 * Protocol: the stream (no BOS in it) is cut into consecutive non-overlapping
 * chunks of ctx-1 ids (the last may be shorter); each window is BOS + chunk;
 * logits at window position p predict window token p+1, so every id of the
 * stream is predicted exactly once. NLL is the mean over all predicted ids.
 */
#ifndef QJ_EVAL_H
#define QJ_EVAL_H

#include <stddef.h>

#include "qj_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qj_eval_params {
    int ctx;           /* window length incl. BOS; 0 = the model's seq_len */
    size_t max_tokens; /* 0 = all ids */
    int progress;      /* 1: progress line on a terminal */
} qj_eval_params;

qj_eval_params qj_eval_default_params(void);

typedef struct qj_eval_result {
    double nll;        /* mean negative log-likelihood (nats) */
    double ppl;        /* exp(nll) */
    size_t tokens;     /* ids predicted */
    size_t windows;
    int ctx;
    double seconds;
    double tokens_per_s; /* forward positions per second */
} qj_eval_result;

qj_status qj_eval_nll(const qj_model *m, const int *ids, size_t n_ids, const qj_eval_params *p,
                      qj_eval_result *out);

/* The same protocol over any forward pass (one window at a time): fn runs
 * token at pos and returns vocab_size logits. max_ctx bounds --ctx. */
typedef qj_status (*qj_forward_fn)(void *ctx, int token, int pos, const float **logits);
qj_status qj_eval_nll_with(const qj_config *c, int max_ctx, qj_forward_fn fn, void *fn_ctx, const int *ids,
                           size_t n_ids, const qj_eval_params *p, qj_eval_result *out);

/* Read whitespace-separated token ids; errors name the file and the position. */
qj_status qj_read_token_file(const char *path, int vocab_size, int **ids, size_t *n);

#ifdef __cplusplus
}
#endif
#endif
