/* generate.h — text generation: the prompt is encoded (with BOS) and fed
 * token by token, then tokens are sampled (greedy, temperature, top-p;
 * seeded) until the step count, EOS or BOS. One loop for `qjit generate` and
 * the embeddable runtime (runtime/qjit_embed.h), so both give the same tokens.
 *
 * Ownership: nothing is kept; the forward function's context and the
 * tokenizer are borrowed for the call. Pieces passed to the callback are
 * borrowed from the tokenizer.
 */
#ifndef QJ_GENERATE_H
#define QJ_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "qj_eval.h"
#include "qj_model.h"
#include "tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qj_generate_params {
    const char *prompt; /* text to continue ("" = from BOS alone) */
    int steps;          /* positions in all, prompt included (at most the context) */
    float temperature;  /* 0 = greedy */
    float top_p;        /* nucleus threshold */
    uint64_t seed;      /* sampling seed */
} qj_generate_params;
/* steps 256, temperature 1.0, top_p 0.9, seed 42 (qjit generate's defaults). */
qj_generate_params qj_generate_default_params(void);

/* Called for every token after the first (prompt tokens too, with
 * from_prompt = 1): its id and text. Return non-zero to stop. */
typedef int (*qj_piece_fn)(void *ctx, int token, int from_prompt, const char *piece, size_t len);

typedef struct qj_generate_stats {
    int prompt_tokens; /* BOS included */
    int generated;     /* sampled tokens */
    double tokens_per_s; /* sampled tokens after the first, per second */
} qj_generate_stats;

/* Runs fwd (positions 0 .. steps-2, fwd_ctx holding at least steps positions
 * of KV cache) with the model config c. Fails when the prompt leaves no room. */
qj_status qj_generate(const qj_config *c, qj_forward_fn fwd, void *fwd_ctx, const qj_tokenizer *tok,
                      const qj_generate_params *p, qj_piece_fn on_piece, void *piece_ctx, qj_generate_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
