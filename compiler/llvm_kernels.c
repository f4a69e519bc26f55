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
#include "qj_package.h"
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
#include <llvm/Config/llvm-config.h>
#include <pthread.h>
#endif

/* ---- kernels attached to a model ---- */

struct qj_cpu_kernels {
    qj_cpu_jit *jit;      /* owned unless the kernels came through a qj_cpu_kcache */
    int borrowed_jit;
    qj_cpu_binding *bind;
    char target[256];
};

typedef struct kcache_entry {
    qj_cpu_kspec spec;
    qj_cpu_gemv_fn fn;
} kcache_entry;

struct qj_cpu_kcache {
    qj_cpu_jit *jit;
    kcache_entry *e;      /* (n) the specs compiled and their kernels */
    int n, cap, compiled; /* compiled: by the attach running now */
};

static qj_status jit_lookup(void *ctx, const qj_cpu_kspec *s, qj_cpu_gemv_fn *fn) {
    return qj_cpu_jit_gemv((qj_cpu_jit *)ctx, s, fn);
}

/* The kernels of a package's object, by spec. */
typedef struct aot_ctx {
    qj_cpu_jit *jit;
    const qj_cpu_code *code;
} aot_ctx;

static qj_status aot_lookup(void *ctx, const qj_cpu_kspec *s, qj_cpu_gemv_fn *fn) {
    const aot_ctx *a = ctx;
    for (int i = 0; i < a->code->n_kernels; i++) {
        const qj_cpu_code_kernel *k = &a->code->kernels[i];
        qj_cpu_kspec ks = {k->bits, k->group, k->N, k->K, k->symmetric, k->scale_bf16};
        if (qj_cpu_kspec_equal(&ks, s)) return qj_cpu_jit_lookup(a->jit, k->symbol, fn);
    }
    char name[160];
    qj_cpu_kspec_name(s, "", name, sizeof name);
    return qj_fail(QJ_ERR_FORMAT, "cpu_code (%s %s): no kernel for %s, which the model needs", a->code->triple,
                   a->code->cpu, name);
}

qj_status qj_cpu_code_mode_parse(const char *s, qj_cpu_code_mode *out) {
    if (!strcmp(s, "auto")) *out = QJ_CPU_CODE_AUTO;
    else if (!strcmp(s, "require")) *out = QJ_CPU_CODE_REQUIRE;
    else if (!strcmp(s, "jit") || !strcmp(s, "rejit")) *out = QJ_CPU_CODE_JIT;
    else return qj_fail(QJ_ERR_INVALID, "--cpu-code: \"%s\" is not auto, require or jit", s);
    return QJ_OK;
}

/* "+a,+b,-c": is "+name" (len bytes) among its entries? */
static int has_feature(const char *list, const char *name, size_t len) {
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == len + 1 && p[0] == '+' && !memcmp(p + 1, name, len)) return 1;
        p += l;
        if (*p == ',') p++;
    }
    return 0;
}

int qj_cpu_int_kernels(const char *triple, const char *features) {
    const char *e = getenv("QJ_CPU_INT"); /* experiments: QJ_CPU_INT=0 keeps the float kernels */
    if (e && !strcmp(e, "0")) return 0;
    return !strncmp(triple, "x86_64", 6) && has_feature(features, "avx512vnni", 10) &&
           has_feature(features, "avx512vbmi", 10) && has_feature(features, "avx512bw", 8) &&
           has_feature(features, "avx512vl", 8);
}

static size_t arch_len(const char *triple) {
    const char *d = strchr(triple, '-');
    return d ? (size_t)(d - triple) : strlen(triple);
}

int qj_cpu_code_matches(const qj_cpu_code *c, const qj_cpu_target *host, char *why, size_t why_len) {
    size_t al = arch_len(c->triple);
    if (al != arch_len(host->triple) || memcmp(c->triple, host->triple, al)) {
        snprintf(why, why_len, "built for %s (%s), this machine is %s", c->triple, c->cpu, host->triple);
        return 0;
    }
    if (c->abi != QJ_CPU_KERNEL_ABI) {
        snprintf(why, why_len, "its kernels use calling convention %d, this qjit's is %d", c->abi, QJ_CPU_KERNEL_ABI);
        return 0;
    }
    const char *f = c->features ? c->features : "";
    for (const char *p = f; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l > 1 && p[0] == '+' && !has_feature(host->features, p + 1, l - 1)) {
            snprintf(why, why_len, "compiled for %s (%s), needs +%.*s, which this CPU (%s) lacks", c->cpu, c->level,
                     (int)(l - 1), p + 1, host->cpu);
            return 0;
        }
        p += l;
        if (*p == ',') p++;
    }
    return 1;
}

static int count_plus(const char *f) {
    int n = 0;
    for (; f && *f; f++) n += *f == '+';
    return n;
}

int qj_cpu_code_pick(const qj_model *m, const qj_cpu_target *host, char *why, size_t why_len) {
    int best = -1, best_score = -1;
    if (why_len) why[0] = '\0';
    for (int i = 0; i < m->n_cpu_code; i++) {
        const qj_cpu_code *c = &m->cpu_code[i];
        char w[512];
        if (!qj_cpu_code_matches(c, host, w, sizeof w)) {
            if (why_len && !why[0]) snprintf(why, why_len, "%s", w);
            continue;
        }
        int exact = !strcmp(c->cpu, host->cpu) && !strcmp(c->features ? c->features : "", host->features);
        int rank = !strcmp(c->level, "avx512") ? 3 : !strcmp(c->level, "avx2") ? 2 : 1; /* then the widest vectors */
        int score = exact ? 1 << 20 : rank * 10000 + count_plus(c->features);
        if (score > best_score) best = i, best_score = score;
    }
    return best;
}

qj_status qj_cpu_kernels_attach_ex(qj_model *m, qj_cpu_code_mode mode, qj_cpu_kernels **out, qj_cpu_attach_info *info) {
    *out = NULL;
    qj_cpu_attach_info local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    double t0 = qj_now();
    int pick = -1;
    qj_cpu_target host;
    qj_status s = QJ_OK;
    if (mode != QJ_CPU_CODE_JIT && m->n_cpu_code) {
        char why[512];
        if ((s = qj_cpu_target_host(&host))) return s;
        pick = qj_cpu_code_pick(m, &host, why, sizeof why);
        if (pick < 0 && mode == QJ_CPU_CODE_REQUIRE)
            return qj_fail(QJ_ERR_UNSUPPORTED,
                           "%s: cpu_code: none of its %d CPU code entries runs here (%s %s, %s): the first is %s; "
                           "expected code for %s (qjit compile --target cpu on this machine), or drop --cpu-code=require",
                           m->origin, m->n_cpu_code, host.triple, host.cpu, host.level, why, host.triple);
        if (pick < 0)
            snprintf(info->note, sizeof info->note,
                     "cpu: the package's CPU code does not run here (%.300s): compiling the kernels with LLVM instead "
                     "(--cpu-code=require refuses)", why);
    } else if (mode == QJ_CPU_CODE_REQUIRE) {
        return qj_fail(QJ_ERR_UNSUPPORTED,
                       "%s: the package carries no CPU code (manifest \"cpu_code\"); expected it with "
                       "--cpu-code=require: compile it with qjit compile --target cpu", m->origin);
    }
    qj_cpu_kernels *k = calloc(1, sizeof *k);
    if (!k) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    if ((s = qj_cpu_jit_create(&k->jit))) { free(k); return s; }
    if (pick >= 0) {
        const qj_cpu_code *c = &m->cpu_code[pick];
        aot_ctx a = {k->jit, c};
        if (!(s = qj_cpu_jit_add_object(k->jit, c->object, c->len, c->cpu)))
            s = qj_cpu_bind(m, aot_lookup, &a, &k->bind, &info->n_kernels);
        if (s) s = qj_fail_context(s, "%s: cpu_code[%d]", m->origin, pick);
        info->from_package = 1;
        snprintf(k->target, sizeof k->target, "%s (%s), from the package, compiled by LLVM %s", c->cpu, c->level, c->llvm);
    } else {
        s = qj_cpu_bind(m, jit_lookup, k->jit, &k->bind, &info->n_kernels);
        snprintf(k->target, sizeof k->target, "%s", qj_cpu_jit_target(k->jit));
    }
    if (s) {
        qj_cpu_jit_free(k->jit);
        free(k);
        return s;
    }
    info->seconds = qj_now() - t0;
    *out = k;
    return QJ_OK;
}

