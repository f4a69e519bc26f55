/* gpu_model.c — builds and runs a model on the GPU (see gpu_model.h). */
#include "gpu_model.h"
#include "qj_io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_codegen.h"
#include "gpu_linear.h"
#include "nvrtc.h"
#include "qj_layout.h"
#include "qj_progress.h"


typedef qj_glinear dev_linear;

typedef struct dev_layer {
    qj_dptr attn_norm, ffn_norm, bq, bk, bv;
    dev_linear lin[QJ_LIN_COUNT];
    /* fused launches: rows of q, k, v (or gate, up) in one launch whose
     * output is the contiguous q|k|v (gate|up) buffer; on the tensor-core
     * kernels parts of different formats fuse as segments */
    int fused_qkv, fused_gu;
    dev_linear qkv, gu;
} dev_layer;

struct qj_gpu_model {
    qj_cuda *cu;
    qj_custream stream;
    qj_config cfg;
    int max_seq;
    int batch; /* sequences per step: every buffer has this many rows, strides in L */
    qj_ops_strides L;
    int use_graph;
    /* kernels */
    qj_cumodule *modules;
    int n_modules;
    qj_cufunc f_embed, f_rmsnorm, f_attention, f_swiglu;
    int att_split; /* qj_attention's blocks per head (QJ_ATT_SPLIT of the ops module) */
    /* weights */
    qj_dptr emb_w, emb_s, emb_z, final_norm;
    dev_layer *layers;
    dev_linear head;
    /* activations (fp32); inputs of matmuls are zero-padded to whole 32-value blocks */
    qj_dptr x, xb, xb2, q, k, v, att, gate, up, hb, logits; /* (dim) (pad) (dim) (qd) (kvd) (kvd) (pad qd) (hid) (hid) (pad hid) (vocab) */
    qj_dptr x_alt, x_cur; /* (dim): the residual stream alternates between x and x_alt (x_cur: the one now holding it) */
                                                            /* q, k, v are one (qd + 2 kvd) buffer; gate, up one (2 hid) */
    qj_dptr kcache, vcache;     /* (n_layers, max_seq, kv_dim) */
    qj_dptr att_part, att_count; /* attention's per-share partials (batch, n_heads, att_split, head_dim + 2), counts (batch, n_heads) */
    qj_dptr rope_cos, rope_sin; /* (max_seq, head_dim/2) */
    qj_dptr d_token, d_pos;     /* (batch) int each: read by the kernels, so a graph replays every step */
    int xb_stride, att_stride, hb_stride;
    float *h_logits;
    qj_cugraph graph;
    qj_gact act;        /* prepared activations of tensor-core launches */
    qj_gact act2;       /* down_proj's, where gate|up's SwiGLU tail writes them (gate|up still reads act) */
    qj_dptr prepped[4]; /* per prep kind: the x the prepared activations hold (during one forward) */
    int fused_prep;     /* the prep kind the ops kernels write for the matmuls after them */
    int steps;
    unsigned skip; /* QJ_STEP_SKIP: launch kinds left out of each step (timing only; outputs are then wrong) */
    uint64_t bytes_per_token;
    /* every device allocation, for free */
    qj_dptr *allocs;
    int n_allocs, cap_allocs;
    int *tok_host, *pos_host; /* (batch) */
    /* QJ_TRACE (a diagnostic): the block-timing buffer every module writes, and the modules' names */
    qj_dptr trace;
    char (*trace_names)[160];
};

/* QJ_STEP_SKIP (a comma list of the names below): launch kinds the step
 * leaves out, so a decode benchmark's difference with and without is what
 * they cost inside the graph. For timing only: the outputs are then wrong. */
enum { SK_EMBED = 1, SK_NORM = 2, SK_ATT = 4, SK_SWIGLU = 8, SK_QKV = 16, SK_O = 32, SK_GU = 64, SK_DOWN = 128,
       SK_HEAD = 256 };
static unsigned step_skip_mask(const char *e) {
    static const char *names[] = {"embed", "norm", "att", "swiglu", "qkv", "o", "gu", "down", "head"};
    unsigned m = 0;
    while (e && *e) {
        size_t n = strcspn(e, ",");
        for (unsigned i = 0; i < sizeof names / sizeof *names; i++)
            if (strlen(names[i]) == n && !strncmp(e, names[i], n)) m |= 1u << i;
        e += n + (e[n] == ',');
    }
    return m;
}

qj_gpu_params qj_gpu_default_params(void) {
    qj_gpu_params p = {0, 0, 1, 0, 1, 1};
    return p;
}

static qj_status dalloc(qj_gpu_model *g, size_t bytes, qj_dptr *out) {
    if (g->n_allocs == g->cap_allocs) {
        int cap = g->cap_allocs ? 2 * g->cap_allocs : 256;
        qj_dptr *na = realloc(g->allocs, (size_t)cap * sizeof *na);
        if (!na) return qj_fail(QJ_ERR_NOMEM, "out of memory");
        g->allocs = na;
        g->cap_allocs = cap;
    }
    qj_status s = qj_cuda_alloc(g->cu, bytes, out);
    if (s) return s;
    g->allocs[g->n_allocs++] = *out;
    return qj_cuda_memset8(g->cu, *out, 0, bytes);
}

static qj_status dupload(qj_gpu_model *g, const void *data, size_t bytes, qj_dptr *out) {
    *out = 0;
    if (!data || !bytes) return QJ_OK;
    qj_status s = dalloc(g, bytes, out);
    return s ? s : qj_cuda_upload(g->cu, *out, data, bytes);
}


/* ---- kernel planning: fusion and specs, no device work ---- */

static qj_status spec_of(const qj_tensor *const *parts, int n, const char *arch, int batch, dev_linear *d) {
    qj_status s = qj_gemv_spec_parts(parts, n, batch, qj_gemv_arch_has_mma(arch), &d->spec);
    if (!s) qj_gemv_name(&d->spec, arch, d->name, sizeof d->name);
    return s;
}

/* Whether parts share one launch: the spec exists (same K; same format unless
 * the tensor-core kernel takes them as segments). */
static int fusable(const qj_tensor *const *parts, int n, const char *arch, int batch, dev_linear *d) {
    if (spec_of(parts, n, arch, batch, d) == QJ_OK) return 1;
    memset(d, 0, sizeof *d);
    qj_clear_error();
    return 0;
}

/* Whether any of n linears reads its input through the integer-MMA prep. */
static int any_im(dev_linear *const *d, int n) {
    for (int i = 0; i < n; i++)
        if (qj_gemv_prep_kind(&d[i]->spec) == QJ_PREP_IM) return 1;
    return 0;
}

