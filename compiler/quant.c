/* quant.c — RTN quantization (asymmetric: scale + float zero point; symmetric:
 * scale only) with fp16/bf16 scales, packed per templates/qj_layout.h. */
#include "quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qj_layout.h"
#include "qj_model.h"

int qj_qformat_group(const qj_qformat *fmt, int64_t K) {
    return fmt->group ? fmt->group : (int)(QJ_NBLOCKS(K) * QJ_BLOCK);
}

qj_status qj_qformat_check(const qj_qformat *fmt) {
    if (fmt->bits < QJ_MIN_BITS || fmt->bits > QJ_MAX_BITS)
        return qj_fail(QJ_ERR_INVALID, "bits %d out of range (2..8)", fmt->bits);
    if (fmt->group != 0 && (fmt->group < 32 || fmt->group > 512 || fmt->group % 32))
        return qj_fail(QJ_ERR_INVALID, "group size %d is not 0 (per-channel) or a multiple of 32 in 32..512",
                       fmt->group);
    if (fmt->scale_dtype != QJ_DTYPE_F16 && fmt->scale_dtype != QJ_DTYPE_BF16)
        return qj_fail(QJ_ERR_INVALID, "scale dtype must be f16 or bf16, not %s", qj_dtype_name(fmt->scale_dtype));
    return QJ_OK;
}

size_t qj_quant_bytes(int64_t N, int64_t K, const qj_qformat *fmt) {
    int64_t G = qj_qformat_group(fmt, K), ng = QJ_NGROUPS(K, G);
    size_t codes = (size_t)N * (size_t)QJ_ROW_WORDS(K, (int64_t)fmt->bits) * 4;
    size_t per_group = qj_dtype_size(fmt->scale_dtype) * (fmt->symmetric ? 1u : 2u);
    return codes + (size_t)N * (size_t)ng * per_group;
}

/* Round to the storage dtype and back, so codes are chosen with the scale the
 * kernels will see. */
static float round_to(float v, qj_dtype t) {
    return t == QJ_DTYPE_BF16 ? qj_bf16_to_f32(qj_f32_to_bf16(v)) : qj_f16_to_f32(qj_f32_to_f16(v));
}

static void store(void *arr, qj_dtype t, int64_t i, float v) {
    uint16_t h = t == QJ_DTYPE_BF16 ? qj_f32_to_bf16(v) : qj_f32_to_f16(v);
    ((uint16_t *)arr)[i] = h;
}

void qj_quantize_row(const float *w, int64_t K, const qj_qformat *fmt, int group, uint32_t *q, void *scales,
                     void *zeros) {
    const int B = fmt->bits;
    const float qmax = (float)((1 << B) - 1), off = (float)QJ_SYM_OFFSET(B);
    int64_t ng = QJ_NGROUPS(K, group);
    for (int64_t g = 0; g < ng; g++) {
        int64_t k0 = g * group, k1 = k0 + group < K ? k0 + group : K;
        if (fmt->symmetric) {
            float a = w[k0]; /* signed value of largest magnitude, first on ties */
            for (int64_t k = k0 + 1; k < k1; k++)
                if (fabsf(w[k]) > fabsf(a)) a = w[k];
            float s = round_to(a / -off, fmt->scale_dtype);
            store(scales, fmt->scale_dtype, g, s);
            for (int64_t k = k0; k < k1; k++) {
                float c = s != 0.0f ? nearbyintf(w[k] / s) + off : off;
                c = c < 0.0f ? 0.0f : (c > qmax ? qmax : c);
                qj_pack_code(q, (uint32_t)k, (uint32_t)B, (uint32_t)c);
            }
        } else {
            float lo = w[k0], hi = w[k0];
            for (int64_t k = k0 + 1; k < k1; k++) {
                lo = w[k] < lo ? w[k] : lo;
                hi = w[k] > hi ? w[k] : hi;
            }
            float s = round_to((hi - lo) / qmax, fmt->scale_dtype);
            float m = round_to(lo, fmt->scale_dtype);
            store(scales, fmt->scale_dtype, g, s);
            store(zeros, fmt->scale_dtype, g, m);
            for (int64_t k = k0; k < k1; k++) {
                float c = s != 0.0f ? nearbyintf((w[k] - m) / s) : 0.0f;
                c = c < 0.0f ? 0.0f : (c > qmax ? qmax : c);
                qj_pack_code(q, (uint32_t)k, (uint32_t)B, (uint32_t)c);
            }
        }
    }
}