qj_status qj_cpu_kernels_attach(qj_model *m, qj_cpu_kernels **out, int *n_kernels, double *seconds) {
    qj_cpu_attach_info info;
    qj_status s = qj_cpu_kernels_attach_ex(m, QJ_CPU_CODE_JIT, out, &info);
    if (s) return s;
    if (n_kernels) *n_kernels = info.n_kernels;
    if (seconds) *seconds = info.seconds;
    return QJ_OK;
}

void qj_cpu_kernels_free(qj_model *m, qj_cpu_kernels *k) {
    if (!k) return;
    qj_cpu_binding_free(m, k->bind);
    if (!k->borrowed_jit) qj_cpu_jit_free(k->jit);
    free(k);
}

qj_status qj_cpu_kcache_new(qj_cpu_kcache **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    qj_status s = qj_cpu_jit_create(&(*out)->jit);
    if (s) {
        free(*out);
        *out = NULL;
    }
    return s;
}

void qj_cpu_kcache_free(qj_cpu_kcache *c) {
    if (!c) return;
    qj_cpu_jit_free(c->jit);
    free(c->e);
    free(c);
}

int qj_cpu_kcache_size(const qj_cpu_kcache *c) { return c->n; }

static qj_status kcache_lookup(void *ctx, const qj_cpu_kspec *s, qj_cpu_gemv_fn *fn) {
    qj_cpu_kcache *c = ctx;
    for (int i = 0; i < c->n; i++)
        if (qj_cpu_kspec_equal(&c->e[i].spec, s)) {
            *fn = c->e[i].fn;
            return QJ_OK;
        }
    if (c->n == c->cap) {
        const int cap = c->cap ? 2 * c->cap : 32;
        kcache_entry *ne = realloc(c->e, (size_t)cap * sizeof *ne);
        if (!ne) return qj_fail(QJ_ERR_NOMEM, "out of memory");
        c->e = ne;
        c->cap = cap;
    }
    qj_status st = qj_cpu_jit_gemv(c->jit, s, fn);
    if (st) return st;
    c->e[c->n++] = (kcache_entry){*s, *fn};
    c->compiled++;
    return QJ_OK;
}

qj_status qj_cpu_kernels_attach_cached(qj_model *m, qj_cpu_kcache *c, qj_cpu_kernels **out, qj_cpu_attach_info *info,
                                       int *compiled) {
    *out = NULL;
    qj_cpu_attach_info local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    const double t0 = qj_now();
    qj_cpu_kernels *k = calloc(1, sizeof *k);
    if (!k) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    k->jit = c->jit;
    k->borrowed_jit = 1;
    c->compiled = 0;
    qj_status s = qj_cpu_bind(m, kcache_lookup, c, &k->bind, &info->n_kernels);
    if (s) {
        free(k);
        return s;
    }
    snprintf(k->target, sizeof k->target, "%s", qj_cpu_jit_target(c->jit));
    info->seconds = qj_now() - t0;
    if (compiled) *compiled = c->compiled;
    *out = k;
    return QJ_OK;
}

const char *qj_cpu_kernels_target(const qj_cpu_kernels *k) { return k->target; }

/* x86-64 psABI levels, their features spelled out (LLVM's names). */
static const struct {
    const char *cpu, *features;
} psabi[] = {
    {"x86-64", "+sse,+sse2,+cx8,+fxsr,+mmx"},
    {"x86-64-v2", "+sse,+sse2,+cx8,+fxsr,+mmx,+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt,+cx16,+sahf"},
    {"x86-64-v3", "+sse,+sse2,+cx8,+fxsr,+mmx,+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt,+cx16,+sahf,+avx,+avx2,+bmi,"
                  "+bmi2,+f16c,+fma,+lzcnt,+movbe,+xsave"},
    {"x86-64-v4", "+sse,+sse2,+cx8,+fxsr,+mmx,+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt,+cx16,+sahf,+avx,+avx2,+bmi,"
                  "+bmi2,+f16c,+fma,+lzcnt,+movbe,+xsave,+avx512f,+avx512bw,+avx512cd,+avx512dq,+avx512vl"},
};

static void set_level(qj_cpu_target *t) {
    size_t al = arch_len(t->triple);
    if ((al == 6 && !memcmp(t->triple, "x86_64", 6)) || (al == 4 && !memcmp(t->triple, "i686", 4)))
        snprintf(t->level, sizeof t->level, "%s",
                 has_feature(t->features, "avx512f", 7) ? "avx512" : has_feature(t->features, "avx2", 4) ? "avx2" : "sse");
    else
        snprintf(t->level, sizeof t->level, "%.*s", (int)(al < sizeof t->level ? al : sizeof t->level - 1), t->triple);
}

qj_status qj_cpu_target_parse(const char *spec, qj_cpu_target *t) {
    memset(t, 0, sizeof *t);
    if (!strcmp(spec, "host")) return qj_cpu_target_host(t);
    for (size_t i = 0; i < sizeof psabi / sizeof psabi[0]; i++)
        if (!strcmp(spec, psabi[i].cpu)) {
            qj_status s = qj_cpu_target_host(t); /* for the triple */
            if (s) return s;
            if (arch_len(t->triple) != 6 || memcmp(t->triple, "x86_64", 6))
                return qj_fail(QJ_ERR_INVALID, "--cpu-arch %s: an x86-64 level, but this machine is %s; give TRIPLE:CPU",
                               spec, t->triple);
            snprintf(t->cpu, sizeof t->cpu, "%s", psabi[i].cpu);
            snprintf(t->features, sizeof t->features, "%s", psabi[i].features);
            set_level(t);
            return QJ_OK;
        }
    const char *c1 = strchr(spec, ':');
    if (!c1 || c1 == spec || !c1[1])
        return qj_fail(QJ_ERR_INVALID,
                       "--cpu-arch \"%s\": expected host, x86-64, x86-64-v2, x86-64-v3, x86-64-v4 or TRIPLE:CPU[:FEATURES] "
                       "(e.g. aarch64-unknown-linux-gnu:generic)", spec);
    const char *c2 = strchr(c1 + 1, ':');
    size_t tl = (size_t)(c1 - spec), cl = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
    if (tl >= sizeof t->triple || cl >= sizeof t->cpu || !cl || (c2 && strlen(c2 + 1) >= sizeof t->features))
        return qj_fail(QJ_ERR_INVALID, "--cpu-arch \"%s\": triple, CPU or features too long", spec);
    memcpy(t->triple, spec, tl);
    memcpy(t->cpu, c1 + 1, cl);
    if (c2) snprintf(t->features, sizeof t->features, "%s", c2 + 1);
    qj_cpu_target host;
    qj_status s = qj_cpu_target_host(&host);
    if (s) return s;
    size_t al = arch_len(t->triple);
    if (al == arch_len(host.triple) && !memcmp(host.triple, t->triple, al) && !c2)
        return qj_fail(QJ_ERR_INVALID,
                       "--cpu-arch \"%s\": for this machine's architecture give host, an x86-64 level or the CPU's "
                       "features (TRIPLE:CPU:FEATURES), so the package records what its code needs", spec);
    set_level(t);
    return QJ_OK;
}

