/* test_mma_layout.c — the tensor-core weight re-layout (compiler/cuda_codegen.c)
 * decoded back on the CPU with the kernel's rules (templates/qj_mma.cu:
 * pair q = 4m + r of lane (g, t) in k tile kt holds rows g + 8(r&1), columns
 * 16m + 2t + 8(r>>1) + {0, 1}; bit planes 4/2/1 or bytes) must give every
 * code of the packed layout back, for every width, ragged N and K; scales sit
 * at [row tile][group][g][half]; and the spec chooser picks the kernel the
 * runtime expects. Runs without a GPU, so CI catches a broken re-layout. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_codegen.h"
#include "loaders.h"
#include "qj_layout.h"
#include "qj_model.h"
#include "qj_test.h"
#include "quant.h"

/* Without digit 0 (QJ_IM_DM = 3) x is rounded within 2^-22 of its tile's largest |x|, to nearest and without a bias
 * (the prep's unit u, qj_imprep.cuh): over every output of a case the relative L2 error stays near 1e-6 at K =
 * 8300. With ties of digit 0 always rounded up (u = 1) it came out 4-6e-6 there, and 1.0-1.6e-5 on the GPU. */
#define QJ_IM_DM3_REL 3e-6

/* the code the kernel extracts for (lane, pair q, half) from a lane's words */
static uint32_t decode(const uint32_t *w, int B, int q, int half) {
    if (B == 8) return (w[q >> 1] >> (16 * (q & 1) + 8 * half)) & 255u;
    int p4 = B >= 4, p2 = B == 2 || B == 3 || B == 6 || B == 7, p1 = B == 3 || B == 5 || B == 7;
    int o2 = p4 ? 4 : 0, o1 = p4 * 4 + p2 * 2, w2 = p4 ? 8 : 0, w1 = w2 + (p2 ? 4 : 0), sh = 16 * half;
    uint32_t c = 0;
    if (p4) c |= (w[q >> 2] >> (sh + 4 * (q & 3))) & 15u;
    if (p2) c |= ((w[w2 + (q >> 3)] >> (sh + 2 * (q & 7))) & 3u) << o2;
    if (p1) c |= ((w[w1 + (q >> 4)] >> (sh + (q & 15))) & 1u) << o1;
    return c;
}

/* A random N x K weight quantized by the C quantizer into qt (arrays in qb). */
static void random_quantized(int B, int group, int sym, int64_t N, int64_t K, qj_tensor *qt, qj_qbuf *qb) {
    float *w = malloc((size_t)(N * K) * sizeof *w);
    for (int64_t i = 0; i < N * K; i++) w[i] = qj_test_frand();
    qj_tensor src;
    int64_t shape[2] = {N, K};
    qj_tensor_set(&src, "w", QJ_DTYPE_F32, 2, shape, w);
    qj_qformat f = {B, group, sym, QJ_DTYPE_F16};
    QJ_CHECK_OK(qj_quantize(&src, &f, qb));
    qj_tensor_set_quant(qt, "w", N, K, &f, qb);
    free(w);
}

static void check_format(int B, int group, int sym, int64_t N, int64_t K) {
    qj_tensor qt;
    qj_qbuf qb = {0};
    random_quantized(B, group, sym, N, K, &qt, &qb);
    const qj_tensor *parts[1] = {&qt};
    qj_gemv_spec s;
    QJ_CHECK_OK(qj_gemv_spec_parts(parts, 1, 1, 2, &s));
    QJ_CHECK(s.mma == 1 && s.nseg == 1);
    void *dw = NULL, *ds = NULL;
    size_t wl = 0, sl = 0;
    QJ_CHECK_OK(qj_gemv_host_arrays(&s, parts, 0, &dw, &wl, &ds, &sl));
    int64_t KT = (K + 127) / 128, NT = (N + 15) / 16, tw = 2 * B, q4 = tw / 4;
    QJ_CHECK(wl == (size_t)(NT * KT * 64 * B) * 4);
    int64_t ge = qt.q.group >= K ? KT * 128 : qt.q.group, ngt = (KT * 128 + ge - 1) / ge, ng = QJ_NGROUPS(K, qt.q.group);
    QJ_CHECK(sl == (size_t)(NT * ngt * 16) * 4);
    int64_t rw = QJ_ROW_WORDS(K, B), wrong = 0, swrong = 0;
    const uint32_t *T = dw, *S = ds, *codes = qt.data;
    const uint16_t *sc = qt.scales, *zr = qt.zeros;
    for (int64_t nt = 0; nt < NT; nt++)
        for (int64_t kt = 0; kt < KT; kt++)
            for (int lane = 0; lane < 32; lane++) {
                const uint32_t *tile = T + (nt * KT + kt) * 64 * B;
                uint32_t lw[16];
                for (int i = 0; i < tw; i++)
                    lw[i] = i < 4 * q4 ? tile[(i / 4) * 128 + lane * 4 + i % 4] : tile[q4 * 128 + lane * 2 + (i - 4 * q4)];
                int g = lane >> 2, t = lane & 3;
                for (int q = 0; q < 32; q++)
                    for (int h = 0; h < 2; h++) {
                        int m = q >> 2, r = q & 3;
                        int64_t row = nt * 16 + g + 8 * (r & 1), k = kt * 128 + 16 * m + 2 * t + 8 * (r >> 1) + h;
                        uint32_t want = row < N && k < K ? qj_unpack_code(codes + row * rw, (uint32_t)k, (uint32_t)B) : 0;
                        if (decode(lw, B, q, h) != want) wrong++;
                    }
            }
    for (int64_t nt = 0; nt < NT; nt++)
        for (int64_t grp = 0; grp < ngt; grp++)
            for (int g = 0; g < 8; g++)
                for (int h = 0; h < 2; h++) {
                    int64_t row = nt * 16 + g + 8 * h;
                    uint32_t want = 0;
                    if (row < N && grp < ng) want = sc[row * ng + grp] | (sym ? 0u : (uint32_t)zr[row * ng + grp] << 16);
                    if (S[((nt * ngt + grp) * 8 + g) * 2 + h] != want) swrong++;
                }
    QJ_CHECK_MSG(wrong == 0 && swrong == 0, "bits %d group %d N %lld K %lld: %lld codes, %lld scales misplaced", B, group,
                 (long long)N, (long long)K, (long long)wrong, (long long)swrong);
    free(dw);
    free(ds);
    qj_qbuf_free(&qb);
}

/* ---- the integer-dot GEMV (templates/qj_dqv.cu) ---- */

/* codes of group g (values 4g..4g+3, one per byte) of block l of a tile of nb
 * blocks starting at p, by the kernel's rules */
static uint32_t dq_group(const uint32_t *p, int B, int nb, int l, int g) {
    if (QJ_DQ_P8(B)) return g < 4 ? p[QJ_DQ_OFF4(B, nb, l) + g] : p[QJ_DQ_OFF8H(B, nb, l) + g - 4];
    uint32_t c = 0;
    if (QJ_DQ_P4(B)) c = (p[QJ_DQ_OFF4(B, nb, l) + (g >> 1)] >> (4 * (g & 1))) & 0x0F0F0F0Fu;
    if (QJ_DQ_P2(B)) {
        int sh = QJ_DQ_S2(B) - 2 * (g & 3);
        uint32_t v = p[QJ_DQ_OFF2(B, nb, l) + (g >> 2)];
        c |= (sh >= 0 ? v << sh : v >> -sh) & (0x03030303u << QJ_DQ_S2(B));
    }
    if (QJ_DQ_P1(B)) {
        int sh = QJ_DQ_S1(B) - g;
        uint32_t v = p[QJ_DQ_OFF1(B, nb, l)];
        c |= (sh >= 0 ? v << sh : v >> -sh) & (0x01010101u << QJ_DQ_S1(B));
    }
    return c;
}

