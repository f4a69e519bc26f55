// ctest-labels: gpu
/* test_gpu_gemv.c — every generated linear kernel (CUDA-core GEMV and
 * tensor-core, all widths x groups x regular/ragged shapes x batch paths,
 * fused launches of mixed formats, dense kernels) against the C reference on
 * fresh random inputs, output poisoned with NaN before each launch (kernels whose
 * K splits add into y, the default since 2026-12-07: y holds small whole numbers first, and what
 * the kernel added to them is checked, so a sum added twice or not at all shows; each such case runs
 * again with the splits summed by the last block, QJ_IM_RED=0's kernel). Bound per
 * output: 1e-5 sum|w x| + 1e-6 times the magnitude of the fold's terms
 * (scale * sum(c x) and zero * sum(x) per group), the level of fp32 rounding.
 * Exits 77 (skipped) where no CUDA device is present. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda_codegen.h"
#include "gpu_linear.h"
#include "nvrtc.h"
#include "qj_cuda.h"
#include "qj_gemv_cases.h"
#include "qj_layout.h"
#include "qj_model.h"
#include "qj_test.h"
#include "qj_test_cuda.h"
#include "quant.h"

typedef struct built {
    void *img;
    size_t len;
    qj_status st;
    int skip; /* an entry past the cases whose case's kernel does not add into y */
    char err[512];
} built;

/* Entry i < n is case i as the compiler specifies it; entry n + i is case i again with its K splits summed by the
 * last block (spec.red off: QJ_IM_RED=0), for the cases whose splits add into y by default, else skipped. */
static qj_status entry_spec(int i, int n, qj_case *c, qj_gemv_spec *s, int *skip) {
    qj_gemv_case_get(i % n, c);
    qj_status st = qj_gemv_case_spec(c, s);
    *skip = !st && i >= n && !s->red;
    if (i >= n) s->red = 0;
    return st;
}

