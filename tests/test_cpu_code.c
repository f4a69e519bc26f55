/* test_cpu_code.c — ahead-of-time CPU code on the real stories260K under the
 * mixed plans (widths 2-8, groups 32-512 and per channel, symmetric bf16
 * scales, an int6 head): the object qj_cpu_aot_compile emits for the host,
 * written into a package and linked back from it (nothing compiled), gives
 * bit for bit the JIT kernels' output for every packed linear on fresh random
 * inputs; also the x86-64 psABI levels' objects (v3, v2, baseline), which
 * this CPU runs (without FMA, or float kernels against integer ones: within
 * 1e-5 of the largest output, plus the x rounding of two-digit kernels). The
 * matching rules: a missing feature, another architecture, another kernel ABI
 * each say so; the exact host entry is preferred; the no-LLVM host check
 * agrees with LLVM's host features. Skips (77) without LLVM or ../shared.
 * ctest-labels: unit llvm
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compile.h"
#include "llvm_kernels.h"
#include "loaders.h"
#include "package_write.h"
#include "plan.h"
#include "qj_package.h"
#include "qj_stories.h"
#include "qj_test.h"
#include "qj_xround.h"

/* Linear i of m, i < n_layers * QJ_LIN_COUNT + 1: the layers' linears in order, then the head. */
static const qj_tensor *nth_linear(const qj_model *m, int i) {
    return i < m->cfg.n_layers * QJ_LIN_COUNT ? qj_layer_linear(&m->layers[i / QJ_LIN_COUNT], (qj_linear)(i % QJ_LIN_COUNT))
                                              : &m->lm_head;
}

/* y of every packed linear of m through its attached kernels, concatenated. */
static size_t run_all(qj_model *m, const float *x, float *y) {
    size_t off = 0;
    const int n = m->cfg.n_layers * QJ_LIN_COUNT + 1;
    for (int i = 0; i < n; i++) {
        const qj_tensor *t = nth_linear(m, i);
        if (t->dtype != QJ_DTYPE_Q) continue;
        for (int64_t r = 0; r < t->shape[0]; r++) y[off + (size_t)r] = -12345.0f;
        QJ_CHECK(m->cpu_matvec && m->cpu_matvec(m->cpu_matvec_ctx, t, x, y + off));
        off += (size_t)t->shape[0];
    }
    return off;
}

static void check_matching(void) {
    qj_cpu_target host, v3;
    QJ_CHECK_OK(qj_cpu_target_host(&host));
    printf("host %s %s (%s), %zu bytes of features\n", host.triple, host.cpu, host.level, strlen(host.features));
    qj_cpu_code c = {0};
    snprintf(c.triple, sizeof c.triple, "%s", host.triple);
    snprintf(c.cpu, sizeof c.cpu, "%s", host.cpu);
    snprintf(c.level, sizeof c.level, "%s", host.level);
    c.features = host.features;
    c.abi = QJ_CPU_KERNEL_ABI;
    char why[512];
    QJ_CHECK(qj_cpu_code_matches(&c, &host, why, sizeof why) == 1);
    /* a CPU without the widest feature the code was compiled with */
    const char *feat = strstr(host.features, "+avx512f") ? "avx512f" : strstr(host.features, "+avx2") ? "avx2" : NULL;
    if (feat) {
        qj_cpu_target older = host;
        char needle[32];
        snprintf(needle, sizeof needle, "+%s,", feat);
        char *p = strstr(older.features, needle);
        if (!p) {
            snprintf(needle, sizeof needle, "+%s", feat);
            p = strstr(older.features, needle);
        }
        QJ_CHECK(p != NULL);
        if (p) p[0] = '-';
        QJ_CHECK(qj_cpu_code_matches(&c, &older, why, sizeof why) == 0);
        snprintf(needle, sizeof needle, "needs +%s", feat);
        QJ_CHECK_MSG(strstr(why, needle) != NULL, "why: %s", why);
        printf("without %s: %s\n", feat, why);
    }
    qj_cpu_code other = c;
    snprintf(other.triple, sizeof other.triple, "aarch64-unknown-linux-gnu");
    other.features = "";
    QJ_CHECK(qj_cpu_code_matches(&other, &host, why, sizeof why) == 0);
    QJ_CHECK_MSG(strstr(why, "built for aarch64-unknown-linux-gnu") != NULL, "why: %s", why);
    qj_cpu_code abi = c;
    abi.abi = QJ_CPU_KERNEL_ABI + 1;
    QJ_CHECK(qj_cpu_code_matches(&abi, &host, why, sizeof why) == 0);
    QJ_CHECK_MSG(strstr(why, "calling convention") != NULL, "why: %s", why);
    /* the exact host entry wins over a level it also runs */
    if (!qj_cpu_target_parse("x86-64-v2", &v3)) {
        qj_cpu_code lv = c;
        snprintf(lv.cpu, sizeof lv.cpu, "%s", v3.cpu);
        lv.features = v3.features;
        qj_model fake;
        memset(&fake, 0, sizeof fake);
        qj_cpu_code two[3] = {other, lv, c};
        fake.cpu_code = two;
        fake.n_cpu_code = 3;
        QJ_CHECK(qj_cpu_code_pick(&fake, &host, why, sizeof why) == 2);
        fake.n_cpu_code = 2;
        QJ_CHECK(qj_cpu_code_pick(&fake, &host, why, sizeof why) == 1);
        fake.n_cpu_code = 1;
        QJ_CHECK(qj_cpu_code_pick(&fake, &host, why, sizeof why) == -1);
    }
    qj_clear_error();
    /* the check exported applications make (no LLVM) agrees with LLVM's */
    char missing[32] = "";
    int has = qj_cpu_host_has(host.features, missing, sizeof missing);
    QJ_CHECK_MSG(has == 1 || has == -1, "qj_cpu_host_has(host features) = %d, missing %s", has, missing);
    if (has == 1 && !strstr(host.features, "+avx512f")) QJ_CHECK(qj_cpu_host_has("+avx2,+avx512f", NULL, 0) == 0);
    QJ_CHECK_FAILS(qj_cpu_target_parse("pentium", &v3), "expected host, x86-64");
}

