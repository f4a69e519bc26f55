/* cpu_resident.c — the compute side of one LLVM CPU kernel: a random layer of
 * BITS x GROUP, N x K, small enough to stay in the caches, quantized, its
 * kernel JIT-compiled for this host and run through qj_cpu_gemv_run (x's prep
 * included) on ONE thread; prints the best of ITERS timings of 20 calls each.
 * On a shared VM whose DRAM bandwidth moves from run to run this separates a
 * kernel's instruction cost from the memory's noise (docs/PERFORMANCE.md).
 *   qj_cpu_resident BITS GROUP N K [ITERS]      e.g. 3 128 2048 4096 40 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "llvm_kernels.h"
#include "qj_cpu_kernels.h"
#include "quant.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s BITS GROUP N K [ITERS]\n", argv[0]);
        return 2;
    }
    const int B = atoi(argv[1]), G = atoi(argv[2]), iters = argc > 5 ? atoi(argv[5]) : 40;
    const long N = atol(argv[3]), K = atol(argv[4]);
    if (B < 2 || B > 8 || G < 0 || G % 32 || N < 1 || K < 1 || N * K > (1L << 28) || iters < 1) {
        fprintf(stderr, "%s: BITS 2..8, GROUP 0 (per channel) or a multiple of 32, N, K >= 1 (N K <= 2^28), ITERS >= 1\n", argv[0]);
        return 2;
    }
    float *w = malloc((size_t)(N * K) * sizeof *w), *x = malloc((size_t)K * sizeof *x), *y = malloc((size_t)N * sizeof *y);
    if (!w || !x || !y) return fprintf(stderr, "out of memory\n"), 1;
    srand(1);
    for (long i = 0; i < N * K; i++) w[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    for (long k = 0; k < K; k++) x[k] = (float)rand() / (float)RAND_MAX - 0.5f;
    qj_tensor src, qt;
    int64_t shape[2] = {N, K};
    qj_tensor_set(&src, "w", QJ_DTYPE_F32, 2, shape, w);
    qj_qformat f = {B, G, 0, QJ_DTYPE_F16};
    qj_qbuf qb;
    qj_cpu_jit *j = NULL;
    qj_cpu_kspec s;
    qj_cpu_gemv_fn fn;
    if (qj_quantize(&src, &f, &qb) || (qj_tensor_set_quant(&qt, "w", N, K, &f, &qb), qj_cpu_kspec_of(&qt, &s)) ||
        qj_cpu_jit_create(&j) || qj_cpu_jit_gemv(j, &s, &fn)) {
        fprintf(stderr, "%s: %s\n", argv[0], qj_last_error());
        return 1;
    }
    omp_set_num_threads(1);
    double best = 1e30;
    for (int r = 0; r < iters; r++) {
        const double t0 = now();
        for (int c = 0; c < 20; c++)
            if (qj_cpu_gemv_run(fn, &qt, x, y)) return fprintf(stderr, "%s: %s\n", argv[0], qj_last_error()), 1;
        const double t = (now() - t0) / 20;
        best = t < best ? t : best;
    }
    printf("b%d g%d %ldx%ld, one thread: best %.1f us a call (%.2f GB/s of codes)\n", B, G, N, K, best * 1e6,
           (double)N * (double)K * B / 8 / best / 1e9);
    qj_cpu_jit_free(j);
    qj_qbuf_free(&qb);
    free(w);
    free(x);
    free(y);
    return 0;
}
