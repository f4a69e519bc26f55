/* cuda_codegen.h — kernel specs and the CUDA source generated for them: a
 * #define prologue naming every parameter, then #include of the template.
 * A kernel is named by its spec, e.g. qj_dqmv_b3_g64_n4096_k14336_bt1_sm90a.
 */
#ifndef QJ_CUDA_CODEGEN_H
#define QJ_CUDA_CODEGEN_H

#include <stddef.h>
#include <stdint.h>

#include "qj_model.h"
#include "qj_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One linear layer's matrix-vector (batch <= 8) kernel. */
typedef struct qj_gemv_spec {
    int bits;        /* 2..8 packed; 16 = dense f16/bf16; 32 = dense f32 */
    int group;       /* resolved group (multiple of 32); unused when dense */
    int64_t N, K;
    int symmetric;
    int scale_bf16;  /* scales/zeros (or dense 16-bit weights) are bf16 */
    int batch;       /* activations per launch, 1..8 */
    int rows;        /* packed: rows per block; dense: rows per warp */
    int warps;       /* warps per block (packed: they split K) */
    int stage;       /* packed: stage activations in shared memory */
} qj_gemv_spec;

/* The spec for a tensor (dense or QJ_DTYPE_Q) at a batch size, with the
 * compiler's choice of rows/warps/staging. Tuning knobs for experiments:
 * QJ_GEMV_ROWS, QJ_GEMV_WARPS, QJ_GEMV_STAGE in the environment override
 * the choice for packed kernels. */
qj_status qj_gemv_spec_for(const qj_tensor *w, int batch, qj_gemv_spec *out);

/* Kernel name for a spec and target ("sm_90a" → suffix "sm90a"). */
void qj_gemv_name(const qj_gemv_spec *s, const char *arch, char *buf, size_t n);

/* Generated source (malloc'd, caller frees): a comment saying it is
 * generated, the #define prologue, and #include "qj_gemv.cu". */
qj_status qj_gemv_source(const qj_gemv_spec *s, const char *arch, char **source);

/* The scale array the kernel takes for a quantized tensor: asymmetric scales
 * and zeros interleaved as uint32 (scale | zero << 16) per (row, group);
 * symmetric: the scales as they are. Dense tensors: *buf = NULL, *len = 0.
 * malloc'd; the caller frees. Rows of tensors that stack (fused launches)
 * stack here too: concatenate the arrays. */
qj_status qj_gemv_device_scales(const qj_tensor *t, void **buf, size_t *len);

/* Threads per block of every kernel in qj_ops.cu (its launch table assumes it). */
#define QJ_OPS_THREADS 256

/* Source of a model's non-matmul module (qj_ops.cu with the model's
 * dimensions, norm/embedding formats and KV-cache length as macros). Fails
 * when norm weights and biases do not share one dtype. malloc'd. */
qj_status qj_ops_source(const qj_model *m, int max_seq, char **source);

/* Grid and block of a spec's launch. */
void qj_gemv_launch_dims(const qj_gemv_spec *s, unsigned *grid, unsigned *block);

#ifdef __cplusplus
}
#endif
#endif

#ifndef QJ_CUDA_ARCH_DECL
#define QJ_CUDA_ARCH_DECL
#ifdef __cplusplus
extern "C" {
#endif
/* NVRTC target for a compute capability: "sm_90a" for 9.0 (Hopper-specific
 * instructions allowed), "sm_XY" otherwise; with ptx != 0 "compute_..." (PTX
 * the driver compiles, the fallback for chips newer than this NVRTC knows). */
void qj_cuda_arch_string(int major, int minor, int ptx, char *buf, size_t n);
#ifdef __cplusplus
}
#endif
#endif
