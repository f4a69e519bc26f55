// ctest-labels: gpu
/* test_gpu_tail.c — the matmul tails (templates/qj_imv.cu qj_tail) one kernel at a time, on fresh random inputs:
 * the RMSNorm after o_proj/down_proj (QJ_TAIL_NORM) and the SwiGLU after a fused gate|up (QJ_TAIL_SWIGLU), at the
 * shapes of Llama-3-8B, stories260K and ragged ones. For each:
 *   - y equals, bit for bit, what the same kernel without its tail computes (the matmul is test_gpu_gemv's);
 *   - RMSNorm: x_out = x_in + y exactly, out = w * x_out / sqrt(mean(x_out^2) + eps) from the GPU's own x_out
 *     within 2e-6 relative; SwiGLU: out = silu(gate) * up from the GPU's own y within 2e-6 relative;
 *   - with the prep: the prep buffers equal, byte for byte, what the prep kernel of a matmul reading out makes;
 *   - three launches, every output poisoned with NaN before each, give the same bits (the counts the blocks
 *     leave in the module are back at zero).
 * Exits 77 (skipped) where no CUDA device is present. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_codegen.h"
#include "gpu_linear.h"
#include "nvrtc.h"
#include "qj_cuda.h"
#include "qj_layout.h"
#include "qj_model.h"
#include "qj_test.h"
#include "qj_test_cuda.h"
#include "quant.h"

typedef struct tcase {
    int kind; /* QJ_TAIL_NORM or QJ_TAIL_SWIGLU */
    int64_t N, K; /* RMSNorm: the layer's N x K; SwiGLU: each of gate and up is N x K */
    int bits, group, prep, wdt; /* wdt: the norm weights' dtype code (0 f32, 2 bf16) */
} tcase;

static const tcase cases[] = {
    {QJ_TAIL_NORM, 4096, 4096, 4, 128, 1, 2},   /* Llama-3-8B o_proj */
    {QJ_TAIL_NORM, 4096, 14336, 4, 128, 1, 2},  /* down_proj */
    {QJ_TAIL_NORM, 4096, 14336, 4, 128, 0, 2},  /* the last layer's down_proj (a bf16 head: no prep) */
    {QJ_TAIL_NORM, 4096, 4096, 3, 128, 1, 0},
    {QJ_TAIL_NORM, 64, 64, 4, 32, 1, 0},        /* stories260K o_proj */
    {QJ_TAIL_NORM, 64, 172, 5, 32, 1, 0},       /* down_proj */
    {QJ_TAIL_NORM, 344, 1000, 6, 64, 1, 2},     /* ragged: N past whole tiles, K past whole k-tiles */
    {QJ_TAIL_NORM, 4100, 512, 2, 64, 1, 0},
    {QJ_TAIL_SWIGLU, 14336, 4096, 4, 128, 1, 0}, /* Llama-3-8B gate|up */
    {QJ_TAIL_SWIGLU, 172, 64, 4, 32, 1, 0},      /* stories260K */
    {QJ_TAIL_SWIGLU, 344, 200, 8, 64, 1, 0},     /* ragged */
    {QJ_TAIL_SWIGLU, 1000, 256, 3, 128, 0, 0},
};

typedef struct kern {
    qj_glinear L;
    qj_cumodule mod;
} kern;

/* compile, load and bind L (its spec set) */
static qj_status kern_build(qj_cuda *cu, const char *arch, kern *k) {
    char *src = NULL;
    void *img = NULL;
    size_t len = 0;
    qj_gemv_name(&k->L.spec, arch, k->L.name, sizeof k->L.name);
    qj_status s = qj_gemv_source(&k->L.spec, arch, &src);
    if (!s) s = qj_kcache_compile(src, "tail.cu", arch, &img, &len, NULL);
    if (!s) s = qj_cuda_module_load(cu, img, &k->mod);
    if (!s) s = qj_glinear_bind(cu, k->mod, &k->L);
    free(src);
    free(img);
    return s;
}

static void kern_free(qj_cuda *cu, kern *k) {
    if (k->mod) qj_cuda_module_unload(cu, k->mod);
    qj_glinear_free(cu, &k->L);
    memset(k, 0, sizeof *k);
}

static double relerr(float a, double ref) { return fabs((double)a - ref) / (fabs(ref) > 1e-30 ? fabs(ref) : 1e-30); }

