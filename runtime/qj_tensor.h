/* qj_tensor.h — dtypes, tensor descriptors and half-precision conversion.
 *
 * Ownership: a qj_tensor never owns its data; data points into a memory map or
 * a buffer owned by the object that holds the tensor (qj_model, qj_package).
 */
#ifndef QJ_TENSOR_H
#define QJ_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "qj_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum qj_dtype {
    QJ_DTYPE_F32 = 0,
    QJ_DTYPE_F16,
    QJ_DTYPE_BF16,
    QJ_DTYPE_Q, /* packed quantized weight, see templates/qj_layout.h */
    QJ_DTYPE_COUNT
} qj_dtype;

/* "f32", "f16", "bf16", "q". */
const char *qj_dtype_name(qj_dtype t);
/* Parses "f32"/"fp32"/"float32", "f16"/"fp16"/"float16", "bf16"/"bfloat16". */
qj_status qj_dtype_parse(const char *s, qj_dtype *out);
/* Bytes per element of a dense dtype (0 for QJ_DTYPE_Q). */
size_t qj_dtype_size(qj_dtype t);

/* Quantization format of a QJ_DTYPE_Q tensor. */
typedef struct qj_qformat {
    int bits;            /* 2..8 */
    int group;           /* 32..512 (multiple of 32) or per-channel: K rounded up to 32 */
    int symmetric;       /* 1: no zero array, implicit zero code 2^(bits-1) */
    qj_dtype scale_dtype; /* QJ_DTYPE_F16 or QJ_DTYPE_BF16, also the zero's dtype */
} qj_qformat;

#define QJ_MAX_DIMS 4
#define QJ_NAME_MAX 128

typedef struct qj_tensor {
    char name[QJ_NAME_MAX];
    qj_dtype dtype;
    int ndim;
    int64_t shape[QJ_MAX_DIMS]; /* shape[0] = rows (N), shape[1] = cols (K) for 2-D */
    const void *data;           /* dense: elements; Q: uint32_t q[N][QJ_ROW_WORDS(K,bits)] */
    size_t nbytes;              /* bytes of data */
    /* QJ_DTYPE_Q only: */
    qj_qformat q;
    const void *scales; /* (N, ngroups) in q.scale_dtype */
    const void *zeros;  /* (N, ngroups) in q.scale_dtype, NULL when symmetric */
    size_t scales_nbytes, zeros_nbytes;
} qj_tensor;

int64_t qj_tensor_numel(const qj_tensor *t);
/* Real bytes the tensor occupies (data + scales + zeros). */
size_t qj_tensor_bytes(const qj_tensor *t);

/* Half-precision conversions (round-to-nearest-even; NaN stays NaN). */
float qj_f16_to_f32(uint16_t h);
uint16_t qj_f32_to_f16(float f);
float qj_bf16_to_f32(uint16_t h);
uint16_t qj_f32_to_bf16(float f);
/* Read element i of a dense array of dtype t as float. */
float qj_load_f32(const void *data, qj_dtype t, size_t i);
/* Convert n elements of a dense array to float. */
void qj_convert_to_f32(float *dst, const void *src, qj_dtype t, size_t n);
/* Convert n floats to dense dtype t. */
void qj_convert_from_f32(void *dst, qj_dtype t, const float *src, size_t n);

/* Row n (of K values) of a 2-D tensor, dense or quantized, as floats. */
void qj_tensor_row_f32(const qj_tensor *t, int64_t n, float *out);

#ifdef __cplusplus
}
#endif
#endif