/* with or without LLVM: the tests bound the kernels' error with it */
int qj_cpu_int_xdigits(int bits) {
    const char *e = getenv("QJ_CPU_XDIGITS");
    if (e && (!strcmp(e, "2") || !strcmp(e, "3"))) return e[0] - '0';
    return bits <= 3 ? 2 : 3;
}

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
qj_status qj_cpu_jit_add_object(qj_cpu_jit *j, const void *obj, size_t len, const char *name) {
    (void)j, (void)obj, (void)len, (void)name;
    return qj_fail(QJ_ERR_UNSUPPORTED, "this qjit was built without LLVM: cannot link CPU object code");
}
qj_status qj_cpu_jit_lookup(qj_cpu_jit *j, const char *symbol, qj_cpu_gemv_fn *fn) {
    (void)j, (void)symbol;
    *fn = NULL;
    return qj_fail(QJ_ERR_UNSUPPORTED, "this qjit was built without LLVM: cannot link CPU object code");
}
qj_status qj_cpu_target_host(qj_cpu_target *t) {
    memset(t, 0, sizeof *t);
    return qj_fail(QJ_ERR_UNSUPPORTED, "this qjit was built without LLVM: no CPU targets");
}
const char *qj_cpu_llvm_version(void) { return "none"; }
qj_status qj_cpu_aot_compile(const qj_model *m, const qj_cpu_target *t, qj_cpu_code *out, double *seconds) {
    (void)m, (void)t, (void)seconds;
    memset(out, 0, sizeof *out);
    return qj_fail(QJ_ERR_UNSUPPORTED, "this qjit was built without LLVM (llvm-14-dev or newer): no CPU object code");
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

const char *qj_cpu_llvm_version(void) { return LLVM_VERSION_STRING; }

qj_status qj_cpu_target_host(qj_cpu_target *t) {
    memset(t, 0, sizeof *t);
    pthread_once(&init_once, llvm_init);
    if (init_failed) return qj_fail(QJ_ERR_UNSUPPORTED, "LLVM has no native target for this machine");
    char *tr = LLVMGetDefaultTargetTriple(), *cpu = LLVMGetHostCPUName(), *f = LLVMGetHostCPUFeatures();
    int fits = strlen(tr) < sizeof t->triple && strlen(cpu) < sizeof t->cpu && strlen(f) < sizeof t->features;
    if (fits) {
        snprintf(t->triple, sizeof t->triple, "%s", tr);
        snprintf(t->cpu, sizeof t->cpu, "%s", cpu);
        snprintf(t->features, sizeof t->features, "%s", f);
    }
    LLVMDisposeMessage(tr);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(f);
    if (!fits) return qj_fail(QJ_ERR_INTERNAL, "LLVM's host triple, CPU name or feature string is too long");
    set_level(t);
    return QJ_OK;
}

qj_status qj_cpu_jit_add_object(qj_cpu_jit *j, const void *obj, size_t len, const char *name) {
    LLVMMemoryBufferRef mb = LLVMCreateMemoryBufferWithMemoryRangeCopy((const char *)obj, len, name);
    LLVMErrorRef e = LLVMOrcLLJITAddObjectFile(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), mb); /* takes mb */
    return e ? llvm_fail(e, "adding the package's object code") : QJ_OK;
}

qj_status qj_cpu_jit_lookup(qj_cpu_jit *j, const char *symbol, qj_cpu_gemv_fn *fn) {
    LLVMOrcExecutorAddress addr = 0;
    *fn = NULL;
    LLVMErrorRef e = LLVMOrcLLJITLookup(j->jit, &addr, symbol);
    if (e) return llvm_fail(e, "linking the package's object code");
    *(void **)fn = (void *)(uintptr_t)addr;
    return QJ_OK;
}

/* ---- IR ---- */

typedef struct irb {
    LLVMContextRef c;
    LLVMModuleRef m;
    LLVMBuilderRef b;
    LLVMTypeRef i16, i32, i64, f32, f16, v32i32, v32i64, v32f32;
    int soft_f16; /* x86 without F16C: f16 -> f32 in integer ops (LLVM would call __gnu_h2f_ieee) */
    int vnni;     /* x86 with AVX-512 VNNI, VBMI, BW and VL: the integer kernels (build_gemv_int) */
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

static LLVMValueRef splat(irb *g, LLVMValueRef v, unsigned n);

/* ty, or <n x ty> when n > 0 */
static LLVMTypeRef vty(LLVMTypeRef ty, unsigned n) { return n ? LLVMVectorType(ty, n) : ty; }
/* The integer constant v as ty, splat over n lanes when n > 0. */
static LLVMValueRef csplat(LLVMTypeRef ty, unsigned n, int64_t v) {
    LLVMValueRef c = LLVMConstInt(ty, (unsigned long long)v, 0);
    if (!n) return c;
    LLVMValueRef e[64];
    for (unsigned i = 0; i < n; i++) e[i] = c;
    return LLVMConstVector(e, n);
}

/* uint16 scales or zeros as float (f16 or bf16): one (n = 0) or <n x i16>. */
static LLVMValueRef half_to_float_n(irb *g, LLVMValueRef h16, int bf16, unsigned n) {
    LLVMTypeRef i32 = vty(g->i32, n), f32 = vty(g->f32, n);
    if (bf16) return LLVMBuildBitCast(g->b, LLVMBuildShl(g->b, LLVMBuildZExt(g->b, h16, i32, ""), csplat(g->i32, n, 16), ""), f32, "");
    if (!g->soft_f16) return LLVMBuildFPExt(g->b, LLVMBuildBitCast(g->b, h16, vty(g->f16, n), ""), f32, "");
    /* exponent and mantissa moved into place read as f32 are the value times 2^-112 (subnormals
     * included); times 2^112 is exact; what lands at or above 2^16 was inf/NaN; then the sign */
    LLVMValueRef h = LLVMBuildZExt(g->b, h16, i32, "");
    LLVMValueRef o = LLVMBuildShl(g->b, LLVMBuildAnd(g->b, h, csplat(g->i32, n, 0x7fff), ""), csplat(g->i32, n, 13), "");
    LLVMValueRef p112 = LLVMConstReal(g->f32, 0x1p112), big = LLVMConstReal(g->f32, 65536.0);
    if (n) p112 = splat(g, p112, n), big = splat(g, big, n);
    LLVMValueRef f = LLVMBuildFMul(g->b, LLVMBuildBitCast(g->b, o, f32, ""), p112, "");
    LLVMValueRef fb = LLVMBuildBitCast(g->b, f, i32, "");
    LLVMValueRef infnan = LLVMBuildFCmp(g->b, LLVMRealOGE, f, big, "");
    fb = LLVMBuildSelect(g->b, infnan, LLVMBuildOr(g->b, fb, csplat(g->i32, n, 0x7f800000), ""), fb, "");
    fb = LLVMBuildOr(g->b, fb, LLVMBuildShl(g->b, LLVMBuildAnd(g->b, h, csplat(g->i32, n, 0x8000), ""), csplat(g->i32, n, 16), ""), "");
    return LLVMBuildBitCast(g->b, fb, f32, "");
}
static LLVMValueRef half_to_float(irb *g, LLVMValueRef h16, int bf16) { return half_to_float_n(g, h16, bf16, 0); }

/* <n x elem> from p + (lanes where mask), zero elsewhere (llvm.masked.load). */
static LLVMValueRef masked_load(irb *g, LLVMTypeRef elem, unsigned n, LLVMValueRef p, LLVMValueRef mask) {
    LLVMTypeRef vt = LLVMVectorType(elem, n), pvt = LLVMPointerType(vt, 0), tys[2] = {vt, pvt};
    unsigned id = LLVMLookupIntrinsicID("llvm.masked.load", 16);
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(g->m, id, tys, 2);
    LLVMTypeRef fty = LLVMIntrinsicGetType(g->c, id, tys, 2);
    LLVMValueRef args[4] = {LLVMBuildBitCast(g->b, p, pvt, ""), ci32(g, 1), mask, LLVMConstNull(vt)};
    return LLVMBuildCall2(g->b, fty, fn, args, 4, "");
}

static LLVMValueRef gep(irb *g, LLVMTypeRef ty, LLVMValueRef p, LLVMValueRef idx) {
    return LLVMBuildInBoundsGEP2(g->b, ty, p, &idx, 1, "");
}

/* A non-overloaded intrinsic call. */
static LLVMValueRef call_intrinsic0(irb *g, const char *name, LLVMValueRef *args, unsigned n) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(g->m, id, NULL, 0);
    LLVMTypeRef fty = LLVMIntrinsicGetType(g->c, id, NULL, 0);
    return LLVMBuildCall2(g->b, fty, fn, args, n, "");
}

