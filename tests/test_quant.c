// ctest-labels: unit
/* test_quant.c — packed layout (pack -> unpack identity for every width and
 * ragged K), RTN quantization error bounds, symmetric/asymmetric, scale dtypes,
 * sizes by hand count, format validation. */
#include <stdint.h>
#include <stdlib.h>

#include "qj_layout.h"
#include "qj_model.h"
#include "qj_test.h"
#include "quant.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}
static float frand(void) { return (float)rnd() / 4294967296.0f * 2.0f - 1.0f; }

static void test_pack_identity(void) {
    const int Ks[] = {1, 31, 32, 33, 64, 100, 172, 256, 1000};
    for (int B = 2; B <= 8; B++)
        for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++) {
            int K = Ks[ki];
            int words = QJ_ROW_WORDS(K, B);
            uint32_t *row = calloc((size_t)words, 4);
            uint32_t *codes = malloc((size_t)K * 4);
            for (int k = 0; k < K; k++) {
                codes[k] = rnd() & ((1u << B) - 1);
                qj_pack_code(row, (uint32_t)k, (uint32_t)B, codes[k]);
            }
            int bad = 0;
            for (int k = 0; k < K; k++) bad += qj_unpack_code(row, (uint32_t)k, (uint32_t)B) != codes[k];
            QJ_CHECK_MSG(bad == 0, "bits %d K %d: %d codes differ after pack/unpack", B, K, bad);
            /* the block unpacker agrees with the per-value one */
            uint32_t blk[QJ_BLOCK];
            int blk_bad = 0;
            for (int b = 0; b < QJ_NBLOCKS(K); b++) {
                qj_unpack_block(row + b * B, (uint32_t)B, blk);
                for (int j = 0; j < QJ_BLOCK && b * QJ_BLOCK + j < K; j++) blk_bad += blk[j] != codes[b * QJ_BLOCK + j];
            }
            QJ_CHECK_MSG(blk_bad == 0, "bits %d K %d: %d codes differ in qj_unpack_block", B, K, blk_bad);
            /* padding after K stays zero */
            int pad_bad = 0;
            for (int k = K; k < QJ_NBLOCKS(K) * QJ_BLOCK; k++) pad_bad += qj_unpack_code(row, (uint32_t)k, (uint32_t)B) != 0;
            QJ_CHECK_MSG(pad_bad == 0, "bits %d K %d: padding not zero", B, K);
            free(row);
            free(codes);
        }
    /* the documented bit order: value j of a block at bits [j*B, j*B+B) */
    uint32_t row[3] = {0};
    qj_pack_code(row, 10, 3, 5u); /* bits 30..32: crosses into word 1 */
    QJ_CHECK(row[0] == (1u << 30) && row[1] == 1u);
    QJ_CHECK(qj_unpack_code(row, 10, 3) == 5u);
}

