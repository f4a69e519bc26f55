/* qj_opsmath.cuh — the roundings of RMSNorm and SwiGLU, the dense f32/f16/bf16
 * loads their weights need and the block sum of squares, in one place: qj_ops.cu's kernels and the matmul tails
 * of qj_imv.cu (QJ_IM_TAIL) both use them, so the two paths round alike. Each
 * rounds as the C reference (runtime/qj_forward.c) does, one _rn operation per C
 * operation (no FMA contraction). */
#ifndef QJ_OPSMATH_CUH
#define QJ_OPSMATH_CUH

enum { DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2 };

__device__ __forceinline__ float f16_to_f32(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); /* exact, subnormals included */
    return f;
}

__device__ __forceinline__ float bf16_to_f32(unsigned short h) { return __uint_as_float((unsigned)h << 16); }

/* Element i of a dense f32/f16/bf16 array, as float. */
template <int DT> __device__ __forceinline__ float load_f32(const void *__restrict__ p, size_t i) {
    if (DT == DT_F16) return f16_to_f32(__ldg((const unsigned short *)p + i));
    if (DT == DT_BF16) return bf16_to_f32(__ldg((const unsigned short *)p + i));
    return __ldg((const float *)p + i);
}

/* The sum of v (float or double) over a block of W warps, in warp order (deterministic); every thread gets it.
 * red holds W values and must not be written again before another __syncthreads(). */
template <int W, typename T> __device__ __forceinline__ T qj_block_sum(T v, T *red) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    T s = 0;
#pragma unroll
    for (int w = 0; w < W; w++) s += red[w];
    return s;
}

/* RMSNorm: 1 / sqrt(mean(x^2) + eps) from the double sum of squares of n values, and one output value */
__device__ __forceinline__ float qj_rms_inv(double ss, int n, float eps) {
    return __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn((float)__ddiv_rn(ss, (double)n), eps)));
}
__device__ __forceinline__ float qj_rms_out(float w, float x, float inv) { return __fmul_rn(w, __fmul_rn(x, inv)); }

/* SwiGLU: silu(g) * u (expf within 2 ulp of the C library's; __expf under fast math) */
__device__ __forceinline__ float qj_silu_mul(float g, float u) {
    return __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), u);
}

#endif