/* The linears reading layer i's attention-norm output (q|k|v), or the head's input for i = n_layers. */
static int qkv_readers(dev_layer *layers, int n_layers, int i, dev_linear *head, dev_linear **out) {
    if (i == n_layers) return out[0] = head, 1;
    dev_layer *D = &layers[i];
    if (D->fused_qkv) return out[0] = &D->qkv, 1;
    out[0] = &D->lin[QJ_LIN_Q], out[1] = &D->lin[QJ_LIN_K], out[2] = &D->lin[QJ_LIN_V];
    return 3;
}

static void set_tail(dev_linear *d, const char *arch, int kind, int prep, int wdt, float eps) {
    d->spec.tail = kind;
    d->spec.red = 0; /* a tail runs in the K split's last block, which the splits adding into y (spec.red) have not */
    d->spec.tail_prep = prep;
    d->spec.tail_wdt = kind == QJ_TAIL_NORM ? wdt : 0;
    d->spec.tail_eps = kind == QJ_TAIL_NORM ? eps : 0.0f;
    qj_gemv_name(&d->spec, arch, d->name, sizeof d->name);
}

/* Tails (qj_gemv_spec.tail; opt-in with QJ_FUSE_TAIL, off by default: measured slower on the H100 than the
 * separate launches they replace, docs/KERNELS.md "Tails"): where the matmul before an RMSNorm (o_proj,
 * down_proj) or before SwiGLU (a fused gate|up) can take it on, that op is done by the matmul's blocks and its
 * own launch goes (templates/qj_imv.cu qj_tail). tests/test_gpu_tail.c and test_gpu_forward.c check them. */
static void plan_tails(const qj_model *m, const char *arch, dev_layer *layers, dev_linear *head) {
    const char *e = getenv("QJ_FUSE_TAIL");
    if (!e || !*e || !strcmp(e, "0")) return;
    /* "1": every tail; else a comma-separated list of o, gu, down (debugging: one kind of tail at a time) */
    int want[3] = {1, 1, 1};
    if (strcmp(e, "1") != 0) {
        static const char *const kinds[3] = {"o", "gu", "down"};
        want[0] = want[1] = want[2] = 0;
        for (const char *p = e; *p;) {
            const size_t n = strcspn(p, ",");
            int k = 0;
            while (k < 3 && !(strlen(kinds[k]) == n && !strncmp(p, kinds[k], n))) k++;
            if (k < 3) want[k] = 1;
            else fprintf(stderr, "qjit: QJ_FUSE_TAIL: '%.*s' ignored (expected 0, 1 or a list of o, gu, down)\n", (int)n, p);
            p += n + (p[n] == ',');
        }
    }
    const int noprep = getenv("QJ_TAIL_NOPREP") && !strcmp(getenv("QJ_TAIL_NOPREP"), "1");
    const int nl = m->cfg.n_layers;
    for (int i = 0; i < nl; i++) {
        dev_layer *D = &layers[i];
        dev_linear *gu[2] = {&D->gu}, *dn[1] = {&D->lin[QJ_LIN_DOWN]}, *next[3];
        int ngu = 1;
        if (!D->fused_gu) gu[0] = &D->lin[QJ_LIN_GATE], gu[1] = &D->lin[QJ_LIN_UP], ngu = 2;
        const int nn = qkv_readers(layers, nl, i + 1, head, next);
        const qj_tensor *w2 = i + 1 < nl ? &m->layers[i + 1].attn_norm : &m->final_norm;
        dev_linear *o = &D->lin[QJ_LIN_O], *down = &D->lin[QJ_LIN_DOWN];
        if (want[0] && qj_gemv_tail_fits(&o->spec))
            set_tail(o, arch, QJ_TAIL_NORM, !noprep && any_im(gu, ngu), qj_ops_dtype_code(m->layers[i].ffn_norm.dtype),
                     m->cfg.rms_eps);
        if (want[1] && D->fused_gu && qj_gemv_tail_fits(&D->gu.spec))
            set_tail(&D->gu, arch, QJ_TAIL_SWIGLU, !noprep && any_im(dn, 1), 0, 0.0f);
        if (want[2] && qj_gemv_tail_fits(&down->spec))
            set_tail(down, arch, QJ_TAIL_NORM, !noprep && any_im(next, nn), qj_ops_dtype_code(w2->dtype), m->cfg.rms_eps);
    }
}

/* Decide which groups fuse and every linear's kernel spec and name. */
static qj_status plan_kernels(const qj_model *m, const char *arch, int fuse, int batch, dev_layer *layers,
                              dev_linear *head) {
    qj_status s;
    for (int i = 0; i < m->cfg.n_layers; i++) {
        const qj_layer *L = &m->layers[i];
        dev_layer *D = &layers[i];
        const qj_tensor *qkv[3] = {&L->wq, &L->wk, &L->wv}, *gu[2] = {&L->w_gate, &L->w_up};
        D->fused_qkv = fuse && fusable(qkv, 3, arch, batch, &D->qkv);
        D->fused_gu = fuse && fusable(gu, 2, arch, batch, &D->gu);
        for (int l = 0; l < QJ_LIN_COUNT; l++) {
            if ((D->fused_qkv && l <= QJ_LIN_V) || (D->fused_gu && (l == QJ_LIN_GATE || l == QJ_LIN_UP))) continue;
            const qj_tensor *t[1] = {qj_layer_linear((qj_layer *)L, (qj_linear)l)};
            if ((s = spec_of(t, 1, arch, batch, &D->lin[l]))) return s;
        }
    }
    const qj_tensor *h[1] = {&m->lm_head};
    if ((s = spec_of(h, 1, arch, batch, head))) return s;
    plan_tails(m, arch, layers, head);
    return QJ_OK;
}

/* ---- kernel building ---- */

typedef struct job {
    char *source;
    char name[160];
    void *img;
    size_t len;
    int hit, from_package;
    qj_status st;
    char err[1024];
} job;


