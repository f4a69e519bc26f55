/* qj_tensor.c — dtype names, sizes, half-precision conversion, row dequantization. */
#include "qj_tensor.h"

#include <math.h>
#include <string.h>

#include "../templates/qj_layout.h"

static const char *const dtype_names[QJ_DTYPE_COUNT] = {"f32", "f16", "bf16", "q"};

const char *qj_dtype_name(qj_dtype t) {
    return (unsigned)t < QJ_DTYPE_COUNT ? dtype_names[t] : "?";
}

qj_status qj_dtype_parse(const char *s, qj_dtype *out) {
    static const struct { const char *name; qj_dtype t; } names[] = {
        {"f32", QJ_DTYPE_F32},  {"fp32", QJ_DTYPE_F32},     {"float32", QJ_DTYPE_F32},
        {"f16", QJ_DTYPE_F16},  {"fp16", QJ_DTYPE_F16},     {"float16", QJ_DTYPE_F16},
        {"bf16", QJ_DTYPE_BF16}, {"bfloat16", QJ_DTYPE_BF16},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) { *out = names[i].t; return QJ_OK; }
    return qj_fail(QJ_ERR_INVALID, "unknown dtype \"%s\" (expected f32, f16 or bf16)", s);
}

size_t qj_dtype_size(qj_dtype t) {
    switch (t) {
    case QJ_DTYPE_F32: return 4;
    case QJ_DTYPE_F16:
    case QJ_DTYPE_BF16: return 2;
    default: return 0;
    }
}

int64_t qj_tensor_numel(const qj_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t qj_tensor_bytes(const qj_tensor *t) {
    return t->nbytes + t->scales_nbytes + t->zeros_nbytes;
}

float qj_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal: value = man * 2^-24 */
            float f = (float)man * 5.9604644775390625e-8f;
            return sign ? -f : f;
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 112u) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t qj_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: inf */
    if (ax < 0x38800000u) { /* below the smallest normal 2^-14: subnormal or zero */
        float a;
        memcpy(&a, &ax, 4);
        /* value in units of 2^-24, rounded to nearest even by the FPU */
        float q = nearbyintf(a * 16777216.0f);
        return (uint16_t)(sign | (uint32_t)q);
    }
    uint32_t mant_rounded = ax + 0xfffu + ((ax >> 13) & 1u); /* RNE on the dropped 13 bits */
    return (uint16_t)(sign | ((mant_rounded - 0x38000000u) >> 13));
}

float qj_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t qj_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

float qj_load_f32(const void *data, qj_dtype t, size_t i) {
    switch (t) {
    case QJ_DTYPE_F32: return ((const float *)data)[i];
    case QJ_DTYPE_F16: return qj_f16_to_f32(((const uint16_t *)data)[i]);
    case QJ_DTYPE_BF16: return qj_bf16_to_f32(((const uint16_t *)data)[i]);
    default: return NAN;
    }
}

void qj_convert_to_f32(float *dst, const void *src, qj_dtype t, size_t n) {
    if (t == QJ_DTYPE_F32) { memcpy(dst, src, n * sizeof(float)); return; }
    const uint16_t *h = (const uint16_t *)src;
    if (t == QJ_DTYPE_BF16)
        for (size_t i = 0; i < n; i++) dst[i] = qj_bf16_to_f32(h[i]);
    else
        for (size_t i = 0; i < n; i++) dst[i] = qj_f16_to_f32(h[i]);
}

void qj_convert_from_f32(void *dst, qj_dtype t, const float *src, size_t n) {
    if (t == QJ_DTYPE_F32) { memcpy(dst, src, n * sizeof(float)); return; }
    uint16_t *h = (uint16_t *)dst;
    if (t == QJ_DTYPE_BF16)
        for (size_t i = 0; i < n; i++) h[i] = qj_f32_to_bf16(src[i]);
    else
        for (size_t i = 0; i < n; i++) h[i] = qj_f32_to_f16(src[i]);
}

void qj_tensor_row_f32(const qj_tensor *t, int64_t n, float *out) {
    int64_t K = t->ndim >= 2 ? t->shape[1] : t->shape[0];
    if (t->dtype != QJ_DTYPE_Q) {
        size_t es = qj_dtype_size(t->dtype);
        qj_convert_to_f32(out, (const char *)t->data + (size_t)n * (size_t)K * es, t->dtype, (size_t)K);
        return;
    }
    uint32_t B = (uint32_t)t->q.bits, G = (uint32_t)t->q.group;
    int64_t ng = QJ_NGROUPS(K, G);
    const uint32_t *row = (const uint32_t *)t->data + n * QJ_ROW_WORDS(K, (int64_t)B);
    uint32_t codes[QJ_BLOCK];
    for (int64_t g = 0; g < ng; g++) {
        float s = qj_load_f32(t->scales, t->q.scale_dtype, (size_t)(n * ng + g));
        float z = t->q.symmetric ? 0.0f : qj_load_f32(t->zeros, t->q.scale_dtype, (size_t)(n * ng + g));
        float off = t->q.symmetric ? (float)QJ_SYM_OFFSET(B) : 0.0f;
        int64_t k1 = (g + 1) * G < K ? (g + 1) * G : K;
        for (int64_t k0 = g * G; k0 < k1; k0 += QJ_BLOCK) { /* groups are whole blocks */
            qj_unpack_block(row + (k0 / QJ_BLOCK) * B, B, codes);
            int64_t m = k1 - k0 < QJ_BLOCK ? k1 - k0 : QJ_BLOCK;
            if (t->q.symmetric)
                for (int64_t j = 0; j < m; j++) out[k0 + j] = ((float)codes[j] - off) * s;
            else
                for (int64_t j = 0; j < m; j++) out[k0 + j] = (float)codes[j] * s + z;
        }
    }
}
