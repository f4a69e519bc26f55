/* measure.c — what qjit search's trials and qjit baselines measure on a
 * compiled model: perplexity on token ids (the CPU reference forward, or the
 * whole forward on the GPU) and batch-1 decode tokens/s, repeated (on the CPU
 * through the LLVM kernels, optionally from a cache kept across models; on the
 * GPU as graph-replayed steps after a warm-up). */
#include <math.h>
#include <string.h>

#include "common.h"
#include "gpu_bench.h"

qj_status cli_measure_model(qj_model *m, const cli_measure *p, cli_measured *o) {
    memset(o, 0, sizeof *o);
    if (p->repeats < 0 || p->repeats > CLI_MAX_REPEATS)
        return qj_fail(QJ_ERR_INVALID, "%d repeats (at most %d)", p->repeats, CLI_MAX_REPEATS);
    qj_gpu_model *g = NULL;
    qj_cpu_kernels *ck = NULL;
    qj_gpu_params gp = qj_gpu_default_params();
    qj_status st = QJ_OK;
    if (p->cuda) {
        gp.ordinal = p->ordinal;
        gp.max_seq = QJ_DECODE_BENCH_POSITIONS;
        const int cx = p->ep.ctx ? p->ep.ctx : m->cfg.seq_len;
        if (p->ppl && cx > gp.max_seq) gp.max_seq = cx;
        qj_gpu_build_stats bs;
        st = qj_gpu_model_create(m, &gp, &g, &bs);
        if (!st) {
            o->gpu_kernels = bs.kernels;
            o->gpu_compiled = bs.kernels - bs.cache_hits - bs.from_package;
            o->gpu_build_s = bs.compile_seconds + bs.upload_seconds;
        }
    }
    if (!st && p->ppl)
        st = g ? qj_eval_nll_with(&m->cfg, gp.max_seq, cli_gpu_forward_fn, g, p->ids, p->nid, &p->ep, &o->er)
               : qj_eval_nll(m, p->ids, p->nid, &p->ep, &o->er);
    if (!st && p->repeats > 0) {
        if (!g && p->cpu_kernels) { /* from the cache: a kernel seen in an earlier model is not compiled again */
            qj_cpu_attach_info ci;
            st = p->kcache ? qj_cpu_kernels_attach_cached(m, p->kcache, &ck, &ci, &o->cpu_compiled)
                           : qj_cpu_kernels_attach_ex(m, QJ_CPU_CODE_AUTO, &ck, &ci);
            o->cpu_kernels = ci.n_kernels;
            if (!p->kcache) o->cpu_compiled = ci.n_kernels;
        }
        const int n = p->decode_tokens < m->cfg.seq_len ? p->decode_tokens : m->cfg.seq_len;
        double warm = 0, sum = 0, lsum = 0, lsq = 0;
        if (!st && !g) st = cli_cpu_decode(m, n < 8 ? n : 8, &warm); /* the GPU bench warms up itself */
        for (int r = 0; r < p->repeats && !st; r++) {
            if (g) {
                qj_decode_bench db;
                st = qj_gpu_decode_bench(g, p->decode_tokens, &db);
                o->runs[r] = db.tokens_per_s;
            } else
                st = cli_cpu_decode(m, n, &o->runs[r]);
            if (!st && !(o->runs[r] > 0)) st = qj_fail(QJ_ERR_INTERNAL, "decode measured %g tokens/s", o->runs[r]);
            if (st) break;
            sum += o->runs[r];
            lsum += log(o->runs[r]);
            lsq += log(o->runs[r]) * log(o->runs[r]);
        }
        if (!st) {
            const int R = p->repeats;
            o->tps = sum / R;
            /* the variance of the mean of log tokens/s (the search's GP noise for this model) */
            const double var = R > 1 ? fmax(0.0, (lsq - lsum * lsum / R) / (R - 1)) : 0.0;
            o->tps_log_var = var / R;
        }
    }
    if (ck) qj_cpu_kernels_free(m, ck);
    qj_gpu_model_free(g);
    return st;
}