/* Every distinct kernel of a planned model: jobs[0..n-1] are GEMVs, the last the ops module. */
static qj_status collect_jobs(const qj_model *m, int max_seq, int batch, const char *arch, dev_layer *layers, dev_linear *head,
                              job **out, int *n_out, int **owner_out, dev_linear ***all_out, int *nlin_out,
                              int *prep_out) {
    const qj_config *c = &m->cfg;
    int cap = c->n_layers * (QJ_LIN_COUNT + 2) + 1;
    dev_linear **all = malloc((size_t)cap * sizeof *all);
    job *jobs = calloc((size_t)cap + 1, sizeof *jobs);
    int *owner = malloc((size_t)cap * sizeof *owner);
    int nj = 0, nlin = 0;
    qj_status s = QJ_OK;
    if (!all || !jobs || !owner) { s = qj_fail(QJ_ERR_NOMEM, "out of memory"); goto fail; }
    for (int i = 0; i < c->n_layers; i++) {
        dev_layer *D = &layers[i];
        for (int l = 0; l < QJ_LIN_COUNT; l++)
            if (D->lin[l].name[0]) all[nlin++] = &D->lin[l];
        if (D->fused_qkv) all[nlin++] = &D->qkv;
        if (D->fused_gu) all[nlin++] = &D->gu;
    }
    all[nlin++] = head;
    for (int i = 0; i < nlin; i++) {
        int found = -1;
        for (int j = 0; j < nj && found < 0; j++)
            if (!strcmp(jobs[j].name, all[i]->name)) found = j;
        if (found < 0) {
            found = nj++;
            snprintf(jobs[found].name, sizeof jobs[found].name, "%s", all[i]->name);
            if ((s = qj_gemv_source(&all[i]->spec, arch, &jobs[found].source))) goto fail;
        }
        owner[i] = found;
    }
    /* the ops kernels write the integer-MMA prep when any matmul reads it, else the integer-dot one */
    int prep = QJ_PREP_DQ;
    for (int i = 0; i < nlin; i++)
        if (qj_gemv_prep_kind(&all[i]->spec) == QJ_PREP_IM) prep = QJ_PREP_IM;
    if ((s = qj_ops_source(m, max_seq, prep, batch, &jobs[nj].source))) goto fail;
    /* 3: batch rows by blockIdx.y, RoPE in the attention, multi-block RMSNorm */
    /* (a module without attention clusters is named apart; with them, as before, so older packages keep working) */
    snprintf(jobs[nj].name, sizeof jobs[nj].name, "qj_ops3_s%d_p%d_a%d%s", max_seq, prep, qj_ops_att_split(&m->cfg, max_seq, batch),
             qj_ops_att_cluster(batch) ? "" : "_c0");
    *prep_out = prep;
    *out = jobs;
    *n_out = nj + 1;
    *owner_out = owner;
    *all_out = all;
    *nlin_out = nlin;
    return QJ_OK;
fail:
    if (jobs)
        for (int j = 0; j <= nj; j++) free(jobs[j].source);
    free(jobs);
    free(all);
    free(owner);
    return s;
}

/* Images for the jobs: carried by the model (a package) when name and arch
 * match, else generated and compiled through the cache, in parallel. */
static qj_status compile_jobs(const qj_model *m, const char *arch, job *jobs, int n, qj_gpu_build_stats *st) {
    double t0 = qj_now();
    #pragma omp parallel for schedule(dynamic)
    for (int j = 0; j < n; j++) {
        const qj_kernel_blob *b = qj_model_find_kernel(m, jobs[j].name, arch);
        if (b) {
            jobs[j].img = malloc(b->len);
            if (!jobs[j].img) {
                jobs[j].st = QJ_ERR_NOMEM;
                snprintf(jobs[j].err, sizeof jobs[j].err, "out of memory");
                continue;
            }
            memcpy(jobs[j].img, b->image, b->len);
            jobs[j].len = b->len;
            jobs[j].from_package = 1;
            continue;
        }
        jobs[j].st = qj_kcache_compile(jobs[j].source, jobs[j].name, arch, &jobs[j].img, &jobs[j].len, &jobs[j].hit);
        if (jobs[j].st) snprintf(jobs[j].err, sizeof jobs[j].err, "%s", qj_last_error());
    }
    for (int j = 0; j < n; j++)
        if (jobs[j].st) return qj_fail(jobs[j].st, "%s", jobs[j].err);
    st->compile_seconds = qj_now() - t0;
    st->kernels = n;
    for (int j = 0; j < n; j++) {
        st->cache_hits += jobs[j].hit;
        st->from_package += jobs[j].from_package;
    }
    return QJ_OK;
}

static void free_jobs(job *jobs, int n) {
    if (!jobs) return;
    for (int j = 0; j < n; j++) {
        free(jobs[j].source);
        free(jobs[j].img);
    }
    free(jobs);
}

/* QJ_TRACE=FILE: kernels compiled with templates/qj_pdl.cuh's timing hooks; every module's qj_trace_buf points at
 * one buffer of QJ_TRACE_CAP events, module j tagged j. */
#define QJ_TRACE_CAP (1ull << 20)
static qj_status trace_setup(qj_gpu_model *g, const job *jobs, int nj) {
    const char *e = getenv("QJ_TRACE");
    if (!e || !*e) return QJ_OK;
    qj_status s = dalloc(g, (size_t)(4 + 4 * QJ_TRACE_CAP) * 8, &g->trace);
    if (!s) s = qj_cuda_memset8(g->cu, g->trace, 0, 32);
    if (s) return s;
    if (!(g->trace_names = calloc((size_t)nj, sizeof *g->trace_names))) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    const unsigned long long cap = QJ_TRACE_CAP;
    for (int j = 0; j < nj && !s; j++) {
        snprintf(g->trace_names[j], sizeof g->trace_names[j], "%s", jobs[j].name);
        qj_dptr p;
        size_t b;
        const unsigned tag = (unsigned)j;
        if (!qj_cuda_module_global(g->cu, g->modules[j], "qj_trace_buf", &p, &b) || b != 8)
            return qj_fail(QJ_ERR_DEVICE, "QJ_TRACE: kernel module %s has no trace hooks (a package's kernels are used "
                           "as they are: trace a model compiled here)", jobs[j].name);
        s = qj_cuda_upload(g->cu, p, &g->trace, 8);
        if (!s && qj_cuda_module_global(g->cu, g->modules[j], "qj_trace_cap", &p, &b) && b == 8) s = qj_cuda_upload(g->cu, p, &cap, 8);
        if (!s && qj_cuda_module_global(g->cu, g->modules[j], "qj_trace_tag", &p, &b) && b == 4) s = qj_cuda_upload(g->cu, p, &tag, 4);
    }
    return s;
}

qj_status qj_gpu_trace_reset(qj_gpu_model *g) {
    if (!g->trace) return QJ_OK;
    qj_status s = qj_gpu_sync(g);
    return s ? s : qj_cuda_memset8(g->cu, g->trace, 0, 8);
}

