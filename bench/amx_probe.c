/* amx_probe.c — would Intel AMX (TDPBUSD) make the 2-bit CPU kernel's arithmetic cheaper than AVX-512 VNNI?
 * A probe, not part of qjit: a hand-written 2-bit g128 GEMV (qjit's packing: byte j of a row holds codes
 * 4j..4j+3, two bits each) with x as two int8 digits (hi, lo) per value, on one thread with the layer in
 * the caches, timed whole and with parts left out, and the TMUL's own rates. docs/PERFORMANCE.md,
 * "AMX for the 2-bit kernel" (2026-12-07). Needs a CPU with AMX-INT8 and Linux >= 5.16 (arch_prctl).
 *   gcc -O2 -march=sapphirerapids -o amx_probe bench/amx_probe.c -lm
 *   ./amx_probe N K ITERS        e.g. 512 4096 400
 * Per step (32 rows x one group of 128 codes): unpack — each row's 32 bytes broadcast to both halves of a
 * zmm, planes 0|1 and 2|3 by a variable qword shift and a mask, stored as the rows of four A tiles (16 rows
 * x 64 codes); TMUL — four TDPBUSD against the group's two B tiles (16 x 8 bytes: the two digits of 64
 * values) into two C tiles (16 rows x 2 int32); epilogue — C stored, hi * 256 + lo, times the row's scale,
 * added. */
#define _GNU_SOURCE
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    uint8_t palette, start;
    uint8_t res[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_cfg;

enum { G = 128, DO_UNPACK = 1, DO_TMUL = 2, DO_EPI = 4 };

/* codes: N rows of K/4 bytes; xb: per group two B tiles of 16 x 8 bytes; sc: scales [K/G][N] */
static void gemv(const uint8_t *codes, const int8_t *xb, const float *sc, float *y, int N, int K, int parts) {
    const int rb = K / 4, ng = K / G;
    _Alignas(64) uint8_t A[4][16][64];
    _Alignas(64) int32_t C[2][16][2];
    memset(A, 0, sizeof A);
    memset(C, 0, sizeof C);
    const __m512i sh01 = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0), sh23 = _mm512_set_epi64(6, 6, 6, 6, 4, 4, 4, 4);
    const __m512i m3 = _mm512_set1_epi8(3);
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int r0 = 0; r0 < N; r0 += 32) {
        __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
        for (int g = 0; g < ng; g++) {
            if (parts & DO_UNPACK)
                for (int i = 0; i < 32; i++) {
                    const uint8_t *p = codes + (size_t)(r0 + i) * (size_t)rb + g * 32;
                    __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p));
                    _mm512_store_si512(A[(i >> 4) * 2][i & 15], _mm512_and_si512(_mm512_srlv_epi64(v, sh01), m3));
                    _mm512_store_si512(A[(i >> 4) * 2 + 1][i & 15], _mm512_and_si512(_mm512_srlv_epi64(v, sh23), m3));
                }
            if (parts & DO_TMUL) {
                _tile_loadd(0, A[0], 64);
                _tile_loadd(1, A[1], 64);
                _tile_loadd(2, A[2], 64);
                _tile_loadd(3, A[3], 64);
                _tile_loadd(4, xb + (size_t)g * 256, 8);
                _tile_loadd(5, xb + (size_t)g * 256 + 128, 8);
                _tile_zero(6);
                _tile_zero(7);
                _tile_dpbusd(6, 0, 4);
                _tile_dpbusd(7, 2, 4);
                _tile_dpbusd(6, 1, 5);
                _tile_dpbusd(7, 3, 5);
                _tile_stored(6, C[0], 8);
                _tile_stored(7, C[1], 8);
            }
            if (parts & DO_EPI)
                for (int h = 0; h < 2; h++) {
                    __m512i a = _mm512_load_si512(C[h][0]), b = _mm512_load_si512(C[h][8]);
                    __m512i hi = _mm512_permutex2var_epi32(a, even, b), lo = _mm512_permutex2var_epi32(a, odd, b);
                    __m512 v = _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_slli_epi32(hi, 8), lo));
                    acc[h] = _mm512_fmadd_ps(v, _mm512_loadu_ps(sc + (size_t)g * (size_t)N + r0 + 16 * h), acc[h]);
                }
        }
        _mm512_storeu_ps(y + r0, acc[0]);
        _mm512_storeu_ps(y + r0 + 16, acc[1]);
    }
}