int main(int argc, char **argv) {
    qj_cuda *cu;
    char arch[32];
    const int rc = qj_test_cuda_open(&cu, arch, sizeof arch);
    if (rc) return rc;
    if (!qj_gemv_arch_has_mma(arch)) {
        printf("SKIP: %s has no integer-MMA kernels, so no tails\n", arch);
        qj_cuda_close(cu);
        return 77;
    }
    qj_test_seed_fresh(argc, argv);
    const float eps = 1e-5f;
    int tested = 0;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const tcase *c = &cases[ci];
        const int np = c->kind == QJ_TAIL_SWIGLU ? 2 : 1;
        const int64_t N = c->N * np, K = c->K, NT = c->N; /* NT: the tail's output length */
        qj_qformat f = {c->bits, c->group, 0, QJ_DTYPE_F16};
        qj_tensor qt[2];
        const qj_tensor *parts[2];
        qj_qbuf qb[2];
        memset(qb, 0, sizeof qb);
        float *w = malloc((size_t)(c->N * K) * sizeof *w);
        for (int p = 0; p < np; p++) {
            for (int64_t j = 0; j < c->N * K; j++) w[j] = qj_test_frand() * (j % 7 == 0 ? 0.5f : 0.05f);
            int64_t shape[2] = {c->N, K};
            qj_tensor src;
            qj_tensor_set(&src, "w", QJ_DTYPE_F32, 2, shape, w);
            QJ_CHECK_OK(qj_quantize(&src, &f, &qb[p]));
            qj_tensor_set_quant(&qt[p], p ? "up" : "gate", c->N, K, &f, &qb[p]);
            parts[p] = &qt[p];
        }
        free(w);
        kern plain, tail, next;
        memset(&plain, 0, sizeof plain);
        memset(&tail, 0, sizeof tail);
        memset(&next, 0, sizeof next);
        QJ_CHECK_OK(qj_gemv_spec_parts(parts, np, 1, 1, &plain.L.spec));
        char what[160];
        snprintf(what, sizeof what, "%s %lldx%lld int%d-g%d%s", c->kind == QJ_TAIL_NORM ? "rmsnorm" : "swiglu",
                 (long long)N, (long long)K, c->bits, c->group, c->prep ? " +prep" : "");
        if (!plain.L.spec.im || !qj_gemv_tail_fits(&plain.L.spec)) {
            printf("%s: its kernel takes no tail (the planner leaves the op its own launch)\n", what);
            for (int p = 0; p < np; p++) qj_qbuf_free(&qb[p]);
            continue;
        }
        tail.L.spec = plain.L.spec;
        tail.L.spec.tail = c->kind;
        tail.L.spec.tail_prep = c->prep;
        tail.L.spec.tail_wdt = c->kind == QJ_TAIL_NORM ? c->wdt : 0;
        tail.L.spec.tail_eps = c->kind == QJ_TAIL_NORM ? eps : 0.0f;
        /* a matmul reading out: its prep kernel makes the reference prep */
        qj_tensor nt;
        memset(&nt, 0, sizeof nt);
        snprintf(nt.name, sizeof nt.name, "next");
        nt.ndim = 2;
        nt.dtype = QJ_DTYPE_Q;
        nt.shape[0] = 256;
        nt.shape[1] = NT;
        nt.q = (qj_qformat){4, 32, 0, QJ_DTYPE_F16};
        const qj_tensor *np1[1] = {&nt};
        QJ_CHECK_OK(qj_gemv_spec_parts(np1, 1, 1, 1, &next.L.spec));
        QJ_CHECK_MSG(next.L.spec.im, "%s: the reading matmul is an integer-MMA one", what);
        qj_status s = kern_build(cu, arch, &plain);
        if (!s) s = kern_build(cu, arch, &tail);
        if (!s) s = kern_build(cu, arch, &next);
        if (!s) s = qj_glinear_upload(cu, parts, &plain.L);
        if (!s) s = qj_glinear_upload(cu, parts, &tail.L);
        /* inputs */
        const int64_t stride = QJ_NBLOCKS(K) * 32 + 4;
        float *x = calloc((size_t)stride, sizeof *x), *xin = malloc((size_t)NT * sizeof *xin);
        float *nw = malloc((size_t)NT * sizeof *nw);
        uint16_t *nwb = malloc((size_t)NT * sizeof *nwb);
        for (int64_t k = 0; k < K; k++) x[k] = qj_test_frand() * (k % 300 < 128 ? 1.0f : k % 300 < 200 ? 1e-3f : 40.0f);
        for (int64_t i = 0; i < NT; i++) {
            xin[i] = qj_test_frand() * 3.0f;
            nw[i] = 0.5f + qj_test_frand();
        }
        if (c->wdt == 2) {
            qj_convert_from_f32(nwb, QJ_DTYPE_BF16, nw, (size_t)NT);
            for (int64_t i = 0; i < NT; i++) nw[i] = qj_bf16_to_f32(nwb[i]);
        }
        qj_dptr dx = 0, dy0 = 0, dy = 0, dxin = 0, dxout = 0, dw = 0, dout = 0;
        qj_gact act = {0}, act_t = {0}, act_r = {0}; /* the matmul's input prep; the tail's; the reference's */
        const size_t wbytes = (size_t)NT * (c->wdt == 2 ? 2 : 4);
        if (!s) s = qj_cuda_alloc(cu, (size_t)stride * 4, &dx);
        if (!s) s = qj_cuda_upload(cu, dx, x, (size_t)stride * 4);
        if (!s) s = qj_cuda_alloc(cu, (size_t)N * 4, &dy0);
        if (!s) s = qj_cuda_alloc(cu, (size_t)N * 4, &dy);
        if (!s) s = qj_cuda_alloc(cu, (size_t)NT * 4, &dxin);
        if (!s) s = qj_cuda_upload(cu, dxin, xin, (size_t)NT * 4);
        if (!s) s = qj_cuda_alloc(cu, (size_t)NT * 4, &dxout);
        if (!s) s = qj_cuda_alloc(cu, wbytes, &dw);
        if (!s) s = qj_cuda_upload(cu, dw, c->wdt == 2 ? (const void *)nwb : (const void *)nw, wbytes);
        if (!s) s = qj_cuda_alloc(cu, (size_t)NT * 4, &dout);
        if (!s) s = qj_gact_reserve(cu, &act, &plain.L.spec);
        if (!s) s = qj_gact_reserve(cu, &act_t, &next.L.spec);
        if (!s) s = qj_gact_reserve(cu, &act_r, &next.L.spec);
        /* the plain kernel's y */
        float *y0 = malloc((size_t)N * 4), *y = malloc((size_t)N * 4), *xo = malloc((size_t)NT * 4);
        float *out = malloc((size_t)NT * 4), *out1 = malloc((size_t)NT * 4);
        void *pi = malloc(act_t.xi_bytes + 1), *pw = malloc(act_t.xw_bytes + 1);
        void *ri = malloc(act_t.xi_bytes + 1), *rw = malloc(act_t.xw_bytes + 1);
        if (!s) s = qj_glinear_prep(cu, NULL, &plain.L, dx, (int)stride, &act);
        if (!s) s = qj_glinear_run(cu, NULL, &plain.L, dx, (int)stride, &act, dy0, (int)N);
        if (!s) s = qj_cuda_sync(cu);
        if (!s) s = qj_cuda_download(cu, y0, dy0, (size_t)N * 4);
        int bad = 0;
        for (int rep = 0; rep < 3 && !s && !bad; rep++) {
            /* everything the launch writes poisoned; the input prep is the plain kernel's, made once above (a tail
             * that wrote into it would change the next launch's y) */
            s = qj_cuda_memset8(cu, dy, 0xff, (size_t)N * 4);
            if (!s) s = qj_cuda_memset8(cu, dxout, 0xff, (size_t)NT * 4);
            if (!s) s = qj_cuda_memset8(cu, dout, 0xff, (size_t)NT * 4);
            if (!s) s = qj_cuda_memset8(cu, act_t.xi, 0xff, act_t.xi_bytes);
            if (!s) s = qj_cuda_memset8(cu, act_t.xw, 0xff, act_t.xw_bytes);
            qj_gtail t = {c->kind == QJ_TAIL_NORM ? dxin : 0, c->kind == QJ_TAIL_NORM ? dxout : 0,
                          c->kind == QJ_TAIL_NORM ? dw : 0, dout, c->prep ? act_t.xi : 0, c->prep ? act_t.xw : 0};
            if (!s) s = qj_glinear_run_tail(cu, NULL, &tail.L, &act, dy, (int)N, &t);
            if (!s) s = qj_cuda_sync(cu);
            if (!s) s = qj_cuda_download(cu, y, dy, (size_t)N * 4);
            if (!s) s = qj_cuda_download(cu, out, dout, (size_t)NT * 4);
            if (!s && c->kind == QJ_TAIL_NORM) s = qj_cuda_download(cu, xo, dxout, (size_t)NT * 4);
            if (s) break;
            /* y: the plain kernel's bits */
            int ydiff = 0;
            for (int64_t i = 0; i < N; i++) ydiff += memcmp(&y[i], &y0[i], 4) != 0;
            QJ_CHECK_MSG(!ydiff, "%s (launch %d): %d of %lld y values differ from the kernel without its tail", what, rep + 1,
                         ydiff, (long long)N);
            bad += ydiff != 0;
            /* the tail's output against the C computation from the GPU's own values */
            int far = 0, xbad = 0, nan = 0;
            double worst = 0;
            if (c->kind == QJ_TAIL_NORM) {
                double ss = 0;
                for (int64_t i = 0; i < NT; i++) {
                    const float v = xin[i] + y[i];
                    xbad += memcmp(&v, &xo[i], 4) != 0;
                    ss += (double)v * (double)v;
                }
                const float inv = 1.0f / sqrtf((float)(ss / (double)NT) + eps);
                for (int64_t i = 0; i < NT; i++) {
                    nan += isnan(out[i]);
                    const double r = (double)nw[i] * ((double)xo[i] * (double)inv), e = relerr(out[i], r);
                    worst = e > worst ? e : worst;
                    far += !(e < 2e-6) && !(fabs((double)out[i] - r) < 1e-30);
                }
            } else
                for (int64_t i = 0; i < NT; i++) {
                    nan += isnan(out[i]);
                    const double g = y[i], u = y[NT + i], r = g / (1.0 + exp(-g)) * u, e = relerr(out[i], r);
                    worst = e > worst ? e : worst;
                    far += !(e < 2e-6) && !(fabs((double)out[i] - r) < 1e-30);
                }
            QJ_CHECK_MSG(!xbad, "%s (launch %d): %d of %lld x_out values are not x_in + y", what, rep + 1, xbad, (long long)NT);
            QJ_CHECK_MSG(!far, "%s (launch %d): %d of %lld outputs off the C computation, %d of them NaN (not written; worst "
                         "relative error of the rest %.3g)", what, rep + 1, far, (long long)NT, nan, worst);
            bad += xbad != 0 || far != 0;
            if (rep == 0) printf("%s: %s, worst relative error of the tail's output %.3g\n", what, tail.L.name, worst);
            if (rep == 0) memcpy(out1, out, (size_t)NT * 4);
            else {
                const int same = !memcmp(out1, out, (size_t)NT * 4);
                QJ_CHECK_MSG(same, "%s: launch %d's output differs from the first's", what, rep + 1);
                bad += !same;
            }
            if (c->prep) {
                /* the reference: the prep kernel of a matmul reading out, from the GPU's out */
                s = qj_cuda_memset8(cu, act_r.xi, 0xff, act_r.xi_bytes);
                if (!s) s = qj_cuda_memset8(cu, act_r.xw, 0xff, act_r.xw_bytes);
                if (!s) s = qj_glinear_prep(cu, NULL, &next.L, dout, (int)NT, &act_r);
                if (!s) s = qj_cuda_sync(cu);
                size_t xib, xwb;
                qj_gemv_im_act_bytes(&next.L.spec, &xib, &xwb);
                if (!s) s = qj_cuda_download(cu, pi, act_t.xi, xib);
                if (!s) s = qj_cuda_download(cu, pw, act_t.xw, xwb);
                if (!s) s = qj_cuda_download(cu, ri, act_r.xi, xib);
                if (!s) s = qj_cuda_download(cu, rw, act_r.xw, xwb);
                if (s) break;
                const int same = !memcmp(pi, ri, xib) && !memcmp(pw, rw, xwb);
                QJ_CHECK_MSG(same, "%s (launch %d): the prep the tail wrote differs from the prep kernel's", what, rep + 1);
                bad += !same;
            }
        }
        QJ_CHECK_MSG(!s, "%s: %s", what, s ? qj_last_error() : "");
        if (!s && !bad) qj_test_pass++;
        tested++;
        kern_free(cu, &plain);
        kern_free(cu, &tail);
        kern_free(cu, &next);
        qj_gact_free(cu, &act);
        qj_gact_free(cu, &act_t);
        qj_gact_free(cu, &act_r);
        qj_dptr ds[] = {dx, dy0, dy, dxin, dxout, dw, dout};
        for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++)
            if (ds[i]) qj_cuda_free(cu, ds[i]);
        for (int p = 0; p < np; p++) qj_qbuf_free(&qb[p]);
        free(x), free(xin), free(nw), free(nwb), free(y0), free(y), free(xo), free(out), free(out1);
        free(pi), free(pw), free(ri), free(rw);
    }
    printf("%d tail kernels checked\n", tested);
    QJ_CHECK_MSG(tested >= 8, "only %d of the cases' kernels take a tail", tested);
    qj_cuda_close(cu);
    return qj_test_finish();
}