qj_status qj_gpu_trace_save(qj_gpu_model *g, const char *path) {
    if (!g->trace) return QJ_OK;
    qj_status s = qj_gpu_sync(g);
    unsigned long long n = 0;
    if (!s) s = qj_cuda_download(g->cu, &n, g->trace, 8);
    if (s) return s;
    if (n > QJ_TRACE_CAP) n = QJ_TRACE_CAP;
    unsigned long long *ev = malloc((size_t)(4 * n + 1) * 8);
    size_t cap = (size_t)n * 96 + (size_t)g->n_modules * 200 + 512, len = 0;
    char *txt = malloc(cap);
    if (!ev || !txt) {
        free(ev);
        free(txt);
        return qj_fail(QJ_ERR_NOMEM, "out of memory");
    }
    if (n) s = qj_cuda_download(g->cu, ev, g->trace + 32, (size_t)(4 * n) * 8);
    len += (size_t)snprintf(txt + len, cap - len, "# qjit trace: %llu block events; columns: ns before wait, ns after it, "
                            "module, blocks in the grid, threads a block, multiprocessor, kind (1 embedding, 2 RMSNorm, "
                            "3 attention, 4 SwiGLU, 0 a matmul)\n", n);
    for (int j = 0; j < g->n_modules; j++) len += (size_t)snprintf(txt + len, cap - len, "# module %d %s\n", j, g->trace_names[j]);
    for (unsigned long long i = 0; i < n && !s; i++) {
        const unsigned long long *e = ev + 4 * i;
        len += (size_t)snprintf(txt + len, cap - len, "%llu %llu %llu %llu %llu %llu %llu\n", e[0], e[1], e[2] >> 32,
                                e[2] & 0xffffffffull, (e[3] >> 32) & 0xffffull, e[3] & 0xffffffffull, e[3] >> 48);
    }
    if (!s) s = qj_write_file_atomic(path, txt, len);
    free(ev);
    free(txt);
    return s;
}

static qj_status build_kernels(qj_gpu_model *g, const qj_model *m, const char *arch, qj_gpu_build_stats *st) {
    job *jobs = NULL;
    int nj = 0, nlin = 0, *owner = NULL;
    dev_linear **all = NULL;
    qj_status s = collect_jobs(m, g->max_seq, g->batch, arch, g->layers, &g->head, &jobs, &nj, &owner, &all, &nlin, &g->fused_prep);
    if (s) return s;
    if ((s = compile_jobs(m, arch, jobs, nj, st))) goto done;
    g->modules = calloc((size_t)nj, sizeof *g->modules);
    if (!g->modules) { s = qj_fail(QJ_ERR_NOMEM, "out of memory"); goto done; }
    for (int j = 0; j < nj; j++) {
        if ((s = qj_cuda_module_load(g->cu, jobs[j].img, &g->modules[j]))) goto done;
        g->n_modules++;
    }
    for (int i = 0, seen = 0; i < nlin; i++) {
        dev_linear *d = all[i];
        if ((s = qj_glinear_bind(g->cu, g->modules[owner[i]], d))) goto done;
        if (owner[i] == seen) st->red += d->spec.red, seen++; /* (a kernel's first linear: collect_jobs numbers them so) */
    }
    if ((s = trace_setup(g, jobs, nj))) goto done;
    qj_cumodule om = g->modules[nj - 1];
    if ((s = qj_cuda_function(g->cu, om, "qj_embed", &g->f_embed)) || (s = qj_cuda_function(g->cu, om, "qj_rmsnorm", &g->f_rmsnorm)) ||
        (s = qj_cuda_function(g->cu, om, "qj_attention", &g->f_attention)) ||
        (s = qj_cuda_function(g->cu, om, "qj_swiglu", &g->f_swiglu)))
        goto done;
    /* attention's scores are dynamic shared memory; with its static part it
     * passes the default 48 KB well before max_seq * 4 does: opt in early */
    int smem = (g->max_seq + g->att_split - 1) / g->att_split * 4;
    if (smem > 32 * 1024 && (s = qj_cuda_func_smem(g->cu, g->f_attention, smem))) goto done;
done:
    free_jobs(jobs, nj);
    free(all);
    free(owner);
    return s;
}

qj_status qj_gpu_compile_kernels(const qj_model *m, const char *arch, int max_seq, int fuse, qj_kernel_blob **out,
                                 int *n, qj_gpu_build_stats *st) {
    *out = NULL;
    *n = 0;
    memset(st, 0, sizeof *st);
    snprintf(st->arch, sizeof st->arch, "%s", arch);
    if (max_seq <= 0 || max_seq > m->cfg.seq_len) max_seq = m->cfg.seq_len;
    dev_layer *layers = calloc((size_t)m->cfg.n_layers, sizeof *layers);
    dev_linear head;
    memset(&head, 0, sizeof head);
    job *jobs = NULL;
    int nj = 0, nlin = 0, *owner = NULL, prep = 0;
    dev_linear **all = NULL;
    qj_status s = layers ? plan_kernels(m, arch, fuse, 1, layers, &head) : qj_fail(QJ_ERR_NOMEM, "out of memory");
    if (!s) s = collect_jobs(m, max_seq, 1, arch, layers, &head, &jobs, &nj, &owner, &all, &nlin, &prep);
    if (!s) s = compile_jobs(m, arch, jobs, nj, st);
    qj_kernel_blob *kb = s ? NULL : calloc((size_t)nj, sizeof *kb);
    if (!s && !kb) s = qj_fail(QJ_ERR_NOMEM, "out of memory");
    for (int j = 0; !s && j < nj; j++) {
        snprintf(kb[j].name, sizeof kb[j].name, "%s", jobs[j].name);
        snprintf(kb[j].arch, sizeof kb[j].arch, "%s", arch);
        kb[j].image = jobs[j].img; /* ownership moves to the blob list */
        kb[j].len = jobs[j].len;
        jobs[j].img = NULL;
    }
    if (!s) {
        *out = kb;
        *n = nj;
    }
    free_jobs(jobs, nj);
    free(all);
    free(owner);
    free(layers);
    return s;
}

/* Upload one linear (parts stacked by rows for a fused launch). */
static qj_status upload_linear(qj_gpu_model *g, const qj_tensor *const *t, int n, dev_linear *d) {
    qj_status s = qj_glinear_upload(g->cu, t, d);
    if (!s) s = qj_gact_reserve(g->cu, &g->act, &d->spec);
    for (int i = 0; i < n; i++) g->bytes_per_token += qj_tensor_bytes(t[i]);
    return s;
}

