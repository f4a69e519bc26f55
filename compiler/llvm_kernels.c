/* llvm_kernels.c — CPU GEMV kernels built with the LLVM C API, JIT-compiled
 * by ORC (see llvm_kernels.h).
 *
 * The generated function, for rows [row0, row1):
 *   for each row: acc = 0
 *     for each group g: v = <32 x float> 0
 *       for each 32-value block b of g: the block's B words as <B x i32>,
 *         spread to 32 lanes by two shufflevectors (the word holding value j's
 *         first bit, and the next one), shifted and masked into 32 codes,
 *         converted to float, v = fmuladd(codes, x[b*32 .. +32], v)
 *       dot = the tree sum of v; acc += scale * dot + zero * xsum[g]
 *         (symmetric: zero = -2^(B-1) scale)
 *     y[row] = acc
 * The 32-lane vectors are legalised by LLVM for the host: two zmm registers
 * with AVX-512, four ymm with AVX2, eight xmm with SSE. */
#include "llvm_kernels.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qj_layout.h"
#include "qj_model.h"
#include "qj_progress.h"

#ifdef QJ_HAVE_LLVM
#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#endif

qj_status qj_cpu_kspec_of(const qj_tensor *w, qj_cpu_kspec *s) {
    memset(s, 0, sizeof *s);
    if (w->dtype != QJ_DTYPE_Q || w->ndim != 2)
        return qj_fail(QJ_ERR_INVALID, "%s: the CPU kernels take packed 2-D weights, not %s", w->name, qj_dtype_name(w->dtype));
    s->bits = w->q.bits;
    s->group = w->q.group;
    s->N = w->shape[0];
    s->K = w->shape[1];
    s->symmetric = w->q.symmetric;
    s->scale_bf16 = w->q.scale_dtype == QJ_DTYPE_BF16;
    if (s->bits < QJ_MIN_BITS || s->bits > QJ_MAX_BITS || s->group < 32 || s->group % 32)
        return qj_fail(QJ_ERR_INVALID, "%s: no CPU kernel for %d bits, group %d", w->name, s->bits, s->group);
    return QJ_OK;
}

qj_status qj_cpu_gemv_run(qj_cpu_gemv_fn fn, const qj_tensor *w, const float *x, float *y) {
    qj_cpu_kspec s;
    qj_status st = qj_cpu_kspec_of(w, &s);
    if (st) return st;
    const int64_t nb = QJ_NBLOCKS(s.K), ng = QJ_NGROUPS(s.K, s.group);
    float xp_local[1024], xs_local[64]; /* small layers: no allocation per call */
    float *xp = nb * 32 <= 1024 ? xp_local : malloc((size_t)(nb * 32) * sizeof *xp);
    float *xs = ng <= 64 ? xs_local : malloc((size_t)ng * sizeof *xs);
    if (!xp || !xs) {
        if (xp != xp_local) free(xp);
        if (xs != xs_local) free(xs);
        return qj_fail(QJ_ERR_NOMEM, "out of memory");
    }
    memcpy(xp, x, (size_t)s.K * sizeof *xp);
    memset(xp + s.K, 0, (size_t)(nb * 32 - s.K) * sizeof *xp);
    if (s.bits == 2 || s.bits == 4) { /* the byte-plane kernels' order: plane m's values contiguous */
        const int per = 8 / s.bits, L = 4 * s.bits;
        float blk[32];
        for (int64_t b = 0; b < nb; b++) {
            float *xb = xp + b * 32;
            for (int m = 0; m < per; m++)
                for (int i = 0; i < L; i++) blk[m * L + i] = xb[per * i + m];
            memcpy(xb, blk, sizeof blk);
        }
    }
    memset(xs, 0, (size_t)ng * sizeof *xs);
    for (int64_t k = 0; k < s.K; k++) xs[k / s.group] += x[k];
    const int64_t N = s.N;
    const uint32_t *codes = (const uint32_t *)w->data;
    const uint16_t *sc = (const uint16_t *)w->scales, *zr = (const uint16_t *)w->zeros;
    if (N * s.K < (1 << 16) || omp_in_parallel()) {
        fn(codes, sc, zr, xp, xs, y, 0, N);
    } else {
        #pragma omp parallel
        {
            /* contiguous rows per thread: each streams its own part of the weights */
            const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
            const int64_t r0 = N * t / nt, r1 = N * (t + 1) / nt;
            if (r1 > r0) fn(codes, sc, zr, xp, xs, y, r0, r1);
        }
    }
    if (xp != xp_local) free(xp);
    if (xs != xs_local) free(xs);
    return QJ_OK;
}

