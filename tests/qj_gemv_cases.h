/* qj_gemv_cases.h — the GEMV specs the nvrtc and gpu tests cover: every packed
 * width x every group size (and per-channel) x regular and ragged shapes x
 * batch paths, plus the dense kernels. */
#ifndef QJ_GEMV_CASES_H
#define QJ_GEMV_CASES_H

#include "cuda_codegen.h"
#include "quant.h"

static const int qj_case_bits[] = {2, 3, 4, 5, 6, 7, 8};
static const int qj_case_groups[] = {32, 64, 128, 256, 512, 0};
static const long long qj_case_shapes[][2] = {{256, 4096}, {64, 172}, {48, 64}, {33, 100}, {40, 1536}};
static const int qj_case_batches[] = {1, 4};

/* Enumerate case i (returns 0 when i is past the end). Dense cases come last:
 * bits 16 (f16, bf16) and 32. */
static inline int qj_gemv_case(int i, qj_gemv_spec *s, int *sym) {
    const int nb = 7, ng = 6, ns = 5, nbt = 2;
    int packed = nb * ng * ns * nbt;
    qj_tensor t;
    memset(&t, 0, sizeof t);
    t.ndim = 2;
    if (i < packed) {
        int b = i % nb, g = (i / nb) % ng, sh = (i / (nb * ng)) % ns, bt = i / (nb * ng * ns);
        t.dtype = QJ_DTYPE_Q;
        t.shape[0] = qj_case_shapes[sh][0];
        t.shape[1] = qj_case_shapes[sh][1];
        qj_qformat f = {qj_case_bits[b], qj_case_groups[g], (i / 3) % 2, (i % 5 == 0) ? QJ_DTYPE_BF16 : QJ_DTYPE_F16};
        t.q = f;
        t.q.group = qj_qformat_group(&f, t.shape[1]);
        *sym = f.symmetric;
        return qj_gemv_spec_for(&t, qj_case_batches[bt], s) == QJ_OK;
    }
    i -= packed;
    if (i >= 3 * ns * nbt) return 0;
    static const qj_dtype dense[3] = {QJ_DTYPE_F16, QJ_DTYPE_BF16, QJ_DTYPE_F32};
    t.dtype = dense[i % 3];
    t.shape[0] = qj_case_shapes[(i / 3) % ns][0];
    t.shape[1] = qj_case_shapes[(i / 3) % ns][1];
    *sym = 0;
    return qj_gemv_spec_for(&t, qj_case_batches[i / (3 * ns)], s) == QJ_OK;
}

#endif
