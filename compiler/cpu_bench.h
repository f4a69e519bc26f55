/* cpu_bench.h — CPU measurements of the LLVM-generated kernels: a memory-read
 * ceiling and per-kernel timings of one layer's packed linears and the head,
 * in the same run.
 *
 * Method: each kernel reads one of R rotating copies of its arrays (together
 * more than the ceiling buffer, at most 64 copies), rows split across the OpenMP
 * threads, x prepared per call as in the forward pass; median of `iters`
 * calls after two warm-ups. The read ceiling is measured next to each
 * kernel: before every timed call, one OpenMP pass of 64-bit integer sums
 * (each thread reading its share as eight sequential streams at once: one
 * stream reads only ~2/3 of that) over a buffer of 256 MiB or four
 * times the last-level cache, whichever is larger (the pass also evicts the
 * kernel's previous reads), median of
 * those `iters` passes, so a kernel and its ceiling share the machine's
 * state (on a shared VM the bandwidth drifts by 2x within a minute).
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
    double ceil_gbs;        /* the read ceiling measured between this kernel's calls */
    uint64_t rot_bytes;     /* the rotating copies' bytes together */
} qj_cpu_kbench_row;

typedef struct qj_cpu_kbench_report {
    char target[160];       /* the host CPU LLVM compiled for */
    int threads;
    size_t ceil_bytes;      /* the ceiling pass's buffer */
    double read_gbs;        /* the median of the rows' read ceilings */
    int interleaved;        /* 1: the kernels' calls went in rounds, one call of each a round; 0: one kernel after another */
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
