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

/* One run of output rows of a tensor-core launch that share a format. */
typedef struct qj_gemv_seg {
    int bits, group, symmetric, scale_bf16;
    int64_t N;
    int first, nparts; /* the parts (tensors) it stacks */
} qj_gemv_seg;

#define QJ_MMA_MAX_BATCH 64
#define QJ_MAX_SEGS 3
#define QJ_DQ_MAX_BATCH 2
#define QJ_IM_MAX_BATCH 16

/* One linear layer's kernel: CUDA-core GEMV (qj_gemv.cu, batch <= 8, packed
 * or dense) or tensor-core (qj_mma.cu, packed, batch <= 64, re-laid-out
 * weights, up to three segments of different formats in one launch). */
typedef struct qj_gemv_spec {
    int bits;        /* 2..8 packed; 16 = dense f16/bf16; 32 = dense f32 (segment 0's for mma) */
    int group;       /* resolved group (multiple of 32); unused when dense */
    int64_t N, K;    /* N: all rows of the launch */
    int symmetric;
    int scale_bf16;  /* scales/zeros (or dense 16-bit weights) are bf16 */
    int batch;       /* activations per launch */
    int rows;        /* gemv packed: rows per block; dense: rows per warp */
    int warps;       /* gemv: warps per block (packed: they split K) */
    int stage;       /* gemv packed: stage activations in shared memory */
    int mma;         /* 1: the tensor-core kernel */
    int dq;          /* 1: the integer-dot GEMV (qj_dqv.cu, packed, batch <= QJ_DQ_MAX_BATCH, re-laid-out codes) */
    int im;          /* 1: the integer-MMA GEMV (qj_imv.cu, packed, one format, batch <= QJ_IM_MAX_BATCH, sm_80+) */
    int mt, unroll;  /* im: 16-row m-tiles per block, k-tiles in flight per warp (warps: they split the k-tiles) */
    int xsmem;       /* im with a ring at batch <= 4: the block copies the prepared activations into dynamic shared memory */
    int bx;          /* im at batch > 4: warps split the m-tiles and share each k-tile's activations in a block-wide ring */
    int cvt;         /* im: a fold's digit pairs: 2 = summed in int32, one conversion, weighted by the lower digit's
                      * weight; 1 = the same with the scales * 2^-8; 0 = two conversions (the earlier kernels) */
    int xl;          /* im: 1 = activation loads of absent batch rows read the last row (no branches); 0 = skipped */
    int jw;          /* bx: n-tiles (pairs of batch rows) per warp, (batch + 1) / 2 = all; fewer: warps share m-tiles */
    int wg;          /* bx with all n-tiles a warp and whole warpgroups: wgmma on sm_90a (the bx kernel elsewhere) */
    int wgswap;      /* wg: B's descriptor offsets the other way round (QJ_IM_WGSWAP=1, a check of their reading) */
    int swz;         /* im with a shared-memory ring: the 8-/4-bit plane's chunks swapped within each lane's, so that
                      * loads of them hit every bank (QJ_IM_SWZ=0: as in memory) */
    int xpre;        /* im above batch 4: activations loaded one n-tile ahead (QJ_IM_XPRE=0: where used) */
    int dm;          /* bx (not wg): digit-major n-tiles of the top 3 activation digits (3, the default: x within 2^-22 of
                      * its tile's largest |x|), of all 4 (4), or digit pairs of two batch rows an n-tile (0);
                      * QJ_IM_DM overrides */
    int ks;          /* bx (not wg): blocks splitting each m-block's k-tiles (1 = none); their partial sums meet in a
                      * workspace of the kernel's module, summed in split order by the last to finish */
    int kscl;        /* ks 2..8 with dm: the splits of an m-block are one thread-block cluster (sm_90+) and sum their
                      * partials through distributed shared memory, not a global workspace (QJ_IM_KSCL=1) */
    int red;         /* ks > 1, not kscl: each split adds its partials into y (the default; QJ_IM_RED=0: the workspace
                      * and last block above): the kernel computes y += W x, so y must hold zeros or the residual (the
                      * model's step chooses which) */
    int nb;          /* bx, dm, ks 1: blocks the m-tiles are dealt over (0 = a block's full m-tiles each), set where the
                      * default grid would leave some multiprocessors one block and others two (qj_gemv_spec_deal) */
    int tail;        /* im at batch 1 (not bx): what the blocks do once the output is stored (templates/qj_imv.cu
                      * qj_tail): 0 nothing, QJ_TAIL_NORM the next RMSNorm (y is the residual to add), QJ_TAIL_SWIGLU
                      * SwiGLU of gate|up; set by the model's planner (qj_gemv_tail_fits), not by the spec functions */
    int pft;         /* im: k-tiles of each of a block's m-tiles (from its first) that the block asks L2 to prefetch, with
                      * their scales, at its start, before it waits on the previous kernel (cp.async.bulk.prefetch, sm_90+):
                      * a launch's bytes up to $QJ_IM_PF KiB (0 = none), read from memory while the kernel before it
                      * (RMSNorm, attention, SwiGLU) leaves the memory idle */
    int tail_prep;   /* tail: also the integer-MMA prep of what it writes */
    int tail_wdt;    /* QJ_TAIL_NORM: the norm weights' dtype, 0 f32, 1 f16, 2 bf16 */
    float tail_eps;  /* QJ_TAIL_NORM: the model's RMSNorm epsilon */
    int rt, splitk;  /* mma: 16-row tiles per warp, warps per block (they split the k tiles) */
    int stages;      /* mma: cp.async pipeline depth; im: 0 = two register stages, >= 2 a shared-memory ring */
    int nseg;        /* mma: segments (1..3) */
    qj_gemv_seg seg[QJ_MAX_SEGS];
} qj_gemv_spec;