/* ---- kernels attached to a model ---- */

typedef struct cpu_entry {
    const qj_tensor *t;
    qj_cpu_gemv_fn fn;
} cpu_entry;

struct qj_cpu_kernels {
    qj_cpu_jit *jit;
    cpu_entry *e;
    int n;
};

static int cpu_matvec(void *ctx, const qj_tensor *w, const float *x, float *y) {
    const qj_cpu_kernels *k = ctx;
    for (int i = 0; i < k->n; i++)
        if (k->e[i].t == w) return qj_cpu_gemv_run(k->e[i].fn, w, x, y) == QJ_OK;
    return 0;
}

static int same_kspec(const qj_cpu_kspec *a, const qj_cpu_kspec *b) {
    return a->bits == b->bits && a->group == b->group && a->N == b->N && a->K == b->K && a->symmetric == b->symmetric &&
           a->scale_bf16 == b->scale_bf16;
}

qj_status qj_cpu_kernels_attach(qj_model *m, qj_cpu_kernels **out, int *n_kernels, double *seconds) {
    *out = NULL;
    double t0 = qj_now();
    qj_cpu_kernels *k = calloc(1, sizeof *k);
    const int cap = m->cfg.n_layers * QJ_LIN_COUNT + 1;
    if (k) k->e = calloc((size_t)cap, sizeof *k->e);
    qj_cpu_kspec *specs = calloc((size_t)cap, sizeof *specs); /* the distinct specs and their kernels */
    qj_cpu_gemv_fn *fns = calloc((size_t)cap, sizeof *fns);
    if (!k || !k->e || !specs || !fns) {
        if (k) free(k->e);
        free(k);
        free(specs);
        free(fns);
        return qj_fail(QJ_ERR_NOMEM, "out of memory");
    }
    qj_status s = qj_cpu_jit_create(&k->jit);
    int nd = 0;
    for (int i = 0; !s && i < cap; i++) {
        const qj_tensor *t = i < cap - 1 ? qj_layer_linear(&m->layers[i / QJ_LIN_COUNT], (qj_linear)(i % QJ_LIN_COUNT))
                                         : &m->lm_head;
        if (t->dtype != QJ_DTYPE_Q) continue;
        qj_cpu_kspec ks;
        if ((s = qj_cpu_kspec_of(t, &ks))) break;
        int d = 0;
        while (d < nd && !same_kspec(&specs[d], &ks)) d++;
        if (d == nd) { /* a spec not seen yet: compile its kernel */
            if ((s = qj_cpu_jit_gemv(k->jit, &ks, &fns[d]))) break;
            specs[nd++] = ks;
        }
        k->e[k->n++] = (cpu_entry){t, fns[d]};
    }
    free(specs);
    free(fns);
    if (s) {
        qj_cpu_jit_free(k->jit);
        free(k->e);
        free(k);
        return s;
    }
    m->cpu_matvec = cpu_matvec;
    m->cpu_matvec_ctx = k;
    if (n_kernels) *n_kernels = nd;
    if (seconds) *seconds = qj_now() - t0;
    *out = k;
    return QJ_OK;
}

void qj_cpu_kernels_free(qj_model *m, qj_cpu_kernels *k) {
    if (!k) return;
    if (m && m->cpu_matvec_ctx == k) {
        m->cpu_matvec = NULL;
        m->cpu_matvec_ctx = NULL;
    }
    qj_cpu_jit_free(k->jit);
    free(k->e);
    free(k);
}

const char *qj_cpu_kernels_target(const qj_cpu_kernels *k) { return qj_cpu_jit_target(k->jit); }