qj_status qj_gpu_model_create(const qj_model *m, const qj_gpu_params *p, qj_gpu_model **out, qj_gpu_build_stats *st) {
    *out = NULL;
    qj_gpu_params defaults = qj_gpu_default_params();
    if (!p) p = &defaults;
    qj_gpu_build_stats local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    const qj_config *c = &m->cfg;
    qj_gpu_model *g = calloc(1, sizeof *g);
    if (!g) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    g->cfg = *c;
    g->max_seq = p->max_seq > 0 && p->max_seq < c->seq_len ? p->max_seq : c->seq_len;
    g->use_graph = p->use_graph;
    g->batch = p->batch;
    g->att_split = qj_ops_att_split(c, g->max_seq, g->batch);
    qj_status s;
    if (g->batch < 1 || g->batch > QJ_MMA_MAX_BATCH) {
        s = qj_fail(QJ_ERR_INVALID, "GPU batch %d out of range (1..%d)", g->batch, QJ_MMA_MAX_BATCH);
        goto fail;
    }
    if ((s = qj_cuda_open(p->ordinal, &g->cu))) goto fail;
    {
        /* kernels overlap their start with the previous one's end (sm_90+); QJ_PDL=0 turns it off */
        const char *e = getenv("QJ_PDL");
        st->pdl = qj_cuda_set_pdl(g->cu, !(e && !strcmp(e, "0")));
        g->skip = step_skip_mask(getenv("QJ_STEP_SKIP"));
        if (g->skip)
            fprintf(stderr, "qjit: QJ_STEP_SKIP=%s leaves launches out of every step: timing only, outputs are wrong\n",
                    getenv("QJ_STEP_SKIP"));
    }
    const qj_cuda_info *I = qj_cuda_get_info(g->cu);
    qj_gemv_set_sms(I->sm_count); /* (wide layers above batch 4 deal their m-tiles over whole waves) */
    char arch[32];
    int maj = 0, min = 0;
    qj_nvrtc_available(&maj, &min);
    /* NVRTC knows sm_XY up to its own version; newer chips get PTX the driver compiles */
    int ptx = I->cc_major * 10 + I->cc_minor > 120;
    qj_cuda_arch_string(I->cc_major, I->cc_minor, ptx, arch, sizeof arch);
    snprintf(st->device, sizeof st->device, "%s", I->name);
    snprintf(st->arch, sizeof st->arch, "%s", arch);
    if ((s = qj_cuda_stream_create(g->cu, &g->stream))) goto fail;
    g->layers = calloc((size_t)c->n_layers, sizeof *g->layers);
    g->h_logits = malloc((size_t)g->batch * (size_t)c->vocab_size * sizeof(float));
    g->tok_host = calloc((size_t)g->batch, sizeof(int));
    g->pos_host = calloc((size_t)g->batch, sizeof(int));
    if (!g->layers || !g->h_logits || !g->tok_host || !g->pos_host) { s = qj_fail(QJ_ERR_NOMEM, "out of memory"); goto fail; }

    if ((s = plan_kernels(m, arch, p->fuse, g->batch, g->layers, &g->head))) goto fail;
    double t0 = qj_now();
    const qj_tensor *e = &m->tok_embedding;
    if ((s = dupload(g, e->data, e->nbytes, &g->emb_w)) || (s = dupload(g, e->scales, e->scales_nbytes, &g->emb_s)) ||
        (s = dupload(g, e->zeros, e->zeros_nbytes, &g->emb_z)) ||
        (s = dupload(g, m->final_norm.data, m->final_norm.nbytes, &g->final_norm)))
        goto fail;
    g->bytes_per_token += qj_tensor_bytes(e) / (size_t)c->vocab_size;
    for (int i = 0; i < c->n_layers; i++) {
        const qj_layer *L = &m->layers[i];
        dev_layer *D = &g->layers[i];
        if ((s = dupload(g, L->attn_norm.data, L->attn_norm.nbytes, &D->attn_norm)) ||
            (s = dupload(g, L->ffn_norm.data, L->ffn_norm.nbytes, &D->ffn_norm)))
            goto fail;
        if (c->qkv_bias && ((s = dupload(g, L->bq.data, L->bq.nbytes, &D->bq)) || (s = dupload(g, L->bk.data, L->bk.nbytes, &D->bk)) ||
                            (s = dupload(g, L->bv.data, L->bv.nbytes, &D->bv))))
            goto fail;
        const qj_tensor *qkv[3] = {&L->wq, &L->wk, &L->wv}, *gu[2] = {&L->w_gate, &L->w_up};
        if (D->fused_qkv && (s = upload_linear(g, qkv, 3, &D->qkv))) goto fail;
        if (D->fused_gu && (s = upload_linear(g, gu, 2, &D->gu))) goto fail;
        for (int l = 0; l < QJ_LIN_COUNT; l++) {
            if ((D->fused_qkv && l <= QJ_LIN_V) || (D->fused_gu && (l == QJ_LIN_GATE || l == QJ_LIN_UP))) continue;
            const qj_tensor *t[1] = {qj_layer_linear((qj_layer *)L, (qj_linear)l)};
            if ((s = upload_linear(g, t, 1, &D->lin[l]))) goto fail;
        }
        if (D->fused_gu && D->gu.spec.tail_prep && (s = qj_gact_reserve(g->cu, &g->act2, &D->lin[QJ_LIN_DOWN].spec))) goto fail;
    }
    const qj_tensor *hd[1] = {&m->lm_head};
    if (c->tied_embeddings && m->lm_head.data == m->tok_embedding.data && e->dtype != QJ_DTYPE_Q) {
        g->head.w[0] = g->emb_w; /* the tied head reads the embedding's copy */
        g->head.borrowed_w = 1;
        g->bytes_per_token += qj_tensor_bytes(&m->lm_head);
    } else if ((s = upload_linear(g, hd, 1, &g->head))) goto fail;
    st->upload_seconds = qj_now() - t0;

    /* activations */
    /* activations: `batch` rows each, at the strides the ops module indexes by */
    int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim, hd2 = c->head_dim / 2;
    qj_ops_layout(c, g->max_seq, &g->L);
    g->xb_stride = g->L.xb;
    g->att_stride = g->L.att;
    g->hb_stride = g->L.hb;
    size_t ms = (size_t)g->max_seq, B = (size_t)g->batch;
    if ((s = dalloc(g, B * (size_t)g->L.x * 4, &g->x)) || (s = dalloc(g, B * (size_t)g->L.x * 4, &g->x_alt)) ||
        (s = dalloc(g, B * (size_t)g->xb_stride * 4, &g->xb)) ||
        (s = dalloc(g, B * (size_t)g->L.x * 4, &g->xb2)) || (s = dalloc(g, B * (size_t)g->L.qkv * 4, &g->q)) ||
        (s = dalloc(g, B * (size_t)g->att_stride * 4, &g->att)) || (s = dalloc(g, B * (size_t)g->L.gu * 4, &g->gate)) ||
        (s = dalloc(g, B * (size_t)g->hb_stride * 4, &g->hb)) ||
        (s = dalloc(g, B * (size_t)c->vocab_size * 4, &g->logits)) ||
        (s = dalloc(g, B * (size_t)g->L.cache * 4, &g->kcache)) ||
        (s = dalloc(g, B * (size_t)g->L.cache * 4, &g->vcache)) ||
        (s = dalloc(g, ms * (size_t)hd2 * 4, &g->rope_cos)) || (s = dalloc(g, ms * (size_t)hd2 * 4, &g->rope_sin)) ||
        (s = dalloc(g, B * 4, &g->d_token)) || (s = dalloc(g, B * 4, &g->d_pos)) ||
        (s = dalloc(g, B * (size_t)c->n_heads * (size_t)g->att_split * (size_t)(c->head_dim + 2) * 4, &g->att_part)) ||
        (s = dalloc(g, B * (size_t)c->n_heads * 4, &g->att_count)))
        goto fail;
    g->k = g->q + (qj_dptr)qd * 4;
    g->v = g->k + (qj_dptr)kvd * 4;
    g->up = g->gate + (qj_dptr)c->hidden_dim * 4;
    /* RoPE tables: the same values the CPU reference computes */
    float *cs = malloc(ms * (size_t)hd2 * 4), *sn = malloc(ms * (size_t)hd2 * 4);
    if (!cs || !sn) { free(cs); free(sn); s = qj_fail(QJ_ERR_NOMEM, "out of memory"); goto fail; }
    for (size_t pp = 0; pp < ms; pp++)
        for (int i = 0; i < hd2; i++) {
            double freq = pow((double)c->rope_theta, -2.0 * (double)i / (double)c->head_dim), a = (double)pp * freq;
            cs[pp * (size_t)hd2 + (size_t)i] = (float)cos(a);
            sn[pp * (size_t)hd2 + (size_t)i] = (float)sin(a);
        }
    s = qj_cuda_upload(g->cu, g->rope_cos, cs, ms * (size_t)hd2 * 4);
    if (!s) s = qj_cuda_upload(g->cu, g->rope_sin, sn, ms * (size_t)hd2 * 4);
    free(cs);
    free(sn);
    if (s) goto fail;
    if ((s = build_kernels(g, m, arch, st))) goto fail;
    st->weight_bytes = g->bytes_per_token;
    *out = g;
    return QJ_OK;
fail:
    qj_gpu_model_free(g);
    return s;
}