int main(int argc, char **argv) {
    if (!qj_cpu_llvm_available()) {
        printf("SKIP: built without LLVM\n");
        return 77;
    }
    qj_test_seed_fresh(argc, argv);
    check_matching();
    const char *path = qj_test_shared("models/stories260K/stories260K.bin");
    if (!path) {
        printf("SKIP (after the matching checks): stories260K not found (QJ_SHARED)\n");
        return qj_test_finish() ? 1 : 77;
    }
    qj_model *src = NULL;
    QJ_CHECK_OK(qj_load_llama2c(path, &src));
    if (!src) return qj_test_finish();
    char pkg[512];
    const char *tmp = getenv("QJ_TEST_TMP");
    snprintf(pkg, sizeof pkg, "%s/test_cpu_code.%ld.qjp", tmp ? tmp : "/tmp", (long)getpid());
    float x[512], y_aot[8192], y_jit[8192], row[512];
    for (int pi = 1; pi < QJ_STORIES_NPLANS; pi++) {
        /* x86-64 and -v2 lack F16C: their f16 scales are converted without a libcall */
        static const char *const targets[] = {"host", "x86-64-v3", "x86-64-v2", "x86-64"};
        for (int ti = 0; ti < 4; ti++) {
            qj_plan *plan = NULL;
            qj_model *m = NULL, *pm = NULL;
            qj_cpu_target tg;
            if (qj_cpu_target_parse(targets[ti], &tg)) { qj_clear_error(); continue; } /* not x86-64 */
            qj_cpu_target host;
            QJ_CHECK_OK(qj_cpu_target_host(&host));
            QJ_CHECK_OK(qj_plan_parse(qj_stories_plans[pi], 5, &plan));
            if (plan) QJ_CHECK_OK(qj_compile_model(src, plan, 0, &m, NULL));
            if (!m) { qj_plan_free(plan); continue; }
            m->cpu_code = calloc(1, sizeof *m->cpu_code);
            double secs = 0;
            QJ_CHECK_OK(qj_cpu_aot_compile(m, &tg, &m->cpu_code[0], &secs));
            m->n_cpu_code = 1;
            QJ_CHECK_OK(qj_model_adopt(m, (void *)m->cpu_code[0].object, m->cpu_code[0].len, 0));
            char why[512];
            int runs = qj_cpu_code_matches(&m->cpu_code[0], &host, why, sizeof why);
            printf("plan %d, %s: %d kernels, %zu bytes of object code in %.2f s%s%s\n", pi, targets[ti],
                   m->cpu_code[0].n_kernels, m->cpu_code[0].len, secs, runs ? "" : "; not for this CPU: ", runs ? "" : why);
            QJ_CHECK_OK(qj_package_write(m, plan, pkg));
            QJ_CHECK_OK(qj_package_load(pkg, NULL, &pm));
            if (pm && runs) {
                QJ_CHECK(pm->n_cpu_code == 1 && pm->cpu_code[0].n_kernels == m->cpu_code[0].n_kernels &&
                         !strcmp(pm->cpu_code[0].features, tg.features));
                for (int k = 0; k < 512; k++) x[k] = qj_test_frand();
                qj_cpu_kernels *ka = NULL, *kj = NULL;
                qj_cpu_attach_info ia, ij;
                QJ_CHECK_OK(qj_cpu_kernels_attach_ex(pm, QJ_CPU_CODE_REQUIRE, &ka, &ia));
                QJ_CHECK(ia.from_package == 1 && ia.n_kernels == m->cpu_code[0].n_kernels && !ia.note[0]);
                size_t n = ka ? run_all(pm, x, y_aot) : 0;
                qj_cpu_kernels_free(pm, ka);
                QJ_CHECK_OK(qj_cpu_kernels_attach_ex(pm, QJ_CPU_CODE_JIT, &kj, &ij));
                QJ_CHECK(ij.from_package == 0 && ij.n_kernels == ia.n_kernels);
                size_t n2 = kj ? run_all(pm, x, y_jit) : 0;
                qj_cpu_kernels_free(pm, kj);
                QJ_CHECK(n == n2 && n > 0 && n <= 8192);
                int fma = strstr(tg.features, "+fma") != NULL;
                /* the same kernel kind as the host's JIT (integer with VNNI, else float) */
                int same = qj_cpu_int_kernels(tg.triple, tg.features) == qj_cpu_int_kernels(host.triple, host.features);
                if (fma && same) { /* the same IR, the same fused multiply-adds: the same bits */
                    QJ_CHECK_MSG(n == n2 && !memcmp(y_aot, y_jit, n * sizeof *y_aot),
                                 "plan %d %s: AOT and JIT outputs differ", pi, targets[ti]);
                } else { /* without FMA, llvm.fmuladd rounds twice; float against integer kernels differ in rounding */
                    double ymax = 0;
                    for (size_t i = 0; i < n && n == n2; i++) ymax = fabs(y_jit[i]) > ymax ? fabs(y_jit[i]) : ymax;
                    /* each output within 1e-5 of the largest, plus, where one side is a two-digit integer
                     * kernel (2- and 3-bit weights), the rounding of x it does (qj_xround.h) */
                    int far = 0;
                    double worst = 0;
                    size_t off = 0;
                    const int nl = pm->cfg.n_layers * QJ_LIN_COUNT + 1;
                    for (int li = 0; li < nl && n == n2; li++) {
                        const qj_tensor *t = nth_linear(pm, li);
                        if (t->dtype != QJ_DTYPE_Q) continue;
                        const int two = !same && qj_cpu_int_xdigits(t->q.bits) == 2;
                        for (int64_t r = 0; r < t->shape[0]; r++, off++) {
                            double xb = 0;
                            if (two) {
                                qj_tensor_row_f32(t, r, row);
                                xb = qj_xround_bound(t, r, row, x);
                            }
                            const double d = fabs((double)y_aot[off] - y_jit[off]);
                            worst = d / ymax > worst ? d / ymax : worst;
                            if (!(d <= 1e-5 * ymax + xb)) far++;
                        }
                    }
                    QJ_CHECK_MSG(n == n2 && off == n && !far && ymax > 0, "plan %d %s: %d outputs past the bound (worst difference %g of the largest output %g)",
                                 pi, targets[ti], far, worst, ymax);
                }
                printf("  linked in %.4f s, JIT %.4f s; %zu outputs %s\n", ia.seconds, ij.seconds, n,
                       fma && same ? "identical" : same ? "within 1e-5 (no FMA)" : "within 1e-5 and the x rounding (float kernels against integer ones)");
            }
            qj_model_free(pm);
            qj_model_free(m);
            qj_plan_free(plan);
            unlink(pkg);
        }
    }
    qj_model_free(src);
    return qj_test_finish();
}
