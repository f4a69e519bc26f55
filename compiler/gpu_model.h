/* gpu_model.h — a model on the GPU: every kernel it needs generated from the
 * templates and compiled (through the cache), weights uploaded, and a forward
 * pass that runs entirely on the device (embedding, RMSNorm, RoPE, attention
 * with a KV cache, SwiGLU, head); from the second step on, each step is one
 * replay of a captured CUDA graph.
 *
 * Ownership: qj_gpu_model borrows the qj_model only during create; it owns its
 * device memory, modules and graph; qj_gpu_model_free(NULL) is a no-op.
 */
#ifndef QJ_GPU_MODEL_H
#define QJ_GPU_MODEL_H

#include "qj_cuda.h"
#include "qj_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qj_gpu_model qj_gpu_model;

typedef struct qj_gpu_build_stats {
    int kernels;          /* distinct kernels */
    int cache_hits;       /* of those, loaded from the kernel cache */
    int from_package;     /* of those, carried by the package (nothing compiled) */
    double compile_seconds; /* wall time of generating + compiling (or loading) them */
    double upload_seconds;
    uint64_t weight_bytes; /* bytes of weights on the device */
    char device[256];
    char arch[32];
    int pdl;               /* launches use programmatic dependent launch (sm_90+; QJ_PDL=0 turns it off) */
    int red;               /* of the kernels, those whose K splits add into their output (spec.red; QJ_IM_RED=0: none) */
} qj_gpu_build_stats;

typedef struct qj_gpu_params {
    int ordinal;   /* CUDA device */
    int max_seq;   /* KV cache positions (0 = the model's context) */
    int use_graph; /* 1: replay a captured graph per step */
    int progress;
    int fuse;      /* 1: one launch for q/k/v and for gate/up when each group shares a format */
    int batch;     /* sequences decoded together per step, 1..64 (every kernel built for it) */
} qj_gpu_params;
qj_gpu_params qj_gpu_default_params(void);

qj_status qj_gpu_model_create(const qj_model *m, const qj_gpu_params *p, qj_gpu_model **out, qj_gpu_build_stats *st);
void qj_gpu_model_free(qj_gpu_model *g);

/* One token at position pos; logits (vocab floats, host memory owned by g,
 * valid until the next call). */
qj_status qj_gpu_forward(qj_gpu_model *g, int token, int pos, const float **logits);
/* The same without copying logits back (decode benchmarks). */
qj_status qj_gpu_step(qj_gpu_model *g, int token, int pos);
/* One step of every sequence of a batched model: tokens[b] at pos[b] for
 * b < qj_gpu_batch(g), each in its own KV cache; logits (batch x vocab, owned
 * by g, valid until the next call). The batch-1 calls above are these at B = 1. */
qj_status qj_gpu_forward_batch(qj_gpu_model *g, const int *tokens, const int *pos, const float **logits);
qj_status qj_gpu_step_batch(qj_gpu_model *g, const int *tokens, const int *pos);
int qj_gpu_batch(const qj_gpu_model *g);
qj_status qj_gpu_sync(qj_gpu_model *g);
/* QJ_TRACE=FILE (a diagnostic; no-ops without it): forget the block events recorded so far, and write those
 * recorded since to path (text, one line per block; scripts/trace_step.py reads it) */
qj_status qj_gpu_trace_reset(qj_gpu_model *g);
qj_status qj_gpu_trace_save(qj_gpu_model *g, const char *path);

/* Bytes of weights one decode step reads (every linear + head + one embedding row; a batched
 * step reads the weights once for all its sequences). */
uint64_t qj_gpu_bytes_per_token(const qj_gpu_model *g);

/* Generate and compile (through the cache) every kernel a model needs for
 * `arch`, without a GPU: what `qjit compile --target cuda` stores in a
 * package. *out is a malloc'd array of n blobs whose images are malloc'd too
 * (free with qj_kernel_blobs_free). */
qj_status qj_gpu_compile_kernels(const qj_model *m, const char *arch, int max_seq, int fuse, qj_kernel_blob **out,
                                 int *n, qj_gpu_build_stats *st);

/* The device handle (for timing); borrowed. */
qj_cuda *qj_gpu_cuda(qj_gpu_model *g);
qj_custream qj_gpu_stream(qj_gpu_model *g);

#ifdef __cplusplus
}
#endif
#endif
