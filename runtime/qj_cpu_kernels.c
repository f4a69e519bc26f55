/* qj_cpu_kernels.c — running generated CPU kernels and binding them to a
 * model's packed linears (see qj_cpu_kernels.h); no LLVM. */
#include "qj_cpu_kernels.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qj_layout.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* a block's 32 floats with plane m's values contiguous (value per i + m at m (32 / per) + i; per = 2 or 4) */
static inline void planes_f32(const float *blk, float *xb, int per) {
#if defined(__AVX512F__)
    /* two two-source permutes (the index picks from blk[0..31]); the portable loop below compiles to 32 moves */
    __m512i lo, hi;
    if (per == 4) {
        lo = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
        hi = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    } else {
        lo = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        hi = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    }
    const __m512 a = _mm512_loadu_ps(blk), b = _mm512_loadu_ps(blk + 16);
    _mm512_storeu_ps(xb, _mm512_permutex2var_ps(a, lo, b));
    _mm512_storeu_ps(xb + 16, _mm512_permutex2var_ps(a, hi, b));
#else
    const int L = 32 / per;
    for (int m = 0; m < per; m++)
        for (int i = 0; i < L; i++) xb[m * L + i] = blk[per * i + m];
#endif
}

qj_status qj_cpu_kspec_of(const qj_tensor *w, qj_cpu_kspec *s) {
    memset(s, 0, sizeof *s);
    if (w->dtype != QJ_DTYPE_Q || w->ndim != 2)
        return qj_fail(QJ_ERR_INVALID, "%s: the CPU kernels take packed 2-D weights, not %s", w->name, qj_dtype_name(w->dtype));
    s->bits = w->q.bits;
    s->group = w->q.group;
    s->N = w->shape[0];
    s->K = w->shape[1];
    s->symmetric = w->q.symmetric;
    s->scale_bf16 = w->q.scale_dtype == QJ_DTYPE_BF16;
    if (s->bits < QJ_MIN_BITS || s->bits > QJ_MAX_BITS || s->group < 32 || s->group % 32)
        return qj_fail(QJ_ERR_INVALID, "%s: no CPU kernel for %d bits, group %d", w->name, s->bits, s->group);
    return QJ_OK;
}

int qj_cpu_kspec_equal(const qj_cpu_kspec *a, const qj_cpu_kspec *b) {
    return a->bits == b->bits && a->group == b->group && a->N == b->N && a->K == b->K && a->symmetric == b->symmetric &&
           a->scale_bf16 == b->scale_bf16;
}

void qj_cpu_kspec_name(const qj_cpu_kspec *s, const char *suffix, char *buf, size_t n) {
    snprintf(buf, n, "qj_cpu_dqmv_b%d_g%d%s%s_n%lld_k%lld%s", s->bits, s->group, s->symmetric ? "_sym" : "",
             s->scale_bf16 ? "_sbf16" : "", (long long)s->N, (long long)s->K, suffix ? suffix : "");
}

/* The packed linears in the order the forward pass meets them, then the head. */
static const qj_tensor *model_linear(const qj_model *m, int i) {
    const int n = m->cfg.n_layers * QJ_LIN_COUNT;
    if (i == n) return &m->lm_head;
    return qj_layer_linear(&m->layers[i / QJ_LIN_COUNT], (qj_linear)(i % QJ_LIN_COUNT));
}

qj_status qj_cpu_model_specs(const qj_model *m, qj_cpu_kspec **specs, int *n) {
    *specs = NULL;
    *n = 0;
    const int cap = m->cfg.n_layers * QJ_LIN_COUNT + 1;
    qj_cpu_kspec *sp = calloc((size_t)cap, sizeof *sp);
    if (!sp) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    int nd = 0;
    for (int i = 0; i < cap; i++) {
        const qj_tensor *t = model_linear(m, i);
        if (t->dtype != QJ_DTYPE_Q) continue;
        qj_cpu_kspec ks;
        qj_status s = qj_cpu_kspec_of(t, &ks);
        if (s) { free(sp); return s; }
        int d = 0;
        while (d < nd && !qj_cpu_kspec_equal(&sp[d], &ks)) d++;
        if (d == nd) sp[nd++] = ks;
    }
    *specs = sp;
    *n = nd;
    return QJ_OK;
}

