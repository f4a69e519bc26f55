/* cpu_bench.c — read ceiling and per-kernel timings on the CPU (cpu_bench.h). */
#include "cpu_bench.h"

#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llvm_kernels.h"
#include "qj_progress.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The ceiling buffer's bytes, and what the rotating copies of a kernel's
 * arrays cover at least: 256 MiB, or four times the last-level cache where
 * the OS reports one that large (a 260 MB L3 would otherwise serve part of
 * a 256 MiB pass). */
static size_t ceil_bytes(void) {
    size_t b = (size_t)256 << 20;
#ifdef _SC_LEVEL3_CACHE_SIZE
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (l3 > 0 && (size_t)l3 * 4 > b) b = ((size_t)l3 * 4 + 4095) & ~(size_t)4095;
#endif
    return b;
}
#define QJ_MAX_ROT 64

#define QJ_CEIL_STREAMS 8 /* sequential streams per thread: one stream reads ~2/3 of what 4-16 do */

/* One read pass over the ceiling buffer: seconds per buffer (the sums go to
 * *sink). Each thread reads its share as QJ_CEIL_STREAMS sequential streams
 * at once, a cache line of each in turn, summed as 64-bit integers. */
static double read_pass(const uint64_t *buf, size_t bytes, uint64_t *sink) {
    const size_t n = bytes / 8;
    uint64_t s = 0;
    size_t words = 0;
    double t0 = qj_now();
    #pragma omp parallel reduction(+ : s, words)
    {
        const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        const size_t per = n / nt / (8 * QJ_CEIL_STREAMS) * (8 * QJ_CEIL_STREAMS), sub = per / QJ_CEIL_STREAMS;
        const uint64_t *b = buf + id * per;
        uint64_t a[QJ_CEIL_STREAMS][8] = {{0}};
        for (size_t i = 0; i < sub; i += 8)
            for (int q = 0; q < QJ_CEIL_STREAMS; q++)
                for (int k = 0; k < 8; k++) a[q][k] += b[(size_t)q * sub + i + k];
        for (int q = 0; q < QJ_CEIL_STREAMS; q++)
            for (int k = 0; k < 8; k++) s += a[q][k];
        words += per;
    }
    double t = qj_now() - t0;
    *sink += s;
    return words ? t * (double)n / (double)words : t;
}

static qj_status ceiling_buffer(size_t bytes, uint64_t **out) {
    uint64_t *buf = aligned_alloc(64, bytes);
    if (!buf) return qj_fail(QJ_ERR_NOMEM, "out of memory (%zu MiB for the read ceiling)", bytes >> 20);
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < bytes / 8; i++) buf[i] = i & 7; /* pages touched by the threads that read them */
    *out = buf;
    return QJ_OK;
}

/* A copy of a packed tensor's arrays (the descriptor points at them; free_copy frees them). */
static qj_status copy_tensor(const qj_tensor *t, qj_tensor *c) {
    *c = *t;
    void *d = malloc(t->nbytes), *sc = malloc(t->scales_nbytes), *z = t->zeros_nbytes ? malloc(t->zeros_nbytes) : NULL;
    c->data = d;
    c->scales = sc;
    c->zeros = z;
    if (!d || !sc || (t->zeros_nbytes && !z)) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    memcpy(d, t->data, t->nbytes);
    memcpy(sc, t->scales, t->scales_nbytes);
    if (z) memcpy(z, t->zeros, t->zeros_nbytes);
    return QJ_OK;
}

static void free_copy(qj_tensor *c) {
    free((void *)(uintptr_t)c->data);
    free((void *)(uintptr_t)c->scales);
    free((void *)(uintptr_t)c->zeros);
}

/* How many rotating copies of a kernel's weight_bytes cover the ceiling's cbytes (at most QJ_MAX_ROT). */
static int rot_count(uint64_t weight_bytes, size_t cbytes) {
    const uint64_t n = cbytes / weight_bytes + 1;
    return n > QJ_MAX_ROT ? QJ_MAX_ROT : (int)n;
}

