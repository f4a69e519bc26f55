// ctest-labels: nvrtc
/* test_nvrtc.c — NVRTC compiles every kernel template instantiation (all
 * widths x groups x shapes x batch paths, dense kernels, the ops template with
 * several macro sets) for sm_90a, and PTX for the fallback; a broken source and
 * a bad architecture give clear errors. Needs NVRTC, not a GPU. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cuda_codegen.h"
#include "nvrtc.h"
#include "qj_gemv_cases.h"
#include "compile.h"
#include "gpu_model.h"
#include "loaders.h"
#include "package_write.h"
#include "plan.h"
#include "qj_package.h"
#include "qj_test.h"

/* The sanitizer build (test.sh's second run) generates every source, so the code generator runs under ASan and UBSan
 * for every instantiation, but has NVRTC compile one in EVERY of each sweep's (NVRTC's own allocations through ASan's
 * allocator made this test 19 minutes of CI's 29 on 2026-12-06, against 6 in the plain build, which compiles all). */
#if defined(__SANITIZE_ADDRESS__)
#define EVERY 8
#define SAMPLED ", one in 8 compiled (sanitizer build)"
#else
#define EVERY 1
#define SAMPLED " and compiled"
#endif

/* Every third integer-MMA case (batch 1 and 16; with bx every batch above 1, bx = 2 counting the wgmma kernels, 3 the K
 * splits adding into y, 4 every batch counting the L2 prefetches) compiled again
 * under VAR=VAL; returns how many got the setting (a ring, or block-shared activations). */
static int recompile_im(const char *var, const char *val, int n, int bx) {
    setenv(var, val, 1);
    int got = 0, failed = 0, seen = 0;
    for (int i = 0; i < n; i++) {
        qj_case c;
        qj_gemv_spec cs;
        qj_gemv_case_get(i, &c);
        if (c.allow_mma != 1 || qj_gemv_case_spec(&c, &cs) || !cs.im || (i % 3)) continue;
        if (bx != 4 && (bx ? c.batch == 1 : (c.batch != 1 && c.batch != 16))) continue;
        if (bx == 3 && cs.ks < 2) continue; /* (the rest are compiled above as they are) */
        char *src = NULL;
        void *img = NULL;
        size_t len = 1;
        qj_status st = qj_gemv_source(&cs, "sm_90a", &src);
        if (!st && seen++ % EVERY == 0) st = qj_nvrtc_compile(src, "gemv_im.cu", "sm_90a", &img, &len, NULL);
        if (st || len == 0) {
            if (!failed++) QJ_CHECK_MSG(0, "%s=%s case %d: %s", var, val, i, qj_last_error());
        }
        got += bx == 4 ? cs.pft > 0 : bx == 3 ? cs.ks > 1 && !cs.red : bx == 2 ? cs.wg : bx ? cs.bx : cs.stages >= 2;
        free(src);
        free(img);
    }
    unsetenv(var);
    QJ_CHECK_MSG(failed == 0, "%d instantiations failed under %s=%s", failed, var, val);
    return got;
}