/* The multiprocessors of the device specs are made for (0, the default: not known, so no spec depends on it).
 * The GPU runtime and benchmarks set it from the device before planning; it decides qj_gemv_spec.nb. */
void qj_gemv_set_sms(int sms);
/* Sets s->nb for a device of sms multiprocessors (0 where the rule deals nothing); the spec functions call it
 * with qj_gemv_set_sms's count where QJ_IM_DEAL is on. */
void qj_gemv_spec_deal(qj_gemv_spec *s, int sms);

/* The spec for n parts (1 tensor, or q|k|v / gate|up stacked by rows into
 * one launch) at a batch size. allow_mma: 0 = CUDA-core kernels only (chips
 * before sm_80); 1 = automatic (packed parts of one format at batch <= 16:
 * the integer-MMA GEMV; parts of different formats and batch > 16: the f16
 * tensor-core kernel; dense: the CUDA-core GEMV); 2 = the f16 tensor-core
 * kernel whenever the format allows. Parts of different formats fuse only on
 * the f16 tensor-core path; QJ_ERR_UNSUPPORTED when they cannot share a
 * launch. Knobs for experiments: QJ_GEMV_IM=0 (no integer-MMA GEMV),
 * QJ_IM_MT, QJ_IM_WARPS, QJ_IM_UNROLL, QJ_IM_STAGES, QJ_IM_RING (ring bytes), QJ_IM_XSMEM, QJ_IM_BX, QJ_IM_JW, QJ_IM_KS, QJ_IM_XPRE, QJ_IM_SWZ, QJ_IM_WG, QJ_IM_CVT; QJ_GEMV_MMA=0|1, QJ_MMA_RT,
 * QJ_MMA_SPLITK, QJ_MMA_STAGES. */
qj_status qj_gemv_spec_parts(const qj_tensor *const *parts, int n, int batch, int allow_mma, qj_gemv_spec *out);

/* Whether an arch string ("sm_90a", "compute_86") has mma.sync m16n8k16 (sm_80+). */
int qj_gemv_arch_has_mma(const char *arch);

/* Host arrays of segment `seg` of a spec over its parts (malloc'd, caller
 * frees both): tensor-core specs get the tiled re-layout of codes and scales;
 * CUDA-core specs the stacked packed rows (or dense weights) and the
 * interleaved scales (qj_gemv_device_scales). *sc = NULL, *sl = 0 when dense. */
qj_status qj_gemv_host_arrays(const qj_gemv_spec *s, const qj_tensor *const *parts, int seg, void **w, size_t *wl,
                              void **sc, size_t *sl);

/* Which activation prep a spec's launches need: 0 none (they read fp32 x),
 * 1 the tensor-core fragments, 2 the integer-dot byte planes, 3 the
 * integer-MMA digits (QJ_PREP_IM). Launches of one x with the same prep
 * kind, K and batch share one prep. */
#define QJ_PREP_DQ 2
#define QJ_PREP_IM 3
int qj_gemv_prep_kind(const qj_gemv_spec *s);

/* Tensor-core specs: bytes of the prepared activations (B fragments, 32-value
 * sums, per-tile scales) and the prep kernel's launch. */
void qj_gemv_act_bytes(const qj_gemv_spec *s, size_t *xf, size_t *xsum, size_t *xscale);
/* Integer-dot specs: bytes of the byte planes (xq) and block constants (xc). */
void qj_gemv_dq_act_bytes(const qj_gemv_spec *s, size_t *xq, size_t *xc);
/* Integer-MMA specs: bytes of the digits (xi) and tile constants (xw). */
void qj_gemv_im_act_bytes(const qj_gemv_spec *s, size_t *xi, size_t *xw);
void qj_gemv_prep_dims(const qj_gemv_spec *s, unsigned *grid, unsigned *block);
/* Dynamic shared memory of a launch (0 for CUDA-core kernels). */
size_t qj_gemv_smem_bytes(const qj_gemv_spec *s);