#ifndef QJ_HAVE_LLVM

struct qj_cpu_jit {
    int unused;
};
int qj_cpu_llvm_available(void) { return 0; }
qj_status qj_cpu_jit_create(qj_cpu_jit **out) {
    *out = NULL;
    return qj_fail(QJ_ERR_UNSUPPORTED, "this qjit was built without LLVM (llvm-14-dev or newer): no CPU JIT kernels");
}
void qj_cpu_jit_free(qj_cpu_jit *j) { (void)j; }
const char *qj_cpu_jit_target(const qj_cpu_jit *j) {
    (void)j;
    return "none (built without LLVM)";
}
qj_status qj_cpu_jit_gemv(qj_cpu_jit *j, const qj_cpu_kspec *s, qj_cpu_gemv_fn *fn) {
    (void)j;
    (void)s;
    *fn = NULL;
    return qj_fail(QJ_ERR_UNSUPPORTED, "this qjit was built without LLVM: no CPU JIT kernels");
}

#else

struct qj_cpu_jit {
    LLVMOrcLLJITRef jit;
    LLVMTargetMachineRef tm; /* the optimisation pipeline's target: the host */
    char *triple, *cpu, *features;
    char target[160];
    pthread_mutex_t lock;
    int next_id;
};

int qj_cpu_llvm_available(void) { return 1; }

/* LLVM's message as a qjit error (the error is consumed). */
static qj_status llvm_fail(LLVMErrorRef e, const char *what) {
    char *m = LLVMGetErrorMessage(e);
    qj_status s = qj_fail(QJ_ERR_COMPILE, "LLVM: %s: %s", what, m);
    LLVMDisposeErrorMessage(m);
    return s;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_failed;
static void llvm_init(void) {
    init_failed = LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter();
}

qj_status qj_cpu_jit_create(qj_cpu_jit **out) {
    *out = NULL;
    pthread_once(&init_once, llvm_init);
    if (init_failed) return qj_fail(QJ_ERR_UNSUPPORTED, "LLVM has no native target for this machine");
    qj_cpu_jit *j = calloc(1, sizeof *j);
    if (!j) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&j->lock, NULL);
    j->triple = LLVMGetDefaultTargetTriple();
    j->cpu = LLVMGetHostCPUName();
    j->features = LLVMGetHostCPUFeatures();
    const char *level = strstr(j->features, "+avx512f") ? "avx512" : strstr(j->features, "+avx2") ? "avx2" : "sse";
    snprintf(j->target, sizeof j->target, "%s (%s)", j->cpu, level);
    LLVMTargetRef T;
    char *err = NULL;
    if (LLVMGetTargetFromTriple(j->triple, &T, &err)) {
        qj_status s = qj_fail(QJ_ERR_UNSUPPORTED, "LLVM: no target for %s: %s", j->triple, err ? err : "?");
        LLVMDisposeMessage(err);
        qj_cpu_jit_free(j);
        return s;
    }
    j->tm = LLVMCreateTargetMachine(T, j->triple, j->cpu, j->features, LLVMCodeGenLevelAggressive, LLVMRelocDefault,
                                    LLVMCodeModelJITDefault);
    LLVMOrcJITTargetMachineBuilderRef jtmb;
    LLVMErrorRef e = LLVMOrcJITTargetMachineBuilderDetectHost(&jtmb);
    if (e) {
        qj_status s = llvm_fail(e, "detecting the host");
        qj_cpu_jit_free(j);
        return s;
    }
    LLVMOrcLLJITBuilderRef b = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(b, jtmb); /* the builder takes jtmb */
    if ((e = LLVMOrcCreateLLJIT(&j->jit, b))) {             /* and LLJIT takes the builder */
        qj_status s = llvm_fail(e, "creating the JIT");
        qj_cpu_jit_free(j);
        return s;
    }
    *out = j;
    return QJ_OK;
}