int main(int argc, char **argv) {
    qj_cuda *cu;
    char arch[32];
    const int rc = qj_test_cuda_open(&cu, arch, sizeof arch);
    if (rc) return rc;
    const qj_cuda_info *I = qj_cuda_get_info(cu);
    int has_mma = qj_gemv_arch_has_mma(arch);
    printf("%s (sm %d.%d, %d SMs), target %s%s\n", I->name, I->cc_major, I->cc_minor, I->sm_count, arch,
           has_mma ? "" : " (no tensor-core kernels: their cases are skipped)");
    qj_test_seed_fresh(argc, argv);

    int n = 0;
    qj_case cz;
    while (qj_gemv_case_get(n, &cz)) n++;
    built *b = calloc((size_t)(2 * n), sizeof *b);
    #pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < 2 * n; i++) {
        qj_case c;
        qj_gemv_spec cs;
        b[i].st = entry_spec(i, n, &c, &cs, &b[i].skip);
        if ((c.allow_mma && !has_mma) || b[i].skip) continue;
        char *src = NULL;
        if (!b[i].st) b[i].st = qj_gemv_source(&cs, arch, &src);
        if (!b[i].st) b[i].st = qj_kcache_compile(src, "gemv.cu", arch, &b[i].img, &b[i].len, NULL);
        if (b[i].st) snprintf(b[i].err, sizeof b[i].err, "%s", qj_last_error());
        free(src);
    }
    qj_custream st0 = NULL;
    qj_gact act = {0};
    int bad = 0, checked = 0, n_mma = 0, n_dq = 0, n_im = 0, n_ks = 0, n_red = 0, n_last = 0;
    double worst = 0;
    for (int i = 0; i < 2 * n; i++) {
        qj_case c;
        qj_glinear L;
        memset(&L, 0, sizeof L);
        int skip;
        entry_spec(i, n, &c, &L.spec, &skip);
        if ((c.allow_mma && !has_mma) || skip) continue;
        qj_gemv_name(&L.spec, arch, L.name, sizeof L.name);
        QJ_CHECK_MSG(L.spec.mma == (c.allow_mma == 2), "%s: case %d is a %s case", L.name, i,
                     c.allow_mma == 2 ? "tensor-core" : "CUDA-core");
        QJ_CHECK_MSG(L.spec.im == (c.allow_mma == 1), "%s: case %d: integer-MMA kernel expected exactly for its cases", L.name, i);
        QJ_CHECK_MSG(L.spec.dq == (!c.allow_mma && c.dtype == QJ_DTYPE_Q && c.batch <= QJ_DQ_MAX_BATCH),
                     "%s: case %d: integer-dot kernel expected exactly for packed batch <= %d", L.name, i, QJ_DQ_MAX_BATCH);
        if (b[i].st) {
            QJ_CHECK_MSG(0, "%s: %s", L.name, b[i].err);
            bad++;
            continue;
        }
        int64_t N = L.spec.N, K = c.K, B = c.batch, stride = QJ_NBLOCKS(K) * 32 + 4;
        /* parts: random weights, quantized by the C quantizer (or dense in their dtype) */
        qj_tensor qt[3];
        const qj_tensor *parts[3];
        qj_qbuf qb[3];
        void *dense[3] = {0};
        float *w[3] = {0};
        memset(qb, 0, sizeof qb);
        int ok = 1;
        for (int p = 0; p < c.nparts; p++) {
            int64_t Np = c.N[p], shape[2] = {Np, K};
            w[p] = malloc((size_t)(Np * K) * sizeof(float));
            for (int64_t j = 0; j < Np * K; j++) w[p][j] = qj_test_frand() * (j % 7 == 0 ? 0.5f : 0.05f);
            qj_tensor src;
            qj_tensor_set(&src, "w", QJ_DTYPE_F32, 2, shape, w[p]);
            if (c.dtype == QJ_DTYPE_Q) {
                if (qj_quantize(&src, &c.f[p], &qb[p])) {
                    QJ_CHECK_MSG(0, "%s: quantize: %s", L.name, qj_last_error());
                    ok = 0;
                    break;
                }
                qj_tensor_set_quant(&qt[p], "w", Np, K, &c.f[p], &qb[p]);
            } else {
                dense[p] = malloc((size_t)(Np * K) * qj_dtype_size(c.dtype));
                qj_convert_from_f32(dense[p], c.dtype, w[p], (size_t)(Np * K));
                qj_tensor_set(&qt[p], "w", c.dtype, 2, shape, dense[p]);
            }
            parts[p] = &qt[p];
        }
        float *x = calloc((size_t)(B * stride), sizeof *x), *y = malloc((size_t)(B * N) * sizeof *y);
        float *base = malloc((size_t)(B * N) * sizeof *base); /* y's start for a kernel that adds into it */
        for (int64_t j = 0; j < B * N; j++) base[j] = (float)(j % 7) - 3.0f;
        /* activations of mixed magnitudes: the tensor-core path scales per 128-value tile */
        for (int64_t bb = 0; bb < B; bb++)
            for (int64_t k = 0; k < K; k++) x[bb * stride + k] = qj_test_frand() * (k % 300 < 128 ? 1.0f : k % 300 < 200 ? 1e-3f : 40.0f);
        /* reference in double from the dequantized rows; mag: sum |w x|; fmag: the same over the
         * terms of every kernel's fold, scale * sum(c x) + zero * sum(x) per group, which cancel
         * where many weights are near zero (their fp32 rounding is relative to these terms) */
        double *ref = calloc((size_t)(B * N), sizeof *ref), *mag = calloc((size_t)(B * N), sizeof *mag);
        double *fmag = calloc((size_t)(B * N), sizeof *fmag);
        float *row = malloc((size_t)K * sizeof *row), *fw = malloc((size_t)K * sizeof *fw);
        for (int p = 0, r0 = 0; ok && p < c.nparts; r0 += (int)c.N[p], p++)
            for (int64_t r = 0; r < c.N[p]; r++) {
                qj_tensor_row_f32(&qt[p], r, row);
                for (int64_t k = 0; k < K; k++) fw[k] = fabsf(row[k]);
                if (qt[p].dtype == QJ_DTYPE_Q) {
                    const qj_qformat *q = &qt[p].q;
                    const int64_t ng = (K + q->group - 1) / q->group;
                    const uint16_t *sc = qt[p].scales, *zc = qt[p].zeros;
                    for (int64_t k = 0; k < K; k++) {
                        const int64_t gi = r * ng + k / q->group;
                        const int bf = q->scale_dtype == QJ_DTYPE_BF16;
                        const float sv = fabsf(bf ? qj_bf16_to_f32(sc[gi]) : qj_f16_to_f32(sc[gi]));
                        const float zv = q->symmetric ? sv * (float)(1 << (q->bits - 1))
                                                      : fabsf(bf ? qj_bf16_to_f32(zc[gi]) : qj_f16_to_f32(zc[gi]));
                        fw[k] = sv * (float)((1 << q->bits) - 1) + zv;
                    }
                }
                for (int64_t bb = 0; bb < B; bb++)
                    for (int64_t k = 0; k < K; k++) {
                        ref[bb * N + r0 + r] += (double)row[k] * x[bb * stride + k];
                        mag[bb * N + r0 + r] += fabs((double)row[k] * x[bb * stride + k]);
                        fmag[bb * N + r0 + r] += (double)fw[k] * fabs((double)x[bb * stride + k]);
                    }
            }
        qj_dptr dx = 0, dy = 0;
        qj_cumodule mod = NULL;
        qj_status st = ok ? qj_glinear_upload(cu, parts, &L) : QJ_ERR_INVALID;
        if (!st) st = qj_cuda_alloc(cu, (size_t)(B * stride) * 4, &dx);
        if (!st) st = qj_cuda_upload(cu, dx, x, (size_t)(B * stride) * 4);
        if (!st) st = qj_cuda_alloc(cu, (size_t)(B * N) * 4, &dy);
        if (!st && !L.spec.red) st = qj_cuda_memset8(cu, dy, 0xff, (size_t)(B * N) * 4); /* NaN poison */
        if (!st) st = qj_gact_reserve(cu, &act, &L.spec);
        if (!st && act.xf) st = qj_cuda_memset8(cu, act.xf, 0xff, act.xf_bytes); /* stale fragments poisoned too */
        if (!st && act.xq) st = qj_cuda_memset8(cu, act.xq, 0xff, act.xq_bytes);
        if (!st && act.xc) st = qj_cuda_memset8(cu, act.xc, 0xff, act.xc_bytes);
        if (!st && act.xi) st = qj_cuda_memset8(cu, act.xi, 0xff, act.xi_bytes);
        if (!st && act.xw) st = qj_cuda_memset8(cu, act.xw, 0xff, act.xw_bytes);
        if (!st) st = qj_cuda_module_load(cu, b[i].img, &mod);
        if (!st) st = qj_glinear_bind(cu, mod, &L);
        /* kernels whose blocks split K run twice (poisoned again): the second launch finds the split counts the
         * first left, which must be back at zero */
        for (int rep = 0; rep < (L.spec.ks > 1 ? 2 : 1); rep++) {
        if (!st && rep && !L.spec.red) st = qj_cuda_memset8(cu, dy, 0xff, (size_t)(B * N) * 4);
        if (!st && L.spec.red) st = qj_cuda_upload(cu, dy, base, (size_t)(B * N) * 4);
        if (!st) st = qj_glinear_prep(cu, st0, &L, dx, (int)stride, &act);
        if (!st) st = qj_glinear_run(cu, st0, &L, dx, (int)stride, &act, dy, (int)N);
        if (!st) st = qj_cuda_sync(cu);
        if (!st) st = qj_cuda_download(cu, y, dy, (size_t)(B * N) * 4);
        if (st) {
            QJ_CHECK_MSG(0, "%s: %s", L.name, qj_last_error());
            bad++;
            break;
        } else {
            double num = 0, den = 0;
            int nan = 0, far = 0;
            for (int64_t j = 0; j < B * N; j++) {
                if (isnan(y[j])) nan++;
                /* (adds into y: what was added, with one fp32 rounding of the running sum a split) */
                const double b0 = L.spec.red ? base[j] : 0.0, eadd = L.spec.red ? 1.2e-7 * L.spec.ks * (fabs(b0) + mag[j]) : 0.0;
                double e = fabs((double)y[j] - b0 - ref[j]);
                num += e * e;
                den += ref[j] * ref[j];
                if (!(e <= 1e-5 * mag[j] + 1e-6 * fmag[j] + eadd + 1e-30)) far++;
            }
            double rel = sqrt(num / (den > 0 ? den : 1));
            worst = rel > worst ? rel : worst;
            if (!rep) {
                checked++;
                n_mma += L.spec.mma;
                n_dq += L.spec.dq;
                n_im += L.spec.im;
                n_ks += L.spec.ks > 1 && i < n;
                n_red += L.spec.red;
                n_last += i >= n;
            }
            if (nan || far || !(rel < 1e-5)) {
                QJ_CHECK_MSG(0, "%s%s: rel %.3g, %d NaN, %d outside the fp32 bound", L.name, rep ? " (second launch)" : "",
                             rel, nan, far);
                bad++;
                break;
            } else qj_test_pass++;
        }
        }
        qj_cuda_module_unload(cu, mod);
        qj_glinear_free(cu, &L);
        qj_cuda_free(cu, dx);
        qj_cuda_free(cu, dy);
        for (int p = 0; p < c.nparts; p++) {
            qj_qbuf_free(&qb[p]);
            free(dense[p]);
            free(w[p]);
        }
        free(x);
        free(y);
        free(base);
        free(ref);
        free(mag);
        free(fmag);
        free(fw);
        free(row);
        free(b[i].img);
    }
    printf("%d kernels (%d tensor-core, %d integer-dot, %d integer-MMA, %d of them with K split over blocks and run twice, "
           "%d of those adding into y, and %d of those again summed by the last block) checked against the C reference, "
           "%d bad, worst relative error %.3g\n",
           checked, n_mma, n_dq, n_im, n_ks, n_red, n_last, bad, worst);
    const char *re = getenv("QJ_IM_RED"); /* (QJ_IM_RED=0: no kernel adds, so none runs again) */
    QJ_CHECK_MSG(n_last == n_red && (n_red > 0 || !has_mma || (re && !strcmp(re, "0"))),
                 "K splits adding into y: %d, again summed by the last block: %d (equal, and some, expected)", n_red, n_last);
    qj_gact_free(cu, &act);
    free(b);
    qj_cuda_close(cu);
    return qj_test_finish();
}
