/* llvm_kernels.h — CPU kernels generated with the LLVM C API (no textual IR)
 * and compiled for the host's CPU by ORC's LLJIT: a fused dequantize + GEMV
 * per kernel spec (bits, group, shape, symmetric, scale dtype), reading the
 * packed layout of templates/qj_layout.h unchanged.
 *
 * Ownership: a qj_cpu_jit owns every kernel it compiled; kernel function
 * pointers stay valid until qj_cpu_jit_free. A qj_cpu_jit may be used from
 * several threads; the kernels themselves are reentrant.
 *
 * Builds without LLVM (QJ_HAVE_LLVM undefined) keep these functions, which
 * then fail with QJ_ERR_UNSUPPORTED naming the missing LLVM.
 */
#ifndef QJ_LLVM_KERNELS_H
#define QJ_LLVM_KERNELS_H

#include <stdint.h>

#include "qj_model.h"
#include "qj_status.h"
#include "qj_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One linear layer's CPU kernel: packed weights (bits 2..8), resolved group
 * (a multiple of 32; per channel = K rounded up to 32), shape N x K. */
typedef struct qj_cpu_kspec {
    int bits, group;
    int64_t N, K;
    int symmetric, scale_bf16;
} qj_cpu_kspec;

/* y[r] = sum_k W[r][k] x[k] for rows [row0, row1): codes uint32
 * [N][QJ_ROW_WORDS(K, bits)], scales (and zeros, asymmetric) uint16
 * [N][NGROUPS] as f16 or bf16, x fp32 [NBLOCKS*32] zero past K (for 2 and
 * 4 bits each 32-value block re-ordered so that value (8/bits) i + m sits at
 * m*4*bits + i: qj_cpu_gemv_run does it), xsum fp32 [NGROUPS] = the sums of x
 * over each group. */
typedef void (*qj_cpu_gemv_fn)(const uint32_t *codes, const uint16_t *scales, const uint16_t *zeros, const float *x,
                               const float *xsum, float *y, int64_t row0, int64_t row1);

typedef struct qj_cpu_jit qj_cpu_jit;

/* 1 when this build has LLVM. */
int qj_cpu_llvm_available(void);
/* An LLJIT for the host CPU (name and features from LLVM's host queries). */
qj_status qj_cpu_jit_create(qj_cpu_jit **out);
void qj_cpu_jit_free(qj_cpu_jit *j);
/* "znver3 (avx512)": the host CPU LLVM compiles for and the widest vector
 * level its features allow (avx512, avx2, sse). */
const char *qj_cpu_jit_target(const qj_cpu_jit *j);
/* The kernel of a spec: IR built, verified, optimised (default<O3>), JIT
 * compiled; LLVM's messages become qjit errors. */
qj_status qj_cpu_jit_gemv(qj_cpu_jit *j, const qj_cpu_kspec *s, qj_cpu_gemv_fn *fn);
/* The spec of a packed tensor (QJ_ERR_INVALID for other dtypes). */
qj_status qj_cpu_kspec_of(const qj_tensor *w, qj_cpu_kspec *s);
/* y = W x with a kernel of W's spec, rows split across the OpenMP threads
 * when W is large and no parallel region is running (x: K floats; padding
 * and group sums are made here). */
qj_status qj_cpu_gemv_run(qj_cpu_gemv_fn fn, const qj_tensor *w, const float *x, float *y);

/* JIT kernels for every packed linear of m (one per distinct spec) attached
 * to m (m->cpu_matvec), so the CPU forward pass (qj_forward, eval, generate,
 * bench --device cpu) runs them instead of the reference. *n_kernels and
 * *seconds: distinct kernels compiled and the time it took (either may be
 * NULL). Detach and free with qj_cpu_kernels_free before m is freed. */
typedef struct qj_cpu_kernels qj_cpu_kernels;
qj_status qj_cpu_kernels_attach(qj_model *m, qj_cpu_kernels **out, int *n_kernels, double *seconds);
void qj_cpu_kernels_free(qj_model *m, qj_cpu_kernels *k);
const char *qj_cpu_kernels_target(const qj_cpu_kernels *k);

#ifdef __cplusplus
}
#endif
#endif
