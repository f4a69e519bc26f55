/* qj_model.h — a llama-family model in memory: configuration and weights.
 *
 * Ownership: qj_model owns its memory maps and buffers (released by
 * qj_model_free, which accepts NULL). The qj_tensor entries borrow from them.
 * A loader fills a qj_model only on success; on failure nothing is left to free.
 *
 * Weight conventions (the same for every loader, whatever the file format):
 * every linear weight is (out_features, in_features) row-major, so y = W x.
 * RoPE: QJ_ROPE_INTERLEAVED rotates pairs (2i, 2i+1) of each head (llama2.c,
 * Meta's checkpoints); QJ_ROPE_HALF rotates (i, i + head_dim/2) (Hugging Face).
 */
#ifndef QJ_MODEL_H
#define QJ_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "qj_status.h"
#include "qj_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum qj_arch { QJ_ARCH_LLAMA = 0, QJ_ARCH_MISTRAL, QJ_ARCH_QWEN2 } qj_arch;
typedef enum qj_rope_style { QJ_ROPE_INTERLEAVED = 0, QJ_ROPE_HALF } qj_rope_style;
typedef enum qj_source_kind {
    QJ_SOURCE_HF = 0,      /* Hugging Face directory (config.json + safetensors) */
    QJ_SOURCE_LLAMA2C,     /* llama2.c checkpoint */
    QJ_SOURCE_SYNTHETIC,   /* random weights of real shapes */
    QJ_SOURCE_PACKAGE      /* a qjit package */
} qj_source_kind;

const char *qj_arch_name(qj_arch a); /* "llama", "mistral", "qwen2" */

typedef struct qj_config {
    qj_arch arch;
    int dim;          /* hidden size */
    int hidden_dim;   /* FFN intermediate size */
    int n_layers;
    int n_heads;
    int n_kv_heads;   /* GQA: n_heads % n_kv_heads == 0 */
    int head_dim;     /* usually dim / n_heads */
    int vocab_size;
    int seq_len;      /* maximum context */
    float rope_theta; /* 10000 for llama2, 500000 for llama3 */
    float rms_eps;
    int tied_embeddings; /* lm_head shares tok_embedding's data */
    int qkv_bias;        /* Qwen2: q/k/v projections have biases */
    qj_rope_style rope_style;
    int bos_id, eos_id;
} qj_config;

/* One transformer block. Shapes in comments use the config's names. */
typedef struct qj_layer {
    qj_tensor attn_norm; /* (dim) */
    qj_tensor wq;        /* (n_heads*head_dim, dim) */
    qj_tensor wk;        /* (n_kv_heads*head_dim, dim) */
    qj_tensor wv;        /* (n_kv_heads*head_dim, dim) */
    qj_tensor wo;        /* (dim, n_heads*head_dim) */
    qj_tensor bq, bk, bv; /* (n_heads*head_dim), (kv_dim), (kv_dim); only when qkv_bias */
    qj_tensor ffn_norm;  /* (dim) */
    qj_tensor w_gate;    /* (hidden_dim, dim)  llama2.c w1 */
    qj_tensor w_up;      /* (hidden_dim, dim)  llama2.c w3 */
    qj_tensor w_down;    /* (dim, hidden_dim)  llama2.c w2 */
} qj_layer;

/* The linear weights of a block, in a fixed order (plans and packages use it). */
typedef enum qj_linear {
    QJ_LIN_Q = 0, QJ_LIN_K, QJ_LIN_V, QJ_LIN_O, QJ_LIN_GATE, QJ_LIN_UP, QJ_LIN_DOWN, QJ_LIN_COUNT
} qj_linear;
/* Hugging Face short names: "q_proj", "k_proj", ..., "down_proj". */
const char *qj_linear_name(qj_linear l);
qj_tensor *qj_layer_linear(qj_layer *layer, qj_linear l);

/* A compiled kernel module carried by a package (cubin or PTX). */
typedef struct qj_kernel_blob {
    char name[160];   /* the kernel (module) name, e.g. qj_dqmv_b4_g128_n6144_k4096_bt1_sm90a */
    char arch[32];    /* the target it was compiled for, e.g. sm_90a */
    const void *image;
    size_t len;
} qj_kernel_blob;

/* Ahead-of-time CPU object code carried by a package (qjit compile --target
 * cpu): one relocatable object holding a kernel per distinct spec, compiled
 * by LLVM for one target (see docs/FORMATS.md, "cpu_code"). */