/* Quantize a random (N, K) weight and check every value is within half a step. */
static void check_rtn(int bits, int group, int sym, qj_dtype sd, int K) {
    const int N = 7;
    float *w = malloc((size_t)N * (size_t)K * sizeof *w), *back = malloc((size_t)K * sizeof *back);
    for (int i = 0; i < N * K; i++) w[i] = frand() * (i % 3 ? 0.05f : 0.2f);
    w[3] = 0.0f;
    qj_tensor src, qt;
    int64_t shape[2] = {N, K};
    qj_tensor_set(&src, "w", QJ_DTYPE_F32, 2, shape, w);
    qj_qformat f = {bits, group, sym, sd};
    qj_qbuf b;
    QJ_CHECK_OK(qj_quantize(&src, &f, &b));
    qj_tensor_set_quant(&qt, "w", N, K, &f, &b);
    QJ_CHECK(qj_tensor_bytes(&qt) == qj_quant_bytes(N, K, &f));
    int G = qj_qformat_group(&f, K), ng = QJ_NGROUPS(K, G);
    /* hand count: codes are ceil(K/32)*bits words per row, two-byte scales (and zeros) per group */
    size_t hand = (size_t)N * (size_t)((K + 31) / 32) * (size_t)bits * 4 + (size_t)N * (size_t)ng * 2 * (sym ? 1 : 2);
    QJ_CHECK_MSG(qj_quant_bytes(N, K, &f) == hand, "bytes %zu vs hand count %zu", qj_quant_bytes(N, K, &f), hand);
    double worst = 0.0;
    for (int n = 0; n < N; n++) {
        qj_tensor_row_f32(&qt, n, back);
        for (int g = 0; g < ng; g++) {
            int k0 = g * G, k1 = k0 + G < K ? k0 + G : K;
            float lo = w[n * K + k0], hi = lo, amax = 0;
            for (int k = k0; k < k1; k++) {
                float v = w[n * K + k];
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
                amax = fabsf(v) > amax ? fabsf(v) : amax;
            }
            float step = sym ? amax / (float)(1 << (bits - 1)) : (hi - lo) / (float)((1 << bits) - 1);
            /* half a step, plus what rounding the scale and zero to f16 (2^-11) / bf16 (2^-8) can
             * add by clipping the group's extreme values */
            float rel = sd == QJ_DTYPE_BF16 ? 1.0f / 256 : 1.0f / 2048;
            /* symmetric codes reach 2^(B-1) steps on one side but 2^(B-1)-1 on the other, so values
             * on the far side may clip by up to one step */
            float tol = (sym ? 1.0f : 0.5f) * step * (1.0f + rel) + 4.0f * rel * amax + 1e-7f;
            for (int k = k0; k < k1; k++) {
                double e = fabs((double)back[k] - (double)w[n * K + k]);
                worst = e / (step > 0 ? step : 1) > worst ? e / (step > 0 ? step : 1) : worst;
                if (e > tol) {
                    QJ_CHECK_MSG(0, "bits %d g %d sym %d K %d: row %d k %d: %g vs %g (tol %g)", bits, group, sym, K, n,
                                 k, (double)back[k], (double)w[n * K + k], (double)tol);
                    goto out;
                }
            }
        }
    }
    QJ_CHECK(isfinite(worst));
out:
    qj_qbuf_free(&b);
    free(w);
    free(back);
}

static void test_rtn_all_formats(void) {
    const int groups[] = {32, 64, 128, 256, 512, 0};
    const int Ks[] = {64, 172, 520};
    for (int bits = 2; bits <= 8; bits++)
        for (size_t gi = 0; gi < 6; gi++)
            for (size_t ki = 0; ki < 3; ki++)
                for (int sym = 0; sym <= 1; sym++) check_rtn(bits, groups[gi], sym, QJ_DTYPE_F16, Ks[ki]);
    check_rtn(4, 64, 0, QJ_DTYPE_BF16, 172);
    check_rtn(3, 32, 1, QJ_DTYPE_BF16, 172);
}

