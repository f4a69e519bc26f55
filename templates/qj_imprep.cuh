/* qj_imprep.cuh — the integer-MMA GEMV's activation prep for one 128-value
 * k-tile, done by one warp: lane l holds values 4l..4l+3 of the tile (zero
 * past K); all 32 lanes must call it. Layout (qj_layout.h, "Prepared
 * activations of the integer-MMA GEMV"): xi and xw point at the batch row's
 * arrays; the tile's digits go to xi[T * 128 ..], its constants to
 * xw[2T], xw[2T + 1]. Shared by the prep kernel in qj_imv.cu and the
 * non-matmul kernels that produce a GEMV input (qj_ops.cu), so the layout
 * lives in one place. A NaN or Inf in the tile makes its digit weights NaN,
 * so every output that reads it is NaN. */
#ifndef QJ_IMPREP_CUH
#define QJ_IMPREP_CUH

__device__ __forceinline__ unsigned qj_im_digit_byte(int q) { return (unsigned)q & 0xffu; }

__device__ __forceinline__ void qj_im_prep_warp(const float (&v)[4], int lane, int T, unsigned *__restrict__ xi,
                                                float4 *__restrict__ xw) {
    unsigned m = 0;
#pragma unroll
    for (int i = 0; i < 4; i++) m = max(m, __float_as_uint(fabsf(v[i])));
    const unsigned mb = __reduce_max_sync(0xffffffffu, m);
    float w0 = 0.0f, w1 = 0.0f, w2 = 0.0f, w3 = 0.0f;
    unsigned d[4] = {0, 0, 0, 0}; /* digit p of the four values, one byte each */
    if (mb >= 0x7F800000u) {
        w0 = w1 = w2 = w3 = __int_as_float(0x7FC00000);
    } else if (mb != 0) {
        const int E = (int)(mb >> 23) - 126; /* |x| < 2^E (subnormal maxima: E = -126 still bounds them) */
        /* the unit u 2^(E-30), u = 1 + 2^-12 (exact in fp32 while E >= -96; 1 below): an fp32 x of the tile's top
         * binades is a multiple of 2^(E-24), so x 2^(30-E) would sit on a grid of 64 units and a quarter of such
         * values would fall on a tie of digit 0 (q = 256 j + 128), which balanced digits always round up. Over u the
         * grid is gone: the top three digits (QJ_IM_DM = 3) round x to nearest without that bias, and q keeps its
         * 2^-31 of the tile's largest |x| (one rounding, of a double product) */
        const bool du = E >= -96;
        const float u = du ? 1.000244140625f : 1.0f;
        w0 = scalbnf(u, E - 30);
        w1 = scalbnf(u, E - 22);
        w2 = scalbnf(u, E - 14);
        w3 = scalbnf(u, E - 6);
        const double r = scalbn(du ? 4096.0 / 4097.0 : 1.0, 30 - E); /* 1 / u */
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int q = __double2int_rn((double)v[i] * r);
#pragma unroll
            for (int p = 0; p < 4; p++) {
                const int dp = p < 3 ? (q << 24) >> 24 : q; /* balanced digit in [-128, 127] */
                d[p] |= qj_im_digit_byte(dp) << (8 * i);
                q = (q - dp) >> 8;
            }
        }
    }
    /* lane l = 8s + 4h + t holds values 32s + 16h + 4t + i: word 2 (s%2) + h of slot p*4 + t of half s/2 */
    const int s = lane >> 3, h = (lane >> 2) & 1, t = lane & 3;
    unsigned *base = xi + (size_t)T * 128 + (s >> 1) * 64 + t * 4 + 2 * (s & 1) + h;
#pragma unroll
    for (int p = 0; p < 4; p++) base[p * 16] = d[p];
    float sum = (v[0] + v[1]) + (v[2] + v[3]);
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    sum += __shfl_xor_sync(0xffffffffu, sum, 4);
    const float s1 = __shfl_sync(0xffffffffu, sum, 8), s2 = __shfl_sync(0xffffffffu, sum, 16),
                s3 = __shfl_sync(0xffffffffu, sum, 24);
    if (lane == 0) {
        xw[2 * T] = make_float4(w0, w1, w2, w3);
        xw[2 * T + 1] = make_float4(sum, s1, s2, s3);
    }
}

#endif