/* One kernel under test: its JIT function, its rotating copies, and the times of its calls (and of the ceiling pass
 * before each). */
typedef struct kb_item {
    qj_cpu_gemv_fn fn;
    qj_tensor rot[QJ_MAX_ROT];
    int nrot, made;
    float *x, *y;
    double *us, *cs;
} kb_item;

static qj_status kb_setup(qj_cpu_jit *j, const qj_tensor *t, const char *what, int iters, size_t cbytes, kb_item *it,
                          qj_cpu_kbench_row *row) {
    memset(row, 0, sizeof *row);
    snprintf(row->what, sizeof row->what, "%s", what);
    qj_cpu_kspec ks;
    qj_status s = qj_cpu_kspec_of(t, &ks);
    if (s) return s;
    row->N = ks.N;
    row->K = ks.K;
    row->bits = ks.bits;
    row->group = ks.group;
    row->weight_bytes = qj_tensor_bytes(t);
    double t0 = qj_now();
    if ((s = qj_cpu_jit_gemv(j, &ks, &it->fn))) return s;
    row->jit_ms = (qj_now() - t0) * 1e3;
    const int nrot = rot_count(row->weight_bytes, cbytes);
    it->nrot = nrot;
    row->rot_bytes = (uint64_t)nrot * row->weight_bytes;
    for (; it->made < nrot && !s; it->made++) s = copy_tensor(t, &it->rot[it->made]);
    it->x = malloc((size_t)ks.K * sizeof *it->x);
    it->y = malloc((size_t)ks.N * sizeof *it->y);
    it->us = malloc((size_t)iters * sizeof *it->us);
    it->cs = malloc((size_t)iters * sizeof *it->cs);
    if (!s && (!it->x || !it->y || !it->us || !it->cs)) s = qj_fail(QJ_ERR_NOMEM, "out of memory");
    for (int64_t k = 0; !s && k < ks.K; k++) it->x[k] = (float)((k * 2654435761u) % 1000) / 1000.0f - 0.5f;
    /* one untimed call on every copy: the first read of freshly mapped pages is not what is measured (without it
     * the first kernel of a run, whose copies are the process's first large allocations, read ~2x slower) */
    for (int i = 0; i < nrot && !s; i++) s = qj_cpu_gemv_run(it->fn, &it->rot[i], it->x, it->y);
    return s;
}

/* Call i of one kernel: a ceiling pass, then the kernel on the next copy. */
static qj_status kb_call(kb_item *it, int i, const uint64_t *cbuf, size_t cbytes, uint64_t *sink) {
    it->cs[i] = read_pass(cbuf, cbytes, sink);
    double a = qj_now();
    qj_status s = qj_cpu_gemv_run(it->fn, &it->rot[(i + 2) % it->nrot], it->x, it->y);
    it->us[i] = (qj_now() - a) * 1e6;
    return s;
}

static void kb_finish(kb_item *it, int iters, size_t cbytes, uint64_t sink, qj_cpu_kbench_row *row) {
    qsort(it->us, (size_t)iters, sizeof *it->us, cmp_double);
    row->us = it->us[iters / 2];
    row->gbs = (double)row->weight_bytes / (row->us * 1e-6) / 1e9;
    qsort(it->cs, (size_t)iters, sizeof *it->cs, cmp_double);
    row->ceil_gbs = (double)cbytes / it->cs[iters / 2] / 1e9 + (sink == 1 ? 1e-30 : 0); /* sink keeps the sums */
}

static void kb_free(kb_item *it) {
    for (int i = 0; i < it->made; i++) free_copy(&it->rot[i]);
    free(it->x);
    free(it->y);
    free(it->us);
    free(it->cs);
    memset(it, 0, sizeof *it);
}

/* The rotating copies of every kernel at once fit when they take at most half the machine's memory. */
static int all_at_once_fits(uint64_t bytes) {
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    return pages > 0 && psize > 0 && bytes <= (uint64_t)pages * (uint64_t)psize / 2;
}

