/* gpu_bench.c — copy ceiling, per-kernel timings, decode throughput. */
#include "gpu_bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cublas_dl.h"
#include "cuda_codegen.h"
#include "gpu_linear.h"
#include "nvrtc.h"
#include "qj_layout.h"
#include "qj_progress.h"

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

qj_status qj_gpu_copy_ceiling(qj_cuda *cu, qj_custream st, double *gbs) {
    const size_t bytes = (size_t)1 << 30;
    qj_dptr a = 0, b = 0;
    qj_cuevent e0 = NULL, e1 = NULL;
    float ms[9];
    qj_status s = qj_cuda_alloc(cu, bytes, &a);
    if (!s) s = qj_cuda_alloc(cu, bytes, &b);
    if (!s) s = qj_cuda_memset8(cu, a, 0x5a, bytes);
    if (!s) s = qj_cuda_event_create(cu, &e0);
    if (!s) s = qj_cuda_event_create(cu, &e1);
    if (!s) s = qj_cuda_copy(cu, b, a, bytes, st);
    for (int i = 0; i < 9 && !s; i++) {
        s = qj_cuda_event_record(cu, e0, st);
        if (!s) s = qj_cuda_copy(cu, b, a, bytes, st);
        if (!s) s = qj_cuda_event_record(cu, e1, st);
        if (!s) s = qj_cuda_event_ms(cu, e0, e1, &ms[i]);
    }
    if (!s) {
        qsort(ms, 9, sizeof ms[0], cmp_float);
        *gbs = 2.0 * (double)bytes / (ms[4] * 1e-3) / 1e9;
    }
    qj_cuda_event_destroy(cu, e0);
    qj_cuda_event_destroy(cu, e1);
    qj_cuda_free(cu, a);
    qj_cuda_free(cu, b);
    return s;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

/* Time the kernel of spec over parts, rotating over copies of its device
 * arrays (more than 3x L2 in all) so every launch reads from DRAM. Tensor-core
 * launches are timed without their activation prep (one prep serves every
 * launch that reads the same x); the prep is timed on its own into *prep_us.
 * Each timed loop starts behind ~1 ms of device copies (head_a -> head_b), so
 * the host has queued its launches and events before the device reaches them:
 * an interval is the device's time for one launch, not the host's time to
 * issue it (on the lent VMs issuing a launch and two events takes longer than
 * a small kernel runs). */
#define QJ_HEAD_BYTES ((size_t)256 << 20)

/* One call of what is timed: call i (0..4 warm-up, 5.. timed). */
typedef qj_status (*timed_fn)(void *ctx, int i);

/* 5 warm-up calls, then both timings of fn into us[QJ_KTIME_N] (medians):
 * cold, the head start then `iters` calls each between two of the 2 * iters
 * events in ev; back-to-back, `iters` intervals of QJ_KBENCH_B2B calls, each
 * interval behind its own head start (so the host has queued all its calls
 * before the device reaches them) between two events, divided by
 * QJ_KBENCH_B2B. ms: iters floats. */
static qj_status time_calls(qj_cuda *cu, qj_custream st, int iters, qj_cuevent *ev, float *ms, qj_dptr head_a,
                            qj_dptr head_b, timed_fn fn, void *ctx, double *us) {
    qj_status s = QJ_OK;
    int call = 5;
    for (int i = 0; i < 5 && !s; i++) s = fn(ctx, i);
    for (int mode = 0; mode < QJ_KTIME_N && !s; mode++) {
        int per = mode == QJ_KTIME_B2B ? QJ_KBENCH_B2B : 1;
        for (int i = 0; i < iters && !s; i++) {
            if (i == 0 || per > 1) /* the head start */
                for (int c = 0; c < 8 && !s; c++) s = qj_cuda_copy(cu, head_b, head_a, QJ_HEAD_BYTES, st);
            if (!s) s = qj_cuda_event_record(cu, ev[2 * i], st);
            for (int j = 0; j < per && !s; j++) s = fn(ctx, call++);
            if (!s) s = qj_cuda_event_record(cu, ev[2 * i + 1], st);
        }
        if (!s) s = qj_cuda_stream_sync(cu, st);
        for (int i = 0; i < iters && !s; i++) s = qj_cuda_event_ms(cu, ev[2 * i], ev[2 * i + 1], &ms[i]);
        if (!s) {
            qsort(ms, (size_t)iters, sizeof *ms, cmp_float);
            us[mode] = ms[iters / 2] * 1e3 / per;
        }
    }
    return s;
}

/* bench_one's calls: the kernel over rotating copies, or its activation prep */
typedef struct kernel_ctx {
    qj_cuda *cu;
    qj_custream st;
    const qj_glinear *L;
    int nrot, stride, prep;
    qj_dptr dx, dy;
    const qj_gact *act;
} kernel_ctx;

static qj_status kernel_call(void *p, int i) {
    const kernel_ctx *c = p;
    if (c->prep) return qj_glinear_prep(c->cu, c->st, &c->L[0], c->dx, c->stride, c->act);
    return qj_glinear_run(c->cu, c->st, &c->L[i % c->nrot], c->dx, c->stride, c->act, c->dy, (int)c->L[0].spec.N);
}

static qj_status bench_one(qj_cuda *cu, qj_custream st, const char *arch, const qj_gemv_spec *spec,
                           const qj_tensor *const *parts, int l2, int iters, qj_dptr head_a, qj_dptr head_b,
                           double us[QJ_KTIME_N], double prep_us[QJ_KTIME_N]) {
    char *src = NULL;
    void *img = NULL;
    size_t len = 0;
    qj_cumodule mod = NULL;
    qj_glinear *L = calloc(64, sizeof *L);
    if (!L) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    L[0].spec = *spec;
    qj_gemv_name(spec, arch, L[0].name, sizeof L[0].name);
    qj_status s = qj_gemv_source(spec, arch, &src);
    if (!s) s = qj_kcache_compile(src, L[0].name, arch, &img, &len, NULL);
    free(src);
    if (!s) s = qj_cuda_module_load(cu, img, &mod);
    free(img);
    if (!s) s = qj_glinear_bind(cu, mod, &L[0]);
    if (!s) s = qj_glinear_upload(cu, parts, &L[0]);
    int nrot = (int)(3 * (size_t)l2 / (L[0].bytes ? L[0].bytes : 1)) + 2;
    if (nrot > 64) nrot = 64;
    int64_t stride = QJ_NBLOCKS(spec->K) * 32;
    qj_dptr dx = 0, dy = 0;
    qj_gact act = {0};
    float *x = calloc((size_t)(stride * spec->batch), sizeof *x);
    if (!s && !x) s = qj_fail(QJ_ERR_NOMEM, "out of memory");
    for (int64_t b = 0; b < spec->batch && !s; b++)
        for (int64_t k = 0; k < spec->K; k++) x[b * stride + k] = (float)(rnd32() >> 8) / 16777216.0f - 0.5f;
    if (!s) s = qj_cuda_alloc(cu, (size_t)(stride * spec->batch) * 4, &dx);
    if (!s) s = qj_cuda_upload(cu, dx, x, (size_t)(stride * spec->batch) * 4);
    if (!s) s = qj_cuda_alloc(cu, (size_t)(spec->N * spec->batch) * 4, &dy);
    /* (a kernel whose K splits add into y, spec->red, adds to it at every launch: it starts from zeros) */
    if (!s && spec->red) s = qj_cuda_memset8(cu, dy, 0, (size_t)(spec->N * spec->batch) * 4);
    if (!s) s = qj_gact_reserve(cu, &act, spec);
    /* copies: the same functions over their own arrays */
    for (int r = 1; r < nrot && !s; r++) {
        L[r] = L[0];
        memset(L[r].w, 0, sizeof L[r].w);
        memset(L[r].s, 0, sizeof L[r].s);
        s = qj_glinear_upload(cu, parts, &L[r]);
    }
    if (!s) s = qj_glinear_prep(cu, st, &L[0], dx, (int)stride, &act);
    if (!s) s = qj_cuda_stream_sync(cu, st);
    int n_ev = 2 * iters;
    qj_cuevent *ev = calloc((size_t)n_ev, sizeof *ev);
    float *ms = malloc((size_t)iters * sizeof *ms);
    if (!s && (!ev || !ms)) s = qj_fail(QJ_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_ev && !s; i++) s = qj_cuda_event_create(cu, &ev[i]);
    prep_us[0] = prep_us[1] = 0;
    for (int pass = 0; pass < (qj_gemv_prep_kind(spec) ? 2 : 1) && !s; pass++) {
        kernel_ctx kc = {cu, st, L, nrot, (int)stride, pass, dx, dy, &act};
        s = time_calls(cu, st, iters, ev, ms, head_a, head_b, kernel_call, &kc, pass ? prep_us : us);
    }
    if (ev)
        for (int i = 0; i < n_ev; i++)
            if (ev[i]) qj_cuda_event_destroy(cu, ev[i]);
    free(ev);
    free(ms);
    for (int r = 0; r < nrot; r++) qj_glinear_free(cu, &L[r]);
    free(L);
    qj_gact_free(cu, &act);
    if (dx) qj_cuda_free(cu, dx);
    if (dy) qj_cuda_free(cu, dy);
    if (mod) qj_cuda_module_unload(cu, mod);
    free(x);
    return s;
}

/* Time cuBLAS's bf16 GEMM of shape (N, K) at `batch` the way bench_one times
 * a kernel: random bf16 weights in rotating copies (> 3x L2 in all), a
 * warm-up, the same head start of device copies, then `iters` launches each
 * between two events; *us gets the median. Before timing, one product is
 * checked against a CPU sum at a few outputs, so a wrong call cannot pass as
 * a fast one. */
typedef struct cublas_ctx {
    qj_cublas *cb;
    int64_t N, K;
    int batch, nrot;
    const qj_dptr *dw;
    qj_dptr dx, dy;
} cublas_ctx;

static qj_status cublas_call(void *p, int i) {
    const cublas_ctx *c = p;
    return qj_cublas_gemm_bf16(c->cb, c->N, c->K, c->batch, c->dw[i % c->nrot], c->dx, c->dy);
}

static qj_status bench_cublas(qj_cuda *cu, qj_custream st, qj_cublas *cb, int64_t N, int64_t K, int batch, int l2,
                              int iters, qj_dptr head_a, qj_dptr head_b, double us[QJ_KTIME_N]) {
    size_t wbytes = (size_t)(N * K) * 2;
    int nrot = (int)(3 * (size_t)l2 / wbytes) + 2;
    if (nrot > 64) nrot = 64;
    qj_dptr dw[64] = {0}, dx = 0, dy = 0;
    uint16_t *w = malloc(wbytes);                            /* (N, K) bf16 */
    uint16_t *x = malloc((size_t)(batch * K) * 2);           /* (batch, K) bf16 */
    float *y = malloc((size_t)(batch * N) * sizeof(float));  /* (batch, N) f32 */
    qj_cuevent *ev = calloc((size_t)(2 * iters), sizeof *ev);
    float *ms = malloc((size_t)iters * sizeof *ms);
    qj_status s = (!w || !x || !y || !ev || !ms) ? qj_fail(QJ_ERR_NOMEM, "out of memory") : QJ_OK;
    for (size_t i = 0; !s && i < wbytes / 2; i++)
        w[i] = qj_f32_to_bf16(((float)(rnd32() >> 8) / 16777216.0f - 0.5f) * 0.05f);
    for (int64_t i = 0; !s && i < batch * K; i++) x[i] = qj_f32_to_bf16((float)(rnd32() >> 8) / 16777216.0f - 0.5f);
    for (int r = 0; r < nrot && !s; r++) {
        s = qj_cuda_alloc(cu, wbytes, &dw[r]);
        if (!s) s = qj_cuda_upload(cu, dw[r], w, wbytes);
    }
    if (!s) s = qj_cuda_alloc(cu, (size_t)(batch * K) * 2, &dx);
    if (!s) s = qj_cuda_upload(cu, dx, x, (size_t)(batch * K) * 2);
    if (!s) s = qj_cuda_alloc(cu, (size_t)(batch * N) * sizeof(float), &dy);
    /* the check: a few outputs of W X against double sums */
    if (!s) s = qj_cublas_gemm_bf16(cb, N, K, batch, dw[0], dx, dy);
    if (!s) s = qj_cuda_stream_sync(cu, st);
    if (!s) s = qj_cuda_download(cu, y, dy, (size_t)(batch * N) * sizeof(float));
    for (int t = 0; t < 8 && !s; t++) {
        int64_t b = t == 7 ? batch - 1 : (int64_t)(rnd32() % (uint32_t)batch);
        int64_t n = t == 7 ? N - 1 : (int64_t)(rnd32() % (uint32_t)N);
        double ref = 0, mag = 0;
        for (int64_t k = 0; k < K; k++) {
            double p = (double)qj_bf16_to_f32(w[n * K + k]) * (double)qj_bf16_to_f32(x[b * K + k]);
            ref += p;
            mag += p < 0 ? -p : p;
        }
        double got = y[b * N + n], err = got - ref;
        if ((err < 0 ? -err : err) > 1e-3 * mag + 1e-6)
            s = qj_fail(QJ_ERR_INTERNAL, "cuBLAS result check failed: y[%lld][%lld] = %.6g, CPU %.6g", (long long)b,
                        (long long)n, got, ref);
    }
    for (int i = 0; i < 2 * iters && !s; i++) s = qj_cuda_event_create(cu, &ev[i]);
    cublas_ctx cc = {cb, N, K, batch, nrot, dw, dx, dy};
    if (!s) s = time_calls(cu, st, iters, ev, ms, head_a, head_b, cublas_call, &cc, us);
    if (ev)
        for (int i = 0; i < 2 * iters; i++)
            if (ev[i]) qj_cuda_event_destroy(cu, ev[i]);
    for (int r = 0; r < nrot; r++)
        if (dw[r]) qj_cuda_free(cu, dw[r]);
    if (dx) qj_cuda_free(cu, dx);
    if (dy) qj_cuda_free(cu, dy);
    free(ms);
    free(ev);
    free(y);
    free(x);
    free(w);
    return s;
}

typedef struct kgroup {
    const char *what;
    const qj_tensor *t[3];
    int n;
} kgroup;

qj_status qj_gpu_kernel_bench(const qj_model *m, int layer, int batch, int iters, int baselines, qj_kbench_report *out) {
    memset(out, 0, sizeof *out);
    if (layer < 0 || layer >= m->cfg.n_layers)
        return qj_fail(QJ_ERR_INVALID, "--layer %d out of range (model has %d layers)", layer, m->cfg.n_layers);
    qj_cuda *cu = NULL;
    qj_custream st = NULL;
    qj_dptr head_a = 0, head_b = 0;
    qj_cublas *cb = NULL;
    qj_status s = qj_cuda_open(0, &cu);
    if (s) return s;
    const qj_cuda_info *I = qj_cuda_get_info(cu);
    qj_gemv_set_sms(I->sm_count); /* as the GPU model does */
    snprintf(out->device, sizeof out->device, "%s", I->name);
    char arch[32];
    qj_cuda_arch_string(I->cc_major, I->cc_minor, I->cc_major * 10 + I->cc_minor > 120, arch, sizeof arch);
    {
        const char *e = getenv("QJ_PDL"); /* as the GPU model does */
        out->pdl = qj_cuda_set_pdl(cu, !(e && !strcmp(e, "0")));
    }
    if ((s = qj_cuda_stream_create(cu, &st))) goto done;
    if ((s = qj_gpu_copy_ceiling(cu, st, &out->copy_gbs))) goto done;
    if ((s = qj_cuda_alloc(cu, QJ_HEAD_BYTES, &head_a)) || (s = qj_cuda_alloc(cu, QJ_HEAD_BYTES, &head_b))) goto done;
    /* the tensor-core baseline; without it the bench runs and says why */
    if (qj_cublas_open(cu, st, &cb) == QJ_OK)
        snprintf(out->cublas, sizeof out->cublas, "%s: bf16 GEMM, fp32 compute, f32 out, CUBLAS_GEMM_DEFAULT",
                 qj_cublas_name(cb));
    else {
        snprintf(out->cublas, sizeof out->cublas, "no cuBLAS baseline: %s", qj_last_error());
        qj_clear_error();
    }
    const qj_layer *L = &m->layers[layer];
    int mma = qj_gemv_arch_has_mma(arch);
    kgroup groups[8];
    int ng = 0;
    const qj_tensor *qkv[3] = {&L->wq, &L->wk, &L->wv}, *gu[2] = {&L->w_gate, &L->w_up};
    qj_gemv_spec probe;
    if (qj_gemv_spec_parts(qkv, 3, batch, mma, &probe) == QJ_OK)
        groups[ng++] = (kgroup){"q_proj+k_proj+v_proj", {&L->wq, &L->wk, &L->wv}, 3};
    else {
        qj_clear_error();
        groups[ng++] = (kgroup){"q_proj", {&L->wq}, 1};
        groups[ng++] = (kgroup){"k_proj", {&L->wk}, 1};
        groups[ng++] = (kgroup){"v_proj", {&L->wv}, 1};
    }
    groups[ng++] = (kgroup){"o_proj", {&L->wo}, 1};
    if (qj_gemv_spec_parts(gu, 2, batch, mma, &probe) == QJ_OK)
        groups[ng++] = (kgroup){"gate_proj+up_proj", {&L->w_gate, &L->w_up}, 2};
    else {
        qj_clear_error();
        groups[ng++] = (kgroup){"gate_proj", {&L->w_gate}, 1};
        groups[ng++] = (kgroup){"up_proj", {&L->w_up}, 1};
    }
    groups[ng++] = (kgroup){"down_proj", {&L->w_down}, 1};
    groups[ng++] = (kgroup){"lm_head", {&m->lm_head}, 1};
    for (int gi = 0; gi < ng && !s; gi++) {
        const kgroup *G = &groups[gi];
        qj_kbench_row *row = &out->rows[out->n];
        qj_gemv_spec spec, dspec;
        s = qj_gemv_spec_parts(G->t, G->n, batch, mma, &spec);
        if (s) break;
        snprintf(row->what, sizeof row->what, "%s%s", gi < ng - 1 ? "layers.*." : "", G->what);
        qj_gemv_name(&spec, arch, row->name, sizeof row->name);
        row->N = spec.N;
        row->K = spec.K;
        row->bits = spec.bits;
        row->group = spec.group;
        row->batch = batch;
        row->weight_bytes = 0;
        for (int i = 0; i < G->n; i++) row->weight_bytes += qj_tensor_bytes(G->t[i]);
        double us[QJ_KTIME_N], prep[QJ_KTIME_N], dus[QJ_KTIME_N] = {0, 0}, cus[QJ_KTIME_N] = {0, 0}, unused[QJ_KTIME_N];
        s = bench_one(cu, st, arch, &spec, G->t, I->l2_bytes, iters, head_a, head_b, us, prep);
        row->dense_bytes = (uint64_t)(spec.N * spec.K) * 2;
        /* the dense bf16 kernel of the same shape, random weights */
        if (!s && baselines) {
            qj_tensor d;
            memset(&d, 0, sizeof d);
            snprintf(d.name, sizeof d.name, "dense");
            d.dtype = QJ_DTYPE_BF16;
            d.ndim = 2;
            d.shape[0] = spec.N;
            d.shape[1] = spec.K;
            size_t db = row->dense_bytes;
            uint16_t *dw = malloc(db);
            if (!dw) s = qj_fail(QJ_ERR_NOMEM, "out of memory");
            for (size_t i = 0; !s && i < db / 2; i++) dw[i] = qj_f32_to_bf16(((float)(rnd32() >> 8) / 16777216.0f - 0.5f) * 0.05f);
            d.data = dw;
            d.nbytes = db;
            const qj_tensor *dp[1] = {&d};
            if (!s) s = qj_gemv_spec_parts(dp, 1, batch, 0, &dspec);
            if (!s) s = bench_one(cu, st, arch, &dspec, dp, I->l2_bytes, iters, head_a, head_b, dus, unused);
            free(dw);
        }
        /* cuBLAS on the same shape and batch; a failure here is reported, not fatal */
        if (!s && cb && baselines &&
            bench_cublas(cu, st, cb, spec.N, spec.K, batch, I->l2_bytes, iters, head_a, head_b, cus) != QJ_OK) {
            cus[0] = cus[1] = 0;
            size_t used = strlen(out->cublas);
            snprintf(out->cublas + used, sizeof out->cublas - used, "; %s: %s", row->what, qj_last_error());
            qj_clear_error();
        }
        for (int t = 0; t < QJ_KTIME_N; t++) row->t[t] = (qj_ktimes){us[t], prep[t], dus[t], cus[t]};
        if (!s) out->n++;
    }
done:
    qj_cublas_close(cb);
    if (head_a) qj_cuda_free(cu, head_a);
    if (head_b) qj_cuda_free(cu, head_b);
    qj_cuda_stream_destroy(cu, st);
    qj_cuda_close(cu);
    return s;
}

qj_status qj_gpu_decode_bench(qj_gpu_model *g, int tokens, qj_decode_bench *out) {
    memset(out, 0, sizeof *out);
    const int B = qj_gpu_batch(g);
    int *tk = malloc((size_t)B * sizeof *tk), *ps = malloc((size_t)B * sizeof *ps);
    if (!tk || !ps) {
        free(tk);
        free(ps);
        return qj_fail(QJ_ERR_NOMEM, "out of memory");
    }
    qj_status s = QJ_OK;
    double t0 = 0;
    for (int i = 0; i < 8 + tokens && !s; i++) {
        if (i == 8) {
            s = qj_gpu_sync(g);
            t0 = qj_now();
        }
        for (int b = 0; b < B; b++) {
            tk[b] = 1 + (i + 7 * b) % 100;
            ps[b] = i < 8 ? i : 8 + (i - 8) % (QJ_DECODE_BENCH_POSITIONS - 8);
        }
        if (!s) s = qj_gpu_step_batch(g, tk, ps);
    }
    if (!s) s = qj_gpu_sync(g);
    const double el = qj_now() - t0;
    /* QJ_TRACE=FILE: eight more steps (positions 128..135 or the last ones) with their blocks' timings saved */
    const char *tr = getenv("QJ_TRACE");
    if (!s && tr && *tr) {
        s = qj_gpu_trace_reset(g);
        for (int i = 0; i < 8 && !s; i++) {
            for (int b = 0; b < B; b++) {
                tk[b] = 1 + (i + 7 * b) % 100;
                ps[b] = (QJ_DECODE_BENCH_POSITIONS > 136 ? 128 : QJ_DECODE_BENCH_POSITIONS - 8) + i;
            }
            s = qj_gpu_step_batch(g, tk, ps);
        }
        if (!s) s = qj_gpu_trace_save(g, tr);
    }
    free(tk);
    free(ps);
    if (s) return s;
    out->tokens = tokens;
    out->batch = B;
    out->tokens_per_s = (double)tokens * B / el;
    out->ms_per_token = el * 1e3 / tokens;
    out->bytes_per_token = qj_gpu_bytes_per_token(g);
    out->weight_gbs = (double)out->bytes_per_token * tokens / el / 1e9;
    return QJ_OK;
}
