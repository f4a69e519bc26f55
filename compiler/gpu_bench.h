/* gpu_bench.h — GPU measurements: the device's copy ceiling, per-kernel
 * timings of a model's linear layers (with two dense bf16 baselines of the
 * same shape timed in the same run: qjit's own CUDA-core kernel and cuBLAS's
 * GEMM, tensor cores, when cuBLAS loads), and decode throughput.
 *
 * Method: each kernel reads one of R rotating copies of its weights, with R
 * chosen so the copies together exceed 3x the L2 cache (every launch reads from
 * DRAM); each launch is timed with CUDA events; the median of `iters` launches
 * is reported after a warm-up.
 */
#ifndef QJ_GPU_BENCH_H
#define QJ_GPU_BENCH_H

#include "gpu_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qj_kbench_row {
    char name[160];   /* kernel name, e.g. qj_dqmv_b4_g128_n28672_k4096_bt1_sm90a */
    char what[64];    /* "layers.*.gate_proj+up_proj" */
    int64_t N, K;
    int bits, group, batch;
    uint64_t weight_bytes; /* packed codes + scales + zeros */
    double us;        /* median microseconds */
    double prep_us;   /* tensor-core kernels: the activation prep, timed alone (one per input vector) */
    double gbs;       /* weight bytes / time */
    double dense_us;  /* the bf16 kernel of the same shape */
    double dense_gbs;
    double cublas_us; /* cuBLAS bf16 GEMM of the same shape and batch (Y f32); 0 when cuBLAS is unavailable */
    double cublas_gbs; /* bf16 weight bytes / cublas_us; 0 likewise */
} qj_kbench_row;

typedef struct qj_kbench_report {
    char device[256];
    double copy_gbs;  /* device-to-device copy, bytes read + written per second */
    char cublas[256]; /* the cuBLAS baseline: "cuBLAS 13.1.0 (libcublas.so.13) ..." or why there is none */
    int n;
    qj_kbench_row rows[64];
} qj_kbench_report;

/* Kernels of one layer (layer index `layer`; its fused groups as the GPU model
 * builds them) plus the head, at a batch size (1..64). A missing or failing
 * cuBLAS does not fail the bench: its columns are 0 and out->cublas says why. */
qj_status qj_gpu_kernel_bench(const qj_model *m, int layer, int batch, int iters, qj_kbench_report *out);

typedef struct qj_decode_bench {
    double tokens_per_s;     /* graph-replayed decode steps, batch 1 */
    double ms_per_token;
    uint64_t bytes_per_token;
    double weight_gbs;       /* bytes_per_token * tokens_per_s */
    int tokens;
} qj_decode_bench;

/* Device-to-device copy of 1 GiB, median of 9: (bytes read + written) / s. */
qj_status qj_gpu_copy_ceiling(qj_cuda *cu, qj_custream st, double *gbs);

/* Decode `tokens` steps (after a warm-up) on an already built GPU model. */
qj_status qj_gpu_decode_bench(qj_gpu_model *g, int tokens, qj_decode_bench *out);

#ifdef __cplusplus
}
#endif
#endif