/* The kernels' calls in rounds: round i calls each kernel once (a ceiling pass before each call), so every kernel and
 * its ceiling sample the same stretch of time; a VM whose memory bandwidth drifts for a second then moves every row
 * alike instead of one row's whole sample. Where the copies of all kernels together would not fit, one kernel after
 * another (each still between its own ceiling passes). */
static qj_status bench_rows(qj_cpu_jit *j, const qj_tensor **ts, const char (*whats)[64], int n, int iters,
                            const uint64_t *cbuf, size_t cbytes, qj_cpu_kbench_report *out) {
    kb_item *items = calloc((size_t)n, sizeof *items);
    if (!items) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    uint64_t total = 0, sink = 0;
    for (int r = 0; r < n; r++) total += (uint64_t)rot_count(qj_tensor_bytes(ts[r]), cbytes) * qj_tensor_bytes(ts[r]);
    /* rows [g, g + per) are one group, measured in rounds: all of them, or one at a time */
    const int per = all_at_once_fits(total) ? n : 1;
    qj_status s = QJ_OK;
    for (int g = 0; g < n && !s; g += per) {
        const int e = g + per;
        for (int r = g; r < e && !s; r++) s = kb_setup(j, ts[r], whats[r], iters, cbytes, &items[r], &out->rows[r]);
        for (int i = 0; i < iters && !s; i++)
            for (int r = g; r < e && !s; r++) s = kb_call(&items[r], i, cbuf, cbytes, &sink);
        for (int r = g; r < e && !s; r++) kb_finish(&items[r], iters, cbytes, sink, &out->rows[r]);
        for (int r = g; r < e; r++) kb_free(&items[r]); /* a group's every item, set up or not (zeroed ones free nothing) */
    }
    free(items);
    if (!s) out->n = n;
    out->interleaved = per == n;
    return s;
}

qj_status qj_cpu_kernel_bench(const qj_model *m, int layer, int iters, qj_cpu_kbench_report *out) {
    memset(out, 0, sizeof *out);
    if (layer < 0 || layer >= m->cfg.n_layers)
        return qj_fail(QJ_ERR_INVALID, "--layer %d out of range (model has %d layers)", layer, m->cfg.n_layers);
    qj_cpu_jit *j = NULL;
    qj_status s = qj_cpu_jit_create(&j);
    if (s) return s;
    snprintf(out->target, sizeof out->target, "%s", qj_cpu_jit_target(j));
    out->threads = omp_get_max_threads();
    out->ceil_bytes = ceil_bytes();
    uint64_t *cbuf = NULL;
    s = ceiling_buffer(out->ceil_bytes, &cbuf);
    static const char *names[QJ_LIN_COUNT] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    const qj_tensor *ts[QJ_LIN_COUNT + 1];
    char whats[QJ_LIN_COUNT + 1][64];
    int n = 0;
    for (int l = 0; l < QJ_LIN_COUNT; l++) {
        const qj_tensor *t = qj_layer_linear((qj_layer *)&m->layers[layer], (qj_linear)l);
        if (t->dtype != QJ_DTYPE_Q) continue;
        ts[n] = t;
        snprintf(whats[n++], sizeof whats[0], "layers.*.%s", names[l]);
    }
    if (m->lm_head.dtype == QJ_DTYPE_Q) {
        ts[n] = &m->lm_head;
        snprintf(whats[n++], sizeof whats[0], "lm_head");
    }
    if (!s && n) s = bench_rows(j, ts, (const char(*)[64])whats, n, iters, cbuf, out->ceil_bytes, out);
    free(cbuf);
    if (out->n) {
        double c[16];
        for (int i = 0; i < out->n; i++) c[i] = out->rows[i].ceil_gbs;
        qsort(c, (size_t)out->n, sizeof c[0], cmp_double);
        out->read_gbs = c[out->n / 2];
    }
    qj_cpu_jit_free(j);
    return s;
}