void qj_cpu_jit_free(qj_cpu_jit *j) {
    if (!j) return;
    if (j->jit) {
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
        if (e) LLVMConsumeError(e);
    }
    if (j->tm) LLVMDisposeTargetMachine(j->tm);
    LLVMDisposeMessage(j->triple);
    LLVMDisposeMessage(j->cpu);
    LLVMDisposeMessage(j->features);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

const char *qj_cpu_jit_target(const qj_cpu_jit *j) { return j->target; }

/* ---- IR ---- */

typedef struct irb {
    LLVMContextRef c;
    LLVMModuleRef m;
    LLVMBuilderRef b;
    LLVMTypeRef i16, i32, i64, f32, f16, v32i32, v32i64, v32f32;
} irb;

static LLVMValueRef ci32(irb *g, int64_t v) { return LLVMConstInt(g->i32, (unsigned long long)v, 0); }
static LLVMValueRef ci64(irb *g, int64_t v) { return LLVMConstInt(g->i64, (unsigned long long)v, 0); }

/* A constant <n x ty> from integers. */
static LLVMValueRef cvec(LLVMTypeRef ty, const int64_t *v, int n) {
    LLVMValueRef e[32];
    for (int i = 0; i < n; i++) e[i] = LLVMConstInt(ty, (unsigned long long)v[i], 0);
    return LLVMConstVector(e, (unsigned)n);
}

static LLVMValueRef call_intrinsic(irb *g, const char *name, LLVMTypeRef overload, LLVMValueRef *args, unsigned n) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(g->m, id, &overload, 1);
    LLVMTypeRef fty = LLVMIntrinsicGetType(g->c, id, &overload, 1);
    return LLVMBuildCall2(g->b, fty, fn, args, n, "");
}

/* The 32 codes of the block at p (B words) as <32 x float>. */
static LLVMValueRef unpack_block(irb *g, int B, LLVMValueRef p) {
    LLVMTypeRef vw = LLVMVectorType(g->i32, (unsigned)B);
    LLVMValueRef words = LLVMBuildLoad2(g->b, vw, LLVMBuildBitCast(g->b, p, LLVMPointerType(vw, 0), ""), "w");
    LLVMSetAlignment(words, 4);
    int64_t lo[32], hi[32], sh[32], mask[32];
    int cross = 0;
    for (int j = 0; j < 32; j++) {
        const int bit = j * B;
        lo[j] = bit / 32;
        hi[j] = lo[j] + 1 < B ? lo[j] + 1 : lo[j];
        sh[j] = bit % 32;
        mask[j] = (1 << B) - 1;
        cross |= sh[j] + B > 32;
    }
    LLVMValueRef undef = LLVMGetUndef(vw);
    LLVMValueRef wl = LLVMBuildShuffleVector(g->b, words, undef, cvec(g->i32, lo, 32), "lo");
    LLVMValueRef c;
    if (!cross) { /* 2, 4, 8 bits: no value crosses a word */
        c = LLVMBuildLShr(g->b, wl, cvec(g->i32, sh, 32), "");
    } else { /* the 64-bit window of the word and the next one */
        LLVMValueRef wh = LLVMBuildShuffleVector(g->b, words, undef, cvec(g->i32, hi, 32), "hi");
        int64_t s32[32];
        for (int j = 0; j < 32; j++) s32[j] = 32;
        LLVMValueRef win = LLVMBuildOr(g->b, LLVMBuildZExt(g->b, wl, g->v32i64, ""),
                                       LLVMBuildShl(g->b, LLVMBuildZExt(g->b, wh, g->v32i64, ""), cvec(g->i64, s32, 32), ""),
                                       "win");
        c = LLVMBuildTrunc(g->b, LLVMBuildLShr(g->b, win, cvec(g->i64, sh, 32), ""), g->v32i32, "");
    }
    c = LLVMBuildAnd(g->b, c, cvec(g->i32, mask, 32), "codes");
    return LLVMBuildUIToFP(g->b, c, g->v32f32, "cf");
}

/* Widths 2, 4 and 8 read a block's 4B bytes as they are: byte i holds the
 * codes of values (8/B) i + m, m = 0 .. 8/B - 1, at bits B m. Plane m (its
 * code of every byte) meets x re-ordered so that plane m's values are
 * contiguous (qj_cpu_gemv_run: xr[b*32 + m*4B + i] = x[b*32 + (8/B) i + m]):
 * one zero-extending load, a shift and a mask per plane, no shuffles.
 * Returns acc + sum over planes of codes * x, as <4B x float>. */
