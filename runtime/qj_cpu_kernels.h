/* qj_cpu_kernels.h — CPU GEMV kernels as the runtime sees them, whoever made
 * them: the spec of a packed linear, the calling convention of a generated
 * kernel, running one (row split across threads), and binding a set of
 * kernels to a model's packed linears (m->cpu_matvec). No LLVM here: the JIT
 * (compiler/llvm_kernels.h), a package's ahead-of-time objects linked by ORC,
 * and an exported application's statically linked objects all end here.
 *
 * Ownership: a qj_cpu_binding borrows the kernels' code (whoever compiled or
 * linked it keeps it alive) and the model; qj_cpu_binding_free detaches it
 * from the model and frees only the binding (NULL is a no-op).
 */
#ifndef QJ_CPU_KERNELS_H
#define QJ_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "qj_model.h"
#include "qj_status.h"
#include "qj_tensor.h"
#include "qj_layout.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The calling convention below; a kernel compiled for another ABI (a package
 * written by a qjit with a different one) is not used. */
#define QJ_CPU_KERNEL_ABI 4 /* 3: x digits in byte-plane order for 2 and 4 bits; 4: and in half order for 3 bits */
/* One linear layer's CPU kernel: packed weights (bits 2..8), resolved group
 * (a multiple of 32; per channel = K rounded up to 32), shape N x K. */
typedef struct qj_cpu_kspec {
    int bits, group;
    int64_t N, K;
    int symmetric, scale_bf16;
} qj_cpu_kspec;

/* The integer kernels' activations: per group g, xds[g] = max |x| over the
 * group / QJ_CPU_XQ, and each x[k] as q = round(x[k] / xds[g]) (|q| <=
 * QJ_CPU_XQ) in three balanced base-256 digits (int8, q = d0 + 256 d1 +
 * 65536 d2), stored per chunk of 64 P values (P = qj_cpu_xd_planes, the
 * kernel's byte planes): digit d of x[k] at xd[((c P + m) 3 + d) 64 + j],
 * c = k / (64 P), r = k % (64 P), m = r % P, j = (r / 32) (32 / P) + (r % 32)
 * / P (P = 1: xd[(3 c + d) 64 + r]), zero past K. 3 bits where
 * qj_cpu_xd_w2 holds: chunks of 128 values in two halves of 64 (P = 2, the
 * kernel's two code vectors of one byte spread): r = k % 128 is in half
 * m = (r / 8) % 2 at j = 8 (r / 16) + r % 8. */
#define QJ_CPU_XQ 8355711
#define QJ_CPU_XD_BYTES(K) ((size_t)((QJ_NBLOCKS(K) + 7) / 8) * 768) /* any P */
/* P for a spec (bits, resolved group, K): 8 / bits for 2 and 4 bits when a row
 * is whole 64-byte chunks of codes (2 P blocks) and a group is whole chunks or
 * a chunk whole groups; 1 otherwise. With P > 1 the kernel splits a chunk's
 * bytes into P planes by shifts (plane m: bits m B.. of each byte) instead of
 * spreading them with a byte permute. */
/* 3 bits, rows of whole 128-value chunks, groups of whole chunks or a chunk
 * of whole groups: the kernel spreads 48 bytes of codes once (byte group q
 * of the vector = bytes 6q..6q+7) and two multishifts take codes 16q + j and
 * 16q + 8 + j (j < 8) out of it, so x's digits are stored in that order. */
static inline int qj_cpu_xd_w2(int bits, int group, int64_t K) {
    const int64_t gb = group / 32;
    return bits == 3 && QJ_NBLOCKS(K) % 4 == 0 && (gb % 4 == 0 || gb == 1 || gb == 2);
}
static inline int qj_cpu_xd_planes(int bits, int group, int64_t K) {
    if (qj_cpu_xd_w2(bits, group, K)) return 2;
    if (bits != 2 && bits != 4) return 1;
    const int P = 8 / bits, cv = 64 * P;
    if (QJ_NBLOCKS(K) % (2 * P)) return 1;
    return group % cv == 0 || cv % group == 0 ? P : 1;
}

/* y[r] = sum_k W[r][k] x[k] for rows [row0, row1): codes uint32
 * [N][QJ_ROW_WORDS(K, bits)], scales (and zeros, asymmetric) uint16
 * [N][NGROUPS] as f16 or bf16, x fp32 [NBLOCKS*32] zero past K (for 2 and
 * 4 bits each 32-value block re-ordered so that value (8/bits) i + m sits at
 * m*4*bits + i), xsum fp32 [NGROUPS] = the sums of x over each group, xd and
 * xds the same x as digits (above). qj_cpu_gemv_run makes all of them; a
 * kernel reads x (the float kernels) or xd and xds (the integer kernels, on
 * x86 with AVX-512 VNNI and VBMI). */
typedef void (*qj_cpu_gemv_fn)(const uint32_t *codes, const uint16_t *scales, const uint16_t *zeros, const float *x,
                               const float *xsum, const int8_t *xd, const float *xds, float *y, int64_t row0,
                               int64_t row1);
/* The spec of a packed tensor (QJ_ERR_INVALID for other dtypes). */
qj_status qj_cpu_kspec_of(const qj_tensor *w, qj_cpu_kspec *s);
int qj_cpu_kspec_equal(const qj_cpu_kspec *a, const qj_cpu_kspec *b);
/* "qj_cpu_dqmv_b4_g64_sym_sbf16_n64_k172" + suffix: a kernel's symbol. */
void qj_cpu_kspec_name(const qj_cpu_kspec *s, const char *suffix, char *buf, size_t n);
/* The distinct specs of m's packed linears (q..down of every layer, then the
 * head), in first-use order: *specs malloc'd (caller frees), *n may be 0. */
qj_status qj_cpu_model_specs(const qj_model *m, qj_cpu_kspec **specs, int *n);

/* y = W x with a kernel of W's spec, rows split across the OpenMP threads
 * when W is large and no parallel region is running (x: K floats; padding
 * and group sums are made here). */
qj_status qj_cpu_gemv_run(qj_cpu_gemv_fn fn, const qj_tensor *w, const float *x, float *y);

/* Gives the kernel of a spec (or fails, with the message set). */
typedef qj_status (*qj_cpu_kernel_lookup)(void *ctx, const qj_cpu_kspec *s, qj_cpu_gemv_fn *fn);

/* Binds a kernel to every packed linear of m (lookup called once per
 * distinct spec) and sets m->cpu_matvec. *n_distinct may be NULL. On failure
 * m is left as it was. */
typedef struct qj_cpu_binding qj_cpu_binding;
qj_status qj_cpu_bind(qj_model *m, qj_cpu_kernel_lookup lookup, void *ctx, qj_cpu_binding **out, int *n_distinct);
void qj_cpu_binding_free(qj_model *m, qj_cpu_binding *b);

/* Does the x86-64 CPU running this code have the vector-ISA features of an
 * LLVM feature string ("+avx2,+fma,-avx512f,...": the "+" entries among
 * sse2..avx512*, bmi, fma, popcnt; others are not checked)? 1 yes, 0 no
 * (*missing, when not NULL, names the first missing one), -1 when this build
 * cannot tell (not x86-64). Needs no LLVM (exported applications use it). */
int qj_cpu_host_has(const char *features, char *missing, size_t missing_len);

#ifdef __cplusplus
}
#endif
#endif