void qj_gpu_model_free(qj_gpu_model *g) {
    if (!g) return;
    if (g->cu) {
        qj_cuda_sync(g->cu);
        qj_cuda_graph_destroy(g->cu, g->graph);
        for (int i = 0; i < g->n_allocs; i++) qj_cuda_free(g->cu, g->allocs[i]);
        if (g->layers)
            for (int i = 0; i < g->cfg.n_layers; i++) {
                dev_layer *D = &g->layers[i];
                for (int l = 0; l < QJ_LIN_COUNT; l++) qj_glinear_free(g->cu, &D->lin[l]);
                qj_glinear_free(g->cu, &D->qkv);
                qj_glinear_free(g->cu, &D->gu);
            }
        qj_glinear_free(g->cu, &g->head);
        qj_gact_free(g->cu, &g->act);
        qj_gact_free(g->cu, &g->act2);
        for (int i = 0; i < g->n_modules; i++) qj_cuda_module_unload(g->cu, g->modules[i]);
        qj_cuda_stream_destroy(g->cu, g->stream);
        qj_cuda_close(g->cu);
    }
    free(g->allocs);
    free(g->modules);
    free(g->layers);
    free(g->h_logits);
    free(g->tok_host);
    free(g->pos_host);
    free(g->trace_names);
    free(g);
}

/* ---- the step ---- */

/* Launches reading the same x with the same prep kind share one prep (the
 * prepared layout depends only on the kind, K and batch, and every launch of
 * one x has its K). */
/* a: where the launch's prepared input is: g->act (prepared here unless it already holds x's), or g->act2
 * (written by gate|up's SwiGLU tail); t: the tail's pointers, for a kernel with a tail. A kernel whose K splits add
 * into y (spec.red) finds y zeroed here, unless add says that y already holds what it adds to. */
static qj_status gemv_in(qj_gpu_model *g, unsigned sk, dev_linear *d, qj_dptr x, int x_stride, const qj_gact *a,
                         qj_dptr y, int y_stride, const qj_gtail *t, int add) {
    qj_status s;
    int kind = qj_gemv_prep_kind(&d->spec);
    if (g->skip & sk) return QJ_OK;
    if (d->spec.red && !add &&
        (s = qj_cuda_zero_rows_async(g->cu, y, (size_t)y_stride, (size_t)d->spec.N, (size_t)g->batch, g->stream)))
        return s;
    if (a == &g->act && kind && g->prepped[kind] != x) {
        if ((s = qj_glinear_prep(g->cu, g->stream, d, x, x_stride, &g->act))) return s;
        g->prepped[kind] = x;
    }
    return t ? qj_glinear_run_tail(g->cu, g->stream, d, a, y, y_stride, t)
             : qj_glinear_run(g->cu, g->stream, d, x, x_stride, a, y, y_stride);
}

static qj_status gemv(qj_gpu_model *g, unsigned sk, dev_linear *d, qj_dptr x, int x_stride, qj_dptr y, int y_stride) {
    return gemv_in(g, sk, d, x, x_stride, &g->act, y, y_stride, NULL, 0);
}

/* The same where y holds what a kernel whose K splits add into it (spec.red) adds to: rows zeroed earlier, or the
 * residual stream (the others store y as usual). */
static qj_status gemv_add(qj_gpu_model *g, unsigned sk, dev_linear *d, qj_dptr x, int x_stride, qj_dptr y, int y_stride) {
    return gemv_in(g, sk, d, x, x_stride, &g->act, y, y_stride, NULL, 1);
}

/* The matmul d (o_proj or down_proj: y is the residual to add) with the next RMSNorm (weights w) as its tail:
 * the stream moves to the other x buffer, xb gets the normed row and, with the tail's prep, g->act its prep. */
static qj_status gemv_norm(qj_gpu_model *g, unsigned sk, dev_linear *d, qj_dptr x, int x_stride, const qj_gact *a,
                           qj_dptr y, qj_dptr w) {
    qj_gtail t = {g->x_cur, g->x_cur == g->x ? g->x_alt : g->x, w, g->xb, 0, 0};
    if (d->spec.tail_prep) t.xi = g->act.xi, t.xw = g->act.xw;
    qj_status s = gemv_in(g, sk, d, x, x_stride, a, y, g->L.x, &t, 0);
    g->x_cur = t.x_out;
    memset(g->prepped, 0, sizeof g->prepped);
    if (d->spec.tail_prep) g->prepped[QJ_PREP_IM] = g->xb;
    return s;
}