/* The spec for a tensor (dense or QJ_DTYPE_Q) at a batch size, with the
 * compiler's choice of kernel and rows/warps/staging. Tuning knobs for
 * experiments: QJ_GEMV_DQ=0 keeps packed batch-1/2 launches off the
 * integer-dot kernel; QJ_GEMV_ROWS, QJ_GEMV_WARPS, QJ_GEMV_STAGE override
 * the choice for packed kernels. */
qj_status qj_gemv_spec_for(const qj_tensor *w, int batch, qj_gemv_spec *out);

/* Kernel name for a spec and target ("sm_90a" → suffix "sm90a"); a
 * tensor-core spec's activation prep kernel is the name + "_x". */
void qj_gemv_name(const qj_gemv_spec *s, const char *arch, char *buf, size_t n);

/* Generated source (malloc'd, caller frees): a comment saying it is
 * generated, the #define prologue, and #include "qj_gemv.cu" (or "qj_mma.cu"). */
qj_status qj_gemv_source(const qj_gemv_spec *s, const char *arch, char **source);

/* The scale array the kernel takes for a quantized tensor: asymmetric scales
 * and zeros interleaved as uint32 (scale | zero << 16) per (row, group);
 * symmetric: the scales as they are. Dense tensors: *buf = NULL, *len = 0.
 * malloc'd; the caller frees. Rows of tensors that stack (fused launches)
 * stack here too: concatenate the arrays. */
qj_status qj_gemv_device_scales(const qj_tensor *t, void **buf, size_t *len);

/* Threads per block of every kernel in qj_ops.cu (its launch table assumes it). */
#define QJ_OPS_THREADS 256
/* Values of the row each qj_rmsnorm block writes (its grid: dim / this, rounded up; = qj_ops.cu). */
#define QJ_NORM_CHUNK 128

/* Source of a model's non-matmul module (qj_ops.cu with the model's
 * dimensions, norm/embedding formats and KV-cache length as macros); prep =
 * the activation prep its kernels write for the matmuls that read their
 * outputs (QJ_PREP_DQ or QJ_PREP_IM). Fails when norm weights and biases do
 * not share one dtype. malloc'd. */
/* Row strides (floats) of the GPU forward's buffers across the batch rows of
 * one step: what compiler/gpu_model.c allocates and qj_ops.cu's QJ_OPS_S_*
 * index by (x and res: dim; xb: the normed matmul input, padded; q|k|v and
 * gate|up: one row of the stacked output; cache: every layer's positions). */
typedef struct qj_ops_strides {
    int x, xb, qkv, att, gu, hb;
    int64_t cache;
} qj_ops_strides;
void qj_ops_layout(const qj_config *c, int max_seq, qj_ops_strides *s);
/* The ops module of a model run at `batch` sequences a step (attention's cluster: qj_ops_att_cluster). */
qj_status qj_ops_source(const qj_model *m, int max_seq, int prep, int batch, char **source);
/* Blocks per query head of the ops module's attention (QJ_ATT_SPLIT) at `batch` sequences a step, 1..8:
 * about 256 blocks in all at batch 1, about 512 and at least 2 a head above (Llama-3-8B: 8, 8, 4, 2, 2 at
 * batch 1, 2, 4, 8, 16); and enough that a block's share of max_seq positions is at most 32,768 (its scores
 * in shared memory). $QJ_ATT_SPLIT (1..32) overrides. */
int qj_ops_att_split(const qj_config *c, int max_seq, int batch);
/* Whether, on sm_90+, attention's blocks of one head form a thread-block cluster and combine their shares
 * through distributed shared memory (templates/qj_ops.cu), else through global memory: at batch 1 (H100:
 * 480.7 against 470.8 tokens/s), not above (batch 16: 2,990 against 3,364); QJ_ATT_CLUSTER=0/1 decides. */
int qj_ops_att_cluster(int batch);

/* A dense array's dtype as the templates name it (qj_opsmath.cuh DT_F32 0, DT_F16 1, DT_BF16 2; 3 = packed):
 * QJ_NORM_DTYPE, QJ_EMB_DTYPE, QJ_TAIL_WDT. */
int qj_ops_dtype_code(qj_dtype t);

/* Tails (qj_gemv_spec.tail): the launch's blocks finish the next non-matmul op themselves. */
#define QJ_TAIL_NORM 1
#define QJ_TAIL_SWIGLU 2
/* Whether a spec's kernel can take a tail: the integer-MMA GEMV at batch 1 whose blocks own their rows (no
 * block-shared activations, no K split), with the tail's shared memory beside its ring. */
int qj_gemv_tail_fits(const qj_gemv_spec *s);

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
