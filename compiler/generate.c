/* generate.c — the generation loop shared by qjit generate and the embeddable runtime. */
#include "generate.h"

#include <stdlib.h>
#include <string.h>

#include "qj_progress.h"
#include "sampler.h"

qj_generate_params qj_generate_default_params(void) {
    qj_generate_params p = {"", 256, 1.0f, 0.9f, 42};
    return p;
}

qj_status qj_generate(const qj_config *c, qj_forward_fn fwd, void *fwd_ctx, const qj_tokenizer *tok,
                      const qj_generate_params *p, qj_piece_fn on_piece, void *piece_ctx, qj_generate_stats *stats) {
    if (stats) memset(stats, 0, sizeof *stats);
    const char *prompt = p->prompt ? p->prompt : "";
    int *ids = NULL;
    size_t n = 0;
    qj_status s = qj_tokenizer_encode(tok, prompt, strlen(prompt), 1, &ids, &n);
    if (s) return s;
    int steps = p->steps < c->seq_len ? p->steps : c->seq_len;
    if (steps < 1 || (long)n >= steps) {
        free(ids);
        return qj_fail(QJ_ERR_INVALID, "the prompt has %zu tokens; %d steps leave no room to generate", n, steps);
    }
    qj_sampler smp;
    qj_sampler_init(&smp, c->vocab_size, p->temperature, p->top_p, p->seed);
    int token = ids[0], next, generated = 0;
    double t0 = qj_now(), t1 = 0;
    for (int pos = 0; pos < steps - 1; pos++) {
        const float *logits;
        if ((s = fwd(fwd_ctx, token, pos, &logits))) break;
        int from_prompt = (size_t)pos + 1 < n;
        if (from_prompt) next = ids[pos + 1];
        else {
            next = qj_sampler_sample(&smp, logits);
            if (++generated == 1) t1 = qj_now();
        }
        if (next == c->eos_id || next == c->bos_id) break;
        size_t len = 0;
        const char *piece = qj_tokenizer_piece(tok, token, next, &len);
        if (on_piece && on_piece(piece_ctx, next, from_prompt, piece ? piece : "", piece ? len : 0)) break;
        token = next;
    }
    double el = qj_now() - (t1 ? t1 : t0);
    if (stats) {
        stats->prompt_tokens = (int)n;
        stats->generated = generated;
        stats->tokens_per_s = generated > 1 && el > 0 ? (generated - 1) / el : 0.0;
    }
    qj_sampler_free(&smp);
    free(ids);
    return s;
}