static int byte_planes(int B) { return B == 2 || B == 4 || B == 8; }
static LLVMValueRef gep(irb *g, LLVMTypeRef ty, LLVMValueRef p, LLVMValueRef idx);

static LLVMValueRef planes_fma(irb *g, int B, LLVMValueRef p, LLVMValueRef xr, LLVMValueRef acc) {
    const unsigned L = (unsigned)(4 * B), np = (unsigned)(8 / B);
    LLVMTypeRef i8 = LLVMInt8TypeInContext(g->c), vb = LLVMVectorType(i8, L), vi = LLVMVectorType(g->i32, L),
                vf = LLVMVectorType(g->f32, L);
    LLVMValueRef bytes = LLVMBuildLoad2(g->b, vb, LLVMBuildBitCast(g->b, p, LLVMPointerType(vb, 0), ""), "bytes");
    LLVMSetAlignment(bytes, 4);
    LLVMValueRef wide = LLVMBuildZExt(g->b, bytes, vi, "wide");
    int64_t sh[32], mk[32];
    for (unsigned m = 0; m < np; m++) {
        for (unsigned i = 0; i < L; i++) sh[i] = (int64_t)(B * (int)m), mk[i] = (1 << B) - 1;
        LLVMValueRef c = m ? LLVMBuildLShr(g->b, wide, cvec(g->i32, sh, (int)L), "") : wide;
        if (m + 1 < np) c = LLVMBuildAnd(g->b, c, cvec(g->i32, mk, (int)L), ""); /* the top plane is < 2^B already */
        LLVMValueRef cf = LLVMBuildUIToFP(g->b, c, vf, "");
        LLVMValueRef xp = LLVMBuildBitCast(g->b, gep(g, g->f32, xr, ci64(g, (int64_t)(m * L))), LLVMPointerType(vf, 0), "");
        LLVMValueRef xv = LLVMBuildLoad2(g->b, vf, xp, "");
        LLVMSetAlignment(xv, 4);
        LLVMValueRef fa[3] = {cf, xv, acc};
        acc = call_intrinsic(g, "llvm.fmuladd", vf, fa, 3);
    }
    return acc;
}

/* The sum of a float vector's lanes (a power of two), halving with shuffles. */
static LLVMValueRef tree_sum(irb *g, LLVMValueRef v) {
    for (int n = (int)LLVMGetVectorSize(LLVMTypeOf(v)) / 2; n >= 1; n /= 2) {
        int64_t a[16], b[16];
        for (int i = 0; i < n; i++) a[i] = i, b[i] = i + n;
        LLVMValueRef undef = LLVMGetUndef(LLVMTypeOf(v));
        LLVMValueRef x = LLVMBuildShuffleVector(g->b, v, undef, cvec(g->i32, a, n), "");
        LLVMValueRef y = LLVMBuildShuffleVector(g->b, v, undef, cvec(g->i32, b, n), "");
        v = LLVMBuildFAdd(g->b, x, y, "");
    }
    return LLVMBuildExtractElement(g->b, v, ci32(g, 0), "dot");
}

/* A uint16 scale or zero as float (f16 or bf16). */
static LLVMValueRef half_to_float(irb *g, LLVMValueRef h16, int bf16) {
    if (bf16)
        return LLVMBuildBitCast(g->b, LLVMBuildShl(g->b, LLVMBuildZExt(g->b, h16, g->i32, ""), ci32(g, 16), ""), g->f32, "");
    return LLVMBuildFPExt(g->b, LLVMBuildBitCast(g->b, h16, g->f16, ""), g->f32, "");
}

static LLVMValueRef gep(irb *g, LLVMTypeRef ty, LLVMValueRef p, LLVMValueRef idx) {
    return LLVMBuildInBoundsGEP2(g->b, ty, p, &idx, 1, "");
}