/* x for the kernels, groups [g0, g1) of it (qj_cpu_kernels.h): the padded float copy xp (2 and 4
 * bits: each block in byte-plane order), the group sums xs, and for the integer kernels the digits
 * xd and group scales xds. Groups are independent, so threads split them; the caller zeroes the
 * digits' last 8-block unit first (what past K no group writes). No division per value (a
 * per-value 64-bit division made this 30 ns a value, a quarter of a 4096 x 4096 2-bit GEMV). */
static void prep_groups(const float *x, const qj_cpu_kspec *s, int64_t g0, int64_t g1, float *xp, float *xs,
                        int8_t *xd, float *xds) {
    const int64_t K = s->K, group = s->group;
    const int P = qj_cpu_xd_planes(s->bits, s->group, s->K);
    const int sh = P == 4 ? 2 : P == 2 ? 1 : 0, w2 = qj_cpu_xd_w2(s->bits, s->group, s->K);
    const int per = s->bits == 2 || s->bits == 4 ? 8 / s->bits : 1;
    for (int64_t gi = g0; gi < g1; gi++) {
        const int64_t k0 = gi * group, k1 = k0 + group < K ? k0 + group : K;
        /* the float copy, block by block (zero past K) */
        for (int64_t b = k0 / 32; b * 32 < k1; b++) { /* the last group: up to nb blocks */
            float blk[32], *xb = xp + b * 32;
            const int64_t kb = b * 32;
            if (kb + 32 <= K) memcpy(blk, x + kb, sizeof blk);
            else
                for (int i = 0; i < 32; i++) blk[i] = kb + i < K ? x[kb + i] : 0.0f;
            if (per == 1) memcpy(xb, blk, sizeof blk);
            else planes_f32(blk, xb, per);
        }
        /* eight running maxima and sums (vectorisable; the maximum is the same in any order, the
         * sum is in double). Not fmaxf: a libm call per value; a NaN in x stays out of m either way */
        float mv[8] = {0};
        double t[8] = {0};
        int64_t k = k0;
        for (; k + 8 <= k1; k += 8)
            for (int l = 0; l < 8; l++) {
                const float a = fabsf(x[k + l]);
                mv[l] = a > mv[l] ? a : mv[l];
                t[l] += x[k + l];
            }
        for (; k < k1; k++) {
            const float a = fabsf(x[k]);
            mv[0] = a > mv[0] ? a : mv[0];
            t[0] += x[k];
        }
        xs[gi] = (float)(((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7])));
        float m = 0.0f;
        for (int l = 0; l < 8; l++) m = mv[l] > m ? mv[l] : m;
        xds[gi] = m > 0.0f ? m / (float)QJ_CPU_XQ : 0.0f;
        const float inv = m > 0.0f ? (float)QJ_CPU_XQ / m : 0.0f;
        for (int64_t b = k0 / 32; b * 32 < k1; b++) {
            /* chunk b / (2 P) at (b / 2P) P 192; block b % (2P) at (b % 2P) (32 / P) in each plane */
            const int64_t base = (b >> (sh + 1)) * P * 192 + (b & (2 * P - 1)) * (32 >> sh), kb = b * 32;
            const int n = k1 - kb < 32 ? (int)(k1 - kb) : 32;
            /* a block's q, then its digits, in loops the compiler vectorises, then the stores. With
             * planes (P > 1) and with no re-order (per == 1) the block's floats in xp (zero past K) are
             * in the digits' order already */
            int32_t q[32];
            int8_t dg[3][32];
            float xv[32];
            if (P > 1 || per == 1) memcpy(xv, xp + kb, sizeof xv);
            else
                for (int i = 0; i < 32; i++) xv[i] = i < n ? x[kb + i] : 0.0f;
            for (int i = 0; i < 32; i++) { /* one branch-free loop: vectorised (a choice per value kept it scalar) */
                /* round half to even, as lrintf, without a libm call: exact in double below 2^51 */
                const double v = (double)(xv[i] * inv);
                int32_t qi = (int32_t)((v + 6755399441055744.0) - 6755399441055744.0);
                qi = qi > QJ_CPU_XQ ? QJ_CPU_XQ : qi;
                q[i] = qi < -QJ_CPU_XQ ? -QJ_CPU_XQ : qi;
            }
            for (int i = 0; i < 32; i++) {
                const int32_t d0 = (int32_t)(((uint32_t)q[i] & 255u) ^ 128u) - 128, q1 = (q[i] - d0) / 256;
                const int32_t d1 = (int32_t)(((uint32_t)q1 & 255u) ^ 128u) - 128, d2 = (q1 - d1) / 256;
                dg[0][i] = (int8_t)d0;
                dg[1][i] = (int8_t)d1;
                dg[2][i] = (int8_t)d2;
            }
            for (int d = 0; d < 3; d++) {
                int8_t *o = xd + base + 64 * d;
                if (P == 1) {
                    memcpy(o, dg[d], 32);
                    continue;
                }
                if (w2) { /* 3 bits: values 0-7 and 16-23 of the block in half 0, 8-15 and 24-31 in half 1 */
                    memcpy(o, dg[d], 8);
                    memcpy(o + 8, dg[d] + 16, 8);
                    memcpy(o + 192, dg[d] + 8, 8);
                    memcpy(o + 200, dg[d] + 24, 8);
                    continue;
                }
                /* plane m of the block (values P t + m, t < 32 / P: dg's m-th piece) at 192 m; copies of a
                 * constant size (one move each: a variable one became `rep movs`, most of the prep's time) */
                if (P == 4)
                    for (int pm = 0; pm < 4; pm++) memcpy(o + pm * 192, dg[d] + pm * 8, 8);
                else
                    for (int pm = 0; pm < 2; pm++) memcpy(o + pm * 192, dg[d] + pm * 16, 16);
            }
        }
    }
}

