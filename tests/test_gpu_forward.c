// ctest-labels: gpu
/* test_gpu_forward.c — the whole forward pass on the GPU against the CPU
 * reference: stories260K perplexity, dense and three mixed plans, must agree
 * within 1e-3 relative (the bar; fp32 throughout, so expect ~1e-6);
 * the same with tails (QJ_FUSE_TAIL=1: RMSNorm and SwiGLU done by the
 * matmuls before them, batch 1); a graph replay gives the same logits as
 * eager launches; batched decode
 * (5 and 17 sequences a step, staggered positions) matches the CPU reference
 * per sequence; bad positions, tokens and batches are refused. Exits 77 where no CUDA device is present. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "cuda_codegen.h"
#include "gpu_model.h"
#include "loaders.h"
#include "plan.h"
#include "qj_eval.h"
#include "qj_forward.h"
#include "qj_io.h"
#include "tokenizer.h"
#include "qj_stories.h"
#include "qj_test.h"

static qj_status gpu_fn(void *ctx, int token, int pos, const float **logits) {
    return qj_gpu_forward((qj_gpu_model *)ctx, token, pos, logits);
}

/* Batched decode on bg (B <= 17 sequences of model m, nv logits each) for steps steps against one CPU reference
 * state per row: row b starts (5 b) % 7 steps late, repeating position 0 until then, each row its own tokens.
 * Returns the worst relative error of a row's logits; *done: the steps that ran. */
static double batched_vs_reference(qj_gpu_model *bg, const qj_model *m, int B, int steps, int nv, int *done) {
    qj_state *rs[17] = {0};
    int ok = bg != NULL && B <= 17;
    double worst = 0;
    *done = 0;
    for (int b = 0; ok && b < B; b++) {
        QJ_CHECK_OK(qj_state_alloc(m, 64, &rs[b]));
        ok = rs[b] != NULL;
    }
    for (int st = 0; ok && st < steps; st++) {
        int tks[17], ps[17];
        for (int b = 0; b < B; b++) {
            const int delay = (b * 5) % 7;
            ps[b] = st > delay ? st - delay : 0;
            tks[b] = (ps[b] * 37 + 11 + 13 * b) % nv;
        }
        const float *lg = NULL;
        QJ_CHECK_OK(qj_gpu_forward_batch(bg, tks, ps, &lg));
        if (!lg) break;
        for (int b = 0; b < B && ok; b++) {
            const float *lc = NULL;
            QJ_CHECK_OK(qj_forward(rs[b], tks[b], ps[b], &lc));
            if (!lc) {
                ok = 0;
                break;
            }
            double num = 0, den = 0;
            for (int v = 0; v < nv; v++) {
                const double d = (double)lg[(size_t)b * nv + v] - lc[v];
                num += d * d;
                den += (double)lc[v] * lc[v];
            }
            const double rel = sqrt(num / (den > 0 ? den : 1));
            worst = rel > worst ? rel : worst;
        }
        if (ok) (*done)++;
    }
    for (int b = 0; b < B; b++) qj_state_free(rs[b]);
    return worst;
}