/* The prep's fixed point: q_j = rint(x_j 2^(22-E)), |x| < 2^E over the block. */
static void dq_prep(const float *x, int64_t K, int64_t blk, int32_t *q, double *unit) {
    float m = 0;
    for (int j = 0; j < 32; j++) {
        int64_t k = blk * 32 + j;
        float a = k < K ? fabsf(x[k]) : 0.0f;
        m = a > m ? a : m;
    }
    int E = 0;
    if (m > 0) frexpf(m, &E);
    for (int j = 0; j < 32; j++) {
        int64_t k = blk * 32 + j;
        q[j] = m > 0 && k < K ? (int32_t)lrintf(ldexpf(x[k], 22 - E)) : 0;
    }
    *unit = ldexp(1.0, E - 22);
}

/* The re-layout decoded with the kernel's rules gives every code back, and
 * the kernel's arithmetic (byte planes of the fixed-point activations,
 * integer dot products, one scale/zero FMA per block) emulated on the CPU
 * matches the dequantized product within the fp32 bound. */
static void check_dq(int B, int group, int sym, int64_t N, int64_t K) {
    qj_tensor qt;
    qj_qbuf qb = {0};
    random_quantized(B, group, sym, N, K, &qt, &qb);
    float *x = malloc((size_t)K * sizeof *x);
    for (int64_t k = 0; k < K; k++) x[k] = qj_test_frand() * (k % 300 < 128 ? 1.0f : k % 300 < 200 ? 1e-3f : 40.0f);
    const qj_tensor *parts[1] = {&qt};
    qj_gemv_spec s;
    QJ_CHECK_OK(qj_gemv_spec_parts(parts, 1, 1, 0, &s)); /* chips before sm_80 */
    QJ_CHECK(s.dq == 1 && s.mma == 0 && s.im == 0);
    void *dw = NULL, *ds = NULL;
    size_t wl = 0, sl = 0;
    QJ_CHECK_OK(qj_gemv_host_arrays(&s, parts, 0, &dw, &wl, &ds, &sl));
    const int64_t nb = QJ_NBLOCKS(K), rwp = QJ_DQ_ROW_WORDS(K, B), rw = QJ_ROW_WORDS(K, B);
    const int64_t ng = QJ_NGROUPS(K, qt.q.group);
    QJ_CHECK(wl == (size_t)(N * rwp) * 4);
    const uint32_t *T = dw, *codes = qt.data;
    int64_t wrong = 0, far = 0;
    int32_t *qx = malloc((size_t)(nb * 32) * sizeof *qx);
    double *unit = malloc((size_t)nb * sizeof *unit);
    for (int64_t b = 0; b < nb; b++) dq_prep(x, K, b, qx + b * 32, &unit[b]);
    for (int64_t row = 0; row < N; row++) {
        double acc = 0, ref = 0, mag = 0;
        for (int64_t b = 0; b < nb; b++) {
            int64_t t = b / 32;
            int l = (int)(b % 32), tn = (int)(nb - t * 32 < 32 ? nb - t * 32 : 32);
            const uint32_t *p = T + row * rwp + t * 32 * B;
            int64_t a[3] = {0, 0, 0}, sx = 0;
            for (int g = 0; g < 8; g++) {
                uint32_t cw = dq_group(p, B, tn, l, g);
                for (int k = 0; k < 4; k++) {
                    int j = 4 * g + k;
                    int64_t kk = b * 32 + j;
                    uint32_t c = (cw >> (8 * k)) & 255u;
                    uint32_t want = kk < K ? qj_unpack_code(codes + row * rw, (uint32_t)kk, (uint32_t)B) : 0;
                    if (c != want) wrong++;
                    int32_t qv = qx[b * 32 + j];
                    a[0] += (int64_t)c * (qv & 0xff);
                    a[1] += (int64_t)c * ((qv >> 8) & 0xff);
                    a[2] += (int64_t)c * (qv >> 16);
                    sx += qv;
                }
            }
            const int64_t grp = b * 32 / qt.q.group;
            const uint16_t *sc = qt.scales, *zr = qt.zeros;
            float scale = qj_f16_to_f32(sc[row * ng + grp]);
            float zero = sym ? -(float)(1 << (B - 1)) * scale : qj_f16_to_f32(zr[row * ng + grp]);
            double dot = ((double)a[2] * 65536.0 + (double)a[1] * 256.0 + (double)a[0]) * unit[b];
            acc += scale * dot + zero * (double)sx * unit[b];
            for (int j = 0; j < 32 && b * 32 + j < K; j++) {
                int64_t kk = b * 32 + j;
                uint32_t c = qj_unpack_code(codes + row * rw, (uint32_t)kk, (uint32_t)B);
                double wv = (double)scale * c + zero;
                ref += wv * x[kk];
                mag += fabs(wv * x[kk]);
            }
        }
        if (!(fabs(acc - ref) <= 1e-5 * mag + 1e-30)) far++;
    }
    QJ_CHECK_MSG(wrong == 0 && far == 0, "dq bits %d group %d N %lld K %lld: %lld codes misplaced, %lld rows off", B,
                 group, (long long)N, (long long)K, (long long)wrong, (long long)far);
    free(qx);
    free(unit);
    free(dw);
    free(ds);
    qj_qbuf_free(&qb);
    free(x);
}

/* ---- the integer-MMA GEMV (templates/qj_imv.cu) ---- */

/* The code at (lane, k-step st, register r, byte i) of a tile, read with the
 * plane rules of qj_layout.h one bit field at a time. */
static uint32_t im_code(const uint32_t *tile, int B, int lane, int st, int r, int i) {
    if (B == 8) return (tile[lane * 16 + 4 * st + r] >> (8 * i)) & 255u;
    if (B == 3) { /* whole codes: registers 0, 1 and bits 0..1 of 2 in word st; 2's bit 2 and 3 in word 4 + st / 2 */
        const uint32_t p = tile[lane * 4 + st] >> (8 * i), q = tile[128 + lane * 2 + st / 2] >> (8 * i + 4 * (st % 2));
        return r < 2 ? (p >> (3 * r)) & 7u : r == 2 ? ((p >> 6) & 3u) | ((q & 1u) << 2) : (q >> 1) & 7u;
    }
    const int p4 = B >= 4, p2 = B == 2 || B == 3 || B == 6 || B == 7, p1 = B == 3 || B == 5 || B == 7;
    const int wa = p4 ? 8 : 0, o2 = p4 ? 4 : 0, o1 = p4 * 4 + p2 * 2;
    uint32_t c = 0;
    if (p4) c |= (tile[lane * 8 + 2 * st + (r >> 1)] >> (8 * i + 4 * (r & 1))) & 15u;
    if (p2) c |= ((tile[32 * wa + lane * 4 + st] >> (8 * i + 2 * r)) & 3u) << o2;
    if (p1) c |= ((tile[32 * wa + 128 * p2 + lane * 2 + st / 2] >> (8 * i + r + 4 * (st % 2))) & 1u) << o1;
    return c;
}

