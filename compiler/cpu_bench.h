/* cpu_bench.h — CPU measurements of the LLVM-generated kernels: a memory-read
 * ceiling and per-kernel timings of one layer's packed linears and the head,
 * in the same run.
 *
 * Method: the read ceiling is an OpenMP sum over a 1 GiB buffer, median of 5
 * (bytes read / s). Each kernel reads one of R rotating copies of its arrays
 * (together > 256 MiB, far past the last-level cache), rows split across the
 * OpenMP threads; median of `iters` calls after two warm-ups.
 */
#ifndef QJ_CPU_BENCH_H
#define QJ_CPU_BENCH_H

#include "qj_model.h"
#include "qj_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qj_cpu_kbench_row {
    char what[64];          /* "layers.*.gate_proj", "lm_head" */
    int64_t N, K;
    int bits, group;
    uint64_t weight_bytes;  /* codes + scales + zeros */
    double jit_ms;          /* IR build + optimise + JIT compile */
    double us, gbs;         /* median microseconds; weight bytes / time */
} qj_cpu_kbench_row;

typedef struct qj_cpu_kbench_report {
    char target[160];       /* the host CPU LLVM compiled for */
    int threads;
    double read_gbs;        /* the memory-read ceiling of this run */
    int n;
    qj_cpu_kbench_row rows[16];
} qj_cpu_kbench_report;

/* The packed linears of layer `layer` and a packed head (dense ones are
 * skipped: they have no JIT kernel yet). */
qj_status qj_cpu_kernel_bench(const qj_model *m, int layer, int iters, qj_cpu_kbench_report *out);

#ifdef __cplusplus
}
#endif
#endif
