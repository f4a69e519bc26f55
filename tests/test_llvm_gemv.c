/* test_llvm_gemv.c — every LLVM-generated CPU kernel (widths 2-8 x groups
 * 32..512 and per channel x regular and ragged shapes, symmetric or not, f16
 * or bf16 scales) against the C reference (the dequantized rows in double) on
 * fresh random inputs, outputs NaN-poisoned before each run; LLVM errors as
 * qjit errors. Skips (77) in builds without LLVM.
 * ctest-labels: unit llvm
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llvm_kernels.h"
#include "qj_cpu_kernels.h"
#include "qj_layout.h"
#include "qj_model.h"
#include "qj_test.h"
#include "qj_xround.h"
#include "quant.h"

int main(int argc, char **argv) {
    if (!qj_cpu_llvm_available()) {
        qj_cpu_jit *none = NULL;
        QJ_CHECK_FAILS(qj_cpu_jit_create(&none), "built without LLVM");
        printf("SKIP: built without LLVM\n");
        return 77;
    }
    qj_test_seed_fresh(argc, argv);
    qj_cpu_jit *j = NULL;
    QJ_CHECK_OK(qj_cpu_jit_create(&j));
    if (!j) return qj_test_finish();
    printf("LLVM target %s\n", qj_cpu_jit_target(j));
    /* 96: neither whole chunks nor a whole part of one (the 32-value natural kernel); {20, 1000}: ragged
     * K whose 32 blocks fill 2- and 4-bit byte-plane chunks, the last group of 512 short */
    static const int groups[] = {32, 64, 96, 128, 256, 512, 0};
    enum { NG = sizeof groups / sizeof groups[0] };
    /* {1037, 320}: enough rows per thread that the streams are skewed (a few rows more than a quarter apart) */
    static const int64_t shapes[][2] = {{48, 4096}, {33, 172}, {17, 100}, {5, 1100}, {64, 64}, {9, 8300}, {20, 1000}, {1037, 320}};
    enum { NS = sizeof shapes / sizeof shapes[0] };
    /* passes: the shipped kernels; the integer kernels' rows-per-pass knob (3, every shape), with the
     * rows of a pass far apart (shipped) and adjacent; the float kernels (what hosts without VNNI get) */
    static const char *const pass_env[4][4] = {
        {NULL, NULL, NULL, NULL}, {"3", NULL, NULL, "3"}, {"3", NULL, "0", NULL}, {NULL, "0", NULL, NULL}};
    static const char *const pass_name[4] = {"shipped", "QJ_CPU_ROWS=3 QJ_CPU_XDIGITS=3", "QJ_CPU_ROWS=3 QJ_CPU_SPREAD=0",
                                             "QJ_CPU_INT=0"};
    for (int pass = 0; pass < 4; pass++) {
    static const char *const vars[4] = {"QJ_CPU_ROWS", "QJ_CPU_INT", "QJ_CPU_SPREAD", "QJ_CPU_XDIGITS"};
    for (int v = 0; v < 4; v++) {
        if (pass_env[pass][v]) setenv(vars[v], pass_env[pass][v], 1);
        else unsetenv(vars[v]);
    }
    int checked = 0, bad = 0;
    double worst = 0;
    for (int B = 2; B <= 8; B++)
        for (int gi = 0; gi < NG; gi++)
            for (int si = 0; si < NS; si++) {
                const int64_t N = shapes[si][0], K = shapes[si][1];
                const int sym = (B + gi + si) % 2, bf16 = (B + si) % 3 == 0;
                float *w = malloc((size_t)(N * K) * sizeof *w), *x = malloc((size_t)K * sizeof *x);
                float *y = malloc((size_t)N * sizeof *y), *row = malloc((size_t)K * sizeof *row);
                for (int64_t i = 0; i < N * K; i++) w[i] = qj_test_frand() * (i % 7 == 0 ? 0.5f : 0.05f);
                for (int64_t k = 0; k < K; k++) x[k] = qj_test_frand() * (k % 300 < 128 ? 1.0f : k % 300 < 200 ? 1e-3f : 40.0f);
                qj_tensor src, qt;
                int64_t shape[2] = {N, K};
                qj_tensor_set(&src, "w", QJ_DTYPE_F32, 2, shape, w);
                qj_qformat f = {B, groups[gi], sym, bf16 ? QJ_DTYPE_BF16 : QJ_DTYPE_F16};
                qj_qbuf qb = {0};
                QJ_CHECK_OK(qj_quantize(&src, &f, &qb));
                qj_tensor_set_quant(&qt, "w", N, K, &f, &qb);
                qj_cpu_kspec ks;
                qj_cpu_gemv_fn fn = NULL;
                QJ_CHECK_OK(qj_cpu_kspec_of(&qt, &ks));
                qj_status st = qj_cpu_jit_gemv(j, &ks, &fn);
                for (int64_t i = 0; i < N; i++) y[i] = NAN; /* poison */
                if (!st) st = qj_cpu_gemv_run(fn, &qt, x, y);
                if (st) {
                    QJ_CHECK_MSG(0, "bits %d group %d %lldx%lld: %s", B, groups[gi], (long long)N, (long long)K, qj_last_error());
                    bad++;
                } else {
                    int far = 0, nan = 0;
                    double num = 0, den = 0;
                    /* two digits of x (qj_cpu_int_xdigits): the rounding they add (qj_xround.h) */
                    const int two = pass < 3 && qj_cpu_int_xdigits(B) == 2;
                    for (int64_t r = 0; r < N; r++) {
                        qj_tensor_row_f32(&qt, r, row);
                        double ref = 0, mag = 0, xerr = 0;
                        for (int64_t k = 0; k < K; k++) {
                            ref += (double)row[k] * x[k];
                            mag += fabs((double)row[k] * x[k]);
                        }
                        if (two) xerr = qj_xround_bound(&qt, r, row, x);
                        if (isnan(y[r])) nan++;
                        double e = fabs((double)y[r] - ref);
                        if (!(e <= 1e-5 * mag + xerr + 1e-30)) far++;
                        num += e * e;
                        den += ref * ref;
                    }
                    double rel = sqrt(num / (den > 0 ? den : 1));
                    worst = rel > worst ? rel : worst;
                    checked++;
                    if (far || nan) {
                        QJ_CHECK_MSG(0, "bits %d group %d%s%s %lldx%lld: rel %.3g, %d NaN, %d outside the fp32 bound", B,
                                     groups[gi], sym ? " sym" : "", bf16 ? " bf16" : "", (long long)N, (long long)K, rel,
                                     nan, far);
                        bad++;
                    } else qj_test_pass++;
                }
                qj_qbuf_free(&qb);
                free(w);
                free(x);
                free(y);
                free(row);
            }
    printf("%s: %d LLVM kernels checked against the C reference, %d bad, worst relative error %.3g\n", pass_name[pass],
           checked, bad, worst);
    }
    unsetenv("QJ_CPU_ROWS");
    unsetenv("QJ_CPU_INT");
    unsetenv("QJ_CPU_SPREAD");
    /* bad specs and dtypes are refused with the reason */
    qj_cpu_kspec badspec = {9, 128, 4, 64, 0, 0};
    qj_cpu_gemv_fn fn = NULL;
    QJ_CHECK_FAILS(qj_cpu_jit_gemv(j, &badspec, &fn), "9 bits");
    QJ_CHECK(fn == NULL);
    float dense[4] = {1, 2, 3, 4};
    int64_t sh[2] = {2, 2};
    qj_tensor dt;
    qj_tensor_set(&dt, "dense_w", QJ_DTYPE_F32, 2, sh, dense);
    qj_cpu_kspec ks;
    QJ_CHECK_FAILS(qj_cpu_kspec_of(&dt, &ks), "dense_w");
    qj_cpu_jit_free(j);
    return qj_test_finish();
}