/* The prep of one 128-value tile on the CPU (qj_layout.h, templates/qj_imprep.cuh): E with |x| < 2^E, u = 1 + 2^-12
 * (1 where E < -96), q = rint(x 2^(30-E) / u); digit 0's weight u 2^(E-30) (im_unit). */
static double im_unit(int E) { return ldexp(E >= -96 ? 1.0 + 1.0 / 4096 : 1.0, E - 30); }
static int im_prep(const float *x, int64_t K, int64_t T, int32_t *q) {
    float mx = 0;
    for (int j = 0; j < 128; j++)
        if (T * 128 + j < K && fabsf(x[T * 128 + j]) > mx) mx = fabsf(x[T * 128 + j]);
    int E = 0;
    if (mx > 0) frexpf(mx, &E); /* mx = f 2^E, f in [0.5, 1): |x| < 2^E */
    const double r = ldexp(E >= -96 ? 4096.0 / 4097.0 : 1.0, 30 - E);
    for (int j = 0; j < 128; j++) q[j] = T * 128 + j < K ? (int32_t)llrint((double)x[T * 128 + j] * r) : 0;
    return E;
}

/* The re-layout of n stacked parts read back with the documented rules gives
 * every code and scale back; qj_im_reg (the kernel's unpack) builds the same
 * registers; the prep's four balanced digits rebuild q; and the kernel's
 * arithmetic (per fold D = sum code * digit, exact; acc += scale * sum_p D_p
 * 2^(E-30+8p) + zero * sum x) emulated on the CPU matches the dequantized
 * product within the fp32 bound; without digit 0 (the digit-major kernels
 * above batch 4, QJ_IM_DM = 3) within test_gpu_gemv's bound, 1e-5 sum|w x|. */
static void check_im(int B, int group, int sym, const int64_t *Ns, int n, int64_t K, int batch) {
    qj_tensor qt[3];
    qj_qbuf qb[3];
    memset(qb, 0, sizeof qb);
    const qj_tensor *parts[3];
    int64_t N = 0;
    for (int i = 0; i < n; i++) {
        random_quantized(B, group, sym, Ns[i], K, &qt[i], &qb[i]);
        parts[i] = &qt[i];
        N += Ns[i];
    }
    qj_gemv_spec s;
    QJ_CHECK_OK(qj_gemv_spec_parts(parts, n, batch, 1, &s));
    QJ_CHECK(s.im == 1 && s.mma == 0 && s.dq == 0 && s.N == N);
    void *dw = NULL, *ds = NULL;
    size_t wl = 0, sl = 0;
    QJ_CHECK_OK(qj_gemv_host_arrays(&s, parts, 0, &dw, &wl, &ds, &sl));
    const int G = qt[0].q.group;
    const int64_t kt_n = QJ_IM_KT(K), mt_n = QJ_IM_MTILES(N), ngt = (kt_n * 128 + G - 1) / G, ng = QJ_NGROUPS(K, G);
    const int64_t rw = QJ_ROW_WORDS(K, B);
    QJ_CHECK(wl == (size_t)(mt_n * kt_n * 64 * B) * 4 && sl == (size_t)(mt_n * ngt * 16) * 4);
    const uint32_t *W = dw, *S = ds;
    const int fold = G % 128 == 0 ? 4 : G % 64 == 0 ? 2 : 1;
    int64_t wrong = 0, wrong_reg = 0, wrong_scale = 0, bad_digit = 0, far = 0, far3 = 0;
    double num3 = 0, den3 = 0; /* the relative L2 error without digit 0, over every output */
    float *x = malloc((size_t)(batch * K) * sizeof *x);
    for (int64_t j = 0; j < batch * K; j++) {
        int64_t k = j % K;
        x[j] = qj_test_frand() * (k % 300 < 128 ? 1.0f : k % 300 < 200 ? 1e-3f : 40.0f);
    }
    for (int64_t mt = 0; mt < mt_n; mt++) {
        /* codes and registers */
        for (int64_t kt = 0; kt < kt_n; kt++) {
            const uint32_t *tile = W + (size_t)(mt * kt_n + kt) * (size_t)(64 * B);
            const int wa = QJ_IM_WA(B);
            for (int lane = 0; lane < 32; lane++)
                for (int st = 0; st < 4; st++)
                    for (int r = 0; r < 4; r++) {
                        uint32_t reg = 0;
                        for (int i = 0; i < 4; i++) {
                            const int64_t row = mt * 16 + lane / 4 + 8 * (r & 1);
                            const int64_t k = kt * 128 + 32 * st + 16 * (r >> 1) + 4 * (lane % 4) + i;
                            uint32_t want = 0;
                            int64_t lr = row;
                            int pi = 0;
                            while (pi < n && lr >= Ns[pi]) lr -= Ns[pi++];
                            if (row < N && k < K) want = qj_unpack_code((const uint32_t *)qt[pi].data + lr * rw, (uint32_t)k, (uint32_t)B);
                            uint32_t c = im_code(tile, B, lane, st, r, i);
                            if (c != want) wrong++;
                            reg |= c << (8 * i);
                        }
                        const uint32_t *wa_p = tile + lane * wa, *w2 = tile + QJ_IM_OFF2(B) + lane * 4,
                                       *w1 = tile + QJ_IM_OFF1(B) + lane * 2;
                        if (qj_im_reg(wa_p, w2, w1, B, st, r) != reg) wrong_reg++;
                    }
        }
        /* scales */
        for (int64_t gi = 0; gi < ngt; gi++)
            for (int g = 0; g < 8; g++)
                for (int h = 0; h < 2; h++) {
                    int64_t row = mt * 16 + g + 8 * h, lr = row;
                    int pi = 0;
                    while (pi < n && lr >= Ns[pi]) lr -= Ns[pi++];
                    uint32_t want = 0;
                    if (row < N && gi < ng) {
                        want = ((const uint16_t *)qt[pi].scales)[lr * ng + gi];
                        if (!sym) want |= (uint32_t)((const uint16_t *)qt[pi].zeros)[lr * ng + gi] << 16;
                    }
                    if (S[((mt * ngt + gi) * 8 + g) * 2 + h] != want) wrong_scale++;
                }
    }
    /* the arithmetic, per batch row and output row */
    int32_t *q = malloc((size_t)(kt_n * 128) * sizeof *q), *q3 = malloc((size_t)(kt_n * 128) * sizeof *q3);
    int *E = malloc((size_t)kt_n * sizeof *E);
    for (int b = 0; b < batch; b++) {
        const float *xb = x + (size_t)b * (size_t)K;
        for (int64_t T = 0; T < kt_n; T++) {
            E[T] = im_prep(xb, K, T, q + T * 128);
            for (int j = 0; j < 128; j++) { /* balanced digits rebuild q */
                int32_t v = q[T * 128 + j], d[4], rest = v;
                for (int p = 0; p < 3; p++) {
                    d[p] = (int32_t)(int8_t)(uint8_t)(rest & 0xff);
                    rest = (rest - d[p]) / 256;
                }
                d[3] = rest;
                q3[T * 128 + j] = v - d[0]; /* digits 1..3 only */
                if (d[3] < -128 || d[3] > 127 || d[0] + 256 * (d[1] + 256 * (d[2] + 256 * d[3])) != v) bad_digit++;
            }
        }
        for (int64_t row = 0; row < N; row++) {
            int64_t lr = row;
            int pi = 0;
            while (pi < n && lr >= Ns[pi]) lr -= Ns[pi++];
            const uint32_t *cr = (const uint32_t *)qt[pi].data + lr * rw;
            const uint16_t *sc = qt[pi].scales, *zr = qt[pi].zeros;
            double acc = 0, acc3 = 0, ref = 0, mag = 0;
            for (int64_t T = 0; T < kt_n; T++)
                for (int f = 0; f < 4 / fold; f++) {
                    const int64_t k0 = T * 128 + f * fold * 32, gi = k0 / G;
                    double scale = 0, zero = 0;
                    if (gi < ng) {
                        scale = qj_f16_to_f32(sc[lr * ng + gi]);
                        zero = sym ? -(double)(1 << (B - 1)) * scale : qj_f16_to_f32(zr[lr * ng + gi]);
                    }
                    int64_t D = 0, D3 = 0; /* exact: sum over the fold of code * q */
                    double sx = 0;
                    for (int64_t k = k0; k < k0 + 32 * fold && k < K; k++) {
                        const int64_t c = qj_unpack_code(cr, (uint32_t)k, (uint32_t)B);
                        D += c * q[k];
                        D3 += c * q3[k];
                        sx += xb[k];
                    }
                    acc += scale * ((double)D * im_unit(E[T])) + zero * sx;
                    acc3 += scale * ((double)D3 * im_unit(E[T])) + zero * sx;
                }
            for (int64_t k = 0; k < K; k++) {
                int64_t gi = k / G;
                double scale = qj_f16_to_f32(sc[lr * ng + gi]);
                double zero = sym ? -(double)(1 << (B - 1)) * scale : qj_f16_to_f32(zr[lr * ng + gi]);
                double wv = scale * qj_unpack_code(cr, (uint32_t)k, (uint32_t)B) + zero;
                ref += wv * xb[k];
                mag += fabs(wv * xb[k]);
            }
            if (!(fabs(acc - ref) <= 1e-6 * mag + 1e-30)) far++;
            if (!(fabs(acc3 - ref) <= 1e-5 * mag + 1e-30)) far3++;
            num3 += (acc3 - ref) * (acc3 - ref);
            den3 += ref * ref;
        }
    }
    const double rel3 = sqrt(num3 / (den3 > 0 ? den3 : 1));
    QJ_CHECK_MSG(wrong == 0 && wrong_reg == 0 && wrong_scale == 0 && bad_digit == 0 && far == 0 && far3 == 0 &&
                     rel3 < QJ_IM_DM3_REL,
                 "im bits %d group %d N %lld (%d parts) K %lld batch %d: %lld codes, %lld registers, %lld scales "
                 "misplaced, %lld bad digits, %lld outputs off (%lld without digit 0), relative L2 without digit 0 "
                 "%.3g (bound %.1g)",
                 B, group, (long long)N, n, (long long)K, batch, (long long)wrong, (long long)wrong_reg,
                 (long long)wrong_scale, (long long)bad_digit, (long long)far, (long long)far3, rel3, QJ_IM_DM3_REL);
    if (getenv("QJ_TEST_VERBOSE")) printf("im bits %d group %d K %lld batch %d: relative L2 without digit 0 %.3g\n", B, group, (long long)K, batch, rel3);
    free(q);
    free(q3);
    free(E);
    free(x);
    free(dw);
    free(ds);
    for (int i = 0; i < n; i++) qj_qbuf_free(&qb[i]);
}