int main(void) {
    int maj, min;
    if (!qj_nvrtc_available(&maj, &min)) {
        printf("SKIP: %s\n", qj_last_error());
        return 77;
    }
    printf("NVRTC %d.%d\n", maj, min);
    int n = 0;
    qj_gemv_spec s;
    qj_case cz;
    while (qj_gemv_case_get(n, &cz)) n++;
    int failed = 0;
    char first_err[4096] = "";
    #pragma omp parallel for schedule(dynamic) reduction(+ : failed)
    for (int i = 0; i < n; i++) {
        qj_gemv_spec cs;
        qj_case c;
        qj_gemv_case_get(i, &c);
        char *src = NULL;
        void *img = NULL;
        size_t len = 1;
        const char *arch = i % 17 == 0 ? "compute_90a" : "sm_90a";
        qj_status st = qj_gemv_case_spec(&c, &cs);
        if (!st) st = qj_gemv_source(&cs, arch, &src);
        if (!st && i % EVERY == 0) st = qj_nvrtc_compile(src, "gemv.cu", arch, &img, &len, NULL);
        if (st || len == 0) {
            failed++;
            #pragma omp critical
            if (!first_err[0]) snprintf(first_err, sizeof first_err, "case %d: %s", i, qj_last_error());
        }
        free(src);
        free(img);
    }
    QJ_CHECK_MSG(failed == 0, "%d of %d GEMV instantiations failed to compile; first: %s", failed, n, first_err);
    printf("%d GEMV instantiations generated%s\n", n, SAMPLED);

    /* wide digit-major layers dealt over whole waves (qj_gemv_spec.nb): the cases dealt for 100 and 80
     * multiprocessors are dealt, with the grid and the name to match */
    {
        int dealt = 0;
        for (int i = 0; i < n; i++) {
            qj_case c;
            qj_gemv_spec cs;
            qj_gemv_case_get(i, &c);
            if (c.sms && !qj_gemv_case_spec(&c, &cs)) {
                char name[256], tag[32];
                qj_gemv_name(&cs, "sm_90a", name, sizeof name);
                snprintf(tag, sizeof tag, "d%dn%d_", cs.dm, cs.nb);
                unsigned grid, block;
                qj_gemv_launch_dims(&cs, &grid, &block);
                QJ_CHECK_MSG(cs.nb == 2 * c.sms && grid == (unsigned)cs.nb && strstr(name, tag) != NULL,
                             "case %d (%d multiprocessors): nb %d, grid %u, %s", i, c.sms, cs.nb, grid, name);
                dealt++;
            }
        }
        QJ_CHECK_MSG(dealt == 4, "%d dealt cases, expected 4", dealt);
        printf("m-tiles dealt over whole waves: %d cases (the rule: test_mma_layout)\n", dealt);
    }

    /* the integer-MMA GEMV's shared-memory ring (QJ_IM_STAGES): its batch-1
     * and batch-16 cases again with a 4-stage ring (clamped where it does not fit);
     * its block-shared activations (QJ_IM_BX) on every shape above batch 1 */
    int ring = recompile_im("QJ_IM_STAGES", "4", n, 0);
    QJ_CHECK_MSG(ring > 0, "no integer-MMA case had a ring");
    printf("%d integer-MMA ring instantiations generated%s\n", ring, SAMPLED);
    int bx = recompile_im("QJ_IM_BX", "1", n, 1);
    QJ_CHECK_MSG(bx > 0, "no integer-MMA case had block-shared activations");
    printf("%d integer-MMA block-shared instantiations generated%s\n", bx, SAMPLED);
    /* the wgmma kernels (QJ_IM_WG, opt-in): every block-shared shape above batch 4 */
    setenv("QJ_IM_WG", "1", 1);
    int wg = recompile_im("QJ_IM_BX", "1", n, 2);
    unsetenv("QJ_IM_WG");
    QJ_CHECK_MSG(wg > 0, "no integer-MMA case took the wgmma kernel");
    printf("%d integer-MMA wgmma instantiations generated%s\n", wg, SAMPLED);
    recompile_im("QJ_IM_CVT", "0", n, 0); /* the two-conversion fold, kept for comparison */
    /* the block-shared kernels' other activation tilings (the default above 4: digit-major, the top three digits) */
    QJ_CHECK_MSG(recompile_im("QJ_IM_DM", "4", n, 1) > 0, "no block-shared case under QJ_IM_DM=4");
    QJ_CHECK_MSG(recompile_im("QJ_IM_DM", "0", n, 1) > 0, "no block-shared case under QJ_IM_DM=0");
    /* K splits summed in clusters (QJ_IM_KSCL=1 with QJ_IM_RED=0, opt-in): every block-shared case above batch 1
     * again */
    setenv("QJ_IM_RED", "0", 1);
    QJ_CHECK_MSG(recompile_im("QJ_IM_KSCL", "1", n, 1) > 0, "no block-shared case under QJ_IM_KSCL=1");
    /* K splits summed by their last block (QJ_IM_RED=0; by default they add into y): the K-split cases again */
    const int last = recompile_im("QJ_IM_RED", "0", n, 3);
    QJ_CHECK_MSG(last > 0, "no K-split case sums by its last block under QJ_IM_RED=0");
    printf("%d integer-MMA K splits summed by their last block generated%s\n", last, SAMPLED);
    /* L2 prefetches at every block's start (QJ_IM_PF KiB a launch): every batch, every path */
    const int pf = recompile_im("QJ_IM_PF", "1048576", n, 4);
    QJ_CHECK_MSG(pf > 0, "no case prefetches under QJ_IM_PF=1048576");
    printf("%d integer-MMA cases with L2 prefetches generated%s\n", pf, SAMPLED);

    /* tails (qj_gemv_spec.tail, set by the model planner): every batch-1 integer-MMA case that can take one, with
     * the RMSNorm tail (weights f32/f16/bf16 in turn, with and without the prep) and, at even N, the SwiGLU tail */
    int tails = 0, tfailed = 0;
    #pragma omp parallel for schedule(dynamic) reduction(+ : tails, tfailed)
    for (int i = 0; i < n; i++) {
        qj_case c;
        qj_gemv_spec cs;
        qj_gemv_case_get(i, &c);
        if (c.allow_mma != 1 || qj_gemv_case_spec(&c, &cs) || !qj_gemv_tail_fits(&cs)) continue;
        for (int kind = QJ_TAIL_NORM; kind <= QJ_TAIL_SWIGLU; kind++) {
            if (kind == QJ_TAIL_SWIGLU && cs.N % 2) continue;
            cs.tail = kind, cs.tail_prep = i % 4 != 0, cs.tail_wdt = i % 3, cs.tail_eps = 1e-5f;
            char *src = NULL;
            void *img = NULL;
            size_t len = 1;
            qj_status st = qj_gemv_source(&cs, "sm_90a", &src);
            if (!st && (i + kind) % EVERY == 0) st = qj_nvrtc_compile(src, "gemv_tail.cu", "sm_90a", &img, &len, NULL);
            if (st || len == 0) {
                tfailed++;
                #pragma omp critical
                if (!first_err[0]) snprintf(first_err, sizeof first_err, "case %d, tail %d: %s", i, kind, qj_last_error());
            }
            tails++;
            free(src);
            free(img);
        }
    }
    QJ_CHECK_MSG(tfailed == 0, "%d of %d tail instantiations failed to compile; first: %s", tfailed, tails, first_err);
    QJ_CHECK_MSG(tails > 0, "no case could take a tail");
    printf("%d integer-MMA tail instantiations generated%s\n", tails, SAMPLED);

    /* the ops template, with its defaults and with real-model macro sets */
    const char *ops_sets[] = {
        "",
        "#define QJ_ROPE_HALF 1\n#define QJ_QKV_BIAS 1\n#define QJ_NORM_DTYPE 2\n#define QJ_EMB_DTYPE 2\n#define QJ_ATT_SPLIT 1\n",
        "#define QJ_DIM 4096\n#define QJ_HIDDEN 14336\n#define QJ_N_HEADS 32\n#define QJ_N_KV_HEADS 8\n"
        "#define QJ_HEAD_DIM 128\n#define QJ_MAX_SEQ 8192\n#define QJ_ROPE_HALF 1\n#define QJ_EMB_DTYPE 1\n",
        "#define QJ_EMB_DTYPE 3\n#define QJ_EMB_BITS 5\n#define QJ_EMB_GROUP 64\n#define QJ_EMB_SYM 1\n",
        "#define QJ_OPS_PREP 3\n",
        "#define QJ_DIM 4096\n#define QJ_HIDDEN 14336\n#define QJ_N_HEADS 32\n#define QJ_N_KV_HEADS 8\n"
        "#define QJ_HEAD_DIM 128\n#define QJ_MAX_SEQ 8192\n#define QJ_ROPE_HALF 1\n#define QJ_OPS_PREP 3\n#define QJ_ATT_SPLIT 8\n",
        /* the shares combined through global memory (QJ_ATT_CLUSTER=0), and a cluster of 3 */
        "#define QJ_DIM 4096\n#define QJ_HIDDEN 14336\n#define QJ_N_HEADS 32\n#define QJ_N_KV_HEADS 8\n"
        "#define QJ_HEAD_DIM 128\n#define QJ_MAX_SEQ 8192\n#define QJ_OPS_PREP 3\n#define QJ_ATT_SPLIT 8\n#define QJ_ATT_CLUSTER 0\n",
        "#define QJ_OPS_PREP 2\n#define QJ_ATT_SPLIT 3\n",
    };
    if (qj_template_source("qj_ops.cu")) {
        for (size_t i = 0; i < sizeof ops_sets / sizeof ops_sets[0]; i++) {
            char src[1024];
            snprintf(src, sizeof src, "%s#include \"qj_ops.cu\"\n", ops_sets[i]);
            void *img = NULL;
            size_t len = 0;
            QJ_CHECK_OK(qj_nvrtc_compile(src, "ops.cu", "sm_90a", &img, &len, NULL));
            free(img);
        }
    } else {
        QJ_CHECK_MSG(0, "qj_ops.cu is not embedded");
    }

    /* errors: a broken source carries NVRTC's log; a bad architecture is refused */
    void *img = NULL;
    size_t len = 0;
    char *log = NULL;
    QJ_CHECK_FAILS(qj_nvrtc_compile("extern \"C\" __global__ void k() { undeclared_thing(); }", "broken.cu",
                                    "sm_90a", &img, &len, &log),
                   "broken.cu: NVRTC compile failed");
    QJ_CHECK(strstr(qj_last_error(), "undeclared_thing") != NULL);
    QJ_CHECK(log && strstr(log, "undeclared_thing"));
    free(log);
    QJ_CHECK(img == NULL);
    QJ_CHECK_FAILS(qj_nvrtc_compile("", "x.cu", "sm_9z", &img, &len, NULL), "unsupported target architecture \"sm_9z\"");

    /* the cache: a second compile of the same source is a hit */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", qj_test_tmp("kcache"));
    setenv("QJ_CACHE_DIR", dir, 1);
    qj_gemv_case_get(0, &cz);
    QJ_CHECK_OK(qj_gemv_case_spec(&cz, &s));
    char *src = NULL;
    QJ_CHECK_OK(qj_gemv_source(&s, "sm_90a", &src));
    int hit = -1;
    /* unique per run: a stale cache entry would make the first call a hit */
    char *src2 = malloc(strlen(src) + 64);
    snprintf(src2, strlen(src) + 64, "/* run %ld */\n%s", (long)getpid(), src);
    QJ_CHECK_OK(qj_kcache_compile(src2, "c.cu", "sm_90a", &img, &len, &hit));
    QJ_CHECK(hit == 0 && len > 0);
    free(img);
    QJ_CHECK_OK(qj_kcache_compile(src2, "c.cu", "sm_90a", &img, &len, &hit));
    QJ_CHECK(hit == 1 && len > 0);
    free(img);
    free(src);
    free(src2);

    /* a package carries every kernel of its model; loading it gives them back byte for byte */
    const char *stories = qj_test_shared("models/stories260K/stories260K.bin");
    if (stories) {
        qj_model *m = NULL, *c = NULL, *pkg = NULL;
        qj_plan *plan = NULL;
        qj_kernel_blob *kb = NULL;
        int nk = 0;
        qj_gpu_build_stats st;
        QJ_CHECK_OK(qj_load_llama2c(stories, &m));
        QJ_CHECK_OK(qj_plan_parse("int4-g32", 5, &plan));
        if (m && plan) QJ_CHECK_OK(qj_compile_model(m, plan, 0, &c, NULL));
        if (c) QJ_CHECK_OK(qj_gpu_compile_kernels(c, "sm_90a", 0, 1, &kb, &nk, &st));
        /* fused q|k|v, o, fused gate|up, down, head, ops: 6 distinct kernels */
        QJ_CHECK_MSG(nk == 6, "%d kernels", nk);
        if (c) {
            /* with tails (QJ_FUSE_TAIL=1): o with the RMSNorm tail, fused gate|up with the SwiGLU tail, down with the
             * RMSNorm tail in two kinds (the next q|k|v's prep written; the last layer's: none, the head reads its
             * input as it is), q|k|v, head, ops: 7. With "gu,down" o keeps its plain kernel: still 7, one RMSNorm
             * tail with prep fewer */
            static const struct {
                const char *env;
                int tn, tnp;
            } tw[2] = {{"1", 3, 2}, {"gu,down", 2, 1}};
            for (int v = 0; v < 2; v++) {
                qj_kernel_blob *kt = NULL;
                int nt = 0, tn = 0, tnp = 0, ts = 0;
                setenv("QJ_FUSE_TAIL", tw[v].env, 1);
                QJ_CHECK_OK(qj_gpu_compile_kernels(c, "sm_90a", 0, 1, &kt, &nt, &st));
                unsetenv("QJ_FUSE_TAIL");
                for (int i = 0; i < nt && kt; i++) {
                    tn += strstr(kt[i].name, "_tn") != NULL;
                    tnp += strstr(kt[i].name, "_tn0p1") != NULL;
                    ts += strstr(kt[i].name, "_tsp1") != NULL;
                }
                QJ_CHECK_MSG(nt == 7 && tn == tw[v].tn && tnp == tw[v].tnp && ts == 1,
                             "QJ_FUSE_TAIL=%s: %d kernels, %d RMSNorm tails (%d with prep), %d SwiGLU", tw[v].env, nt, tn, tnp,
                             ts);
                qj_kernel_blobs_free(kt, nt);
            }
        }
        if (c && kb) {
            c->kernels = kb;
            c->n_kernels = nk;
            QJ_CHECK_OK(qj_package_write(c, plan, qj_test_tmp("kernels.qjp")));
            QJ_CHECK_OK(qj_package_load(qj_test_tmp("kernels.qjp"), NULL, &pkg));
            if (pkg) {
                QJ_CHECK(pkg->n_kernels == nk);
                for (int i = 0; i < nk && i < pkg->n_kernels; i++) {
                    const qj_kernel_blob *b = qj_model_find_kernel(pkg, kb[i].name, "sm_90a");
                    QJ_CHECK(b && b->len == kb[i].len && !memcmp(b->image, kb[i].image, b->len));
                }
                QJ_CHECK(qj_model_find_kernel(pkg, kb[0].name, "sm_80") == NULL);
            }
            c->kernels = NULL;
            c->n_kernels = 0;
        }
        qj_kernel_blobs_free(kb, nk);
        qj_model_free(pkg);
        qj_model_free(c);
        qj_model_free(m);
        qj_plan_free(plan);
    } else {
        printf("SKIP: package kernels part (no stories260K)\n");
    }
    return qj_test_finish();
}
