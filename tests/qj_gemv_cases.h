/* qj_gemv_cases.h — the kernel specs the nvrtc and gpu tests cover:
 *   CUDA-core: every packed width x every group size (and per-channel) x
 *     regular and ragged shapes x batch 1 (the integer-dot GEMV) and 4 (the
 *     float GEMV), batch 2 on the ragged shapes, and the dense kernels;
 *   tensor-core: the same formats and shapes at batch 1 and 16, batch 3 and
 *     64 on the ragged shapes, and fused launches whose parts differ in
 *     format (segments) or share one;
 *   integer-MMA (the automatic choice, allow_mma 1): every format x shape at
 *     batch 1, batch 2 and 16 on the ragged shapes, batch 5 and 4 on a regular
 *     one, batch 16 on a long-K one (K split over blocks), and stacked parts
 *     of one format whose row counts are not multiples of 16. */
#ifndef QJ_GEMV_CASES_H
#define QJ_GEMV_CASES_H

#include <stdio.h>
#include <string.h>

#include "cuda_codegen.h"
#include "quant.h"

static const int qj_case_bits[] = {2, 3, 4, 5, 6, 7, 8};
static const int qj_case_groups[] = {32, 64, 128, 256, 512, 0};
/* the first five: every path's shapes; the last: long K (65 k-tiles), where above batch 4 the integer-MMA blocks
 * split K */
static const long long qj_case_shapes[][2] = {{256, 4096}, {64, 172}, {48, 64}, {33, 100}, {40, 1536}, {40, 8300}};

typedef struct qj_case {
    int nparts;
    qj_dtype dtype;    /* QJ_DTYPE_Q, or the dense dtype */
    qj_qformat f[3];   /* group as the user gives it (0 = per channel) */
    int64_t N[3], K;
    int batch, allow_mma; /* qj_gemv_spec_parts's: 0 = CUDA-core, 1 = integer-MMA, 2 = tensor-core cases */
    int sms;              /* > 0: the spec's m-tiles dealt as for a device of this many multiprocessors */
} qj_case;

/* Fused launches: {bits, group, sym, bf16 scales, N} per part, K, batch. */
static const struct {
    int p[3][5];
    int64_t K;
    int batch;
} qj_fused_cases[] = {
    {{{4, 128, 0, 0, 64}, {3, 64, 0, 0, 32}, {3, 64, 0, 0, 32}}, 256, 1},
    {{{5, 32, 1, 0, 48}, {8, 256, 0, 1, 40}, {2, 0, 0, 0, 33}}, 172, 4},
    {{{4, 64, 0, 0, 24}, {4, 64, 0, 0, 24}, {0}}, 100, 16},
    {{{6, 128, 0, 0, 96}, {7, 128, 1, 0, 96}, {0}}, 1536, 1},
    {{{4, 128, 0, 0, 64}, {3, 64, 0, 0, 32}, {3, 64, 0, 0, 32}}, 256, 64},
    {{{3, 32, 0, 1, 32}, {3, 32, 0, 1, 32}, {3, 32, 0, 1, 32}}, 4096, 2},
};