static void build_gemv(irb *g, const qj_cpu_kspec *s, const char *name) {
    const int B = s->bits;
    const int64_t nb = QJ_NBLOCKS(s->K), ng = QJ_NGROUPS(s->K, s->group), gb = s->group / 32, rw = QJ_ROW_WORDS(s->K, B);
    LLVMTypeRef pi32 = LLVMPointerType(g->i32, 0), pi16 = LLVMPointerType(g->i16, 0), pf32 = LLVMPointerType(g->f32, 0);
    LLVMTypeRef params[8] = {pi32, pi16, pi16, pf32, pf32, pf32, g->i64, g->i64};
    LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(g->c), params, 8, 0);
    LLVMValueRef fn = LLVMAddFunction(g->m, name, fty);
    for (unsigned i = 0; i < 6; i++) {
        LLVMAddAttributeAtIndex(fn, i + 1, LLVMCreateEnumAttribute(g->c, LLVMGetEnumAttributeKindForName("noalias", 7), 0));
    }
    LLVMValueRef codes = LLVMGetParam(fn, 0), scales = LLVMGetParam(fn, 1), zeros = LLVMGetParam(fn, 2),
                 x = LLVMGetParam(fn, 3), xsum = LLVMGetParam(fn, 4), y = LLVMGetParam(fn, 5), row0 = LLVMGetParam(fn, 6),
                 row1 = LLVMGetParam(fn, 7);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(g->c, fn, "entry"),
                      rhead = LLVMAppendBasicBlockInContext(g->c, fn, "row"),
                      ghead = LLVMAppendBasicBlockInContext(g->c, fn, "group"),
                      bhead = LLVMAppendBasicBlockInContext(g->c, fn, "block"),
                      gend = LLVMAppendBasicBlockInContext(g->c, fn, "group_end"),
                      rend = LLVMAppendBasicBlockInContext(g->c, fn, "row_end"),
                      done = LLVMAppendBasicBlockInContext(g->c, fn, "done");
    LLVMPositionBuilderAtEnd(g->b, entry);
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, row0, row1, ""), rhead, done);

    /* row loop */
    LLVMPositionBuilderAtEnd(g->b, rhead);
    LLVMValueRef r = LLVMBuildPhi(g->b, g->i64, "r");
    LLVMValueRef rowp = gep(g, g->i32, codes, LLVMBuildMul(g->b, r, ci64(g, rw), ""));
    LLVMValueRef sbase = LLVMBuildMul(g->b, r, ci64(g, ng), "");
    LLVMBuildBr(g->b, ghead);

    /* group loop */
    LLVMPositionBuilderAtEnd(g->b, ghead);
    /* accv: the row's scaled products lane by lane (one horizontal sum per row); acc: its zero terms */
    LLVMTypeRef vacc = byte_planes(B) ? LLVMVectorType(g->f32, (unsigned)(4 * B)) : g->v32f32;
    LLVMValueRef gi = LLVMBuildPhi(g->b, g->i64, "g"), acc = LLVMBuildPhi(g->b, g->f32, "acc"),
                 accv = LLVMBuildPhi(g->b, vacc, "accv");
    LLVMValueRef b0 = LLVMBuildMul(g->b, gi, ci64(g, gb), "b0");
    LLVMValueRef bend = LLVMBuildAdd(g->b, b0, ci64(g, gb), "");
    bend = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, bend, ci64(g, nb), ""), bend, ci64(g, nb), "bend");
    LLVMBuildBr(g->b, bhead);

    /* block loop: v += codes * x */
    LLVMPositionBuilderAtEnd(g->b, bhead);
    LLVMValueRef bi = LLVMBuildPhi(g->b, g->i64, "b"), v = LLVMBuildPhi(g->b, vacc, "v");
    LLVMValueRef wp = gep(g, g->i32, rowp, LLVMBuildMul(g->b, bi, ci64(g, B), ""));
    LLVMValueRef xb = gep(g, g->f32, x, LLVMBuildMul(g->b, bi, ci64(g, 32), ""));
    LLVMValueRef vn;
    if (byte_planes(B)) {
        vn = planes_fma(g, B, wp, xb, v);
    } else {
        LLVMValueRef cf = unpack_block(g, B, wp);
        LLVMValueRef xv = LLVMBuildLoad2(g->b, g->v32f32, LLVMBuildBitCast(g->b, xb, LLVMPointerType(g->v32f32, 0), ""), "xv");
        LLVMSetAlignment(xv, 4);
        LLVMValueRef fa[3] = {cf, xv, v};
        vn = call_intrinsic(g, "llvm.fmuladd", g->v32f32, fa, 3);
    }
    LLVMValueRef bn = LLVMBuildAdd(g->b, bi, ci64(g, 1), "");
    LLVMBasicBlockRef bexit = LLVMGetInsertBlock(g->b);
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, bn, bend, ""), bhead, gend);
    LLVMValueRef zero_v = LLVMConstNull(vacc);
    LLVMValueRef bin[2] = {b0, bn}, vin[2] = {zero_v, vn};
    LLVMBasicBlockRef bfrom[2] = {ghead, bexit};
    LLVMAddIncoming(bi, bin, bfrom, 2);
    LLVMAddIncoming(v, vin, bfrom, 2);

    /* group end: accv += scale * v, acc += zero * xsum[g] */
    LLVMPositionBuilderAtEnd(g->b, gend);
    LLVMValueRef sidx = LLVMBuildAdd(g->b, sbase, gi, "");
    LLVMValueRef sc = half_to_float(g, LLVMBuildLoad2(g->b, g->i16, gep(g, g->i16, scales, sidx), ""), s->scale_bf16);
    LLVMValueRef z;
    if (s->symmetric)
        z = LLVMBuildFMul(g->b, sc, LLVMConstReal(g->f32, -(double)(1 << (B - 1))), "z");
    else
        z = half_to_float(g, LLVMBuildLoad2(g->b, g->i16, gep(g, g->i16, zeros, sidx), ""), s->scale_bf16);
    LLVMValueRef xs = LLVMBuildLoad2(g->b, g->f32, gep(g, g->f32, xsum, gi), "xs");
    LLVMValueRef a1[3] = {z, xs, acc};
    LLVMValueRef accn = call_intrinsic(g, "llvm.fmuladd", g->f32, a1, 3);
    LLVMValueRef one = LLVMBuildInsertElement(g->b, LLVMGetUndef(vacc), sc, ci32(g, 0), "");
    LLVMValueRef scv = LLVMBuildShuffleVector(g->b, one, LLVMGetUndef(vacc),
                                              LLVMConstNull(LLVMVectorType(g->i32, LLVMGetVectorSize(vacc))), "scv");
    LLVMValueRef a2[3] = {scv, vn, accv};
    LLVMValueRef accvn = call_intrinsic(g, "llvm.fmuladd", vacc, a2, 3);
    LLVMValueRef gn = LLVMBuildAdd(g->b, gi, ci64(g, 1), "");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, gn, ci64(g, ng), ""), ghead, rend);
    LLVMValueRef gin[2] = {ci64(g, 0), gn}, ain[2] = {LLVMConstReal(g->f32, 0.0), accn},
                 avin[2] = {LLVMConstNull(vacc), accvn};
    LLVMBasicBlockRef gfrom[2] = {rhead, gend};
    LLVMAddIncoming(gi, gin, gfrom, 2);
    LLVMAddIncoming(acc, ain, gfrom, 2);
    LLVMAddIncoming(accv, avin, gfrom, 2);

    /* row end: store, next row */
    LLVMPositionBuilderAtEnd(g->b, rend);
    LLVMBuildStore(g->b, LLVMBuildFAdd(g->b, tree_sum(g, accvn), accn, ""), gep(g, g->f32, y, r));
    LLVMValueRef rn = LLVMBuildAdd(g->b, r, ci64(g, 1), "");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, rn, row1, ""), rhead, done);
    LLVMValueRef rin[2] = {row0, rn};
    LLVMBasicBlockRef rfrom[2] = {entry, rend};
    LLVMAddIncoming(r, rin, rfrom, 2);

    LLVMPositionBuilderAtEnd(g->b, done);
    LLVMBuildRetVoid(g->b);
}

