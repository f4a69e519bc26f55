/* gpu_bench.h — GPU measurements: the device's copy ceiling, per-kernel
 * timings of a model's linear layers (with two dense bf16 baselines of the
 * same shape timed in the same run: qjit's own CUDA-core kernel and cuBLAS's
 * GEMM, tensor cores, when cuBLAS loads), and decode throughput.
 *
 * Method: each kernel reads one of R rotating copies of its weights, with R
 * chosen so the copies together exceed 3x the L2 cache (every launch reads from
 * DRAM). Two timings of each, medians after a warm-up, both behind ~1 ms of
 * device copies so the host has queued what is timed before the device gets
 * there:
 *  - cold: `iters` launches, each alone between two CUDA events;
 *  - back-to-back: `iters` intervals of QJ_KBENCH_B2B launches between two
 *    events, each launch on the next copy, interval / QJ_KBENCH_B2B; this is
 *    how the kernels run in a decode step (a graph of launches with
 *    programmatic dependent launch when QJ_PDL allows it), without the
 *    per-launch event cost.
 */
#ifndef QJ_GPU_BENCH_H
#define QJ_GPU_BENCH_H

#include "gpu_model.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { QJ_KTIME_COLD, QJ_KTIME_B2B, QJ_KTIME_N };
#define QJ_KBENCH_B2B 16 /* launches per back-to-back interval */

/* Median microseconds of one launch, in one timing mode. */
typedef struct qj_ktimes {
    double us;        /* the qjit kernel */
    double prep_us;   /* tensor-core kernels: the activation prep, timed alone (one per input vector) */
    double dense_us;  /* qjit's bf16 kernel of the same shape */
    double cublas_us; /* cuBLAS bf16 GEMM of the same shape and batch (Y f32); 0 when cuBLAS is unavailable */
} qj_ktimes;

typedef struct qj_kbench_row {
    char name[160];   /* kernel name, e.g. qj_dqmv_b4_g128_n28672_k4096_bt1_sm90a */
    char what[64];    /* "layers.*.gate_proj+up_proj" */
    int64_t N, K;
    int bits, group, batch;
    uint64_t weight_bytes; /* packed codes + scales + zeros */
    uint64_t dense_bytes;  /* N * K * 2: the bf16 baselines' weights */
    qj_ktimes t[QJ_KTIME_N]; /* cold and back-to-back */
} qj_kbench_row;

typedef struct qj_kbench_report {
    char device[256];
    double copy_gbs;  /* device-to-device copy, bytes read + written per second */
    int pdl;          /* launches allowed programmatic dependent launch */
    char cublas[256]; /* the cuBLAS baseline: "cuBLAS 13.1.0 (libcublas.so.13) ..." or why there is none */
    int n;
    qj_kbench_row rows[64];
} qj_kbench_report;

/* Kernels of one layer (layer index `layer`; its fused groups as the GPU model
 * builds them) plus the head, at a batch size (1..64). baselines = 0 skips
 * the two dense bf16 baselines (their times stay 0). A missing or failing
 * cuBLAS does not fail the bench: its columns are 0 and out->cublas says why. */
qj_status qj_gpu_kernel_bench(const qj_model *m, int layer, int batch, int iters, int baselines, qj_kbench_report *out);

typedef struct qj_decode_bench {
    double tokens_per_s;     /* graph-replayed decode steps x the model's batch (sequences per step) */
    double ms_per_token;     /* per step: each sequence gets one token a step */
    uint64_t bytes_per_token; /* weights one step reads (once for all its sequences) */
    double weight_gbs;       /* bytes_per_token * steps per second */
    int tokens;              /* steps timed */
    int batch;
} qj_decode_bench;

/* Device-to-device copy of 1 GiB, median of 9: (bytes read + written) / s. */
qj_status qj_gpu_copy_ceiling(qj_cuda *cu, qj_custream st, double *gbs);

/* Decode `tokens` steps (after 8 warm-up steps) on an already built GPU model, every
 * sequence of a batched one at once (row b at token 1 + (i + 7b) % 100, position 8 + i % 256:
 * the model needs QJ_DECODE_BENCH_POSITIONS positions). */
#define QJ_DECODE_BENCH_POSITIONS 264
qj_status qj_gpu_decode_bench(qj_gpu_model *g, int tokens, qj_decode_bench *out);

#ifdef __cplusplus
}
#endif
#endif