int main(int argc, char **argv) {
    const int N = argc > 1 ? atoi(argv[1]) : 512, K = argc > 2 ? atoi(argv[2]) : 4096, iters = argc > 3 ? atoi(argv[3]) : 400;
    if (N < 32 || N % 32 || K < G || K % G || iters < 1) {
        fprintf(stderr, "usage: %s N K ITERS (N a multiple of 32, K of 128)\n", argv[0]);
        return 2;
    }
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */)) {
        perror("arch_prctl(ARCH_REQ_XCOMP_PERM)");
        return 1;
    }
    tile_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = t < 4 ? 64 : 8;
    }
    _tile_loadconfig(&cfg);
    const int rb = K / 4, ng = K / G;
    uint8_t *codes = aligned_alloc(64, (size_t)N * (size_t)rb);
    int8_t *dh = malloc((size_t)K), *dl = malloc((size_t)K), *xb = aligned_alloc(64, (size_t)ng * 256);
    float *sc = malloc((size_t)ng * (size_t)N * sizeof *sc), *y = aligned_alloc(64, (size_t)N * sizeof *y);
    if (!codes || !dh || !dl || !xb || !sc || !y) return fprintf(stderr, "out of memory\n"), 1;
    srand(1);
    for (size_t i = 0; i < (size_t)N * (size_t)rb; i++) codes[i] = (uint8_t)rand();
    for (int k = 0; k < K; k++) {
        dh[k] = (int8_t)(rand() % 256 - 128);
        dl[k] = (int8_t)(rand() % 256 - 128);
    }
    /* B tile kb of group g: row t / 4, column n (digit), byte t % 4 <- K position t of the A rows, i.e. code
     * 4 (t % 32) + 2 kb + t / 32 of the group */
    for (int g = 0; g < ng; g++)
        for (int kb = 0; kb < 2; kb++)
            for (int t = 0; t < 64; t++) {
                const int k = g * G + 4 * (t & 31) + 2 * kb + (t >> 5);
                xb[g * 256 + kb * 128 + (t / 4) * 8 + t % 4] = dh[k];
                xb[g * 256 + kb * 128 + (t / 4) * 8 + 4 + t % 4] = dl[k];
            }
    for (size_t i = 0; i < (size_t)ng * (size_t)N; i++) sc[i] = (float)(rand() % 1000) / 1000.0f;
    gemv(codes, xb, sc, y, N, K, DO_UNPACK | DO_TMUL | DO_EPI);
    double worst = 0;
    for (int r = 0; r < N; r++) {
        double s = 0;
        for (int g = 0; g < ng; g++) {
            long a = 0;
            for (int k = g * G; k < g * G + G; k++)
                a += ((codes[(size_t)r * (size_t)rb + (size_t)(k / 4)] >> (2 * (k % 4))) & 3) * (256L * dh[k] + dl[k]);
            s += (double)a * sc[(size_t)g * (size_t)N + (size_t)r];
        }
        const double e = fabs(s - y[r]) / (fabs(s) + 1e3);
        worst = e > worst ? e : worst;
    }
    printf("%d x %d, 2-bit g128: worst relative error against the scalar sums %.2g\n", N, K, worst);
    static const struct {
        const char *what;
        int parts;
    } runs[] = {{"whole", DO_UNPACK | DO_TMUL | DO_EPI}, {"unpack only", DO_UNPACK}, {"TMUL only", DO_TMUL},
                {"unpack + TMUL", DO_UNPACK | DO_TMUL}, {"TMUL + epilogue", DO_TMUL | DO_EPI}};
    for (size_t v = 0; v < sizeof runs / sizeof runs[0]; v++) {
        double best = 1e30;
        for (int i = 0; i < iters; i++) {
            const double t0 = now();
            gemv(codes, xb, sc, y, N, K, runs[v].parts);
            const double t = now() - t0;
            best = t < best ? t : best;
        }
        printf("  %-16s best %7.1f us a call, %6.2f GB/s of codes\n", runs[v].what, best * 1e6,
               (double)N * (double)rb / best / 1e9);
    }
    /* the TMUL alone: one TDPBUSD (16 rows x 64 codes x 2 digits) a step */
    _Alignas(64) static uint8_t buf[4096];
    _tile_loadd(0, buf, 64);
    _tile_loadd(1, buf, 64);
    _tile_loadd(4, buf, 8);
    _tile_loadd(5, buf, 8);
    const int n = 1000000;
    double t0 = now();
    for (int i = 0; i < n; i++) _tile_dpbusd(6, 0, 4);
    printf("  one C tile, TDPBUSD after TDPBUSD: %.2f ns each\n", (now() - t0) / n * 1e9);
    t0 = now();
    for (int i = 0; i < n; i++) {
        _tile_dpbusd(6, 0, 4);
        _tile_dpbusd(7, 1, 5);
    }
    printf("  two C tiles alternating:            %.2f ns each\n", (now() - t0) / n / 2 * 1e9);
    t0 = now();
    for (int i = 0; i < n; i++) {
        _tile_loadd(0, buf, 64);
        _tile_loadd(1, buf + 1024, 64);
        _tile_dpbusd(6, 0, 4);
        _tile_dpbusd(7, 1, 5);
    }
    const double each = (now() - t0) / n / 2;
    printf("  A tile loaded (1 KiB, L1) + TDPBUSD: %.2f ns each (%.1f GB/s of 2-bit codes)\n", each * 1e9, 256.0 / each / 1e9);
    _tile_release();
    free(codes);
    free(dh);
    free(dl);
    free(xb);
    free(sc);
    free(y);
    return 0;
}
