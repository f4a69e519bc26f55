/* qj_xround.h — what a two-digit integer CPU kernel (qj_cpu_int_xdigits) may
 * add to a row's error by rounding x: each x within 128.5 units of 1 /
 * QJ_CPU_XQ of its group's largest |x|, weighted by |code * scale| = |w -
 * zero| of the dequantized row. Shared by the tests that compare those kernels
 * with the reference or with the float kernels. */
#ifndef QJ_XROUND_H
#define QJ_XROUND_H

#include <math.h>
#include <stdint.h>

#include "qj_cpu_kernels.h"
#include "qj_layout.h"
#include "qj_tensor.h"

/* row: the dequantized row r of the packed tensor t (qj_tensor_row_f32); x: K values. */
static inline double qj_xround_bound(const qj_tensor *t, int64_t r, const float *row, const float *x) {
    const int64_t K = t->shape[1], G = t->q.group, ng = QJ_NGROUPS(K, G);
    double b = 0;
    for (int64_t g = 0; g < ng; g++) {
        const int64_t k0 = g * G, k1 = k0 + G < K ? k0 + G : K;
        const float s = qj_load_f32(t->scales, t->q.scale_dtype, (size_t)(r * ng + g));
        const float z = t->q.symmetric ? -(float)QJ_SYM_OFFSET(t->q.bits) * s
                                       : qj_load_f32(t->zeros, t->q.scale_dtype, (size_t)(r * ng + g));
        double xm = 0, cw = 0;
        for (int64_t k = k0; k < k1; k++) {
            xm = fabs(x[k]) > xm ? fabs(x[k]) : xm;
            cw += fabs((double)row[k] - z);
        }
        b += cw * 128.5 * xm / QJ_CPU_XQ;
    }
    return b;
}
#endif