static LLVMValueRef splat(irb *g, LLVMValueRef v, unsigned n) {
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(v), n);
    LLVMValueRef one = LLVMBuildInsertElement(g->b, LLVMGetUndef(vt), v, ci32(g, 0), "");
    return LLVMBuildShuffleVector(g->b, one, LLVMGetUndef(vt), LLVMConstNull(LLVMVectorType(g->i32, n)), "");
}

/* The scale (as float) and zero of row group sidx. */
static void scale_zero(irb *g, const qj_cpu_kspec *s, LLVMValueRef scales, LLVMValueRef zeros, LLVMValueRef sidx,
                       LLVMValueRef *sc, LLVMValueRef *z) {
    *sc = half_to_float(g, LLVMBuildLoad2(g->b, g->i16, gep(g, g->i16, scales, sidx), ""), s->scale_bf16);
    if (s->symmetric)
        *z = LLVMBuildFMul(g->b, *sc, LLVMConstReal(g->f32, -(double)(1 << (s->bits - 1))), "z");
    else
        *z = half_to_float(g, LLVMBuildLoad2(g->b, g->i16, gep(g, g->i16, zeros, sidx), ""), s->scale_bf16);
}

/* The integer kernel (AVX-512 VNNI + VBMI): per chunk of CB blocks, the codes
 * become u8 lanes, either as P byte planes (2 and 4 bits, qj_cpu_xd_planes:
 * plane m is (bytes >> m B) & mask, one shift and one and, x's digits being
 * stored in the same order) or in natural order (V = 64 values, 32 where the
 * row or the groups allow no 2-block chunks: the codes' bytes spread so that
 * byte group q holds bytes qB..qB+7 of them (vpermb), vpmultishiftqb pulls
 * value 8q + j's B bits to byte 8q + j, a mask leaves the u8 codes; 8 bits:
 * the bytes themselves; 3 bits in 128-value chunks where qj_cpu_xd_w2 holds:
 * byte group q holds bytes 6q..6q+7, one spread feeding two multishifts,
 * codes 16q + j and 16q + 8 + j, x's digits in the same two halves). vpdpbusd
 * multiplies them by each of the three int8
 * digits of x (qj_cpu_kernels.h) into int32 lanes. At a span's end (a group,
 * or a chunk of gpc groups) the lanes become float (d0 + 256 d1 + 65536 d2,
 * exact below 2^24 per lane), times scale * xds[g] of each lane's group, into
 * a float vector; the scale * xds[g] of a row's groups and its sum of zero *
 * xsum[g] come from a pass 16 groups wide before them. */