static qj_status launch(qj_gpu_model *g, unsigned sk, qj_cufunc f, unsigned grid, unsigned smem, void **args) {
    memset(g->prepped, 0, sizeof g->prepped); /* every ops kernel writes some matmul input */
    if (g->skip & sk) return QJ_OK;
    return qj_cuda_launch(g->cu, f, grid, (unsigned)g->batch, 1, QJ_OPS_THREADS, 1, 1, smem, g->stream, args);
}

static unsigned cdiv(int a, int b) { return (unsigned)((a + b - 1) / b); }

/* The buffers of the prep the ops kernels write (*p0 = 0 when none of n
 * linears reads its input through it, or none was reserved). */
static void fused_prep_bufs(const qj_gpu_model *g, dev_linear *const *d, int n, qj_dptr *p0, qj_dptr *p1) {
    int any = 0;
    for (int i = 0; i < n; i++) any |= qj_gemv_prep_kind(&d[i]->spec) == g->fused_prep;
    *p0 = *p1 = 0;
    if (any && g->fused_prep == QJ_PREP_IM) *p0 = g->act.xi, *p1 = g->act.xw;
    if (any && g->fused_prep == QJ_PREP_DQ) *p0 = g->act.xq, *p1 = g->act.xc;
    if (!*p0) *p1 = 0;
}

/* RMSNorm of the residual stream into g->xb, after x += res when res != 0 (the
 * residual add of the previous block, fused: the sum goes to the other of the
 * two x buffers, which then holds the stream), writing the prep of xb too when
 * a consumer reads it (so their launches need no prep of their own). */
static qj_status norm(qj_gpu_model *g, qj_dptr w, qj_dptr res, dev_linear *const *cons, int n) {
    qj_dptr xq, xc, x_in = g->x_cur, x_out = 0;
    fused_prep_bufs(g, cons, n, &xq, &xc);
    if (res) g->x_cur = x_out = x_in == g->x ? g->x_alt : g->x;
    void *a[] = {&x_in, &x_out, &res, &w, &g->xb, &xq, &xc};
    qj_status s = launch(g, SK_NORM, g->f_rmsnorm, cdiv(g->cfg.dim, QJ_NORM_CHUNK), 0, a);
    if (!s && xq) g->prepped[g->fused_prep] = g->xb;
    return s;
}

static qj_status enqueue_step(qj_gpu_model *g) {
    const qj_config *c = &g->cfg;
    int kvd = c->n_kv_heads * c->head_dim;
    qj_status s;
    {
        g->x_cur = g->x;
        void *a[] = {&g->emb_w, &g->emb_s, &g->emb_z, &g->d_token, &g->x};
        if ((s = launch(g, SK_EMBED, g->f_embed, 1, 0, a))) return s;
    }
    qj_dptr res = 0; /* the residual still to add into x: the last block's output */
    int normed = 0;  /* the last down_proj's tail has already written the next RMSNorm (xb, its prep) */
    for (int i = 0; i < c->n_layers; i++) {
        dev_layer *D = &g->layers[i];
        qj_dptr kc = g->kcache + (qj_dptr)i * (qj_dptr)g->max_seq * (qj_dptr)kvd * 4;
        qj_dptr vc = g->vcache + (qj_dptr)i * (qj_dptr)g->max_seq * (qj_dptr)kvd * 4;
        dev_linear *qkv[3] = {&D->qkv}, *gu[2] = {&D->gu};
        int nqkv = 1, ngu = 1;
        if (!D->fused_qkv) {
            qkv[0] = &D->lin[QJ_LIN_Q], qkv[1] = &D->lin[QJ_LIN_K], qkv[2] = &D->lin[QJ_LIN_V];
            nqkv = 3;
        }
        if (!D->fused_gu) {
            gu[0] = &D->lin[QJ_LIN_GATE], gu[1] = &D->lin[QJ_LIN_UP];
            ngu = 2;
        }
        const int sq = g->L.qkv, sg = g->L.gu, sx = g->L.x; /* output rows: one q|k|v (gate|up) row per batch row */
        /* kernels whose K splits add into y (spec.red; QJ_IM_RED=0: none): q|k|v's rows are zeroed first (before the
         * RMSNorm, which then still hands over to q|k|v by programmatic dependent launch); o and down add into the
         * residual stream itself, so the RMSNorm after them has no residual to add */
        int qkv_red = 0;
        for (int j = 0; j < nqkv; j++) qkv_red |= qkv[j]->spec.red;
        if (qkv_red && !(g->skip & SK_QKV) &&
            (s = qj_cuda_zero_rows_async(g->cu, g->q, (size_t)sq, (size_t)sq, (size_t)g->batch, g->stream)))
            return s;
        if (!normed && (s = norm(g, D->attn_norm, res, qkv, nqkv))) return s;
        if (D->fused_qkv) {
            if ((s = gemv_add(g, SK_QKV, &D->qkv, g->xb, g->xb_stride, g->q, sq))) return s;
        } else if ((s = gemv_add(g, SK_QKV, qkv[0], g->xb, g->xb_stride, g->q, sq)) ||
                   (s = gemv_add(g, SK_QKV, qkv[1], g->xb, g->xb_stride, g->k, sq)) ||
                   (s = gemv_add(g, SK_QKV, qkv[2], g->xb, g->xb_stride, g->v, sq)))
            return s;
        dev_linear *ol[1] = {&D->lin[QJ_LIN_O]};
        /* heads of whole prep blocks (32 values; 128 for the integer-MMA prep): prep fused */
        qj_dptr oq, oc;
        fused_prep_bufs(g, ol, 1, &oq, &oc);
        if (c->head_dim % (g->fused_prep == QJ_PREP_IM ? 128 : 32)) oq = oc = 0;
        void *aa[] = {&g->q,     &g->k,        &g->v,        &D->bq,    &D->bk, &D->bv, &g->rope_cos, &g->rope_sin,
                      &kc,       &vc,          &g->d_pos,    &g->att,   &oq,    &oc,    &g->att_part, &g->att_count};
        if ((s = launch(g, SK_ATT, g->f_attention, (unsigned)(c->n_heads * g->att_split),
                        (unsigned)((g->max_seq + g->att_split - 1) / g->att_split * 4), aa)))
            return s;
        if (oq) g->prepped[g->fused_prep] = g->att;
        if (D->lin[QJ_LIN_O].spec.tail) {
            if ((s = gemv_norm(g, SK_O, &D->lin[QJ_LIN_O], g->att, g->att_stride, &g->act, g->xb2, D->ffn_norm))) return s;
        } else {
            const int ored = D->lin[QJ_LIN_O].spec.red; /* (adds into the residual stream: no residual for the norm) */
            if ((s = gemv_in(g, SK_O, &D->lin[QJ_LIN_O], g->att, g->att_stride, &g->act, ored ? g->x_cur : g->xb2, sx, NULL,
                             ored)) ||
                (s = norm(g, D->ffn_norm, ored ? 0 : g->xb2, gu, ngu)))
                return s;
        }
        dev_linear *down = &D->lin[QJ_LIN_DOWN];
        const qj_gact *da = &g->act; /* where down_proj's input is prepared */
        if (D->fused_gu && D->gu.spec.tail) {
            /* SwiGLU in gate|up's tail; its prep (for down) in act2: blocks of gate|up still read act's */
            qj_gtail t = {0, 0, 0, g->hb, 0, 0};
            if (D->gu.spec.tail_prep) t.xi = g->act2.xi, t.xw = g->act2.xw, da = &g->act2;
            if ((s = gemv_in(g, SK_GU, &D->gu, g->xb, g->xb_stride, &g->act, g->gate, sg, &t, 0))) return s;
            memset(g->prepped, 0, sizeof g->prepped);
        } else {
            if (D->fused_gu) {
                if ((s = gemv(g, SK_GU, &D->gu, g->xb, g->xb_stride, g->gate, sg))) return s;
            } else if ((s = gemv(g, SK_GU, gu[0], g->xb, g->xb_stride, g->gate, sg)) ||
                       (s = gemv(g, SK_GU, gu[1], g->xb, g->xb_stride, g->up, sg)))
                return s;
            dev_linear *dn[1] = {down};
            qj_dptr xq, xc;
            fused_prep_bufs(g, dn, 1, &xq, &xc);
            void *as[] = {&g->gate, &g->up, &g->hb, &xq, &xc};
            if ((s = launch(g, SK_SWIGLU, g->f_swiglu, cdiv(c->hidden_dim, QJ_OPS_THREADS), 0, as))) return s;
            if (xq) g->prepped[g->fused_prep] = g->hb;
        }
        /* down_proj, with the next RMSNorm (the next layer's, or the final one) as its tail where it has one */
        normed = down->spec.tail != 0;
        res = normed || down->spec.red ? 0 : g->xb2;
        if (normed)
            s = gemv_norm(g, SK_DOWN, down, g->hb, g->hb_stride, da, g->xb2,
                          i + 1 < c->n_layers ? g->layers[i + 1].attn_norm : g->final_norm);
        else
            s = gemv_in(g, SK_DOWN, down, g->hb, g->hb_stride, da, down->spec.red ? g->x_cur : g->xb2, sx, NULL, down->spec.red);
        if (s) return s;
    }
    dev_linear *hd[1] = {&g->head};
    if (!normed && (s = norm(g, g->final_norm, res, hd, 1))) return s;
    return gemv(g, SK_HEAD, &g->head, g->xb, g->xb_stride, g->logits, c->vocab_size);
}

