/* qj_forward.h — the plain-C fp32 reference forward pass for the llama family
 * (RMSNorm, RoPE, GQA attention with a KV cache, SwiGLU, tied/untied head).
 * It runs dense (f32/f16/bf16) and quantized (QJ_DTYPE_Q) weights alike.
 *
 * Ownership: a qj_state is created for one model and borrows it; the model
 * must outlive the state. qj_state_free(NULL) is a no-op.
 */
#ifndef QJ_FORWARD_H
#define QJ_FORWARD_H

#include "qj_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qj_state qj_state;

/* max_seq: positions the KV cache holds (<= cfg.seq_len; 0 = cfg.seq_len). */
qj_status qj_state_alloc(const qj_model *m, int max_seq, qj_state **out);
void qj_state_free(qj_state *s);

/* Run one token at position pos (0-based, < max_seq); returns the logits
 * (vocab_size floats, owned by the state, valid until the next call). */
qj_status qj_forward(qj_state *s, int token, int pos, const float **logits);

/* y[N] = W[N,K] x[K] for a dense or quantized 2-D tensor. Parallel over rows
 * (OpenMP) when large and not already inside a parallel region. */
void qj_matvec(const qj_tensor *w, const float *x, float *y, float *row_scratch);

#ifdef __cplusplus
}
#endif
#endif