#define QJ_INT_ROWS 4 /* rows per pass of the integer kernel (the default; QJ_CPU_ROWS: fewer): each digit load serves them all */
static void build_gemv_int(irb *g, const qj_cpu_kspec *s, LLVMValueRef fn, int R) {
    const int B = s->bits;
    /* the digits multiplied: D0..2 (D0 = 1: the low digit dropped, qj_cpu_int_xdigits; the top two are
     * q / 256 rounded, so the scale takes the 256) */
    const int D0 = 3 - qj_cpu_int_xdigits(B);
    const int64_t nb = QJ_NBLOCKS(s->K), ng = QJ_NGROUPS(s->K, s->group), gb = s->group / 32, rw = QJ_ROW_WORDS(s->K, B);
    /* the chunk: CB blocks whose codes are read at once, as P byte planes of V bytes (qj_cpu_xd_planes;
     * P = 1: natural order, V = 64 where the row and the groups allow 2-block chunks, else 32) */
    const int P = qj_cpu_xd_planes(B, s->group, s->K), W2 = qj_cpu_xd_w2(B, s->group, s->K);
    const int V = P > 1 || (nb % 2 == 0 && (gb % 2 == 0 || gb == 1)) ? 64 : 32, CB = P > 1 ? 2 * P : V / 32,
              L = V / 4, nbytes = 4 * B * CB;
    /* a span ends each group loop iteration: a group of whole chunks, or (gpc > 1) a chunk of gpc groups */
    const int gpc = gb < CB ? (int)(CB / gb) : 1;
    const int64_t sb = gpc > 1 ? CB : gb, nspan = gpc > 1 ? nb / CB : ng;
    LLVMTypeRef i8 = LLVMInt8TypeInContext(g->c), pi8 = LLVMPointerType(i8, 0);
    /* the chunk's bytes are loaded as <PB x i8>, PB the power of two >= nbytes: a masked load (one
     * instruction, no read past the chunk) when PB > nbytes */
    int PB = 16;
    while (PB < nbytes) PB *= 2;
    LLVMTypeRef vb = LLVMVectorType(i8, (unsigned)V), vin = LLVMVectorType(i8, (unsigned)PB),
                vi = LLVMVectorType(g->i32, (unsigned)L), vf = LLVMVectorType(g->f32, (unsigned)L);
    const char *mshift = V == 64 ? "llvm.x86.avx512.pmultishift.qb.512" : "llvm.x86.avx512.pmultishift.qb.256";
    const char *dpbusd = V == 64 ? "llvm.x86.avx512.vpdpbusd.512" : "llvm.x86.avx512.vpdpbusd.256";
    LLVMValueRef codes = LLVMGetParam(fn, 0), scales = LLVMGetParam(fn, 1), zeros = LLVMGetParam(fn, 2),
                 xsum = LLVMGetParam(fn, 4), xd = LLVMGetParam(fn, 5), xds = LLVMGetParam(fn, 6), y = LLVMGetParam(fn, 7),
                 row0 = LLVMGetParam(fn, 8), row1 = LLVMGetParam(fn, 9);
    /* constants, natural order below 8 bits: the byte spread (past the chunk's bytes: any of its bytes,
     * which only feed masked-off bits; one source, so that it stays one vpermb), the multishift offsets,
     * the code mask */
    /* (W2, 3 bits: byte group q = bytes 6q..6q+7, 16 codes; the second multishift takes codes 8..15 of it,
     * 24 bits further) */
    LLVMValueRef spread[64], ctrl[64], ctrl2[64], mask[64];
    for (int q = 0; q < V / 8; q++)
        for (int j = 0; j < 8; j++) {
            const int src = q * B * (W2 ? 2 : 1) + j;
            spread[8 * q + j] = ci32(g, src < nbytes ? src : nbytes - 1);
            ctrl[8 * q + j] = LLVMConstInt(i8, (unsigned long long)(j * B), 0);
            ctrl2[8 * q + j] = LLVMConstInt(i8, (unsigned long long)(8 * B + j * B), 0);
            mask[8 * q + j] = LLVMConstInt(i8, (unsigned long long)((1 << B) - 1), 0);
        }
    LLVMValueRef bm[64];
    for (int i = 0; i < PB; i++) bm[i] = LLVMConstInt(LLVMInt1TypeInContext(g->c), i < nbytes, 0);
    LLVMValueRef bmask = LLVMConstVector(bm, (unsigned)PB);
    LLVMValueRef spreadv = LLVMConstVector(spread, (unsigned)V), ctrlv = LLVMConstVector(ctrl, (unsigned)V),
                 ctrl2v = LLVMConstVector(ctrl2, (unsigned)V), maskv = LLVMConstVector(mask, (unsigned)V),
                 zi = LLVMConstNull(vi);

    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(g->c, fn, "entry"),
                      rhead = LLVMAppendBasicBlockInContext(g->c, fn, "rows"),
                      ghead = LLVMAppendBasicBlockInContext(g->c, fn, "group"),
                      chead = LLVMAppendBasicBlockInContext(g->c, fn, "chunk"),
                      gend = LLVMAppendBasicBlockInContext(g->c, fn, "group_end"),
                      rend = LLVMAppendBasicBlockInContext(g->c, fn, "rows_end"),
                      done = LLVMAppendBasicBlockInContext(g->c, fn, "done");
    LLVMPositionBuilderAtEnd(g->b, entry);
    LLVMValueRef rlast = LLVMBuildSub(g->b, row1, ci64(g, 1), "rlast");
    LLVMValueRef scratch = LLVMBuildAlloca(g->b, g->f32, "scratch");
    LLVMBuildStore(g->b, LLVMConstReal(g->f32, 0.0), scratch);
    /* per row of a pass: scale * xds[g] of every group, computed 16 groups at a time before the row's
     * group loop (which then only loads and broadcasts it) */
    const unsigned SL = 16;
    const int64_t ngp = (ng + SL - 1) / SL * SL;
    LLVMValueRef sxp[QJ_INT_ROWS];
    for (int j = 0; j < R; j++) {
        LLVMValueRef a = LLVMBuildAlloca(g->b, LLVMArrayType(g->f32, (unsigned)ngp), "sx");
        LLVMSetAlignment(a, 64);
        sxp[j] = LLVMBuildBitCast(g->b, a, LLVMPointerType(g->f32, 0), "");
    }
    /* pass i takes rows row0 + i + j m, j < R, m = ceil((row1 - row0) / R): R rows far apart, so
     * that their reads are R streams the prefetchers follow (R adjacent short rows are one) */
    const char *sp = getenv("QJ_CPU_SPREAD");
    const int spread_rows = !(sp && !strcmp(sp, "0"));
    /* the streams a few rows more than a quarter apart (about 10 KiB of codes, at most 1/32 of the
     * quarter: the last stream's extra passes repeat its last row): with exact quarters (512 rows
     * of 1 KiB for a 4096-row 2-bit layer on two threads) the four streams sit at the same offset
     * modulo large powers of two and read 5-15% slower (docs/PERFORMANCE.md); QJ_CPU_SKEW = rows
     * (0: exact quarters), read when a kernel is generated */
    const char *ske = getenv("QJ_CPU_SKEW");
    const int64_t row_bytes = rw * 4, skew0 = (10240 + row_bytes - 1) / row_bytes;
    const int64_t skew = ske ? atoi(ske) : skew0 < 1 ? 1 : skew0 > 64 ? 64 : skew0;
    LLVMValueRef rstride = spread_rows ? LLVMBuildSDiv(g->b, LLVMBuildAdd(g->b, LLVMBuildSub(g->b, row1, row0, ""), ci64(g, R - 1), ""),
                                                       ci64(g, R), "rstride")
                                       : ci64(g, 1);
    if (spread_rows && skew > 0 && R > 1) {
        LLVMValueRef cap = LLVMBuildSDiv(g->b, rstride, ci64(g, 32), "");
        LLVMValueRef sk = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, cap, ci64(g, skew), ""), cap, ci64(g, skew), "skew");
        rstride = LLVMBuildAdd(g->b, rstride, sk, "rstride_skewed");
    }
    LLVMValueRef rstop = spread_rows ? LLVMBuildAdd(g->b, row0, rstride, "rstop") : row1;
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, row0, row1, ""), rhead, done);

    /* R rows at a time: rows past row1 repeat the last one (computed, not stored) */
    LLVMPositionBuilderAtEnd(g->b, rhead);
    LLVMValueRef r = LLVMBuildPhi(g->b, g->i64, "r"), rowb[QJ_INT_ROWS], sbase[QJ_INT_ROWS];
    for (int j = 0; j < R; j++) {
        LLVMValueRef rj = LLVMBuildAdd(g->b, r, LLVMBuildMul(g->b, rstride, ci64(g, j), ""), "");
        rj = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, rj, row1, ""), rj, rlast, "");
        rowb[j] = LLVMBuildBitCast(g->b, gep(g, g->i32, codes, LLVMBuildMul(g->b, rj, ci64(g, rw), "")), pi8, "rowb");
        sbase[j] = LLVMBuildMul(g->b, rj, ci64(g, ng), "");
    }
    /* the scales pass: sx[j][g] = scale * xds[g]; acc0[j] = sum_g zero * xsum[g] (lanes past ng
     * masked off: loaded as zero) */
    LLVMBasicBlockRef phead = LLVMAppendBasicBlockInContext(g->c, fn, "scales"),
                      pend = LLVMAppendBasicBlockInContext(g->c, fn, "scales_end");
    LLVMBuildBr(g->b, phead);
    LLVMPositionBuilderAtEnd(g->b, phead);
    LLVMTypeRef vsf = LLVMVectorType(g->f32, SL);
    LLVMValueRef g0 = LLVMBuildPhi(g->b, g->i64, "g0"), zv[QJ_INT_ROWS], zvn[QJ_INT_ROWS], acc0[QJ_INT_ROWS];
    for (int j = 0; j < R; j++) zv[j] = LLVMBuildPhi(g->b, vsf, "zv");
    {
        int64_t iota[16];
        for (unsigned i = 0; i < SL; i++) iota[i] = i;
        LLVMValueRef lanes = LLVMBuildAdd(g->b, splat(g, LLVMBuildTrunc(g->b, g0, g->i32, ""), SL), cvec(g->i32, iota, (int)SL), "");
        LLVMValueRef m = LLVMBuildICmp(g->b, LLVMIntSLT, lanes, csplat(g->i32, SL, ng), "in");
        LLVMValueRef xdv = masked_load(g, g->f32, SL, gep(g, g->f32, xds, g0), m),
                     xsv = masked_load(g, g->f32, SL, gep(g, g->f32, xsum, g0), m);
        for (int j = 0; j < R; j++) {
            LLVMValueRef si = LLVMBuildAdd(g->b, sbase[j], g0, "");
            LLVMValueRef sc = half_to_float_n(g, masked_load(g, g->i16, SL, gep(g, g->i16, scales, si), m), s->scale_bf16, SL);
            LLVMValueRef z = s->symmetric ? LLVMBuildFMul(g->b, sc, splat(g, LLVMConstReal(g->f32, -(double)(1 << (B - 1))), SL), "z")
                                          : half_to_float_n(g, masked_load(g, g->i16, SL, gep(g, g->i16, zeros, si), m),
                                                            s->scale_bf16, SL);
            LLVMValueRef sxs = LLVMBuildFMul(g->b, sc, xdv, "sxv");
            if (D0) sxs = LLVMBuildFMul(g->b, sxs, splat(g, LLVMConstReal(g->f32, 256.0), SL), "");
            LLVMValueRef st = LLVMBuildStore(g->b, sxs,
                                             LLVMBuildBitCast(g->b, gep(g, g->f32, sxp[j], g0), LLVMPointerType(vsf, 0), ""));
            LLVMSetAlignment(st, 64);
            LLVMValueRef za[3] = {z, xsv, zv[j]};
            zvn[j] = call_intrinsic(g, "llvm.fmuladd", vsf, za, 3);
        }
    }
    LLVMValueRef g0n = LLVMBuildAdd(g->b, g0, ci64(g, SL), "");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, g0n, ci64(g, ng), ""), phead, pend);
    {
        LLVMValueRef gin[2] = {ci64(g, 0), g0n};
        LLVMBasicBlockRef pfrom[2] = {rhead, phead};
        LLVMAddIncoming(g0, gin, pfrom, 2);
        for (int j = 0; j < R; j++) {
            LLVMValueRef zin[2] = {LLVMConstNull(vsf), zvn[j]};
            LLVMAddIncoming(zv[j], zin, pfrom, 2);
        }
    }
    LLVMPositionBuilderAtEnd(g->b, pend);
    for (int j = 0; j < R; j++) acc0[j] = tree_sum(g, zvn[j]);
    LLVMBuildBr(g->b, ghead);

    LLVMPositionBuilderAtEnd(g->b, ghead);
    LLVMValueRef gi = LLVMBuildPhi(g->b, g->i64, "span"), accv[QJ_INT_ROWS];
    for (int j = 0; j < R; j++) accv[j] = LLVMBuildPhi(g->b, vf, "accv");
    LLVMValueRef b0 = LLVMBuildMul(g->b, gi, ci64(g, sb), "b0");
    LLVMValueRef bend = LLVMBuildAdd(g->b, b0, ci64(g, sb), "");
    bend = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, bend, ci64(g, nb), ""), bend, ci64(g, nb), "bend");
    /* software prefetch of each row's stream (docs/PERFORMANCE.md: 2048 bytes ahead, locality 2,
     * medians over widths 48-75% -> 55-98% of the read ceiling; 2- and 3-bit locality 3, into L1:
     * 2026-12-06, 3-bit faster on most layers (up to +47%), 2-bit down_proj +9-24%, 4- and 8-bit slower);
     * QJ_CPU_PF=0 turns it off, QJ_CPU_PFLOC sets the locality, both read when a kernel is generated,
     * so AOT code keeps the values it was built with. Chunks of fewer than 64 bytes (3-, 5- and 6-bit)
     * prefetch once per 64 bytes of the span, at its head, rather than once per chunk (3-bit: 24-byte
     * chunks, two or three prefetches a line); QJ_CPU_PFSPAN=0 keeps one per chunk */
    const char *pfe = getenv("QJ_CPU_PF"), *ple = getenv("QJ_CPU_PFLOC"), *pse = getenv("QJ_CPU_PFSPAN");
    const int pf_dist = pfe ? atoi(pfe) : 2048, pf_loc0 = ple ? atoi(ple) : B <= 3 ? 3 : 2;
    const int pf_loc = pf_loc0 < 0 ? 0 : pf_loc0 > 3 ? 3 : pf_loc0; /* llvm.prefetch takes 0..3 */
    const int pf_span = nbytes < 64 && !(pse && !strcmp(pse, "0"));
    const int64_t span_bytes = sb * 4 * B;
    LLVMTypeRef pft;
    LLVMValueRef pff;
    {
        LLVMTypeRef pt[4] = {pi8, g->i32, g->i32, g->i32};
        pft = LLVMFunctionType(LLVMVoidTypeInContext(g->c), pt, 4, 0);
        pff = LLVMGetNamedFunction(g->m, "llvm.prefetch.p0i8");
        if (!pff) pff = LLVMAddFunction(g->m, "llvm.prefetch.p0i8", pft);
    }
    if (pf_dist > 0 && pf_span) {
        LLVMValueRef sboff = LLVMBuildMul(g->b, b0, ci64(g, 4 * B), "");
        for (int j = 0; j < R; j++)
            for (int64_t o = 0; o < span_bytes; o += 64) {
                LLVMValueRef pa[4] = {gep(g, i8, rowb[j], LLVMBuildAdd(g->b, sboff, ci64(g, pf_dist + o), "")), ci32(g, 0),
                                      ci32(g, pf_loc), ci32(g, 1)};
                LLVMBuildCall2(g->b, pft, pff, pa, 4, "");
            }
    }
    LLVMBuildBr(g->b, chead);

    LLVMPositionBuilderAtEnd(g->b, chead);
    LLVMValueRef c = LLVMBuildPhi(g->b, g->i64, "c"), a[QJ_INT_ROWS][3], an[QJ_INT_ROWS][3], xv[4][3];
    for (int j = 0; j < R; j++)
        for (int d = D0; d < 3; d++) a[j][d] = LLVMBuildPhi(g->b, vi, "a");
    /* digits of plane m of the chunk at block c: V = 64, chunk c / CB at (c / CB) P 192 = 96 c; V = 32,
     * pair c / 2, half c % 2 */
    LLVMValueRef xoff = V == 64 ? LLVMBuildMul(g->b, c, ci64(g, 96), "")
                                : LLVMBuildAdd(g->b, LLVMBuildMul(g->b, LLVMBuildUDiv(g->b, c, ci64(g, 2), ""), ci64(g, 192), ""),
                                               LLVMBuildMul(g->b, LLVMBuildURem(g->b, c, ci64(g, 2), ""), ci64(g, 32), ""), "");
    for (int m = 0; m < P; m++)
        for (int d = D0; d < 3; d++) {
            LLVMValueRef xp = LLVMBuildBitCast(g->b, gep(g, i8, xd, LLVMBuildAdd(g->b, xoff, ci64(g, 64 * (3 * m + d)), "")),
                                               LLVMPointerType(vb, 0), "");
            xv[m][d] = LLVMBuildLoad2(g->b, vb, xp, "xd");
            LLVMSetAlignment(xv[m][d], 1); /* the runner aligns xd to 64 bytes; the kernel does not rely on it */
            xv[m][d] = LLVMBuildBitCast(g->b, xv[m][d], vi, "");
        }
    LLVMValueRef boff = LLVMBuildMul(g->b, c, ci64(g, 4 * B), "");
    for (int j = 0; j < R; j++) {
        if (pf_dist > 0 && !pf_span) { /* software prefetch pf_dist bytes ahead in each row's stream */
            LLVMValueRef pa[4] = {gep(g, i8, rowb[j], LLVMBuildAdd(g->b, boff, ci64(g, pf_dist), "")), ci32(g, 0), ci32(g, pf_loc), ci32(g, 1)};
            LLVMBuildCall2(g->b, pft, pff, pa, 4, "");
        }
        LLVMValueRef bytes;
        if (PB == nbytes) {
            bytes = LLVMBuildLoad2(g->b, vin, LLVMBuildBitCast(g->b, gep(g, i8, rowb[j], boff), LLVMPointerType(vin, 0), ""), "bytes");
            LLVMSetAlignment(bytes, 1);
        } else {
            bytes = masked_load(g, i8, (unsigned)PB, gep(g, i8, rowb[j], boff), bmask);
        }
        LLVMValueRef pl[4];
        if (W2) {
            /* one spread of the 48 bytes, two multishifts: codes 16q + j and 16q + 8 + j of byte group q */
            LLVMValueRef win = LLVMBuildShuffleVector(g->b, bytes, LLVMGetUndef(vin), spreadv, "win");
            for (int m = 0; m < 2; m++) {
                LLVMValueRef ms[2] = {m ? ctrl2v : ctrlv, win};
                LLVMValueRef cod = LLVMBuildAnd(g->b, call_intrinsic0(g, mshift, ms, 2), maskv, "codes");
                pl[m] = LLVMBuildBitCast(g->b, cod, vi, "");
            }
        } else if (P > 1) {
            /* plane m: bits 2m (B = 2) or 4m (B = 4) of every byte, by a 32-bit shift and a mask */
            LLVMValueRef w = LLVMBuildBitCast(g->b, bytes, vi, "");
            const int64_t m32 = 0x01010101LL * ((1 << B) - 1);
            for (int m = 0; m < P; m++) {
                LLVMValueRef t = m ? LLVMBuildLShr(g->b, w, csplat(g->i32, (unsigned)L, B * m), "") : w;
                pl[m] = LLVMBuildAnd(g->b, t, csplat(g->i32, (unsigned)L, m32), "plane");
            }
        } else if (B == 8) {
            pl[0] = LLVMBuildBitCast(g->b, bytes, vi, "codes"); /* the bytes are the codes */
        } else {
            LLVMValueRef win = LLVMBuildShuffleVector(g->b, bytes, LLVMGetUndef(vin), spreadv, "win");
            LLVMValueRef ms[2] = {ctrlv, win};
            LLVMValueRef cod = call_intrinsic0(g, mshift, ms, 2);
            cod = LLVMBuildAnd(g->b, cod, maskv, "codes");
            pl[0] = LLVMBuildBitCast(g->b, cod, vi, "");
        }
        for (int d = D0; d < 3; d++) {
            LLVMValueRef acc = a[j][d];
            for (int m = 0; m < P; m++) {
                LLVMValueRef da[3] = {acc, pl[m], xv[m][d]};
                acc = call_intrinsic0(g, dpbusd, da, 3);
            }
            an[j][d] = acc;
        }
    }
    LLVMValueRef cn = LLVMBuildAdd(g->b, c, ci64(g, CB), "");
    LLVMBasicBlockRef cexit = LLVMGetInsertBlock(g->b);
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, cn, bend, ""), chead, gend);
    {
        LLVMValueRef cin[2] = {b0, cn};
        LLVMBasicBlockRef cfrom[2] = {ghead, cexit};
        LLVMAddIncoming(c, cin, cfrom, 2);
        for (int j = 0; j < R; j++)
            for (int d = D0; d < 3; d++) {
                LLVMValueRef ain[2] = {zi, an[j][d]};
                LLVMAddIncoming(a[j][d], ain, cfrom, 2);
            }
    }

    LLVMPositionBuilderAtEnd(g->b, gend);
    LLVMValueRef accvn[QJ_INT_ROWS], lanes_g = NULL;
    if (gpc > 1) { /* lane t of a chunk of gpc groups belongs to its group t / (L / gpc) */
        LLVMValueRef e[16];
        for (int t = 0; t < L; t++) e[t] = ci32(g, t / (L / gpc));
        lanes_g = LLVMConstVector(e, (unsigned)L);
    }
    /* the lowest two digits' sums joined in int32 (lo + 256 hi, one conversion) where a lane's sums cannot reach
     * 2^31 / 257: span values / lanes x the largest code x 128 */
    const double lane_max = (double)(sb * 32 / L) * (double)((1 << B) - 1) * 128.0;
    const char *ice = getenv("QJ_CPU_ICOMB");
    const int icomb = lane_max * 257.0 < 2147483647.0 && !(ice && !strcmp(ice, "0"));
    for (int j = 0; j < R; j++) {
        /* lo + 256 hi (the lowest two digits; with two digits the scale has the other 256), then + 65536 f2 */
        LLVMValueRef lo = an[j][D0], hi = an[j][D0 + 1], f;
        if (icomb) {
            f = LLVMBuildSIToFP(g->b, LLVMBuildAdd(g->b, lo, LLVMBuildShl(g->b, hi, csplat(g->i32, (unsigned)L, 8), ""), "lohi"),
                                vf, "");
        } else {
            LLVMValueRef m1[3] = {LLVMBuildSIToFP(g->b, hi, vf, ""), splat(g, LLVMConstReal(g->f32, 256.0), (unsigned)L),
                                  LLVMBuildSIToFP(g->b, lo, vf, "")};
            f = call_intrinsic(g, "llvm.fmuladd", vf, m1, 3);
        }
        if (!D0) {
            LLVMValueRef m2[3] = {LLVMBuildSIToFP(g->b, an[j][2], vf, ""), splat(g, LLVMConstReal(g->f32, 65536.0), (unsigned)L), f};
            f = call_intrinsic(g, "llvm.fmuladd", vf, m2, 3);
        }
        LLVMValueRef sxv;
        if (gpc > 1) {
            LLVMTypeRef vg = LLVMVectorType(g->f32, (unsigned)gpc);
            LLVMValueRef sxg = LLVMBuildLoad2(g->b, vg,
                                              LLVMBuildBitCast(g->b, gep(g, g->f32, sxp[j], LLVMBuildMul(g->b, gi, ci64(g, gpc), "")),
                                                               LLVMPointerType(vg, 0), ""),
                                              "sx");
            LLVMSetAlignment(sxg, 4);
            sxv = LLVMBuildShuffleVector(g->b, sxg, LLVMGetUndef(vg), lanes_g, "sxl");
        } else {
            sxv = splat(g, LLVMBuildLoad2(g->b, g->f32, gep(g, g->f32, sxp[j], gi), "sx"), (unsigned)L);
        }
        LLVMValueRef a2[3] = {sxv, f, accv[j]};
        accvn[j] = call_intrinsic(g, "llvm.fmuladd", vf, a2, 3);
    }
    LLVMValueRef gn = LLVMBuildAdd(g->b, gi, ci64(g, 1), "");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, gn, ci64(g, nspan), ""), ghead, rend);
    {
        LLVMValueRef gin[2] = {ci64(g, 0), gn};
        LLVMBasicBlockRef gfrom[2] = {pend, gend};
        LLVMAddIncoming(gi, gin, gfrom, 2);
        for (int j = 0; j < R; j++) {
            LLVMValueRef avin[2] = {LLVMConstNull(vf), accvn[j]};
            LLVMAddIncoming(accv[j], avin, gfrom, 2);
        }
    }

    /* store the rows that exist, next R */
    LLVMPositionBuilderAtEnd(g->b, rend);
    for (int j = 0; j < R; j++) {
        LLVMValueRef rj = LLVMBuildAdd(g->b, r, LLVMBuildMul(g->b, rstride, ci64(g, j), ""), "");
        LLVMValueRef v = LLVMBuildFAdd(g->b, tree_sum(g, accvn[j]), acc0[j], "");
        /* a repeat of the last row goes to a scratch slot */
        LLVMValueRef in = LLVMBuildICmp(g->b, LLVMIntSLT, rj, row1, "");
        LLVMValueRef yp = LLVMBuildSelect(g->b, in, gep(g, g->f32, y, LLVMBuildSelect(g->b, in, rj, rlast, "")), scratch, "");
        LLVMBuildStore(g->b, v, yp);
    }
    LLVMValueRef rn = LLVMBuildAdd(g->b, r, spread_rows ? ci64(g, 1) : ci64(g, R), "");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, rn, rstop, ""), rhead, done);
    {
        LLVMValueRef rin[2] = {row0, rn};
        LLVMBasicBlockRef rfrom[2] = {entry, rend};
        LLVMAddIncoming(r, rin, rfrom, 2);
    }
    LLVMPositionBuilderAtEnd(g->b, done);
    LLVMBuildRetVoid(g->b);
}

