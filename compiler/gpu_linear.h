/* gpu_linear.h — one linear layer (or a fused q|k|v, gate|up) on the GPU:
 * its arrays re-laid out for its kernel and uploaded, its functions bound,
 * and its launch (with the tensor-core kernels' activation prep). Shared by
 * the runtime (gpu_model.c), the kernel benchmark and the kernel tests.
 *
 * Ownership: qj_glinear owns the device arrays it uploads (qj_glinear_free);
 * functions belong to the module they were bound from; qj_gact owns its
 * scratch (qj_gact_free).
 */
#ifndef QJ_GPU_LINEAR_H
#define QJ_GPU_LINEAR_H

#include "cuda_codegen.h"
#include "qj_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qj_glinear {
    qj_gemv_spec spec;
    char name[160];
    qj_dptr w[QJ_MAX_SEGS], s[QJ_MAX_SEGS]; /* per segment (CUDA-core kernels: segment 0) */
    size_t bytes;                          /* device bytes of weights and scales */
    int borrowed_w;                        /* w[0] belongs to someone else (a tied head) */
    qj_cufunc fn, fx;                      /* the kernel; the tensor-core prep kernel */
    unsigned grid, block, xgrid, xblock, smem;
} qj_glinear;

/* Prepared activations of tensor-core launches (sized for the largest K and batch). */
typedef struct qj_gact {
    qj_dptr xf, xsum, xscale;               /* tensor-core kernels */
    size_t xf_bytes, xsum_bytes, xscale_bytes;
    qj_dptr xq, xc;                         /* integer-dot GEMV */
    size_t xq_bytes, xc_bytes;
    qj_dptr xi, xw;                         /* integer-MMA GEMV */
    size_t xi_bytes, xw_bytes;
} qj_gact;

/* A tail's pointers (qj_gemv_spec.tail; templates/qj_imv.cu qj_tail_args, the launch's last argument, by value):
 * QJ_TAIL_NORM: x_out = x_in + y, out = RMSNorm(x_out) * w; QJ_TAIL_SWIGLU: out = silu(gate) * up (x_in,
 * x_out, w unused); with tail_prep, xi/xw get out's integer-MMA prep (buffers the launch does not read). */
typedef struct qj_gtail {
    qj_dptr x_in, x_out, w, out, xi, xw;
} qj_gtail;

/* Re-lay out and upload the parts of L->spec (set by the caller). */
qj_status qj_glinear_upload(qj_cuda *cu, const qj_tensor *const *parts, qj_glinear *L);
void qj_glinear_free(qj_cuda *cu, qj_glinear *L);
/* Look up L->name (and its prep) in a loaded module; set launch dimensions. */
qj_status qj_glinear_bind(qj_cuda *cu, qj_cumodule mod, qj_glinear *L);

/* Grow a to hold the prepared activations of spec s. */
qj_status qj_gact_reserve(qj_cuda *cu, qj_gact *a, const qj_gemv_spec *s);
void qj_gact_free(qj_cuda *cu, qj_gact *a);

/* Prepare x (fp32 [batch][x_stride]) for launches of this kernel kind, K
 * and batch (qj_gemv_prep_kind); a no-op for kernels that read x. Launches
 * that share x (same prep kind, K, batch) need one prep. */
qj_status qj_glinear_prep(qj_cuda *cu, qj_custream st, const qj_glinear *L, qj_dptr x, int x_stride, const qj_gact *a);
/* y[b][row] = (W x_b)[row]: the float GEMV reads x, the tensor-core,
 * integer-dot and integer-MMA kernels the prepared activations in a
 * (qj_glinear_prep first). */
qj_status qj_glinear_run(qj_cuda *cu, qj_custream st, const qj_glinear *L, qj_dptr x, int x_stride, const qj_gact *a,
                         qj_dptr y, int y_stride);
/* The same for a kernel with a tail (tail != NULL exactly when L->spec.tail). */
qj_status qj_glinear_run_tail(qj_cuda *cu, qj_custream st, const qj_glinear *L, const qj_gact *a, qj_dptr y, int y_stride,
                              const qj_gtail *tail);

#ifdef __cplusplus
}
#endif
#endif
