/* qj_dqprep.cuh — the integer-dot GEMV's activation prep for one 32-value
 * block, done by one warp (lane j holds value j; all 32 lanes must call it).
 * Shared by the prep kernel in qj_dqv.cu and the non-matmul kernels that
 * write a GEMV input (qj_ops.cu), so the layout lives in one place:
 *   xq: bytes [NT tiles][3 pieces][2 halves][32 blocks][16 bytes]: byte
 *       (j % 16) of block l's 16 bytes in half j / 16 of tile blk / 32 holds
 *       piece p of q_j (p = 0: bits 0-7, 1: bits 8-15, 2: bits 16-23 signed);
 *   xc: float4 [NT*32]: {2^(E-22), 2^(E-14), 2^(E-6), sum_j q_j 2^(E-22)}
 * where |x_j| < 2^E over the block and q_j = rint(x_j 2^(22-E)) (|q_j| <=
 * 2^22). A NaN or Inf in the block makes its weights NaN, so every output
 * that reads it is NaN. */
#ifndef QJ_DQPREP_CUH
#define QJ_DQPREP_CUH

__device__ __forceinline__ void qj_dq_prep_warp(float v, int lane, int blk, unsigned char *__restrict__ xq,
                                                float4 *__restrict__ xc) {
    const unsigned mb = __reduce_max_sync(0xffffffffu, __float_as_uint(fabsf(v)));
    int q = 0;
    float c0 = 0.0f, c1 = 0.0f, c2 = 0.0f;
    if (mb >= 0x7F800000u) {
        c0 = c1 = c2 = __int_as_float(0x7FC00000);
    } else if (mb != 0) {
        const int E = (int)(mb >> 23) - 126; /* subnormal maxima: E = -126 still bounds them */
        q = __float2int_rn(scalbnf(v, 22 - E));
        c0 = scalbnf(1.0f, E - 22);
        c1 = scalbnf(1.0f, E - 14);
        c2 = scalbnf(1.0f, E - 6);
    }
    const int sum = __reduce_add_sync(0xffffffffu, q);
    unsigned char *base = xq + (size_t)(blk >> 5) * 3072 + (lane >> 4) * 512 + (blk & 31) * 16 + (lane & 15);
    base[0] = (unsigned char)(q & 0xff);
    base[1024] = (unsigned char)((q >> 8) & 0xff);
    base[2048] = (unsigned char)((q >> 16) & 0xff);
    if (lane == 0) xc[blk] = make_float4(c0, c1, c2, (float)sum * c0);
}

#endif