qj_status qj_gpu_step_batch(qj_gpu_model *g, const int *tokens, const int *pos) {
    const qj_config *c = &g->cfg;
    for (int b = 0; b < g->batch; b++) {
        if (tokens[b] < 0 || tokens[b] >= c->vocab_size)
            return qj_fail(QJ_ERR_INVALID, "token id %d out of range (vocab %d)%s", tokens[b], c->vocab_size,
                           g->batch > 1 ? " in a batch row" : "");
        if (pos[b] < 0 || pos[b] >= g->max_seq)
            return qj_fail(QJ_ERR_INVALID, "position %d out of range (context %d)%s", pos[b], g->max_seq,
                           g->batch > 1 ? " in a batch row" : "");
    }
    const size_t n = (size_t)g->batch * 4;
    memcpy(g->tok_host, tokens, n);
    memcpy(g->pos_host, pos, n);
    qj_status s;
    if ((s = qj_cuda_upload_async(g->cu, g->d_token, g->tok_host, n, g->stream)) ||
        (s = qj_cuda_upload_async(g->cu, g->d_pos, g->pos_host, n, g->stream)))
        return s;
    if (g->graph) return qj_cuda_graph_launch(g->cu, g->graph, g->stream);
    if (g->use_graph && g->steps > 0) {
        /* capture once, after a first eager step has loaded every module */
        if ((s = qj_cuda_capture_begin(g->cu, g->stream))) return s;
        qj_status e = enqueue_step(g);
        s = qj_cuda_capture_end(g->cu, g->stream, &g->graph);
        if (e) return e;
        if (s) return s;
        return qj_cuda_graph_launch(g->cu, g->graph, g->stream);
    }
    g->steps++;
    return enqueue_step(g);
}

qj_status qj_gpu_step(qj_gpu_model *g, int token, int pos) {
    if (g->batch != 1) return qj_fail(QJ_ERR_INVALID, "a batch-%d GPU model steps every sequence at once", g->batch);
    return qj_gpu_step_batch(g, &token, &pos);
}

qj_status qj_gpu_sync(qj_gpu_model *g) { return qj_cuda_stream_sync(g->cu, g->stream); }

qj_status qj_gpu_forward_batch(qj_gpu_model *g, const int *tokens, const int *pos, const float **logits) {
    qj_status s = qj_gpu_step_batch(g, tokens, pos);
    if (!s) s = qj_cuda_stream_sync(g->cu, g->stream);
    if (!s) s = qj_cuda_download(g->cu, g->h_logits, g->logits, (size_t)g->batch * (size_t)g->cfg.vocab_size * 4);
    if (s) return s;
    *logits = g->h_logits;
    return QJ_OK;
}

qj_status qj_gpu_forward(qj_gpu_model *g, int token, int pos, const float **logits) {
    if (g->batch != 1) return qj_fail(QJ_ERR_INVALID, "a batch-%d GPU model steps every sequence at once", g->batch);
    return qj_gpu_forward_batch(g, &token, &pos, logits);
}

int qj_gpu_batch(const qj_gpu_model *g) { return g->batch; }
uint64_t qj_gpu_bytes_per_token(const qj_gpu_model *g) { return g->bytes_per_token; }
qj_cuda *qj_gpu_cuda(qj_gpu_model *g) { return g->cu; }
qj_custream qj_gpu_stream(qj_gpu_model *g) { return g->stream; }
