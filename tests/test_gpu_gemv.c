// ctest-labels: gpu
/* test_gpu_gemv.c — every generated GEMV kernel (all widths x groups x
 * regular/ragged shapes x batch paths, dense kernels) against the C reference
 * on fresh random inputs, output poisoned with NaN before each launch.
 * Exits 77 (skipped) where no CUDA device is present. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda_codegen.h"
#include "nvrtc.h"
#include "qj_cuda.h"
#include "qj_gemv_cases.h"
#include "qj_layout.h"
#include "qj_model.h"
#include "qj_test.h"
#include "quant.h"

static uint64_t rng;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)(rng >> 40) / 16777216.0f * 2.0f - 1.0f;
}

typedef struct built {
    void *img;
    size_t len;
    qj_status st;
    char err[512];
} built;

int main(void) {
    if (!qj_cuda_available()) {
        printf("SKIP: no CUDA device (%s)\n", qj_last_error());
        return 77;
    }
    qj_cuda *cu;
    QJ_CHECK_OK(qj_cuda_open(0, &cu));
    if (!cu) return qj_test_finish();
    const qj_cuda_info *I = qj_cuda_get_info(cu);
    char arch[32];
    qj_cuda_arch_string(I->cc_major, I->cc_minor, 0, arch, sizeof arch);
    printf("%s (sm %d.%d, %d SMs), target %s\n", I->name, I->cc_major, I->cc_minor, I->sm_count, arch);
    rng = (uint64_t)time(NULL) * 2654435761u | 1; /* fresh inputs every run */
    printf("seed %llu\n", (unsigned long long)rng);

    int n = 0;
    qj_gemv_spec s;
    int sym;
    while (qj_gemv_case(n, &s, &sym)) n++;
    built *b = calloc((size_t)n, sizeof *b);
    #pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < n; i++) {
        qj_gemv_spec cs;
        int csym;
        qj_gemv_case(i, &cs, &csym);
        char *src = NULL;
        b[i].st = qj_gemv_source(&cs, arch, &src);
        if (!b[i].st) b[i].st = qj_kcache_compile(src, "gemv.cu", arch, &b[i].img, &b[i].len, NULL);
        if (b[i].st) snprintf(b[i].err, sizeof b[i].err, "%s", qj_last_error());
        free(src);
    }
    int bad = 0;
    double worst = 0;
    for (int i = 0; i < n; i++) {
        qj_gemv_spec cs;
        int csym;
        qj_gemv_case(i, &cs, &csym);
        char name[160];
        qj_gemv_name(&cs, arch, name, sizeof name);
        if (b[i].st) {
            QJ_CHECK_MSG(0, "%s: %s", name, b[i].err);
            bad++;
            continue;
        }
        int64_t N = cs.N, K = cs.K, B = cs.batch, stride = QJ_NBLOCKS(K) * 32 + 4;
        /* weights: random, quantized by the C quantizer (or dense in its dtype) */
        float *w = malloc((size_t)(N * K) * sizeof *w);
        for (int64_t j = 0; j < N * K; j++) w[j] = frand() * (j % 7 == 0 ? 0.5f : 0.05f);
        qj_tensor src, qt;
        int64_t shape[2] = {N, K};
        qj_tensor_set(&src, "w", QJ_DTYPE_F32, 2, shape, w);
        qj_qbuf qb = {0};
        void *dense = NULL;
        if (cs.bits <= 8) {
            /* a resolved group above 512 is per-channel (group 0 to the quantizer) */
            qj_qformat f = {cs.bits, cs.group <= 512 ? cs.group : 0, csym, cs.scale_bf16 ? QJ_DTYPE_BF16 : QJ_DTYPE_F16};
            if (qj_quantize(&src, &f, &qb)) {
                QJ_CHECK_MSG(0, "%s: quantize: %s", name, qj_last_error());
                bad++;
                free(w);
                free(b[i].img);
                continue;
            }
            qj_tensor_set_quant(&qt, "w", N, K, &f, &qb);
        } else {
            qj_dtype dt = cs.bits == 32 ? QJ_DTYPE_F32 : cs.scale_bf16 ? QJ_DTYPE_BF16 : QJ_DTYPE_F16;
            dense = malloc((size_t)(N * K) * qj_dtype_size(dt));
            qj_convert_from_f32(dense, dt, w, (size_t)(N * K));
            qj_tensor_set(&qt, "w", dt, 2, shape, dense);
        }
        float *x = calloc((size_t)(B * stride), sizeof *x), *y = malloc((size_t)(B * N) * sizeof *y);
        for (int64_t bb = 0; bb < B; bb++)
            for (int64_t k = 0; k < K; k++) x[bb * stride + k] = frand();
        /* reference in double from the dequantized rows */
        double *ref = calloc((size_t)(B * N), sizeof *ref), *mag = calloc((size_t)(B * N), sizeof *mag);
        float *row = malloc((size_t)K * sizeof *row);
        for (int64_t r = 0; r < N; r++) {
            qj_tensor_row_f32(&qt, r, row);
            for (int64_t bb = 0; bb < B; bb++)
                for (int64_t k = 0; k < K; k++) {
                    ref[bb * N + r] += (double)row[k] * x[bb * stride + k];
                    mag[bb * N + r] += fabs((double)row[k] * x[bb * stride + k]);
                }
        }
        qj_dptr dw = 0, ds = 0, dz = 0, dx = 0, dy = 0;
        qj_cumodule mod = NULL;
        qj_cufunc fn = NULL;
        void *hs = NULL;
        size_t hl = 0;
        qj_status st = qj_gemv_device_scales(&qt, &hs, &hl);
        if (!st) st = qj_cuda_alloc(cu, qt.nbytes, &dw);
        if (!st) st = qj_cuda_upload(cu, dw, qt.data, qt.nbytes);
        if (!st && hl) st = qj_cuda_alloc(cu, hl, &ds);
        if (!st && hl) st = qj_cuda_upload(cu, ds, hs, hl);
        free(hs);
        if (!st) st = qj_cuda_alloc(cu, (size_t)(B * stride) * 4, &dx);
        if (!st) st = qj_cuda_upload(cu, dx, x, (size_t)(B * stride) * 4);
        if (!st) st = qj_cuda_alloc(cu, (size_t)(B * N) * 4, &dy);
        if (!st) st = qj_cuda_memset8(cu, dy, 0xff, (size_t)(B * N) * 4); /* NaN poison */
        if (!st) st = qj_cuda_module_load(cu, b[i].img, &mod);
        if (!st) st = qj_cuda_function(cu, mod, name, &fn);
        unsigned grid, block;
        qj_gemv_launch_dims(&cs, &grid, &block);
        int xs = (int)stride, ys = (int)N;
        void *args[] = {&dw, &ds, &dz, &dx, &dy, &xs, &ys};
        if (!st) st = qj_cuda_launch(cu, fn, grid, 1, 1, block, 1, 1, 0, NULL, args);
        if (!st) st = qj_cuda_sync(cu);
        if (!st) st = qj_cuda_download(cu, y, dy, (size_t)(B * N) * 4);
        if (st) {
            QJ_CHECK_MSG(0, "%s: %s", name, qj_last_error());
            bad++;
        } else {
            double num = 0, den = 0;
            int nan = 0, far = 0;
            for (int64_t j = 0; j < B * N; j++) {
                if (isnan(y[j])) nan++;
                double e = fabs((double)y[j] - ref[j]);
                num += e * e;
                den += ref[j] * ref[j];
                if (e > 1e-5 * mag[j] + 1e-30) far++;
            }
            double rel = sqrt(num / (den > 0 ? den : 1));
            worst = rel > worst ? rel : worst;
            if (nan || far || !(rel < 1e-5)) {
                QJ_CHECK_MSG(0, "%s: rel %.3g, %d NaN, %d outside the fp32 bound", name, rel, nan, far);
                bad++;
            } else qj_test_pass++;
        }
        qj_cuda_module_unload(cu, mod);
        qj_cuda_free(cu, dw);
        qj_cuda_free(cu, ds);
        qj_cuda_free(cu, dz);
        qj_cuda_free(cu, dx);
        qj_cuda_free(cu, dy);
        qj_qbuf_free(&qb);
        free(dense);
        free(w);
        free(x);
        free(y);
        free(ref);
        free(mag);
        free(row);
        free(b[i].img);
    }
    printf("%d kernels checked against the C reference, %d bad, worst relative error %.3g\n", n, bad, worst);
    free(b);
    qj_cuda_close(cu);
    return qj_test_finish();
}
