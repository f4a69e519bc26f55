/* llvm_kernels.h — CPU kernels generated with the LLVM C API (no textual IR)
 * and compiled for the host's CPU by ORC's LLJIT: a fused dequantize + GEMV
 * per kernel spec (bits, group, shape, symmetric, scale dtype), reading the
 * packed layout of templates/qj_layout.h unchanged.
 *
 * Also ahead of time: qj_cpu_aot_compile emits one relocatable object with
 * the kernels of a model for a target (the host, an x86-64 psABI level, or
 * another architecture), which a package carries (qj_cpu_code); loading such
 * a package links that object with ORC instead of compiling
 * (qj_cpu_kernels_attach_ex), and `qjit export` links it into applications.
 * The spec, calling convention and binding live in runtime/qj_cpu_kernels.h.
 *
 * Ownership: a qj_cpu_jit owns every kernel it compiled or linked; kernel
 * function pointers stay valid until qj_cpu_jit_free. A qj_cpu_jit may be
 * used from several threads; the kernels themselves are reentrant.
 * qj_cpu_aot_compile fills a qj_cpu_code whose object, features and kernels
 * are malloc'd and owned by the caller (qj_cpu_code_free frees all but the
 * object, which is freed with free()); on failure nothing is left to free.
 *
 * Builds without LLVM (QJ_HAVE_LLVM undefined) keep these functions, which
 * then fail with QJ_ERR_UNSUPPORTED naming the missing LLVM.
 */
#ifndef QJ_LLVM_KERNELS_H
#define QJ_LLVM_KERNELS_H

#include <stdint.h>

#include "qj_cpu_kernels.h"
#include "qj_model.h"
#include "qj_status.h"
#include "qj_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qj_cpu_jit qj_cpu_jit;

/* 1 when this build has LLVM. */
int qj_cpu_llvm_available(void);
/* An LLJIT for the host CPU (name and features from LLVM's host queries). */
qj_status qj_cpu_jit_create(qj_cpu_jit **out);
void qj_cpu_jit_free(qj_cpu_jit *j);
/* "znver3 (avx512)": the host CPU LLVM compiles for and the widest vector
 * level its features allow (avx512, avx2, sse). */
const char *qj_cpu_jit_target(const qj_cpu_jit *j);
/* The kernel of a spec: IR built, verified, optimised (default<O3>), JIT
 * compiled; LLVM's messages become qjit errors. */
qj_status qj_cpu_jit_gemv(qj_cpu_jit *j, const qj_cpu_kspec *s, qj_cpu_gemv_fn *fn);
/* Whether kernels for this target are the integer ones (x86-64 with AVX-512 VNNI, VBMI, BW, VL:
 * u8 codes x int8 digits of x on vpdpbusd) rather than the float ones; QJ_CPU_INT=0 forces float. */
int qj_cpu_int_kernels(const char *triple, const char *features);
/* How many of x's three digits an integer kernel of this width multiplies (read when a kernel is
 * generated): 2 for 2- and 3-bit weights, which then see x rounded to 2^-15.7 of its group's
 * largest |x| (the low digit dropped: 1.5e-5, against their own ~1e-1 quantization error), 3 (x to
 * fp32's rounding) for the rest: a third fewer dot products (8 vpdpbusd per 256-code chunk and row
 * instead of 12) where each code byte carries the most work. QJ_CPU_XDIGITS=2|3 sets it for every width. */
int qj_cpu_int_xdigits(int bits);
/* Links a relocatable object (copied) into the JIT; nothing is compiled. */
qj_status qj_cpu_jit_add_object(qj_cpu_jit *j, const void *obj, size_t len, const char *name);
/* The address of a symbol of an added object, as a kernel. */
qj_status qj_cpu_jit_lookup(qj_cpu_jit *j, const char *symbol, qj_cpu_gemv_fn *fn);

/* What CPU code is compiled for. features: LLVM's feature string. */
typedef struct qj_cpu_target {
    char triple[64];    /* x86_64-pc-linux-gnu */
    char cpu[64];       /* znver4 (the host), x86-64-v3, generic */
    char level[16];     /* avx512, avx2, sse on x86-64; the architecture elsewhere */
    char features[4096];
} qj_cpu_target;
/* This machine, from LLVM's host queries. */
qj_status qj_cpu_target_host(qj_cpu_target *t);
/* "host"; an x86-64 psABI level "x86-64", "x86-64-v2", "x86-64-v3",
 * "x86-64-v4" (their features spelled out, so a package says what it needs);
 * or "TRIPLE:CPU[:FEATURES]" for another architecture (cross compiling, e.g.
 * "aarch64-unknown-linux-gnu:generic"). Errors say what was expected. */
