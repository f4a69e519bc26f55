/* quant.h — round-to-nearest (RTN) weight quantization into the packed layout
 * of templates/qj_layout.h.
 *
 * Ownership: qj_quantize allocates the three arrays of *out with malloc; the
 * caller owns them (qj_qbuf_free releases them; NULL members are fine).
 */
#ifndef QJ_QUANT_H
#define QJ_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "qj_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qj_qbuf {
    uint32_t *q;   /* (N, QJ_ROW_WORDS(K, bits)) packed codes */
    void *scales;  /* (N, ngroups) in fmt.scale_dtype */
    void *zeros;   /* (N, ngroups) in fmt.scale_dtype; NULL when symmetric */
    size_t q_bytes, scales_bytes, zeros_bytes;
} qj_qbuf;

/* Effective group size for a row of K values: fmt->group, or K rounded up to
 * 32 when fmt->group == 0 (per-channel). */
int qj_qformat_group(const qj_qformat *fmt, int64_t K);

/* Check bits (2..8), group (0 or a multiple of 32 in 32..512), scale dtype. */
qj_status qj_qformat_check(const qj_qformat *fmt);

/* Bytes of the packed arrays for an (N, K) weight (codes + scales + zeros). */
size_t qj_quant_bytes(int64_t N, int64_t K, const qj_qformat *fmt);

/* Quantize a dense (N, K) tensor (f32/f16/bf16). Rows run in parallel. */
qj_status qj_quantize(const qj_tensor *w, const qj_qformat *fmt, qj_qbuf *out);

/* Quantize one row of K floats (the kernel of qj_quantize; exposed for tests).
 * q must hold QJ_ROW_WORDS(K, bits) zeroed words; scales/zeros ngroups each. */
void qj_quantize_row(const float *w, int64_t K, const qj_qformat *fmt, int group, uint32_t *q, void *scales,
                     void *zeros);

void qj_qbuf_free(qj_qbuf *b);

/* The data-free layer-output error of w quantized under fmt: over QJ_OUTERR_INPUTS random
 * inputs x (N(0, 1) entries, the same for every call with the same K and seed) and a sample of
 * rows (every row when N <= max_rows, else max_rows rows evenly spaced; max_rows <= 0: all),
 * *err2 = sum (w_n.x - q_n.x)^2 and *ref2 = sum (w_n.x)^2, where q_n is row n quantized and
 * dequantized exactly as the kernels see it. err2 / ref2 is the squared relative error of the
 * layer's output. Rows run in parallel. */
#define QJ_OUTERR_INPUTS 8
qj_status qj_quant_output_error(const qj_tensor *w, const qj_qformat *fmt, int64_t max_rows, uint64_t seed,
                                double *err2, double *ref2);

/* Fill a QJ_DTYPE_Q tensor descriptor from a buffer (borrowed). */
void qj_tensor_set_quant(qj_tensor *t, const char *name, int64_t N, int64_t K, const qj_qformat *fmt,
                         const qj_qbuf *b);

#ifdef __cplusplus
}
#endif
#endif