void qj_qbuf_free(qj_qbuf *b) {
    if (!b) return;
    free(b->q);
    free(b->scales);
    free(b->zeros);
    memset(b, 0, sizeof *b);
}

qj_status qj_quantize(const qj_tensor *w, const qj_qformat *fmt, qj_qbuf *out) {
    memset(out, 0, sizeof *out);
    qj_status s = qj_qformat_check(fmt);
    if (s) return qj_fail_context(s, "%s", w->name);
    if (w->ndim != 2 || w->dtype == QJ_DTYPE_Q)
        return qj_fail(QJ_ERR_INVALID, "%s: only dense 2-D weights can be quantized", w->name);
    int64_t N = w->shape[0], K = w->shape[1];
    int G = qj_qformat_group(fmt, K);
    int64_t ng = QJ_NGROUPS(K, G), rw = QJ_ROW_WORDS(K, (int64_t)fmt->bits);
    size_t es = qj_dtype_size(fmt->scale_dtype);
    out->q_bytes = (size_t)N * (size_t)rw * 4;
    out->scales_bytes = (size_t)N * (size_t)ng * es;
    out->zeros_bytes = fmt->symmetric ? 0 : out->scales_bytes;
    out->q = calloc(1, out->q_bytes);
    out->scales = malloc(out->scales_bytes);
    out->zeros = fmt->symmetric ? NULL : malloc(out->zeros_bytes);
    if (!out->q || !out->scales || (!fmt->symmetric && !out->zeros)) {
        qj_qbuf_free(out);
        return qj_fail(QJ_ERR_NOMEM, "%s: out of memory quantizing (%lld x %lld)", w->name, (long long)N,
                       (long long)K);
    }
    int oom = 0;
    #pragma omp parallel
    {
        float *row = malloc((size_t)K * sizeof *row);
        if (!row) {
            #pragma omp atomic write
            oom = 1;
        } else {
            #pragma omp for schedule(static)
            for (int64_t n = 0; n < N; n++) {
                qj_tensor_row_f32(w, n, row);
                qj_quantize_row(row, K, fmt, G, out->q + n * rw, (char *)out->scales + (size_t)(n * ng) * es,
                                out->zeros ? (char *)out->zeros + (size_t)(n * ng) * es : NULL);
            }
        }
        free(row);
    }
    if (oom) {
        qj_qbuf_free(out);
        return qj_fail(QJ_ERR_NOMEM, "%s: out of memory quantizing", w->name);
    }
    return QJ_OK;
}

void qj_tensor_set_quant(qj_tensor *t, const char *name, int64_t N, int64_t K, const qj_qformat *fmt,
                         const qj_qbuf *b) {
    int64_t shape[2] = {N, K};
    qj_tensor_set(t, name, QJ_DTYPE_Q, 2, shape, b->q);
    t->nbytes = b->q_bytes;
    t->q = *fmt;
    t->q.group = qj_qformat_group(fmt, K);
    t->scales = b->scales;
    t->zeros = b->zeros;
    t->scales_nbytes = b->scales_bytes;
    t->zeros_nbytes = b->zeros_bytes;
}