qj_status qj_cpu_gemv_run(qj_cpu_gemv_fn fn, const qj_tensor *w, const float *x, float *y) {
    qj_cpu_kspec s;
    qj_status st = qj_cpu_kspec_of(w, &s);
    if (st) return st;
    const int64_t nb = QJ_NBLOCKS(s.K), ng = QJ_NGROUPS(s.K, s.group);
    const size_t xdb = QJ_CPU_XD_BYTES(s.K);
    /* small layers: no allocation per call */
    float xp_local[1024], xs_local[64], xds_local[64];
    _Alignas(64) int8_t xd_local[3072];
    float *xp = nb * 32 <= 1024 ? xp_local : malloc((size_t)(nb * 32) * sizeof *xp);
    float *xs = ng <= 64 ? xs_local : malloc((size_t)ng * sizeof *xs);
    float *xds = ng <= 64 ? xds_local : malloc((size_t)ng * sizeof *xds);
    int8_t *xd = xdb <= sizeof xd_local ? xd_local : aligned_alloc(64, (xdb + 63) / 64 * 64);
    if (!xp || !xs || !xds || !xd) {
        if (xp != xp_local) free(xp);
        if (xs != xs_local) free(xs);
        if (xds != xds_local) free(xds);
        if (xd != xd_local) free(xd);
        return qj_fail(QJ_ERR_NOMEM, "out of memory");
    }
    /* the digits' last 8-block unit: what past K no group writes stays zero */
    const size_t tail = (size_t)(nb / 8) * 768;
    if (tail < xdb) memset(xd + tail, 0, xdb - tail);
    const int64_t N = s.N;
    const uint32_t *codes = (const uint32_t *)w->data;
    const uint16_t *sc = (const uint16_t *)w->scales, *zr = (const uint16_t *)w->zeros;
    if (N * s.K < (1 << 16) || omp_in_parallel()) {
        prep_groups(x, &s, 0, ng, xp, xs, xd, xds);
        fn(codes, sc, zr, xp, xs, xd, xds, y, 0, N);
    } else {
        #pragma omp parallel
        {
            /* each thread prepares its share of x's groups, then streams its own contiguous rows */
            const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
            prep_groups(x, &s, ng * t / nt, ng * (t + 1) / nt, xp, xs, xd, xds);
            #pragma omp barrier
            const int64_t r0 = N * t / nt, r1 = N * (t + 1) / nt;
            if (r1 > r0) fn(codes, sc, zr, xp, xs, xd, xds, y, r0, r1);
        }
    }
    if (xp != xp_local) free(xp);
    if (xs != xs_local) free(xs);
    if (xds != xds_local) free(xds);
    if (xd != xd_local) free(xd);
    return QJ_OK;
}

/* ---- binding ---- */

typedef struct cpu_entry {
    const qj_tensor *t;
    qj_cpu_gemv_fn fn;
} cpu_entry;

struct qj_cpu_binding {
    cpu_entry *e;
    int n;
};