/* Case i (returns 0 when i is past the end). */
static inline int qj_gemv_case_get(int i, qj_case *c) {
    const int nb = 7, ng = 6, ns = 5, fmts = nb * ng;
    memset(c, 0, sizeof *c);
    c->nparts = 1;
    c->dtype = QJ_DTYPE_Q;
    int sh = -1, fi = -1;
    if (i < fmts * ns * 2) { /* CUDA-core, batch 1 and 4 */
        fi = i % fmts;
        sh = (i / fmts) % ns;
        c->batch = i < fmts * ns ? 1 : 4;
    } else if ((i -= fmts * ns * 2) < 3 * ns * 2) { /* dense */
        static const qj_dtype dense[3] = {QJ_DTYPE_F16, QJ_DTYPE_BF16, QJ_DTYPE_F32};
        c->dtype = dense[i % 3];
        c->N[0] = qj_case_shapes[(i / 3) % ns][0];
        c->K = qj_case_shapes[(i / 3) % ns][1];
        c->batch = i < 3 * ns ? 1 : 4;
        return 1;
    } else if ((i -= 3 * ns * 2) < fmts * ns * 2) { /* tensor cores, batch 1 and 16 */
        fi = i % fmts;
        sh = (i / fmts) % ns;
        c->batch = i < fmts * ns ? 1 : 16;
        c->allow_mma = 2;
    } else if ((i -= fmts * ns * 2) < fmts * 2 * 2) { /* tensor cores, batch 3 and 64, ragged shapes */
        fi = i % fmts;
        sh = (i / fmts) % 2 ? 3 : 1;
        c->batch = i < fmts * 2 ? 3 : 64;
        c->allow_mma = 2;
    } else if ((i -= fmts * 2 * 2) < (int)(sizeof qj_fused_cases / sizeof qj_fused_cases[0])) {
        c->nparts = 0;
        for (int p = 0; p < 3; p++) {
            const int *d = qj_fused_cases[i].p[p];
            if (!d[0]) break;
            c->f[p] = (qj_qformat){d[0], d[1], d[2], d[3] ? QJ_DTYPE_BF16 : QJ_DTYPE_F16};
            c->N[p] = d[4];
            c->nparts++;
        }
        c->K = qj_fused_cases[i].K;
        c->batch = qj_fused_cases[i].batch;
        c->allow_mma = 2;
        return 1;
    } else if ((i -= (int)(sizeof qj_fused_cases / sizeof qj_fused_cases[0])) < fmts * 2) {
        /* integer-dot GEMV at batch 2, ragged shapes (batch 1 is the first set) */
        fi = i % fmts;
        sh = (i / fmts) % 2 ? 3 : 1;
        c->batch = 2;
    } else if ((i -= fmts * 2) < fmts * ns) { /* integer-MMA, batch 1 */
        fi = i % fmts;
        sh = (i / fmts) % ns;
        c->batch = 1;
        c->allow_mma = 1;
    } else if ((i -= fmts * ns) < fmts * 7) { /* integer-MMA, batch 2 / 16 ragged, 5 and 4 regular, 16 long K */
        static const int bs[7] = {2, 2, 16, 16, 5, 4, 16}, shs[7] = {1, 3, 1, 3, 4, 4, 5};
        fi = i % fmts;
        sh = shs[i / fmts];
        c->batch = bs[i / fmts];
        c->allow_mma = 1;
    } else if ((i -= fmts * 7) < 15 + 4 + 2) { /* integer-MMA, stacked parts of one format; 7..12 are wide
                                         * (>= 1024 m-tiles: at batch 1 two m-tiles per block, the ring at 3/4/5-bit
                                         * and 2-bit group 32, 16 warps x two k-tiles at 2-bit group 64;
                                         * above batch 4 the block-shared activations); the last two split K over
                                         * blocks (8-bit: two m-blocks, the last clamped, 65 k-tiles in 22 splits;
                                         * 2-bit at batch 9: 71 k-tiles in 24 splits; the last split of each has 2);
                                         * 15..18 are 9 and 10 again with their m-tiles dealt as for 100 and 80
                                         * multiprocessors (1,025 m-tiles over 200 and 160 blocks: groups of 2, 1
                                         * and no m-tiles);
                                         * 19, 20 split K (in clusters under QJ_IM_KSCL=1): 257 m-tiles (the last m-block one m-tile)
                                         * over 8 k-tiles in 4 splits at batch 16, and three parts of 4-bit group
                                         * 64 over 10 k-tiles in 5 splits at batch 9 */
        if (i >= 15 && i < 19) c->sms = i < 17 ? 100 : 80, i = 9 + (i - 15) % 2;
        static const int64_t rows[21][3] = {{33, 16, 7},  {64, 48, 0},    {8, 8, 8},     {100, 20, 20}, {24, 24, 0},
                                            {40, 0, 0},   {17, 31, 0},    {8192, 8200, 0}, {16400, 0, 0}, {8192, 8200, 0},
                                            {16400, 0, 0}, {16400, 0, 0}, {8200, 8200, 0}, {200, 72, 0}, {40, 30, 0},
                                            {0}, {0}, {0}, {0}, {4112, 0, 0}, {2064, 1024, 1040}};
        static const int64_t ks[21] = {172, 256, 64, 1536, 100, 4096, 300, 512, 384, 640, 200, 256, 384, 8300, 9000,
                                       0, 0, 0, 0, 1024, 1280};
        static const int bts[21] = {1, 2, 1, 16, 3, 1, 5, 1, 1, 16, 7, 1, 1, 16, 9, 0, 0, 0, 0, 16, 9};
        c->nparts = 0;
        for (int p = 0; p < 3 && rows[i][p]; p++) {
            /* the wide ones: the 4- and 3-bit rings, 4- and 6-bit block-shared, 2-bit at groups 32 and 64 */
            const int bits = i == 7 || i == 9 || i >= 19 ? 4 : i == 8 ? 3 : i == 10 ? 6 : i == 11 || i == 12 ? 2 : qj_case_bits[i % nb];
            const int group = i == 11 ? 32 : i == 12 || i == 20 ? 64 : i == 19 ? 128 : qj_case_groups[(i * 2) % ng];
            c->f[p] = (qj_qformat){bits, group, i % 2, i % 3 == 0 ? QJ_DTYPE_BF16 : QJ_DTYPE_F16};
            c->N[p] = rows[i][p];
            c->nparts++;
        }
        c->K = ks[i];
        c->batch = bts[i];
        c->allow_mma = 1;
        return 1;
    } else {
        return 0;
    }
    c->f[0] = (qj_qformat){qj_case_bits[fi % nb], qj_case_groups[fi / nb], (i / 3) % 2,
                           (i % 5 == 0) ? QJ_DTYPE_BF16 : QJ_DTYPE_F16};
    c->N[0] = qj_case_shapes[sh][0];
    c->K = qj_case_shapes[sh][1];
    return 1;
}

/* The spec of a case (tensor descriptors without data). */
static inline qj_status qj_gemv_case_spec(const qj_case *c, qj_gemv_spec *s) {
    qj_tensor t[3];
    const qj_tensor *p[3];
    for (int i = 0; i < c->nparts; i++) {
        memset(&t[i], 0, sizeof t[i]);
        snprintf(t[i].name, sizeof t[i].name, "part%d", i);
        t[i].ndim = 2;
        t[i].dtype = c->dtype;
        t[i].shape[0] = c->N[i];
        t[i].shape[1] = c->K;
        if (c->dtype == QJ_DTYPE_Q) {
            t[i].q = c->f[i];
            t[i].q.group = qj_qformat_group(&c->f[i], c->K);
        }
        p[i] = &t[i];
    }
    qj_status st = qj_gemv_spec_parts(p, c->nparts, c->batch, c->allow_mma, s);
    if (!st && c->sms) qj_gemv_spec_deal(s, c->sms);
    return st;
}

#endif