qj_status qj_cpu_jit_gemv(qj_cpu_jit *j, const qj_cpu_kspec *s, qj_cpu_gemv_fn *fn) {
    *fn = NULL;
    if (s->bits < QJ_MIN_BITS || s->bits > QJ_MAX_BITS || s->group < 32 || s->group % 32 || s->N < 1 || s->K < 1)
        return qj_fail(QJ_ERR_INVALID, "CPU kernel spec: %d bits, group %d, %lld x %lld", s->bits, s->group,
                       (long long)s->N, (long long)s->K);
    pthread_mutex_lock(&j->lock);
    int id = j->next_id++;
    pthread_mutex_unlock(&j->lock);
    char name[160];
    snprintf(name, sizeof name, "qj_cpu_dqmv_b%d_g%d%s%s_n%lld_k%lld_%d", s->bits, s->group, s->symmetric ? "_sym" : "",
             s->scale_bf16 ? "_sbf16" : "", (long long)s->N, (long long)s->K, id);
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    irb g;
    g.c = LLVMOrcThreadSafeContextGetContext(tsc);
    g.m = LLVMModuleCreateWithNameInContext(name, g.c);
    g.b = LLVMCreateBuilderInContext(g.c);
    g.i16 = LLVMInt16TypeInContext(g.c);
    g.i32 = LLVMInt32TypeInContext(g.c);
    g.i64 = LLVMInt64TypeInContext(g.c);
    g.f32 = LLVMFloatTypeInContext(g.c);
    g.f16 = LLVMHalfTypeInContext(g.c);
    g.v32i32 = LLVMVectorType(g.i32, 32);
    g.v32i64 = LLVMVectorType(g.i64, 32);
    g.v32f32 = LLVMVectorType(g.f32, 32);
    LLVMSetTarget(g.m, j->triple);
    LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(j->tm);
    LLVMSetModuleDataLayout(g.m, dl);
    LLVMDisposeTargetData(dl);
    build_gemv(&g, s, name);
    LLVMDisposeBuilder(g.b);
    qj_status st = QJ_OK;
    char *msg = NULL;
    if (LLVMVerifyModule(g.m, LLVMReturnStatusAction, &msg)) st = qj_fail(QJ_ERR_INTERNAL, "LLVM: %s does not verify: %s", name, msg);
    LLVMDisposeMessage(msg);
    if (!st) {
        LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
        LLVMErrorRef e = LLVMRunPasses(g.m, "default<O3>", j->tm, po);
        LLVMDisposePassBuilderOptions(po);
        if (e) st = llvm_fail(e, "optimising");
    }
    const char *dump = getenv("QJ_LLVM_DUMP"); /* debugging: the optimised kernel's assembly on stderr */
    if (!st && dump && !strcmp(dump, "1")) {
        LLVMMemoryBufferRef mb = NULL;
        char *em = NULL;
        if (!LLVMTargetMachineEmitToMemoryBuffer(j->tm, g.m, LLVMAssemblyFile, &em, &mb)) {
            fprintf(stderr, "%.*s\n", (int)LLVMGetBufferSize(mb), LLVMGetBufferStart(mb));
            LLVMDisposeMemoryBuffer(mb);
        }
        LLVMDisposeMessage(em);
    }
    if (st) {
        LLVMDisposeModule(g.m);
        LLVMOrcDisposeThreadSafeContext(tsc);
        return st;
    }
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(g.m, tsc); /* takes the module */
    LLVMOrcDisposeThreadSafeContext(tsc);                                       /* the module keeps it alive */
    LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModule(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), tsm);
    if (e) {
        LLVMOrcDisposeThreadSafeModule(tsm);
        return llvm_fail(e, "adding the module");
    }
    LLVMOrcExecutorAddress addr = 0;
    if ((e = LLVMOrcLLJITLookup(j->jit, &addr, name))) return llvm_fail(e, "compiling the kernel");
    *(void **)fn = (void *)(uintptr_t)addr;
    return QJ_OK;
}

#endif