static int int_rows(void) {
    const char *e = getenv("QJ_CPU_ROWS");
    int r = e ? atoi(e) : QJ_INT_ROWS; /* every shape (was 1 up to K = 8192): with the rows far apart, 4 won for all */
    return r < 1 ? 1 : r > QJ_INT_ROWS ? QJ_INT_ROWS : r;
}

static void build_gemv(irb *g, const qj_cpu_kspec *s, const char *name) {
    const int B = s->bits;
    const int64_t nb = QJ_NBLOCKS(s->K), ng = QJ_NGROUPS(s->K, s->group), gb = s->group / 32, rw = QJ_ROW_WORDS(s->K, B);
    LLVMTypeRef pi32 = LLVMPointerType(g->i32, 0), pi16 = LLVMPointerType(g->i16, 0), pf32 = LLVMPointerType(g->f32, 0),
                pi8 = LLVMPointerType(LLVMInt8TypeInContext(g->c), 0);
    LLVMTypeRef params[10] = {pi32, pi16, pi16, pf32, pf32, pi8, pf32, pf32, g->i64, g->i64};
    LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(g->c), params, 10, 0);
    LLVMValueRef fn = LLVMAddFunction(g->m, name, fty);
    for (unsigned i = 0; i < 8; i++) {
        LLVMAddAttributeAtIndex(fn, i + 1, LLVMCreateEnumAttribute(g->c, LLVMGetEnumAttributeKindForName("noalias", 7), 0));
    }
    if (g->vnni) {
        build_gemv_int(g, s, fn, int_rows());
        return;
    }
    LLVMValueRef codes = LLVMGetParam(fn, 0), scales = LLVMGetParam(fn, 1), zeros = LLVMGetParam(fn, 2),
                 x = LLVMGetParam(fn, 3), xsum = LLVMGetParam(fn, 4), y = LLVMGetParam(fn, 7), row0 = LLVMGetParam(fn, 8),
                 row1 = LLVMGetParam(fn, 9);
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
    LLVMValueRef sc, z;
    scale_zero(g, s, scales, zeros, LLVMBuildAdd(g->b, sbase, gi, ""), &sc, &z);
    LLVMValueRef xs = LLVMBuildLoad2(g->b, g->f32, gep(g, g->f32, xsum, gi), "xs");
    LLVMValueRef a1[3] = {z, xs, acc};
    LLVMValueRef accn = call_intrinsic(g, "llvm.fmuladd", g->f32, a1, 3);
    LLVMValueRef a2[3] = {splat(g, sc, LLVMGetVectorSize(vacc)), vn, accv};
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

