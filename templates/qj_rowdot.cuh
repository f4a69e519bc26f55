/* qj_rowdot.cuh — what the two CUDA-core GEMV templates (qj_gemv.cu, float;
 * qj_dqv.cu, integer-dot) share: their parameter defaults, the f16/bf16 scale
 * conversion, the per-(row, group) scale and zero load, and the end of a
 * launch where a block's QJ_ROWS x QJ_BATCH partial sums are reduced over
 * lanes and warps and stored. Included after the generated #define prologue.
 * Scales (packed widths): asymmetric uint32 [N][NGROUPS] (scale | zero << 16),
 * symmetric uint16 [N][NGROUPS] with zero = -2^(BITS-1) scale. */
#ifndef QJ_ROWDOT_CUH
#define QJ_ROWDOT_CUH

#include "qj_layout.h"
#include "qj_pdl.cuh"

#ifndef QJ_BITS
#define QJ_BITS 4
#endif
#ifndef QJ_GROUP
#define QJ_GROUP 128 /* resolved group size: a multiple of 32 */
#endif
#ifndef QJ_N
#define QJ_N 4096
#endif
#ifndef QJ_K
#define QJ_K 4096
#endif
#ifndef QJ_SYM
#define QJ_SYM 0
#endif
#ifndef QJ_SCALE_BF16
#define QJ_SCALE_BF16 0 /* scales/zeros: 0 = f16, 1 = bf16; dense BITS 16: 0 = f16, 1 = bf16 weights */
#endif
#ifndef QJ_BATCH
#define QJ_BATCH 1
#endif
#ifndef QJ_ROWS
#define QJ_ROWS 8 /* packed: rows per block; dense: rows per warp */
#endif
#ifndef QJ_WARPS
#define QJ_WARPS 4
#endif

#define QJ_NB QJ_NBLOCKS(QJ_K)
#define QJ_NG QJ_NGROUPS(QJ_K, QJ_GROUP)

__device__ __forceinline__ float qj_half_to_float(unsigned short h) {
#if QJ_SCALE_BF16
    return __uint_as_float((unsigned)h << 16);
#else
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
#endif
}

__device__ __forceinline__ float qj_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* scale s and zero z of group g of a row */
__device__ __forceinline__ void qj_row_scale(const void *__restrict__ sz, int row, int g, float &s, float &z) {
#if QJ_SYM
    s = qj_half_to_float(__ldg(reinterpret_cast<const unsigned short *>(sz) + (size_t)row * QJ_NG + g));
    z = -(float)(1 << (QJ_BITS - 1)) * s;
#else
    const unsigned p = __ldg(reinterpret_cast<const unsigned *>(sz) + (size_t)row * QJ_NG + g);
    s = qj_half_to_float((unsigned short)(p & 0xffffu));
    z = qj_half_to_float((unsigned short)(p >> 16));
#endif
}

/* y[b][row0 + r] = the sum over the block's lanes and QJ_WARPS warps of
 * acc[r][b] (rows below QJ_N); every thread of the block must call it. */
__device__ __forceinline__ void qj_block_reduce_store(const float (&acc)[QJ_ROWS][QJ_BATCH], int row0,
                                                      float *__restrict__ y, int y_stride) {
    __shared__ float red[QJ_WARPS][QJ_ROWS * QJ_BATCH];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int r = 0; r < QJ_ROWS; r++)
#pragma unroll
        for (int b = 0; b < QJ_BATCH; b++) {
            const float t = qj_warp_sum(acc[r][b]);
            if (lane == 0) red[warp][r * QJ_BATCH + b] = t;
        }
    __syncthreads();
    for (int i = threadIdx.x; i < QJ_ROWS * QJ_BATCH; i += QJ_WARPS * 32) {
        float t = 0.0f;
#pragma unroll
        for (int wp = 0; wp < QJ_WARPS; wp++) t += red[wp][i];
        const int r = i / QJ_BATCH, b = i % QJ_BATCH;
        if (row0 + r < QJ_N) y[(size_t)b * y_stride + row0 + r] = t;
    }
}

#endif