typedef struct qj_cpu_code_kernel {
    int bits, group;
    int64_t N, K;
    int symmetric, scale_bf16;
    char symbol[160];
} qj_cpu_code_kernel;

typedef struct qj_cpu_code {
    char triple[64];     /* x86_64-pc-linux-gnu */
    char cpu[64];        /* LLVM CPU name: znver4, skylake-avx512, x86-64-v3, generic */
    char level[16];      /* avx512, avx2, sse (x86), or the architecture elsewhere */
    char *features;      /* LLVM feature string the code was compiled with (owned) */
    char llvm[32];       /* LLVM version that compiled it, e.g. 14.0.6 */
    int abi;             /* QJ_CPU_KERNEL_ABI of the kernels */
    const void *object;  /* ELF relocatable object; borrows from the model's maps */
    size_t len;
    qj_cpu_code_kernel *kernels; /* (n_kernels), owned */
    int n_kernels;
} qj_cpu_code;

typedef struct qj_mapping {
    void *addr;
    size_t len;
    int is_mmap; /* 1: munmap, 0: free */
} qj_mapping;

typedef struct qj_model {
    qj_config cfg;
    qj_source_kind source;
    int synthetic;          /* 1: random weights; every report labels it */
    char origin[512];       /* path or preset the model came from */
    char plan_desc[256];    /* the plan it was compiled with ("" for a source model) */
    qj_tensor tok_embedding; /* (vocab_size, dim) */
    qj_tensor final_norm;    /* (dim) */
    qj_tensor lm_head;       /* (vocab_size, dim); data == tok_embedding.data when tied */
    qj_layer *layers;        /* (n_layers) */
    /* owned storage */
    qj_mapping *maps;
    int n_maps, cap_maps;
    /* optional tokenizer bytes carried by the model (package), owned: */
    void *tokenizer_blob;
    size_t tokenizer_blob_len;
    char tokenizer_kind[16]; /* "llama2c" or "hf-json" or "" */
    /* compiled kernels carried by a package; images borrow from the maps */
    qj_kernel_blob *kernels;
    int n_kernels;
    /* ahead-of-time CPU code carried by a package (objects borrow from the maps) */
    qj_cpu_code *cpu_code;
    int n_cpu_code;
    /* optional CPU kernels for packed linears (compiler/llvm_kernels.h,
     * qj_cpu_kernels_attach): y = W x, returning 1 when it handled W (0: the
     * reference computes it). Borrowed; NULL = the reference everywhere. */
    int (*cpu_matvec)(void *ctx, const qj_tensor *w, const float *x, float *y);
    void *cpu_matvec_ctx;
} qj_model;

/* Allocate an empty model with n_layers layers (cfg copied). */
qj_status qj_model_alloc(qj_model **out, const qj_config *cfg);
/* Take ownership of a memory region (mmap'd when is_mmap). */
qj_status qj_model_adopt(qj_model *m, void *addr, size_t len, int is_mmap);
void qj_model_free(qj_model *m);

/* Check every tensor is present with the shape the config implies.
 * The error names the tensor, its shape and the expected one. */
qj_status qj_model_validate(const qj_model *m);

/* Sets a tensor descriptor (name, dtype, shape, data). */
void qj_tensor_set(qj_tensor *t, const char *name, qj_dtype dtype, int ndim, const int64_t *shape,
                   const void *data);

/* Memory-map a whole file read-only. Errors name the path. */
qj_status qj_map_file(const char *path, void **addr, size_t *len);

#ifdef __cplusplus
}
#endif
#endif

#ifndef QJ_MODEL_SLOT_DECL
#define QJ_MODEL_SLOT_DECL
#ifdef __cplusplus
extern "C" {
#endif
/* The model slot a Hugging Face style tensor name refers to
 * ("model.layers.3.mlp.down_proj.weight", "model.norm.weight", "lm_head.weight",
 * ".bias" of q/k/v), or NULL when the name is not one of a llama's tensors
 * or its layer index is out of range. */
qj_tensor *qj_model_slot(qj_model *m, const char *name);
/* The carried kernel of that name and target, or NULL. */
const qj_kernel_blob *qj_model_find_kernel(const qj_model *m, const char *name, const char *arch);
/* Frees the owned parts of n entries and the array (NULL is a no-op). */
void qj_cpu_code_free(qj_cpu_code *c, int n);
/* Free an array of blobs whose images are malloc'd (from qj_gpu_compile_kernels). */
void qj_kernel_blobs_free(qj_kernel_blob *b, int n);
#ifdef __cplusplus
}
#endif
#endif