int main(void) {
    if (!qj_cuda_available()) {
        printf("SKIP: no CUDA device (%s)\n", qj_last_error());
        return 77;
    }
    const char *path = qj_test_shared("models/stories260K/stories260K.bin");
    if (!path) {
        printf("SKIP: stories260K not found (QJ_SHARED)\n");
        return 77;
    }
    qj_model *src = NULL;
    QJ_CHECK_OK(qj_load_llama2c(path, &src));
    if (!src) return qj_test_finish();
    /* real text, tokenized: the first 1500 ids of TinyStories */
    int ids[1500];
    if (!qj_stories_ids(ids, 1500)) {
        printf("SKIP: tokenizer or text not found (QJ_SHARED)\n");
        qj_model_free(src);
        return 77;
    }
    const char *const *plans = qj_stories_plans;
    /* every plan without and with tails (QJ_FUSE_TAIL=1: RMSNorm and SwiGLU done by the matmuls before them) */
    for (int tails = 0; tails < 2; tails++)
    for (size_t pi = 0; pi < (size_t)QJ_STORIES_NPLANS; pi++) {
        setenv("QJ_FUSE_TAIL", tails ? "1" : "0", 1);
        qj_plan *plan = NULL;
        qj_model *m = NULL;
        qj_gpu_model *g = NULL;
        QJ_CHECK_OK(qj_plan_parse(plans[pi], 5, &plan));
        if (plan) QJ_CHECK_OK(qj_compile_model(src, plan, 0, &m, NULL));
        if (m) QJ_CHECK_OK(qj_gpu_model_create(m, NULL, &g, NULL));
        if (g) {
            qj_eval_params ep = qj_eval_default_params();
            ep.progress = 0;
            ep.ctx = 256;
            qj_eval_result cpu, gpu;
            QJ_CHECK_OK(qj_eval_nll(m, ids, 1500, &ep, &cpu));
            QJ_CHECK_OK(qj_eval_nll_with(&m->cfg, m->cfg.seq_len, gpu_fn, g, ids, 1500, &ep, &gpu));
            double rel = fabs(gpu.nll - cpu.nll) / cpu.nll;
            printf("plan %zu (%s)%s: NLL cpu %.9f gpu %.9f  rel %.2e\n", pi, plan->desc, tails ? " with tails" : "",
                   cpu.nll, gpu.nll, rel);
            QJ_CHECK_MSG(rel < 1e-3 && isfinite(gpu.nll), "plan %zu%s: rel %.3g", pi, tails ? " with tails" : "", rel);
            QJ_CHECK(gpu.tokens == 1500);
            /* graph replays (every step after the first) vs a fresh eager model on one step */
            const float *lg;
            float *a = malloc(512 * sizeof *a);
            QJ_CHECK_OK(qj_gpu_forward(g, ids[0], 0, &lg));
            memcpy(a, lg, 512 * sizeof *a);
            qj_gpu_params np = qj_gpu_default_params();
            np.use_graph = 0;
            np.fuse = 0; /* unfused eager launches must give the same logits as fused graph replays */
            qj_gpu_model *e = NULL;
            QJ_CHECK_OK(qj_gpu_model_create(m, &np, &e, NULL));
            if (e) {
                QJ_CHECK_OK(qj_gpu_forward(e, ids[0], 0, &lg));
                QJ_CHECK(memcmp(a, lg, 512 * sizeof *a) == 0);
                QJ_CHECK_FAILS(qj_gpu_forward(e, ids[0], 100000, &lg), "position 100000 out of range");
                QJ_CHECK_FAILS(qj_gpu_forward(e, 512, 0, &lg), "token id 512 out of range");
            }
            qj_gpu_model_free(e);
            /* kernels carried by the model (as a package carries them): nothing is compiled */
            qj_kernel_blob *kb = NULL;
            int nk = 0;
            qj_gpu_build_stats bst;
            char arch[32];
            const qj_cuda_info *I = qj_cuda_get_info(qj_gpu_cuda(g));
            qj_cuda_arch_string(I->cc_major, I->cc_minor, 0, arch, sizeof arch);
            QJ_CHECK_OK(qj_gpu_compile_kernels(m, arch, 0, 1, &kb, &nk, &bst));
            m->kernels = kb;
            m->n_kernels = nk;
            qj_gpu_model *pk = NULL;
            QJ_CHECK_OK(qj_gpu_model_create(m, NULL, &pk, &bst));
            QJ_CHECK_MSG(bst.from_package == bst.kernels && bst.cache_hits == 0, "%d of %d from the package",
                         bst.from_package, bst.kernels);
            if (pk) {
                QJ_CHECK_OK(qj_gpu_forward(pk, ids[0], 0, &lg));
                QJ_CHECK(memcmp(a, lg, 512 * sizeof *a) == 0);
            }
            qj_gpu_model_free(pk);
            m->kernels = NULL;
            m->n_kernels = 0;
            qj_kernel_blobs_free(kb, nk);
            free(a);
        }
        qj_gpu_model_free(g);
        qj_model_free(m);
        qj_plan_free(plan);
        unsetenv("QJ_FUSE_TAIL");
    }
    /* A synthetic model whose heads are whole 32-value blocks (head_dim 32)
     * and whose hidden size is ragged (344): the fused activation preps of
     * rmsnorm (with the residual add), attention and swiglu, against the CPU
     * reference forward, step by step; then the same with tails (the SwiGLU
     * tail's tiles: 128, 128 and 88 values, some completed by blocks that
     * hold gate and up rows at once). */
    for (int tails = 0; tails < 2; tails++) {
        setenv("QJ_FUSE_TAIL", tails ? "1" : "0", 1);
        qj_model *ts = NULL, *tm = NULL;
        qj_plan *tp = NULL;
        qj_gpu_model *tg = NULL;
        qj_state *cs = NULL;
        QJ_CHECK_OK(qj_load_synthetic("tiny", 7, QJ_DTYPE_F32, &ts));
        QJ_CHECK_OK(qj_plan_parse("int4-g32", ts ? ts->cfg.n_layers : 2, &tp));
        if (ts && tp) QJ_CHECK_OK(qj_compile_model(ts, tp, 0, &tm, NULL));
        if (tm) QJ_CHECK_OK(qj_gpu_model_create(tm, NULL, &tg, NULL));
        if (tm) QJ_CHECK_OK(qj_state_alloc(tm, 64, &cs));
        double worst = 0;
        int nv = tm ? tm->cfg.vocab_size : 0, steps = 0;
        for (int pos = 0; tg && cs && pos < 40; pos++, steps++) {
            const float *lg = NULL, *lc = NULL;
            int tk = (pos * 37 + 11) % nv;
            QJ_CHECK_OK(qj_gpu_forward(tg, tk, pos, &lg));
            QJ_CHECK_OK(qj_forward(cs, tk, pos, &lc));
            if (!lg || !lc) break;
            double num = 0, den = 0;
            for (int v = 0; v < nv; v++) {
                num += ((double)lg[v] - lc[v]) * ((double)lg[v] - lc[v]);
                den += (double)lc[v] * lc[v];
            }
            double rel = sqrt(num / (den > 0 ? den : 1));
            worst = rel > worst ? rel : worst;
        }
        printf("synthetic tiny int4-g32%s: %d steps, worst logits rel %.2e (GPU vs CPU reference)\n",
               tails ? " with tails" : "", steps, worst);
        QJ_CHECK_MSG(steps == 40 && worst < 1e-4, "tiny%s: %d steps, rel %.3g", tails ? " with tails" : "", steps, worst);
        /* batched decode: B sequences per step, each its own tokens, position (row b starts
         * delay[b] steps late, repeating position 0 until then) and KV cache, against one CPU
         * reference state per row; batch 5 fused with graph replays (integer-MMA kernels),
         * batch 17 unfused and eager (the tensor-core kernels), and batch 5 again with attention's
         * shares combined in a cluster (QJ_ATT_CLUSTER=1; by default only batch 1 takes it) */
        for (int run = 0; tm && run < 3; run++) {
            const int B = run == 1 ? 17 : 5;
            qj_gpu_params bp = qj_gpu_default_params();
            bp.batch = B;
            bp.fuse = run != 1;
            bp.use_graph = run != 1;
            qj_gpu_model *bg = NULL;
            if (run == 2) setenv("QJ_ATT_CLUSTER", "1", 1);
            QJ_CHECK_OK(qj_gpu_model_create(tm, &bp, &bg, NULL));
            unsetenv("QJ_ATT_CLUSTER");
            int bsteps = 0;
            const double bworst = batched_vs_reference(bg, tm, B, 24, nv, &bsteps);
            printf("synthetic tiny int4-g32, batch %d (%s): %d steps, worst logits rel %.2e\n", B,
                   run == 1 ? "unfused, eager" : run ? "fused, graph, attention cluster" : "fused, graph", bsteps, bworst);
            QJ_CHECK_MSG(bsteps == 24 && bworst < 1e-4, "batch %d: %d steps, rel %.3g", B, bsteps, bworst);
            if (bg) {
                const float *lg;
                int tk0[17] = {0}, p0[17] = {0};
                QJ_CHECK_FAILS(qj_gpu_forward(bg, 0, 0, &lg), "steps every sequence at once");
                p0[B - 1] = 100000;
                QJ_CHECK_FAILS(qj_gpu_forward_batch(bg, tk0, p0, &lg), "position 100000 out of range");
            }
            qj_gpu_model_free(bg);
        }
        /* K splits over blocks (QJ_IM_BX=1 forces the block-shared kernels, so that the small synthetic model's
         * layers split K), summed by the last block, then adding into y (QJ_IM_RED=1: q|k|v into zeroed rows, o and
         * down into the residual stream, gate|up and the head into rows zeroed before them; with tails, a kernel
         * that takes one sums by its last block); batch 5, graph replays, against the CPU reference per row */
        for (int red = 0; red < 2; red++) {
            qj_model *ss = NULL, *sm = NULL;
            qj_plan *sp = NULL;
            QJ_CHECK_OK(qj_load_synthetic("small", 3, QJ_DTYPE_F32, &ss));
            QJ_CHECK_OK(qj_plan_parse("int4-g128", ss ? ss->cfg.n_layers : 8, &sp));
            if (ss && sp) QJ_CHECK_OK(qj_compile_model(ss, sp, 0, &sm, NULL));
            const int B = 5, snv = sm ? sm->cfg.vocab_size : 0;
            qj_gpu_params bp = qj_gpu_default_params();
            bp.batch = B;
            bp.max_seq = 64;
            qj_gpu_model *bg = NULL;
            qj_gpu_build_stats bst;
            setenv("QJ_IM_BX", "1", 1);
            setenv("QJ_IM_RED", red ? "1" : "0", 1);
            if (sm) QJ_CHECK_OK(qj_gpu_model_create(sm, &bp, &bg, &bst));
            unsetenv("QJ_IM_BX");
            unsetenv("QJ_IM_RED");
            /* (with tails, o, gate|up and down keep the last block's sum where they take a tail: q|k|v still adds) */
            if (bg) QJ_CHECK_MSG(red ? bst.red >= (tails ? 1 : 3) : bst.red == 0, "%d of %d kernels add into y (%s expected)",
                                 bst.red, bst.kernels, !red ? "none" : tails ? "q|k|v at least" : "q|k|v, o, down at least");
            int rsteps = 0;
            const double rworst = batched_vs_reference(bg, sm, B, 12, snv, &rsteps);
            printf("synthetic small int4-g128, batch %d, block-shared kernels, K splits %s (%d kernels add): %d steps, "
                   "worst logits rel %.2e\n", B, red ? "adding into y" : "summed by the last block", bg ? bst.red : 0, rsteps,
                   rworst);
            QJ_CHECK_MSG(rsteps == 12 && rworst < 1e-4, "K splits %s: %d steps, rel %.3g", red ? "adding into y" : "summed",
                         rsteps, rworst);
            qj_gpu_model_free(bg);
            qj_model_free(sm);
            qj_model_free(ss);
            qj_plan_free(sp);
        }
        {
            qj_gpu_params bp = qj_gpu_default_params();
            bp.batch = 65;
            qj_gpu_model *bg = NULL;
            if (tm) QJ_CHECK_FAILS(qj_gpu_model_create(tm, &bp, &bg, NULL), "GPU batch 65 out of range");
        }
        qj_state_free(cs);
        qj_gpu_model_free(tg);
        qj_model_free(tm);
        qj_plan_free(tp);
        qj_model_free(ts);
        unsetenv("QJ_FUSE_TAIL");
    }
    /* A Qwen2-style model: RoPE on pairs (i, i + head_dim/2), q/k/v biases,
     * grouped kv heads, head_dim 128 (attention writes the o_proj input's
     * integer-MMA prep), a dim of 2.5 RMSNorm chunks, against the CPU
     * reference step by step; attention with one block per head and with its
     * positions split over 3 (QJ_ATT_SPLIT: shares empty at early steps), the
     * shares combined in a cluster (sm_90+) and, the last case, through
     * global memory (QJ_ATT_CLUSTER=0); and with tails (QJ_FUSE_TAIL=1). */
    for (int split = 0; split < 5; split++) {
        static const char *sp[] = {NULL, "1", "3", "3 (global combine)", "default, with tails"};
        const char *cfgp = qj_test_tmp("qwen_gpu_config.json");
        const char *js = "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":320,\"intermediate_size\":344,"
                         "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":128,"
                         "\"vocab_size\":300,\"max_position_embeddings\":64,\"rms_norm_eps\":1e-6}";
        QJ_CHECK_OK(qj_write_file_atomic(cfgp, js, strlen(js)));
        if (sp[split] && split < 4) setenv("QJ_ATT_SPLIT", split == 3 ? "3" : sp[split], 1);
        if (split == 3) setenv("QJ_ATT_CLUSTER", "0", 1);
        if (split == 4) setenv("QJ_FUSE_TAIL", "1", 1); /* (a norm tail over 2.5 prep tiles) */
        qj_model *qs = NULL, *qm = NULL;
        qj_plan *qp = NULL;
        qj_gpu_model *qg = NULL;
        qj_state *qc = NULL;
        QJ_CHECK_OK(qj_load_synthetic(cfgp, 11, QJ_DTYPE_F32, &qs));
        QJ_CHECK(qs && qs->cfg.qkv_bias && qs->cfg.rope_style == QJ_ROPE_HALF);
        QJ_CHECK_OK(qj_plan_parse("int5-g64", qs ? qs->cfg.n_layers : 2, &qp));
        if (qs && qp) QJ_CHECK_OK(qj_compile_model(qs, qp, 0, &qm, NULL));
        if (qm) QJ_CHECK_OK(qj_gpu_model_create(qm, NULL, &qg, NULL));
        if (qm) QJ_CHECK_OK(qj_state_alloc(qm, 64, &qc));
        unsetenv("QJ_ATT_SPLIT");
        unsetenv("QJ_ATT_CLUSTER");
        unsetenv("QJ_FUSE_TAIL");
        double worst = 0;
        int steps = 0, nv = qm ? qm->cfg.vocab_size : 0;
        for (int pos = 0; qg && qc && pos < 40; pos++, steps++) {
            const float *lg = NULL, *lc = NULL;
            const int tk = (pos * 31 + 5) % nv;
            QJ_CHECK_OK(qj_gpu_forward(qg, tk, pos, &lg));
            QJ_CHECK_OK(qj_forward(qc, tk, pos, &lc));
            if (!lg || !lc) break;
            double num = 0, den = 0;
            for (int v = 0; v < nv; v++) {
                num += ((double)lg[v] - lc[v]) * ((double)lg[v] - lc[v]);
                den += (double)lc[v] * lc[v];
            }
            const double rel = sqrt(num / (den > 0 ? den : 1));
            worst = rel > worst ? rel : worst;
        }
        printf("synthetic qwen2 int5-g64, attention split %s: %d steps, worst logits rel %.2e (GPU vs CPU reference)\n",
               sp[split] ? sp[split] : "default", steps, worst);
        QJ_CHECK_MSG(steps == 40 && worst < 1e-4, "qwen2 split %s: %d steps, rel %.3g", sp[split] ? sp[split] : "default",
                     steps, worst);
        qj_state_free(qc);
        qj_gpu_model_free(qg);
        qj_model_free(qm);
        qj_plan_free(qp);
        qj_model_free(qs);
    }
    /* an allocation larger than the card is a clear error, not a crash */
    qj_cuda *cu = NULL;
    QJ_CHECK_OK(qj_cuda_open(0, &cu));
    if (cu) {
        qj_dptr p = 0;
        QJ_CHECK_FAILS(qj_cuda_alloc(cu, (size_t)1 << 42, &p), "out of GPU memory");
        qj_cuda_close(cu);
    }
    qj_model_free(src);
    return qj_test_finish();
}
