/* cublas_dl.h — cuBLAS, loaded at run time with dlopen, for one thing: the
 * dense bf16 GEMM that `qjit bench --kernels` times beside qjit's own dense
 * kernel, so quantized-kernel speed-ups are also stated against a
 * tensor-core baseline. qjit never links cuBLAS; without it everything else
 * works and the bench says why there is no cuBLAS column.
 *
 * Library: $QJ_CUBLAS when set (only that path is tried, so the library timed
 * is the one asked for), else the first of libcublas.so.13, libcublas.so.12,
 * libcublas.so that loads. The library stays loaded for the process once a
 * load succeeded; a failed load is retried on the next call.
 *
 * Ownership: qj_cublas_open() returns a handle the caller frees with
 * qj_cublas_close() (NULL is a no-op). It borrows cu and st, which must
 * outlive it. cuBLAS runs on the CUDA context current on the calling thread:
 * call open and gemm on the thread that called qj_cuda_open(), which made the
 * device's primary context current there.
 */
#ifndef QJ_CUBLAS_DL_H
#define QJ_CUBLAS_DL_H

#include <stdint.h>

#include "qj_cuda.h"
#include "qj_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qj_cublas qj_cublas;

/* dlopen cuBLAS and resolve the entry points; needs no device. *which (may be
 * NULL) gets the file name that loaded (static storage). Errors:
 * QJ_ERR_UNSUPPORTED naming every name tried ("cuBLAS not found (tried ...);
 * set QJ_CUBLAS=/path/libcublas.so.N"), or the missing symbol. */
qj_status qj_cublas_load(const char **which);

/* Load (if needed) and create a cuBLAS handle bound to stream st. */
qj_status qj_cublas_open(qj_cuda *cu, qj_custream st, qj_cublas **out);
void qj_cublas_close(qj_cublas *b);

/* "cuBLAS 13.1.0 (libcublas.so.13)": the version and file in use. */
const char *qj_cublas_name(const qj_cublas *b);

/* Y = X W^T, enqueued on the handle's stream, fp32 accumulation
 * (CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT: tensor cores where the device has them):
 *   W bf16 (N, K) row-major, X bf16 (batch, K), Y f32 (batch, N):
 *   Y[b][n] = sum_k W[n][k] * X[b][k].
 * N, K and batch must each fit an int. */
qj_status qj_cublas_gemm_bf16(qj_cublas *b, int64_t N, int64_t K, int batch, qj_dptr W, qj_dptr X, qj_dptr Y);

#ifdef __cplusplus
}
#endif
#endif