/* QJ_OUTERR_INPUTS rows of K N(0, 1) floats from seed (Box-Muller on splitmix64) */
static void outerr_inputs(float *x, int64_t K, uint64_t seed) {
    uint64_t st = seed * 0x9E3779B97F4A7C15ull + (uint64_t)K;
    const int64_t n = (int64_t)QJ_OUTERR_INPUTS * K;
    for (int64_t i = 0; i < n; i += 2) {
        double u[2];
        for (int j = 0; j < 2; j++) {
            uint64_t z = (st += 0x9E3779B97F4A7C15ull);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            z ^= z >> 31;
            u[j] = ((double)(z >> 11) + 0.5) * (1.0 / 9007199254740992.0);
        }
        const double r = sqrt(-2.0 * log(u[0])), a = 6.283185307179586 * u[1];
        x[i] = (float)(r * cos(a));
        if (i + 1 < n) x[i + 1] = (float)(r * sin(a));
    }
}

qj_status qj_quant_output_error(const qj_tensor *w, const qj_qformat *fmt, int64_t max_rows, uint64_t seed,
                                double *err2, double *ref2) {
    *err2 = *ref2 = 0;
    qj_status s = qj_qformat_check(fmt);
    if (s) return s;
    if (w->ndim != 2 || w->dtype == QJ_DTYPE_Q)
        return qj_fail(QJ_ERR_INVALID, "%s: the layer-output error needs a dense 2-D weight", w->name);
    const int64_t N = w->shape[0], K = w->shape[1];
    const int64_t rows = max_rows > 0 && N > max_rows ? max_rows : N;
    const int G = qj_qformat_group(fmt, K);
    const int64_t ng = QJ_NGROUPS(K, G), rw = QJ_ROW_WORDS(K, (int64_t)fmt->bits);
    const size_t es = qj_dtype_size(fmt->scale_dtype);
    float *x = malloc((size_t)QJ_OUTERR_INPUTS * (size_t)K * sizeof *x);
    if (!x) return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", w->name);
    outerr_inputs(x, K, seed);
    double e2 = 0, r2 = 0;
    int oom = 0;
    #pragma omp parallel reduction(+ : e2, r2)
    {
        float *row = malloc((size_t)K * sizeof *row), *deq = malloc((size_t)K * sizeof *deq);
        uint32_t *q = malloc((size_t)rw * 4);
        char *sc = malloc((size_t)ng * es), *zp = malloc((size_t)ng * es);
        if (!row || !deq || !q || !sc || !zp) {
            #pragma omp atomic write
            oom = 1;
        } else {
            #pragma omp for schedule(static)
            for (int64_t j = 0; j < rows; j++) {
                const int64_t n = rows == N ? j : j * N / rows;
                qj_tensor_row_f32(w, n, row);
                memset(q, 0, (size_t)rw * 4);
                qj_quantize_row(row, K, fmt, G, q, sc, fmt->symmetric ? NULL : zp);
                qj_qbuf b = {q, sc, fmt->symmetric ? NULL : zp, (size_t)rw * 4, (size_t)ng * es,
                             fmt->symmetric ? 0 : (size_t)ng * es};
                qj_tensor t1;
                memset(&t1, 0, sizeof t1);
                qj_tensor_set_quant(&t1, w->name, 1, K, fmt, &b);
                qj_tensor_row_f32(&t1, 0, deq);
                for (int r = 0; r < QJ_OUTERR_INPUTS; r++) {
                    const float *xr = x + (size_t)r * (size_t)K;
                    double dw = 0, ww = 0;
                    for (int64_t k = 0; k < K; k++) {
                        dw += (double)(row[k] - deq[k]) * xr[k];
                        ww += (double)row[k] * xr[k];
                    }
                    e2 += dw * dw;
                    r2 += ww * ww;
                }
            }
        }
        free(row);
        free(deq);
        free(q);
        free(sc);
        free(zp);
    }
    free(x);
    if (oom) return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", w->name);
    *err2 = e2;
    *ref2 = r2;
    return QJ_OK;
}