static int cpu_matvec(void *ctx, const qj_tensor *w, const float *x, float *y) {
    const qj_cpu_binding *b = ctx;
    for (int i = 0; i < b->n; i++)
        if (b->e[i].t == w) return qj_cpu_gemv_run(b->e[i].fn, w, x, y) == QJ_OK;
    return 0;
}

qj_status qj_cpu_bind(qj_model *m, qj_cpu_kernel_lookup lookup, void *ctx, qj_cpu_binding **out, int *n_distinct) {
    *out = NULL;
    const int cap = m->cfg.n_layers * QJ_LIN_COUNT + 1;
    qj_cpu_binding *b = calloc(1, sizeof *b);
    if (b) b->e = calloc((size_t)cap, sizeof *b->e);
    qj_cpu_kspec *specs = calloc((size_t)cap, sizeof *specs); /* the distinct specs and their kernels */
    qj_cpu_gemv_fn *fns = calloc((size_t)cap, sizeof *fns);
    qj_status s = QJ_OK;
    int nd = 0;
    if (!b || !b->e || !specs || !fns) s = qj_fail(QJ_ERR_NOMEM, "out of memory");
    for (int i = 0; !s && i < cap; i++) {
        const qj_tensor *t = model_linear(m, i);
        if (t->dtype != QJ_DTYPE_Q) continue;
        qj_cpu_kspec ks;
        if ((s = qj_cpu_kspec_of(t, &ks))) break;
        int d = 0;
        while (d < nd && !qj_cpu_kspec_equal(&specs[d], &ks)) d++;
        if (d == nd) { /* a spec not seen yet: ask for its kernel */
            if ((s = lookup(ctx, &ks, &fns[d]))) break;
            specs[nd++] = ks;
        }
        b->e[b->n++] = (cpu_entry){t, fns[d]};
    }
    free(specs);
    free(fns);
    if (s) {
        if (b) free(b->e);
        free(b);
        return s;
    }
    m->cpu_matvec = cpu_matvec;
    m->cpu_matvec_ctx = b;
    if (n_distinct) *n_distinct = nd;
    *out = b;
    return QJ_OK;
}

void qj_cpu_binding_free(qj_model *m, qj_cpu_binding *b) {
    if (!b) return;
    if (m && m->cpu_matvec_ctx == b) {
        m->cpu_matvec = NULL;
        m->cpu_matvec_ctx = NULL;
    }
    free(b->e);
    free(b);
}

/* ---- host features without LLVM (for exported applications) ---- */

int qj_cpu_host_has(const char *features, char *missing, size_t missing_len) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    /* the features that decide which instructions the kernels may use */
    const struct {
        const char *name;
        int has;
    } known[] = {
        {"sse2", __builtin_cpu_supports("sse2")},         {"sse3", __builtin_cpu_supports("sse3")},
        {"ssse3", __builtin_cpu_supports("ssse3")},       {"sse4.1", __builtin_cpu_supports("sse4.1")},
        {"sse4.2", __builtin_cpu_supports("sse4.2")},     {"popcnt", __builtin_cpu_supports("popcnt")},
        {"avx", __builtin_cpu_supports("avx")},           {"avx2", __builtin_cpu_supports("avx2")},
        {"fma", __builtin_cpu_supports("fma")},           {"bmi", __builtin_cpu_supports("bmi")},
        {"bmi2", __builtin_cpu_supports("bmi2")},         {"avx512f", __builtin_cpu_supports("avx512f")},
        {"avx512bw", __builtin_cpu_supports("avx512bw")}, {"avx512dq", __builtin_cpu_supports("avx512dq")},
        {"avx512vl", __builtin_cpu_supports("avx512vl")}, {"avx512cd", __builtin_cpu_supports("avx512cd")},
        {"avx512vnni", __builtin_cpu_supports("avx512vnni")},
        {"avx512bf16", __builtin_cpu_supports("avx512bf16")},
        {"avx512vbmi", __builtin_cpu_supports("avx512vbmi")},
    };
    const char *p = features ? features : "";
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > 1 && p[0] == '+') {
            for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
                if (strlen(known[k].name) == len - 1 && !memcmp(known[k].name, p + 1, len - 1) && !known[k].has) {
                    if (missing) snprintf(missing, missing_len, "%s", known[k].name);
                    return 0;
                }
        }
        p += len;
        if (*p == ',') p++;
    }
    return 1;
#else
    (void)features;
    if (missing) snprintf(missing, missing_len, "?");
    return -1;
#endif
}
