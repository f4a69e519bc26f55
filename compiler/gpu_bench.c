/* gpu_bench.c — copy ceiling, per-kernel timings, decode throughput. */
#include "gpu_bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_codegen.h"
#include "nvrtc.h"
#include "qj_layout.h"
#include "qj_progress.h"

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median milliseconds of `iters` launches of f with args rotated over nrot argument sets. */
static qj_status time_launches(qj_cuda *cu, qj_custream st, qj_cufunc f, unsigned grid, unsigned block, void ***args,
                               int nrot, int iters, double *median_ms) {
    qj_cuevent *ev = calloc((size_t)(2 * iters), sizeof *ev);
    float *ms = malloc((size_t)iters * sizeof *ms);
    qj_status s = QJ_OK;
    if (!ev || !ms) { s = qj_fail(QJ_ERR_NOMEM, "out of memory"); goto done; }
    for (int i = 0; i < 2 * iters && !s; i++) s = qj_cuda_event_create(cu, &ev[i]);
    for (int i = 0; i < 5 && !s; i++) s = qj_cuda_launch(cu, f, grid, 1, 1, block, 1, 1, 0, st, args[i % nrot]);
    for (int i = 0; i < iters && !s; i++) {
        s = qj_cuda_event_record(cu, ev[2 * i], st);
        if (!s) s = qj_cuda_launch(cu, f, grid, 1, 1, block, 1, 1, 0, st, args[(i + 5) % nrot]);
        if (!s) s = qj_cuda_event_record(cu, ev[2 * i + 1], st);
    }
    if (!s) s = qj_cuda_stream_sync(cu, st);
    for (int i = 0; i < iters && !s; i++) s = qj_cuda_event_ms(cu, ev[2 * i], ev[2 * i + 1], &ms[i]);
    if (!s) {
        qsort(ms, (size_t)iters, sizeof *ms, cmp_float);
        *median_ms = ms[iters / 2];
    }
done:
    if (ev)
        for (int i = 0; i < 2 * iters; i++) qj_cuda_event_destroy(cu, ev[i]);
    free(ev);
    free(ms);
    return s;
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

/* Time one kernel spec over rotating copies of the given host arrays. */
static qj_status bench_one(qj_cuda *cu, qj_custream st, const char *arch, const qj_gemv_spec *spec, const void *w,
                           size_t wb, const void *sc, size_t sb, const void *zr, size_t zb, int l2, int iters,
                           double *us) {
    char name[160], *src = NULL;
    void *img = NULL;
    size_t len = 0;
    qj_cumodule mod = NULL;
    qj_cufunc fn = NULL;
    qj_gemv_name(spec, arch, name, sizeof name);
    qj_status s = qj_gemv_source(spec, arch, &src);
    if (!s) s = qj_kcache_compile(src, name, arch, &img, &len, NULL);
    free(src);
    if (!s) s = qj_cuda_module_load(cu, img, &mod);
    free(img);
    if (!s) s = qj_cuda_function(cu, mod, name, &fn);
    if (s) return s;
    size_t total = wb + sb + zb;
    int nrot = (int)(3 * (size_t)l2 / (total ? total : 1)) + 2;
    if (nrot > 64) nrot = 64;
    int64_t stride = QJ_NBLOCKS(spec->K) * 32;
    qj_dptr dw[64] = {0}, ds[64] = {0}, dz[64] = {0}, dx = 0, dy = 0;
    void **args[64];
    void *argv[64][7];
    int xs = (int)stride, ys = (int)spec->N;
    float *x = calloc((size_t)(stride * spec->batch), sizeof *x);
    if (!x) s = qj_fail(QJ_ERR_NOMEM, "out of memory");
    for (int64_t b = 0; b < spec->batch && !s; b++)
        for (int64_t k = 0; k < spec->K; k++) x[b * stride + k] = (float)(rnd32() >> 8) / 16777216.0f - 0.5f;
    if (!s) s = qj_cuda_alloc(cu, (size_t)(stride * spec->batch) * 4, &dx);
    if (!s) s = qj_cuda_upload(cu, dx, x, (size_t)(stride * spec->batch) * 4);
    if (!s) s = qj_cuda_alloc(cu, (size_t)(spec->N * spec->batch) * 4, &dy);
    for (int r = 0; r < nrot && !s; r++) {
        s = qj_cuda_alloc(cu, wb, &dw[r]);
        if (!s) s = r ? qj_cuda_copy(cu, dw[r], dw[0], wb, st) : qj_cuda_upload(cu, dw[0], w, wb);
        if (!s && sb) s = qj_cuda_alloc(cu, sb, &ds[r]);
        if (!s && sb) s = r ? qj_cuda_copy(cu, ds[r], ds[0], sb, st) : qj_cuda_upload(cu, ds[0], sc, sb);
        if (!s && zb) s = qj_cuda_alloc(cu, zb, &dz[r]);
        if (!s && zb) s = r ? qj_cuda_copy(cu, dz[r], dz[0], zb, st) : qj_cuda_upload(cu, dz[0], zr, zb);
        argv[r][0] = &dw[r];
        argv[r][1] = &ds[r];
        argv[r][2] = &dz[r];
        argv[r][3] = &dx;
        argv[r][4] = &dy;
        argv[r][5] = &xs;
        argv[r][6] = &ys;
        args[r] = argv[r];
    }
    unsigned grid, block;
    qj_gemv_launch_dims(spec, &grid, &block);
    double ms = 0;
    if (!s) s = qj_cuda_stream_sync(cu, st);
    if (!s) s = time_launches(cu, st, fn, grid, block, args, nrot, iters, &ms);
    *us = ms * 1e3;
    for (int r = 0; r < nrot; r++) {
        qj_cuda_free(cu, dw[r]);
        qj_cuda_free(cu, ds[r]);
        qj_cuda_free(cu, dz[r]);
    }
    qj_cuda_free(cu, dx);
    qj_cuda_free(cu, dy);
    qj_cuda_module_unload(cu, mod);
    free(x);
    return s;
}

/* Stack tensors by rows into host arrays (the fused weight). */
static qj_status stack(const qj_tensor *const *t, int n, qj_tensor *f, void **w, void **sc, void **zr) {
    *f = qj_gpu_stacked_view(t, n);
    *w = malloc(f->nbytes);
    *sc = f->scales_nbytes ? malloc(f->scales_nbytes) : NULL;
    *zr = f->zeros_nbytes ? malloc(f->zeros_nbytes) : NULL;
    if (!*w || (f->scales_nbytes && !*sc) || (f->zeros_nbytes && !*zr)) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    size_t on = 0, os = 0, oz = 0;
    for (int i = 0; i < n; i++) {
        memcpy((char *)*w + on, t[i]->data, t[i]->nbytes);
        if (*sc) memcpy((char *)*sc + os, t[i]->scales, t[i]->scales_nbytes);
        if (*zr) memcpy((char *)*zr + oz, t[i]->zeros, t[i]->zeros_nbytes);
        on += t[i]->nbytes;
        os += t[i]->scales_nbytes;
        oz += t[i]->zeros_nbytes;
    }
    f->data = *w;
    f->scales = *sc;
    f->zeros = *zr;
    return QJ_OK;
}

typedef struct kgroup {
    const char *what;
    const qj_tensor *t[3];
    int n;
} kgroup;

qj_status qj_gpu_kernel_bench(const qj_model *m, int layer, int batch, int iters, qj_kbench_report *out) {
    memset(out, 0, sizeof *out);
    if (layer < 0 || layer >= m->cfg.n_layers)
        return qj_fail(QJ_ERR_INVALID, "--layer %d out of range (model has %d layers)", layer, m->cfg.n_layers);
    qj_cuda *cu = NULL;
    qj_custream st = NULL;
    qj_status s = qj_cuda_open(0, &cu);
    if (s) return s;
    const qj_cuda_info *I = qj_cuda_get_info(cu);
    snprintf(out->device, sizeof out->device, "%s", I->name);
    char arch[32];
    qj_cuda_arch_string(I->cc_major, I->cc_minor, I->cc_major * 10 + I->cc_minor > 120, arch, sizeof arch);
    if ((s = qj_cuda_stream_create(cu, &st))) goto done;
    if ((s = qj_gpu_copy_ceiling(cu, st, &out->copy_gbs))) goto done;
    const qj_layer *L = &m->layers[layer];
    kgroup groups[8];
    int ng = 0;
    const qj_tensor *qkv[3] = {&L->wq, &L->wk, &L->wv}, *gu[2] = {&L->w_gate, &L->w_up};
    if (qj_gpu_same_format(qkv, 3)) groups[ng++] = (kgroup){"q_proj+k_proj+v_proj", {&L->wq, &L->wk, &L->wv}, 3};
    else {
        groups[ng++] = (kgroup){"q_proj", {&L->wq}, 1};
        groups[ng++] = (kgroup){"k_proj", {&L->wk}, 1};
        groups[ng++] = (kgroup){"v_proj", {&L->wv}, 1};
    }
    groups[ng++] = (kgroup){"o_proj", {&L->wo}, 1};
    if (qj_gpu_same_format(gu, 2)) groups[ng++] = (kgroup){"gate_proj+up_proj", {&L->w_gate, &L->w_up}, 2};
    else {
        groups[ng++] = (kgroup){"gate_proj", {&L->w_gate}, 1};
        groups[ng++] = (kgroup){"up_proj", {&L->w_up}, 1};
    }
    groups[ng++] = (kgroup){"down_proj", {&L->w_down}, 1};
    /* the head last */
    for (int gi = 0; gi <= ng && !s; gi++) {
        qj_tensor f;
        void *w = NULL, *sc = NULL, *zr = NULL;
        const qj_tensor *head[1] = {&m->lm_head};
        s = gi < ng ? stack(groups[gi].t, groups[gi].n, &f, &w, &sc, &zr) : stack(head, 1, &f, &w, &sc, &zr);
        qj_kbench_row *row = &out->rows[out->n];
        qj_gemv_spec spec, dspec;
        if (!s) s = qj_gemv_spec_for(&f, batch, &spec);
        if (!s) {
            snprintf(row->what, sizeof row->what, "%s%s", gi < ng ? "layers.*." : "", gi < ng ? groups[gi].what : "lm_head");
            qj_gemv_name(&spec, arch, row->name, sizeof row->name);
            row->N = spec.N;
            row->K = spec.K;
            row->bits = spec.bits;
            row->group = spec.group;
            row->batch = batch;
            row->weight_bytes = f.nbytes + f.scales_nbytes + f.zeros_nbytes;
            void *ds = NULL;
            size_t dl = 0;
            s = qj_gemv_device_scales(&f, &ds, &dl);
            if (!s) s = bench_one(cu, st, arch, &spec, w, f.nbytes, ds, dl, NULL, 0, I->l2_bytes, iters, &row->us);
            free(ds);
            row->gbs = (double)row->weight_bytes / (row->us * 1e-6) / 1e9;
        }
        free(w);
        free(sc);
        free(zr);
        /* the dense bf16 kernel of the same shape, random weights */
        if (!s) {
            qj_tensor d = f;
            d.dtype = QJ_DTYPE_BF16;
            size_t db = (size_t)(f.shape[0] * f.shape[1]) * 2;
            uint16_t *dw = malloc(db);
            if (!dw) s = qj_fail(QJ_ERR_NOMEM, "out of memory");
            for (size_t i = 0; !s && i < db / 2; i++) dw[i] = qj_f32_to_bf16(((float)(rnd32() >> 8) / 16777216.0f - 0.5f) * 0.05f);
            if (!s) s = qj_gemv_spec_for(&d, batch, &dspec);
            if (!s) s = bench_one(cu, st, arch, &dspec, dw, db, NULL, 0, NULL, 0, I->l2_bytes, iters, &row->dense_us);
            row->dense_gbs = (double)db / (row->dense_us * 1e-6) / 1e9;
            free(dw);
        }
        if (!s) out->n++;
    }
done:
    qj_cuda_stream_destroy(cu, st);
    qj_cuda_close(cu);
    return s;
}

qj_status qj_gpu_decode_bench(qj_gpu_model *g, int tokens, qj_decode_bench *out) {
    memset(out, 0, sizeof *out);
    qj_status s = QJ_OK;
    for (int i = 0; i < 8 && !s; i++) s = qj_gpu_step(g, 1 + i, i);
    if (!s) s = qj_gpu_sync(g);
    double t0 = qj_now();
    for (int i = 0; i < tokens && !s; i++) s = qj_gpu_step(g, 1 + (i % 100), 8 + i % 256);
    if (!s) s = qj_gpu_sync(g);
    if (s) return s;
    double el = qj_now() - t0;
    out->tokens = tokens;
    out->tokens_per_s = tokens / el;
    out->ms_per_token = el * 1e3 / tokens;
    out->bytes_per_token = qj_gpu_bytes_per_token(g);
    out->weight_gbs = (double)out->bytes_per_token * out->tokens_per_s / 1e9;
    return QJ_OK;
}