/* A module for triple/tm in context c, and the builder's types. */
static void irb_begin(irb *g, LLVMContextRef c, const char *name, const char *triple, const char *features,
                      LLVMTargetMachineRef tm) {
    g->c = c;
    g->soft_f16 = (!strncmp(triple, "x86_64", 6) || !strncmp(triple, "i686", 4)) && !has_feature(features, "f16c", 4);
    g->vnni = qj_cpu_int_kernels(triple, features);
    g->m = LLVMModuleCreateWithNameInContext(name, g->c);
    g->b = LLVMCreateBuilderInContext(g->c);
    g->i16 = LLVMInt16TypeInContext(g->c);
    g->i32 = LLVMInt32TypeInContext(g->c);
    g->i64 = LLVMInt64TypeInContext(g->c);
    g->f32 = LLVMFloatTypeInContext(g->c);
    g->f16 = LLVMHalfTypeInContext(g->c);
    g->v32i32 = LLVMVectorType(g->i32, 32);
    g->v32i64 = LLVMVectorType(g->i64, 32);
    g->v32f32 = LLVMVectorType(g->f32, 32);
    LLVMSetTarget(g->m, triple);
    LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(g->m, dl);
    LLVMDisposeTargetData(dl);
}

/* Verify and optimise the module (the builder is disposed; the module stays). */
static qj_status irb_finish(irb *g, LLVMTargetMachineRef tm, const char *name) {
    LLVMDisposeBuilder(g->b);
    g->b = NULL;
    qj_status st = QJ_OK;
    char *msg = NULL;
    if (LLVMVerifyModule(g->m, LLVMReturnStatusAction, &msg)) st = qj_fail(QJ_ERR_INTERNAL, "LLVM: %s does not verify: %s", name, msg);
    LLVMDisposeMessage(msg);
    if (!st) {
        LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
        LLVMErrorRef e = LLVMRunPasses(g->m, "default<O3>", tm, po);
        LLVMDisposePassBuilderOptions(po);
        if (e) st = llvm_fail(e, "optimising");
    }
    const char *dump = getenv("QJ_LLVM_DUMP"); /* debugging: the optimised kernel's assembly on stderr */
    if (!st && dump && !strcmp(dump, "1")) {
        LLVMMemoryBufferRef mb = NULL;
        char *em = NULL;
        if (!LLVMTargetMachineEmitToMemoryBuffer(tm, g->m, LLVMAssemblyFile, &em, &mb)) {
            fprintf(stderr, "%.*s\n", (int)LLVMGetBufferSize(mb), LLVMGetBufferStart(mb));
            LLVMDisposeMemoryBuffer(mb);
        }
        LLVMDisposeMessage(em);
    }
    return st;
}