static void test_exact_values(void) {
    /* values on the grid come back exactly: 0, 1/15, ..., 1 with 4 bits */
    float w[32];
    for (int k = 0; k < 32; k++) w[k] = (float)(k % 16) / 15.0f;
    float back[64];
    qj_tensor src, qt;
    int64_t shape[2] = {1, 32};
    qj_tensor_set(&src, "w", QJ_DTYPE_F32, 2, shape, w);
    qj_qformat f = {4, 32, 0, QJ_DTYPE_F16};
    qj_qbuf b;
    QJ_CHECK_OK(qj_quantize(&src, &f, &b));
    qj_tensor_set_quant(&qt, "w", 1, 32, &f, &b);
    qj_tensor_row_f32(&qt, 0, back);
    int codes_ok = 1;
    for (int k = 0; k < 32; k++) codes_ok &= qj_unpack_code(b.q, (uint32_t)k, 4) == (uint32_t)(k % 16);
    QJ_CHECK(codes_ok);
    for (int k = 0; k < 32; k++) QJ_CHECK_NEAR(back[k], w[k], 1e-3);
    qj_qbuf_free(&b);
    /* symmetric: the largest magnitude maps to code 0 (value -2^(B-1) * s) exactly */
    float v[32] = {0};
    v[5] = -0.75f;
    v[6] = 0.5f;
    qj_tensor_set(&src, "w", QJ_DTYPE_F32, 2, shape, v);
    qj_qformat fs = {3, 32, 1, QJ_DTYPE_F16};
    QJ_CHECK_OK(qj_quantize(&src, &fs, &b));
    QJ_CHECK(qj_unpack_code(b.q, 5, 3) == 0);
    QJ_CHECK(qj_unpack_code(b.q, 0, 3) == 4); /* zero sits at the implicit offset */
    qj_tensor_set_quant(&qt, "w", 1, 32, &fs, &b);
    qj_tensor_row_f32(&qt, 0, back);
    QJ_CHECK_NEAR(back[5], -0.75, 1e-6);
    QJ_CHECK_NEAR(back[0], 0.0, 0.0);
    qj_qbuf_free(&b);
    /* a constant group: scale 0, every value exact */
    float c[40];
    for (int k = 0; k < 40; k++) c[k] = 0.3125f;
    int64_t shape2[2] = {1, 40};
    qj_tensor_set(&src, "w", QJ_DTYPE_F32, 2, shape2, c);
    QJ_CHECK_OK(qj_quantize(&src, &f, &b));
    qj_tensor_set_quant(&qt, "w", 1, 40, &f, &b);
    qj_tensor_row_f32(&qt, 0, back);
    for (int k = 0; k < 40; k++) QJ_CHECK_NEAR(back[k], 0.3125, 0.0);
    qj_qbuf_free(&b);
}

static void test_bad_formats(void) {
    qj_qformat f = {9, 32, 0, QJ_DTYPE_F16};
    QJ_CHECK_FAILS(qj_qformat_check(&f), "bits 9");
    f.bits = 1;
    QJ_CHECK_FAILS(qj_qformat_check(&f), "bits 1");
    f.bits = 4;
    f.group = 48;
    QJ_CHECK_FAILS(qj_qformat_check(&f), "group size 48");
    f.group = 1024;
    QJ_CHECK_FAILS(qj_qformat_check(&f), "group size 1024");
    f.group = 64;
    f.scale_dtype = QJ_DTYPE_F32;
    QJ_CHECK_FAILS(qj_qformat_check(&f), "scale dtype");
    float w[4] = {0};
    qj_tensor src;
    int64_t shape[1] = {4};
    qj_tensor_set(&src, "vec", QJ_DTYPE_F32, 1, shape, w);
    qj_qformat ok = {4, 32, 0, QJ_DTYPE_F16};
    qj_qbuf b;
    QJ_CHECK_FAILS(qj_quantize(&src, &ok, &b), "vec: only dense 2-D");
}

static void test_half_conversions(void) {
    QJ_CHECK(qj_f32_to_f16(1.0f) == 0x3c00);
    QJ_CHECK(qj_f32_to_f16(-2.0f) == 0xc000);
    QJ_CHECK(qj_f32_to_f16(65504.0f) == 0x7bff);
    QJ_CHECK(qj_f32_to_f16(1e6f) == 0x7c00);
    QJ_CHECK(qj_f32_to_f16(5.9604644775390625e-8f) == 0x0001); /* smallest subnormal */
    QJ_CHECK(qj_f32_to_f16(1.0f + 1.0f / 4096) == 0x3c00);     /* tie rounds to even */
    QJ_CHECK(qj_f32_to_f16(1.0f + 3.0f / 4096) == 0x3c01);
    QJ_CHECK(isnan(qj_f16_to_f32(qj_f32_to_f16(NAN))));
    QJ_CHECK(qj_f32_to_bf16(1.0f) == 0x3f80);
    QJ_CHECK(isnan(qj_bf16_to_f32(qj_f32_to_bf16(NAN))));
    int bad = 0;
    for (uint32_t h = 0; h < 0x7c00; h++) bad += qj_f32_to_f16(qj_f16_to_f32((uint16_t)h)) != h;
    QJ_CHECK_MSG(bad == 0, "%d finite f16 values do not round-trip", bad);
}

int main(void) {
    test_pack_identity();
    test_rtn_all_formats();
    test_exact_values();
    test_bad_formats();
    test_half_conversions();
    return qj_test_finish();
}