qj_status qj_cpu_target_parse(const char *spec, qj_cpu_target *t);
/* The LLVM version qjit was built with ("14.0.6"). */
const char *qj_cpu_llvm_version(void);

/* Object code for every distinct packed-linear spec of m, compiled for t
 * (position independent, so it links into executables and shared libraries). */
qj_status qj_cpu_aot_compile(const qj_model *m, const qj_cpu_target *t, qj_cpu_code *out, double *seconds);

/* Can the package's code c run on host with this qjit? 1 yes; 0 no, and why
 * (one clause: "built for aarch64-unknown-linux-gnu, this machine is x86_64-...",
 * "needs +avx512f, which this CPU (znver3) lacks", "kernel ABI 0, this qjit's is 1"). */
int qj_cpu_code_matches(const qj_cpu_code *c, const qj_cpu_target *host, char *why, size_t why_len);
/* The entry of m->cpu_code that runs best on host (exact CPU first, then the
 * most features), or -1; why explains the first entry's mismatch. */
int qj_cpu_code_pick(const qj_model *m, const qj_cpu_target *host, char *why, size_t why_len);

/* JIT kernels for every packed linear of m (one per distinct spec) attached
 * to m (m->cpu_matvec), so the CPU forward pass (qj_forward, eval, generate,
 * bench --device cpu) runs them instead of the reference. *n_kernels and
 * *seconds: distinct kernels compiled and the time it took (either may be
 * NULL). Detach and free with qj_cpu_kernels_free before m is freed. */
typedef struct qj_cpu_kernels qj_cpu_kernels;
qj_status qj_cpu_kernels_attach(qj_model *m, qj_cpu_kernels **out, int *n_kernels, double *seconds);

/* What to do with a package's CPU code (qjit --cpu-code): */
typedef enum qj_cpu_code_mode {
    QJ_CPU_CODE_AUTO = 0, /* link it when it matches this machine, else JIT (and say why) */
    QJ_CPU_CODE_REQUIRE,  /* link it; fail when it is missing or does not match */
    QJ_CPU_CODE_JIT       /* ignore it: compile the kernels with LLVM */
} qj_cpu_code_mode;
/* "auto", "require", "jit"; an error names the value and the choices. */
qj_status qj_cpu_code_mode_parse(const char *s, qj_cpu_code_mode *out);

typedef struct qj_cpu_attach_info {
    int n_kernels;      /* distinct kernels bound */
    int from_package;   /* 1: the package's object code was linked, nothing compiled */
    double seconds;     /* creating the JIT + linking or compiling + binding */
    char note[512];     /* AUTO when the package has CPU code it could not use: why,
                         * and that the kernels were compiled instead ("" otherwise) */
} qj_cpu_attach_info;
/* qj_cpu_kernels_attach, taking m->cpu_code (a package's) into account. */
qj_status qj_cpu_kernels_attach_ex(qj_model *m, qj_cpu_code_mode mode, qj_cpu_kernels **out, qj_cpu_attach_info *info);
void qj_cpu_kernels_free(qj_model *m, qj_cpu_kernels *k);
const char *qj_cpu_kernels_target(const qj_cpu_kernels *k);

/* Kernels kept across models (the search's trials compile a model each): one JIT, and every
 * spec it compiled, so a spec seen before is bound again without compiling. The kernels of a
 * model attached through the cache are the cache's: free them (qj_cpu_kernels_free) before
 * the cache. qj_cpu_kcache_free(NULL) is a no-op. */
typedef struct qj_cpu_kcache qj_cpu_kcache;
qj_status qj_cpu_kcache_new(qj_cpu_kcache **out);
void qj_cpu_kcache_free(qj_cpu_kcache *c);
int qj_cpu_kcache_size(const qj_cpu_kcache *c); /* specs compiled so far */
/* qj_cpu_kernels_attach through the cache (always JIT; a package's CPU code is not used);
 * *compiled: kernels of this model compiled now (the rest came from the cache). */
qj_status qj_cpu_kernels_attach_cached(qj_model *m, qj_cpu_kcache *c, qj_cpu_kernels **out, qj_cpu_attach_info *info,
                                       int *compiled);

#ifdef __cplusplus
}
#endif
#endif