static qj_tensor desc(const char *name, int bits, int group, int64_t N, int64_t K) {
    qj_tensor t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.ndim = 2;
    t.dtype = QJ_DTYPE_Q;
    t.shape[0] = N;
    t.shape[1] = K;
    qj_qformat f = {bits, group, 0, QJ_DTYPE_F16};
    t.q = f;
    t.q.group = qj_qformat_group(&f, K);
    return t;
}

int main(void) {
    for (int B = 2; B <= 8; B++) {
        check_format(B, 128, 0, 48, 512);
        check_format(B, 32, B % 2, 33, 172);
        check_format(B, 0, 0, 17, 100);
        check_format(B, 256, 1, 16, 300);
        check_dq(B, 128, 0, 8, 4096);
        check_dq(B, 32, B % 2, 5, 172);
        check_dq(B, 0, 0, 3, 1100);
        check_dq(B, 64, 1, 2, 2080);
        const int64_t one[1] = {40}, three[3] = {33, 16, 7}, two[2] = {64, 48};
        check_im(B, 128, 0, one, 1, 4096, 1);
        check_im(B, 32, B % 2, three, 3, 172, 2);
        check_im(B, 0, 0, two, 2, 1100, 1);
        check_im(B, 64, 1, one, 1, 2080, 5);
        check_im(B, 96, 0, three, 3, 300, 16);
        check_im(B, 256, B % 2, one, 1, 1536, 3);
        check_im(B, 128, 0, one, 1, 8300, 4); /* test_gpu_gemv's long K, where a bias in digit 0's rounding shows */
    }
    /* the chooser */
    qj_tensor q = desc("q", 4, 128, 64, 256), k = desc("k", 3, 64, 32, 256), v = desc("v", 3, 64, 32, 256);
    qj_tensor q4 = desc("q4", 4, 128, 64, 256), odd = desc("odd", 4, 96, 64, 256);
    const qj_tensor *mixed[3] = {&q, &k, &v}, *same[2] = {&q, &q4}, *o96[1] = {&odd};
    qj_gemv_spec s;
    QJ_CHECK_OK(qj_gemv_spec_parts(mixed, 3, 1, 1, &s));
    QJ_CHECK(s.mma == 1 && s.nseg == 2 && s.seg[0].N == 64 && s.seg[1].N == 64 && s.seg[1].nparts == 2 && s.N == 128);
    QJ_CHECK_OK(qj_gemv_spec_parts(same, 2, 1, 1, &s)); /* one format, sm_80+: the integer-MMA GEMV */
    QJ_CHECK(s.mma == 0 && s.dq == 0 && s.im == 1 && s.N == 128 && s.seg[0].nparts == 2);
    QJ_CHECK(s.stages == 0 && s.unroll == 1 && s.warps == 1); /* a short 4-bit layer at batch 1: one k-tile a register stage */
    QJ_CHECK_OK(qj_gemv_spec_parts(same, 2, 2, 1, &s));
    QJ_CHECK(s.stages == 4 && s.unroll == 1 && !s.xsmem); /* 4-bit at other batches: the shared-memory ring */
    QJ_CHECK_OK(qj_gemv_spec_parts(same, 2, 16, 1, &s));
    QJ_CHECK(s.im == 1 && s.mma == 0 && !s.bx);
    { /* above batch 4 (compiler/cuda_codegen.c im_spec) */
        qj_tensor gu4 = desc("gu4", 4, 128, 28672, 4096), gu8 = desc("gu8", 8, 128, 28672, 4096);
        qj_tensor dn4 = desc("dn4", 4, 128, 4096, 14336), qkv4 = desc("qkv4", 4, 128, 6144, 4096);
        qj_tensor o4 = desc("o4", 4, 128, 4096, 4096);
        const qj_tensor *p[1] = {&gu4};
        unsigned grid, block;
        /* wide: block-shared activations, digit-major tiles of the top three digits, 4 groups x 2 warps (one octet of
         * batch rows each), 2 m-tiles a group; a slot = 16 x 544 B of activations + 4 x 2 x 1088 B of weights,
         * 3 of them (4 would fit 96 KiB; wide layers take 3) */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(s.bx && s.dm == 3 && s.mt == 2 && s.warps == 8 && s.jw == 4 && s.stages == 3 && s.cvt == 2 && s.xl == 1);
        char nm[160];
        /* its 1,792 m-tiles in 224 blocks of 8, two a multiprocessor, dealt over whole waves (qj_gemv_spec_deal) where
         * the whole blocks are more than one a multiprocessor and not whole waves: {multiprocessors, blocks} */
        static const int deal[][2] = {{132, 264}, {0, 0}, {112, 0}, {114, 228}, {200, 400}, {224, 0}, {80, 320}};
        for (size_t r = 0; r < sizeof deal / sizeof deal[0]; r++) {
            qj_gemv_spec d = s;
            qj_gemv_spec_deal(&d, deal[r][0]);
            QJ_CHECK_MSG(d.nb == deal[r][1], "gate|up, %d multiprocessors: nb %d, expected %d", deal[r][0], d.nb, deal[r][1]);
        }
        QJ_CHECK(s.nb == 0); /* the spec functions deal only under QJ_IM_DEAL=1, by qj_gemv_set_sms's count */
        setenv("QJ_IM_DEAL", "1", 1);
        qj_gemv_set_sms(132);
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK_MSG(s.nb == 264, "QJ_IM_DEAL=1 on 132 multiprocessors: nb %d", s.nb);
        setenv("QJ_IM_NB", "0", 1);
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK_MSG(s.nb == 0, "QJ_IM_NB=0 still deals (nb %d)", s.nb);
        unsetenv("QJ_IM_NB");
        unsetenv("QJ_IM_DEAL");
        qj_gemv_set_sms(0);
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        qj_gemv_name(&s, "sm_90a", nm, sizeof nm);
        QJ_CHECK_MSG(strstr(nm, "_m2w8u1s3b4d3_") != NULL, "%s", nm);
        setenv("QJ_IM_STAGES", "4", 1); /* asked for: four */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(s.stages == 4);
        unsetenv("QJ_IM_STAGES");
        setenv("QJ_IM_DM", "0", 1); /* the digit pairs (4 m-tiles a group, 3 slots): their own name */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        qj_gemv_name(&s, "sm_90a", nm, sizeof nm);
        QJ_CHECK_MSG(s.dm == 0 && s.mt == 4 && strstr(nm, "_m4w8u1s3b4_") != NULL, "%s", nm);
        QJ_CHECK(qj_gemv_smem_bytes(&s) == 3 * (16 * 544 + 4 * 4 * 1088));
        qj_gemv_launch_dims(&s, &grid, &block);
        QJ_CHECK(grid == 112 && block == 256 && s.ks == 1); /* 112 blocks of 16 m-tiles: no k split */
        setenv("QJ_IM_DM", "4", 1); /* all four digits (opt-in): their own name */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        qj_gemv_name(&s, "sm_90a", nm, sizeof nm);
        QJ_CHECK_MSG(s.dm == 4 && strstr(nm, "_m2w8u1s3b4d4_") != NULL, "%s", nm);
        setenv("QJ_IM_DM", "2", 1); /* not a digit-major count: the digit pairs */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(s.dm == 0);
        unsetenv("QJ_IM_DM");
        setenv("QJ_IM_JW", "2", 1); /* four warps a group: two octets do not split over them, so digit pairs */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(s.bx && s.jw == 2 && s.dm == 0);
        unsetenv("QJ_IM_JW");
        setenv("QJ_IM_CVT", "0", 1); /* the earlier fold: its own kernel name */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        qj_gemv_name(&s, "sm_90a", nm, sizeof nm);
        QJ_CHECK_MSG(s.cvt == 0 && strstr(nm, "_m2w8u1s3b4d3c0_") != NULL, "%s", nm);
        unsetenv("QJ_IM_CVT");
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(qj_gemv_smem_bytes(&s) == 3 * (16 * 544 + 4 * 2 * 1088));
        qj_gemv_launch_dims(&s, &grid, &block);
        QJ_CHECK(grid == 224 && block == 256 && s.ks == 1); /* 224 blocks of 8 m-tiles, two a multiprocessor: no k split */
        QJ_CHECK(!s.wg);
        setenv("QJ_IM_WG", "1", 1); /* wgmma: every n-tile a warp, one warpgroup of 2 m-tiles a warp, B after the ring */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(s.bx && s.wg && s.mt == 2 && s.warps == 4 && s.jw == 8 && s.stages == 4);
        QJ_CHECK(qj_gemv_smem_bytes(&s) == 4 * (16 * 544 + 4 * 2 * 1088) + 8 * 64 * 16);
        qj_gemv_name(&s, "sm_90a", nm, sizeof nm);
        QJ_CHECK_MSG(strstr(nm, "_m2w4u1s4b8g0_") != NULL, "%s", nm);
        setenv("QJ_IM_WGSWAP", "1", 1); /* the descriptor check: in the spec, so in the name */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        qj_gemv_name(&s, "sm_90a", nm, sizeof nm);
        QJ_CHECK_MSG(s.wgswap == 1 && strstr(nm, "_m2w4u1s4b8g1_") != NULL, "%s", nm);
        unsetenv("QJ_IM_WGSWAP");
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        qj_gemv_launch_dims(&s, &grid, &block);
        QJ_CHECK(grid == 224 && block == 128);
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 6, 1, &s)); /* batch 6: B of 32 columns */
        QJ_CHECK(s.wg && s.jw == 3 && qj_gemv_smem_bytes(&s) == (size_t)s.stages * (6 * 544 + 4 * 2 * 1088) + 8 * 32 * 16);
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 4, 1, &s)); /* batch <= 4: no block-shared path, no wgmma */
        QJ_CHECK(!s.wg);
        unsetenv("QJ_IM_WG");
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 8, 1, &s)); /* batch 8: 4 n-tiles, one warp a group */
        QJ_CHECK(s.bx && s.mt == 2 && s.warps == 4 && s.jw == 4 && s.dm == 3);
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 5, 1, &s)); /* batch 5: 3 n-tiles, one octet (rows 5-7 absent) */
        QJ_CHECK(s.bx && s.warps == 4 && s.jw == 3 && s.dm == 3);
        p[0] = &gu8; /* 8-bit: three 4-group slots of 2 m-tiles (25 KiB) in 96 KiB; the pairs' 4 m-tiles: two */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(s.bx && s.dm == 3 && s.stages == 3);
        setenv("QJ_IM_DM", "0", 1);
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(s.bx && s.dm == 0 && s.stages == 2);
        setenv("QJ_IM_RING", "40000", 1); /* not even two slots: the per-warp split stands */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(!s.bx && s.im && !s.dm);
        unsetenv("QJ_IM_RING");
        unsetenv("QJ_IM_DM");
        setenv("QJ_IM_RING", "40000", 1); /* not even two slots: the per-warp split stands */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(!s.bx && s.im);
        unsetenv("QJ_IM_RING");
        setenv("QJ_IM_BX", "0", 1);
        p[0] = &gu4;
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(!s.bx && s.im && qj_gemv_smem_bytes(&s) == 0);
        unsetenv("QJ_IM_BX");
        p[0] = &dn4; /* long K (112 k-tiles): block-shared, 32 m-blocks, k split 8 ways (14 tiles each): 256 blocks,
                      * two a multiprocessor (the digit pairs': 16 m-blocks, 128) */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(s.bx && s.mt == 2 && s.warps == 8 && s.ks == 8);
        qj_gemv_launch_dims(&s, &grid, &block);
        QJ_CHECK(grid == 256 && block == 256);
        qj_gemv_name(&s, "sm_90a", nm, sizeof nm);
        /* three digits: three slots; the splits add into y (r) */
        QJ_CHECK_MSG(s.red == 1 && strstr(nm, "_m2w8u1s3b4k8d3r_") != NULL, "%s", nm);
        QJ_CHECK(s.kscl == 0); /* (the split in clusters is opt-in) */
        setenv("QJ_IM_RED", "0", 1); /* the last block sums the splits */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        qj_gemv_name(&s, "sm_90a", nm, sizeof nm);
        QJ_CHECK_MSG(s.red == 0 && s.ks == 8 && strstr(nm, "_m2w8u1s3b4k8d3_") != NULL, "%s", nm);
        setenv("QJ_IM_KSCL", "1", 1); /* 8 splits: one cluster an m-block (with QJ_IM_RED=0: the adds take no cluster) */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        qj_gemv_name(&s, "sm_90a", nm, sizeof nm);
        QJ_CHECK_MSG(s.kscl == 1 && s.ks == 8 && strstr(nm, "_m2w8u1s3b4k8d3cl_") != NULL, "%s", nm);
        setenv("QJ_IM_DM", "4", 1); /* four digits: the split layers keep four slots */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(s.dm == 4 && s.ks == 8 && s.stages == 4);
        setenv("QJ_IM_DM", "0", 1);
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        qj_gemv_launch_dims(&s, &grid, &block);
        QJ_CHECK(s.mt == 4 && s.ks == 8 && grid == 128 && s.kscl == 0); /* (clusters: digit-major kernels only) */
        unsetenv("QJ_IM_DM");
        setenv("QJ_IM_KS", "5", 1); /* 112 k-tiles in 5 splits of 23: the last has 20 */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        qj_gemv_launch_dims(&s, &grid, &block);
        QJ_CHECK(s.ks == 5 && grid == 160);
        setenv("QJ_IM_KS", "60", 1); /* 60 splits would leave some empty: 56 of two tiles */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(s.ks == 56 && s.kscl == 0); /* (clusters of at most 8) */
        unsetenv("QJ_IM_KS");
        unsetenv("QJ_IM_KSCL");
        unsetenv("QJ_IM_RED");
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(s.red == 1 && s.kscl == 0); /* (the adds by default: QJ_IM_KSCL=1 alone takes no cluster) */
        setenv("QJ_IM_KSCL", "1", 1);
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(s.red == 1 && s.kscl == 0);
        unsetenv("QJ_IM_KSCL");
        p[0] = &qkv4; /* 384 m-tiles: block-shared, 48 m-blocks, 32 k-tiles in 5 splits (7 each, the last 4) */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(s.bx && s.ks == 5);
        qj_gemv_launch_dims(&s, &grid, &block);
        QJ_CHECK(grid == 240);
        p[0] = &o4; /* batch 16, 256 m-tiles and 32 k-tiles: block-shared, K split 8 ways adding into y */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        qj_gemv_launch_dims(&s, &grid, &block);
        qj_gemv_name(&s, "sm_90a", nm, sizeof nm);
        QJ_CHECK_MSG(s.bx && s.ks == 8 && s.red == 1 && grid == 256 && strstr(nm, "_n4096_k4096_bt16_m2w8u1s3b4k8d3r_"), "%s", nm);
        /* batch 8: <= 256 m-tiles and short K: two m-tiles, 16 warps splitting K inside the block */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 8, 1, &s));
        QJ_CHECK(!s.bx && s.ks == 0 && s.red == 0 && s.mt == 2 && s.warps == 16);
        qj_gemv_name(&s, "sm_90a", nm, sizeof nm);
        /* the A/B knobs reach the spec and the kernel name: activations loaded one n-tile ahead (p0: not),
         * ring slots with the 4-bit plane's chunks swapped (z0: not) */
        QJ_CHECK(s.xpre == 1 && s.swz == 0 && !strstr(nm, "p0") && !strstr(nm, "z0")); /* o: no ring */
        p[0] = &dn4;
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(s.xpre == 1 && s.swz == 1);
        setenv("QJ_IM_XPRE", "0", 1);
        setenv("QJ_IM_SWZ", "0", 1);
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        qj_gemv_name(&s, "sm_90a", nm, sizeof nm);
        /* (digit-major tiles load every digit up front: the prefetch knob is the digit pairs') */
        QJ_CHECK_MSG(s.xpre == 1 && s.swz == 0 && strstr(nm, "k8d3rz0_") != NULL, "%s", nm);
        setenv("QJ_IM_DM", "0", 1);
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        qj_gemv_name(&s, "sm_90a", nm, sizeof nm);
        QJ_CHECK_MSG(s.xpre == 0 && s.swz == 0 && strstr(nm, "k8rp0z0_") != NULL, "%s", nm);
        unsetenv("QJ_IM_DM");
        unsetenv("QJ_IM_XPRE");
        unsetenv("QJ_IM_SWZ");
        setenv("QJ_IM_WG", "1", 1); /* wgmma never splits K */
        p[0] = &dn4;
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK(s.wg && s.ks == 1);
        unsetenv("QJ_IM_WG");
    }
    { /* batch 1 by shape class (compiler/cuda_codegen.c im_spec) */
        qj_tensor gu4 = desc("gu4", 4, 128, 28672, 4096), gu3 = desc("gu3", 3, 128, 28672, 4096);
        qj_tensor dn4 = desc("dn4", 4, 128, 4096, 14336), dn6 = desc("dn6", 6, 128, 4096, 14336);
        qj_tensor dn3 = desc("dn3", 3, 128, 4096, 14336), dn4w = desc("dn4w", 4, 128, 4096, 28672);
        qj_tensor o4 = desc("o4", 4, 128, 4096, 4096), qkv4 = desc("qkv4", 4, 128, 6144, 4096);
        qj_tensor dn4g64 = desc("dn4g64", 4, 64, 4096, 14336), gu8 = desc("gu8", 8, 128, 28672, 4096);
        const qj_tensor *p[1];
        p[0] = &gu4; /* wide: the ring, as deep as 28 KiB allows (2 m-tiles x 1088 B per stage and warp) */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        QJ_CHECK(s.mt == 2 && s.warps == 4 && s.stages == 3 && s.unroll == 1 && !s.xsmem && s.xl == 0);
        p[0] = &gu3; /* wide 3-bit: 8 warps, a 44 KiB ring */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        QJ_CHECK(s.mt == 2 && s.warps == 8 && s.stages == 3);
        { /* wide 2-bit: at group 32 the 3-bit choice, at 64 16 warps x two k-tiles, else the plain split */
            qj_tensor g32 = desc("gu2g32", 2, 32, 28672, 4096), g64 = desc("gu2g64", 2, 64, 28672, 4096),
                      g128 = desc("gu2g128", 2, 128, 28672, 4096);
            p[0] = &g32;
            QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
            QJ_CHECK(s.mt == 2 && s.warps == 8 && s.stages == 3 && s.unroll == 1);
            p[0] = &g64;
            QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
            QJ_CHECK(s.mt == 2 && s.warps == 16 && s.stages == 0 && s.unroll == 2);
            p[0] = &g128;
            QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
            QJ_CHECK(s.mt == 2 && s.warps == 4 && s.stages == 0 && s.unroll == 1);
        }
        p[0] = &dn4; /* long K, 4-bit: the ring, activations in shared memory (112 k-tiles x 544 B) */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        QJ_CHECK(s.mt == 1 && s.warps == 8 && s.stages == 3 && s.unroll == 1 && s.xsmem && s.xl == 1);
        QJ_CHECK(qj_gemv_smem_bytes(&s) == 112 * 544);
        p[0] = &dn3; /* other long-K widths up to 5-bit: registers, two k-tiles per stage */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        QJ_CHECK(s.mt == 1 && s.warps == 8 && s.stages == 0 && s.unroll == 2 && !s.xsmem && s.xl == 1);
        p[0] = &dn6; /* 6-bit long K: the 44 KiB ring (3 stages of 8 warps), activations in shared memory */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        QJ_CHECK(s.mt == 1 && s.warps == 8 && s.stages == 3 && s.unroll == 1 && s.xsmem);
        QJ_CHECK(qj_gemv_smem_bytes(&s) == 112 * 544);
        p[0] = &dn4g64; /* 4-bit long K at group < 128: the 44 KiB ring too */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        QJ_CHECK(s.warps == 8 && s.stages > 3 && s.xsmem);
        p[0] = &gu8; /* wide 8-bit: the 44 KiB ring, 2 stages of 4 warps x 2 m-tiles */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        QJ_CHECK(s.mt == 2 && s.warps == 4 && s.stages == 2 && s.xsmem);
        p[0] = &dn4w; /* activations past 96 KiB (224 k-tiles) stay in global memory */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        QJ_CHECK(s.stages >= 2 && !s.xsmem && qj_gemv_smem_bytes(&s) == 0);
        p[0] = &o4; /* short, <= 256 m-tiles: 16 warps, one k-tile a stage at 4 bits */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        QJ_CHECK(s.warps == 16 && s.unroll == 1 && s.stages == 0);
        p[0] = &qkv4; /* short, 384 m-tiles, 4-bit: the plain split */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        QJ_CHECK(s.warps == 8 && s.unroll == 1 && s.stages == 0);
        setenv("QJ_IM_XSMEM", "1", 1); /* forced: ring kernels only */
        p[0] = &gu4;
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        QJ_CHECK(s.xsmem && qj_gemv_smem_bytes(&s) == 32 * 544);
        p[0] = &dn3;
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        QJ_CHECK(!s.xsmem && qj_gemv_smem_bytes(&s) == 0);
        setenv("QJ_IM_XSMEM", "0", 1); /* refused */
        p[0] = &dn4;
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        QJ_CHECK(s.stages == 3 && !s.xsmem && qj_gemv_smem_bytes(&s) == 0);
        unsetenv("QJ_IM_XSMEM");
    }
    {
        const qj_tensor *three[1] = {&k};
        QJ_CHECK_OK(qj_gemv_spec_parts(three, 1, 1, 1, &s));
        QJ_CHECK(s.im == 1 && s.stages == 0); /* other widths: two register stages */
        qj_tensor big5 = desc("big5", 5, 128, 28672, 4096), big8 = desc("big8", 8, 128, 28672, 4096);
        const qj_tensor *b5[1] = {&big5}, *b8[1] = {&big8};
        setenv("QJ_IM_STAGES", "12", 1);
        QJ_CHECK_OK(qj_gemv_spec_parts(b5, 1, 1, 1, &s));
        QJ_CHECK(s.mt == 2 && s.warps == 4 && s.stages == 4); /* clamped to what fits 44 KiB: 4 x 4 warps x 2688 B */
        QJ_CHECK_OK(qj_gemv_spec_parts(b8, 1, 1, 1, &s));
        QJ_CHECK(s.stages == 2);
        setenv("QJ_IM_RING", "28672", 1); /* a 28 KiB ring */
        QJ_CHECK_OK(qj_gemv_spec_parts(b5, 1, 1, 1, &s));
        QJ_CHECK(s.stages == 2); /* 2 x 4 warps x 2688 B */
        QJ_CHECK_OK(qj_gemv_spec_parts(b8, 1, 1, 1, &s));
        QJ_CHECK(s.stages == 0 && !s.xsmem); /* not even two stages fit: the registers */
        unsetenv("QJ_IM_RING");
        unsetenv("QJ_IM_STAGES");
    }
    QJ_CHECK_OK(qj_gemv_spec_parts(same, 2, 1, 0, &s)); /* chips before sm_80: the integer-dot GEMV */
    QJ_CHECK(s.mma == 0 && s.dq == 1 && s.im == 0 && s.N == 128);
    QJ_CHECK_OK(qj_gemv_spec_parts(same, 2, 4, 0, &s));
    QJ_CHECK(s.mma == 0 && s.dq == 0 && s.im == 0); /* batch > QJ_DQ_MAX_BATCH: the float GEMV */
    QJ_CHECK_OK(qj_gemv_spec_parts(same, 2, 32, 1, &s));
    QJ_CHECK(s.mma == 1 && s.im == 0 && s.nseg == 1 && s.seg[0].nparts == 2 && s.stages >= 2 && qj_gemv_smem_bytes(&s) > 0);
    setenv("QJ_GEMV_IM", "0", 1);
    QJ_CHECK_OK(qj_gemv_spec_parts(same, 2, 1, 1, &s)); /* the knob keeps batch 1 off it */
    QJ_CHECK(s.im == 0 && s.dq == 1);
    unsetenv("QJ_GEMV_IM");
    QJ_CHECK_OK(qj_gemv_spec_parts(o96, 1, 16, 1, &s)); /* any multiple of 32 on the integer-MMA GEMV */
    QJ_CHECK(s.im == 1);
    QJ_CHECK_FAILS(qj_gemv_spec_parts(mixed, 3, 1, 0, &s), "fuse only on the tensor-core kernel");
    QJ_CHECK_FAILS(qj_gemv_spec_parts(o96, 1, 32, 1, &s), "needs the tensor-core kernel");
    QJ_CHECK_OK(qj_gemv_spec_parts(o96, 1, 4, 2, &s));
    QJ_CHECK(s.mma == 0); /* group 96 stays on the GEMV */
    QJ_CHECK(qj_gemv_arch_has_mma("sm_90a") && qj_gemv_arch_has_mma("compute_80") && !qj_gemv_arch_has_mma("sm_75"));
    { /* attention's shares meet in a cluster at batch 1 only, unless QJ_ATT_CLUSTER says; the ops source says which */
        QJ_CHECK(qj_ops_att_cluster(1) == 1 && qj_ops_att_cluster(2) == 0 && qj_ops_att_cluster(16) == 0);
        qj_model *tm = NULL;
        QJ_CHECK_OK(qj_load_synthetic("tiny", 3, QJ_DTYPE_F32, &tm));
        char *src1 = NULL, *src16 = NULL;
        if (tm) {
            QJ_CHECK_OK(qj_ops_source(tm, 64, QJ_PREP_IM, 1, &src1));
            QJ_CHECK_OK(qj_ops_source(tm, 64, QJ_PREP_IM, 16, &src16));
        }
        QJ_CHECK(src1 && strstr(src1, "#define QJ_ATT_CLUSTER 1\n"));
        QJ_CHECK(src16 && strstr(src16, "#define QJ_ATT_CLUSTER 0\n"));
        if (tm && src1 && src16) { /* the split the source compiles in is the one the runtime launches */
            char d1[64], d16[64];
            snprintf(d1, sizeof d1, "#define QJ_ATT_SPLIT %d\n", qj_ops_att_split(&tm->cfg, 64, 1));
            snprintf(d16, sizeof d16, "#define QJ_ATT_SPLIT %d\n", qj_ops_att_split(&tm->cfg, 64, 16));
            QJ_CHECK(strstr(src1, d1) && strstr(src16, d16));
        }
        free(src1);
        free(src16);
        setenv("QJ_ATT_CLUSTER", "1", 1);
        QJ_CHECK(qj_ops_att_cluster(16) == 1);
        setenv("QJ_ATT_CLUSTER", "0", 1);
        QJ_CHECK(qj_ops_att_cluster(1) == 0);
        unsetenv("QJ_ATT_CLUSTER");
        qj_model_free(tm);
    }
    { /* L2 prefetches (qj_gemv_spec.pft): the most k-tiles of each m-tile (of a K split's share) that fit QJ_IM_PF KiB a
       * launch, 4-bit g128 tiles being 1,024 bytes of codes + 64 of scales */
        qj_tensor gu4 = desc("gu4", 4, 128, 28672, 4096), o4 = desc("o4", 4, 128, 4096, 4096), gu3 = desc("gu3", 3, 32, 28672, 4096);
        const qj_tensor *p[1] = {&gu4};
        char nm[160];
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        qj_gemv_name(&s, "sm_90a", nm, sizeof nm);
        /* by default 8 MiB at batch 1 (4 of the 32 k-tiles), none above */
        QJ_CHECK_MSG(s.pft == 4 && strstr(nm, "s3f4"), "default at batch 1: pft %d, %s", s.pft, nm);
        p[0] = &o4;
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        qj_gemv_name(&s, "sm_90a", nm, sizeof nm);
        QJ_CHECK_MSG(s.pft == 0 && strstr(nm, "_m2w8u1s3b4k8d3r_"), "default at batch 16: pft %d, %s", s.pft, nm);
        p[0] = &gu4;
        setenv("QJ_IM_PF", "16384", 1); /* 16 MiB over 1,792 m-tiles of 1,088-byte tiles: 8 of the 32 k-tiles */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        qj_gemv_name(&s, "sm_90a", nm, sizeof nm);
        QJ_CHECK_MSG(s.pft == 8 && strstr(nm, "s3f8"), "gate|up, 16 MiB: pft %d, %s", s.pft, nm);
        char *src = NULL;
        QJ_CHECK_OK(qj_gemv_source(&s, "sm_90a", &src));
        QJ_CHECK(src && strstr(src, "#define QJ_IM_PFT 8\n"));
        free(src);
        p[0] = &o4; /* batch 16: K split 8 ways, 4 k-tiles a split, all of them fit (16 MiB > 8.5) */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 16, 1, &s));
        QJ_CHECK_MSG(s.ks == 8 && s.pft == 4, "o at batch 16: ks %d, pft %d", s.ks, s.pft);
        p[0] = &gu3; /* 3-bit g32: 768 + 256 bytes a tile: 9 k-tiles */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        QJ_CHECK_MSG(s.pft == 9, "3-bit g32 gate|up: pft %d", s.pft);
        /* the wide 2-bit layers at group 64 go without by default (measured slower with), at group 32 not; the knob
         * still reaches them */
        unsetenv("QJ_IM_PF");
        qj_tensor gu2a = desc("gu2a", 2, 64, 28672, 4096), gu2b = desc("gu2b", 2, 32, 28672, 4096);
        p[0] = &gu2a;
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        qj_gemv_name(&s, "sm_90a", nm, sizeof nm);
        QJ_CHECK_MSG(s.warps == 16 && s.unroll == 2 && s.pft == 0, "2-bit g64 gate|up: w %d u %d pft %d, %s", s.warps,
                     s.unroll, s.pft, nm);
        p[0] = &gu2b;
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        QJ_CHECK_MSG(s.pft > 0, "2-bit g32 gate|up: pft %d", s.pft);
        setenv("QJ_IM_PF", "16384", 1);
        p[0] = &gu2a;
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        QJ_CHECK_MSG(s.pft > 0, "2-bit g64 gate|up, QJ_IM_PF=16384: pft %d", s.pft);
        setenv("QJ_IM_PF", "1000", 1); /* under one k-tile column (1,792 x 1,088 bytes): none */
        p[0] = &gu4;
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        QJ_CHECK(s.pft == 0);
        setenv("QJ_IM_PF", "0", 1); /* off */
        QJ_CHECK_OK(qj_gemv_spec_parts(p, 1, 1, 1, &s));
        qj_gemv_name(&s, "sm_90a", nm, sizeof nm);
        QJ_CHECK_MSG(s.pft == 0 && !strstr(nm, "s3f"), "QJ_IM_PF=0: pft %d, %s", s.pft, nm);
        unsetenv("QJ_IM_PF");
    }
    { /* attention's blocks a head, 1..8: about 256 blocks at batch 1, 512 and at least 2 above; QJ_ATT_SPLIT overrides */
        qj_config c32 = {0};
        c32.n_heads = 32;
        QJ_CHECK(qj_ops_att_split(&c32, 8192, 1) == 8 && qj_ops_att_split(&c32, 8192, 2) == 8);
        QJ_CHECK(qj_ops_att_split(&c32, 8192, 4) == 4 && qj_ops_att_split(&c32, 8192, 8) == 2);
        QJ_CHECK(qj_ops_att_split(&c32, 8192, 16) == 2);
        c32.n_heads = 40; /* batch 1: 7, as before the batch mattered (packages name their ops module by it) */
        QJ_CHECK(qj_ops_att_split(&c32, 8192, 1) == 7 && qj_ops_att_split(&c32, 8192, 2) == 7);
        c32.n_heads = 6;
        QJ_CHECK(qj_ops_att_split(&c32, 8192, 1) == 8 && qj_ops_att_split(&c32, 8192, 16) == 6);
        QJ_CHECK(qj_ops_att_split(&c32, 8192, 64) == 2);
        QJ_CHECK(qj_ops_att_split(&c32, 131072, 64) == 4 && qj_ops_att_split(&c32, 32769, 64) == 2);
        QJ_CHECK(qj_ops_att_split(&c32, 1 << 20, 1) == 32); /* shares of at most 32,768 positions */
        QJ_CHECK(qj_ops_att_split(&c32, 1 << 22, 1) == 32); /* and at most 32 blocks a head */
        setenv("QJ_ATT_SPLIT", "3", 1);
        QJ_CHECK(qj_ops_att_split(&c32, 8192, 1) == 3 && qj_ops_att_split(&c32, 8192, 16) == 3);
        unsetenv("QJ_ATT_SPLIT");
    }
    return qj_test_finish();
}