qj_status qj_cpu_jit_gemv(qj_cpu_jit *j, const qj_cpu_kspec *s, qj_cpu_gemv_fn *fn) {
    *fn = NULL;
    if (s->bits < QJ_MIN_BITS || s->bits > QJ_MAX_BITS || s->group < 32 || s->group % 32 || s->N < 1 || s->K < 1)
        return qj_fail(QJ_ERR_INVALID, "CPU kernel spec: %d bits, group %d, %lld x %lld", s->bits, s->group,
                       (long long)s->N, (long long)s->K);
    pthread_mutex_lock(&j->lock);
    int id = j->next_id++;
    pthread_mutex_unlock(&j->lock);
    char name[160], suffix[16];
    snprintf(suffix, sizeof suffix, "_%d", id);
    qj_cpu_kspec_name(s, suffix, name, sizeof name);
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    irb g;
    irb_begin(&g, LLVMOrcThreadSafeContextGetContext(tsc), name, j->triple, j->features, j->tm);
    build_gemv(&g, s, name);
    qj_status st = irb_finish(&g, j->tm, name);
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

/* ---- ahead of time ---- */

static pthread_once_t all_once = PTHREAD_ONCE_INIT;
static void llvm_init_all(void) { /* every target this LLVM has, for cross compiling */
    LLVMInitializeAllTargetInfos();
    LLVMInitializeAllTargets();
    LLVMInitializeAllTargetMCs();
    LLVMInitializeAllAsmPrinters();
}

qj_status qj_cpu_aot_compile(const qj_model *m, const qj_cpu_target *t, qj_cpu_code *out, double *seconds) {
    memset(out, 0, sizeof *out);
    double t0 = qj_now();
    pthread_once(&init_once, llvm_init);
    pthread_once(&all_once, llvm_init_all);
    qj_cpu_kspec *specs = NULL;
    int n = 0;
    qj_status st = qj_cpu_model_specs(m, &specs, &n);
    if (st) return st;
    LLVMTargetRef T;
    char *err = NULL;
    if (LLVMGetTargetFromTriple(t->triple, &T, &err)) {
        st = qj_fail(QJ_ERR_UNSUPPORTED, "LLVM %s has no target for %s: %s", LLVM_VERSION_STRING, t->triple, err ? err : "?");
        LLVMDisposeMessage(err);
        free(specs);
        return st;
    }
    /* position independent: the object links into PIE executables and shared libraries, and ORC loads it */
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(T, t->triple, t->cpu, t->features, LLVMCodeGenLevelAggressive,
                                                      LLVMRelocPIC, LLVMCodeModelDefault);
    if (!tm) {
        free(specs);
        return qj_fail(QJ_ERR_UNSUPPORTED, "LLVM: no target machine for %s, CPU %s", t->triple, t->cpu);
    }
    /* symbols unique per target: exports for two targets link into one program */
    char key[4400], suffix[32];
    snprintf(key, sizeof key, "%s|%s|%s|%d", t->triple, t->cpu, t->features, QJ_CPU_KERNEL_ABI);
    snprintf(suffix, sizeof suffix, "_%08x", (unsigned)(qj_checksum(key, strlen(key)) & 0xffffffffu));
    out->kernels = calloc((size_t)(n ? n : 1), sizeof *out->kernels);
    out->features = strdup(t->features);
    if (!out->kernels || !out->features) {
        st = qj_fail(QJ_ERR_NOMEM, "out of memory");
        goto done;
    }
    LLVMContextRef ctx = LLVMContextCreate();
    irb g;
    irb_begin(&g, ctx, "qjit_cpu_code", t->triple, t->features, tm);
    for (int i = 0; i < n; i++) {
        qj_cpu_code_kernel *k = &out->kernels[i];
        qj_cpu_kspec_name(&specs[i], suffix, k->symbol, sizeof k->symbol);
        build_gemv(&g, &specs[i], k->symbol);
        /* identical code under one name wherever it comes from: a program may link two exports */
        LLVMSetLinkage(LLVMGetNamedFunction(g.m, k->symbol), LLVMWeakODRLinkage);
        k->bits = specs[i].bits;
        k->group = specs[i].group;
        k->N = specs[i].N;
        k->K = specs[i].K;
        k->symmetric = specs[i].symmetric;
        k->scale_bf16 = specs[i].scale_bf16;
        out->n_kernels++;
    }
    st = irb_finish(&g, tm, "qjit_cpu_code");
    if (!st) {
        LLVMMemoryBufferRef mb = NULL;
        char *em = NULL;
        if (LLVMTargetMachineEmitToMemoryBuffer(tm, g.m, LLVMObjectFile, &em, &mb)) {
            st = qj_fail(QJ_ERR_COMPILE, "LLVM: emitting object code for %s (%s): %s", t->triple, t->cpu, em ? em : "?");
        } else {
            size_t len = LLVMGetBufferSize(mb);
            void *obj = malloc(len ? len : 1);
            if (!obj) st = qj_fail(QJ_ERR_NOMEM, "out of memory");
            else {
                memcpy(obj, LLVMGetBufferStart(mb), len);
                out->object = obj;
                out->len = len;
            }
            LLVMDisposeMemoryBuffer(mb);
        }
        LLVMDisposeMessage(em);
    }
    LLVMDisposeModule(g.m);
    LLVMContextDispose(ctx);
done:
    LLVMDisposeTargetMachine(tm);
    free(specs);
    if (st) {
        free(out->kernels);
        free(out->features);
        memset(out, 0, sizeof *out);
        return st;
    }
    snprintf(out->triple, sizeof out->triple, "%s", t->triple);
    snprintf(out->cpu, sizeof out->cpu, "%s", t->cpu);
    snprintf(out->level, sizeof out->level, "%s", t->level);
    snprintf(out->llvm, sizeof out->llvm, "%s", LLVM_VERSION_STRING);
    out->abi = QJ_CPU_KERNEL_ABI;
    if (seconds) *seconds = qj_now() - t0;
    return QJ_OK;
}

#endif
