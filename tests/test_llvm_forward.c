/* test_llvm_forward.c — the CPU forward pass through the LLVM-generated
 * kernels (qj_cpu_kernels_attach) against the reference forward on the real
 * stories260K: perplexity on 1500 TinyStories ids for a dense, a uniform int4 and three mixed
 * plans (widths 2-8, groups 32-512 and per channel, symmetric bf16 scales,
 * int6 head, per-tensor overrides) must agree within 1e-4 relative; detaching
 * restores the reference; through a kernel cache a second attach compiles
 * nothing. Skips (77) without LLVM or without ../shared.
 * ctest-labels: unit llvm
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "compile.h"
#include "llvm_kernels.h"
#include "loaders.h"
#include "plan.h"
#include "qj_eval.h"
#include "qj_stories.h"
#include "qj_test.h"

int main(void) {
    if (!qj_cpu_llvm_available()) {
        printf("SKIP: built without LLVM\n");
        return 77;
    }
    const char *path = qj_test_shared("models/stories260K/stories260K.bin");
    int ids[1500];
    if (!path || !qj_stories_ids(ids, 1500)) {
        printf("SKIP: stories260K, its tokenizer or the text not found (QJ_SHARED)\n");
        return 77;
    }
    qj_model *src = NULL;
    QJ_CHECK_OK(qj_load_llama2c(path, &src));
    if (!src) return qj_test_finish();
    /* the shared plans, and uniform int4-g32 */
    const char *plans[QJ_STORIES_NPLANS + 1];
    plans[0] = qj_stories_plans[0];
    plans[1] = "int4-g32";
    for (int i = 1; i < QJ_STORIES_NPLANS; i++) plans[i + 1] = qj_stories_plans[i];
    for (size_t pi = 0; pi < sizeof plans / sizeof plans[0]; pi++) {
        qj_plan *plan = NULL;
        qj_model *m = NULL;
        QJ_CHECK_OK(qj_plan_parse(plans[pi], 5, &plan));
        if (plan) QJ_CHECK_OK(qj_compile_model(src, plan, 0, &m, NULL));
        if (m) {
            qj_eval_params ep = qj_eval_default_params();
            ep.progress = 0;
            ep.ctx = 256;
            qj_eval_result ref, jit, again;
            QJ_CHECK_OK(qj_eval_nll(m, ids, 1500, &ep, &ref));
            qj_cpu_kernels *k = NULL;
            int nk = -1;
            QJ_CHECK_OK(qj_cpu_kernels_attach(m, &k, &nk, NULL));
            QJ_CHECK(m->cpu_matvec != NULL);
            QJ_CHECK_OK(qj_eval_nll(m, ids, 1500, &ep, &jit));
            qj_cpu_kernels_free(m, k);
            QJ_CHECK(m->cpu_matvec == NULL);
            QJ_CHECK_OK(qj_eval_nll(m, ids, 1500, &ep, &again));
            double rel = fabs(jit.nll - ref.nll) / ref.nll;
            printf("plan %zu (%s): %d LLVM kernels, NLL reference %.9f, LLVM kernels %.9f, rel %.2e\n", pi, plan->desc, nk,
                   ref.nll, jit.nll, rel);
            QJ_CHECK_MSG(rel < 1e-4 && isfinite(jit.nll), "plan %zu: rel %.3g", pi, rel);
            QJ_CHECK_MSG(pi == 0 ? nk == 0 : nk > 0, "plan %zu: %d kernels", pi, nk);
            QJ_CHECK(again.nll == ref.nll); /* detached: the reference again, bit for bit */
            /* through a kernel cache: the first attach compiles every kernel, a second one (another
             * model of the same plan, as the search's next trial) compiles none, same NLL */
            qj_cpu_kcache *kc = NULL;
            QJ_CHECK_OK(qj_cpu_kcache_new(&kc));
            for (int round = 0; kc && round < 2; round++) {
                qj_cpu_attach_info ci;
                int compiled = -1;
                qj_eval_result cached;
                QJ_CHECK_OK(qj_cpu_kernels_attach_cached(m, kc, &k, &ci, &compiled));
                QJ_CHECK_MSG(ci.n_kernels == nk && compiled == (round == 0 ? nk : 0), "plan %zu round %d: %d kernels, %d compiled",
                             pi, round, ci.n_kernels, compiled);
                QJ_CHECK_OK(qj_eval_nll(m, ids, 1500, &ep, &cached));
                QJ_CHECK_MSG(cached.nll == jit.nll, "plan %zu round %d: cached kernels NLL %.9f, %.9f", pi, round, cached.nll,
                             jit.nll);
                qj_cpu_kernels_free(m, k);
            }
            if (kc) QJ_CHECK(qj_cpu_kcache_size(kc) == nk);
            qj_cpu_kcache_free(kc);
        }
        qj_model_free(m);
        qj_plan_free(plan);
    }
    qj_model_free(src);
    return qj_test_finish();
}
