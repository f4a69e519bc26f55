/* qjit_embed.h — the embeddable qjit runtime: run a model that `qjit export`
 * turned into C source, CPU object code and this library, with neither LLVM
 * nor NVRTC (nor a package file) at run time. C and C++.
 *
 *   #include "qjit_export.h"           // written by qjit export; includes this header
 *   qjit_model *m;
 *   if (qjit_load(QJIT_EXPORT_IMAGE, &m) != QJIT_OK) { puts(qjit_last_error()); return 1; }
 *   qjit_generate_params p = qjit_generate_default_params();
 *   p.prompt = "Once upon a time";
 *   qjit_generate(m, &p, on_token, NULL, NULL);
 *   qjit_free(m);
 *
 * Ownership: qjit_load gives the caller a qjit_model, freed with qjit_free
 * (NULL is a no-op); it moves to the caller only on success (on failure *out
 * is NULL and there is nothing to free). The model borrows the qjit_image,
 * which must outlive it (an export's image is a static constant, so it does).
 * Logits from qjit_forward belong to the model and stay valid until its next
 * qjit_forward or qjit_generate. Pieces passed to a qjit_token_fn are
 * borrowed for the duration of the call. Strings returned by qjit_last_error,
 * qjit_status_string and qjit_describe are owned by the library. A model is
 * used by one thread at a time; different models may run in parallel (the
 * kernels split rows across the OpenMP threads, OMP_NUM_THREADS sets how many).
 */
#ifndef QJIT_EMBED_H
#define QJIT_EMBED_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The layout of qjit_image; an image of another layout is refused. */
#define QJIT_EMBED_ABI 1

/* Status codes (0 = success); the message is in qjit_last_error(). */
typedef int qjit_status;
#define QJIT_OK 0
#define QJIT_ERR_IO 1
#define QJIT_ERR_FORMAT 2
#define QJIT_ERR_INVALID 3
#define QJIT_ERR_UNSUPPORTED 4
#define QJIT_ERR_NOMEM 5
#define QJIT_ERR_DEVICE 6
#define QJIT_ERR_COMPILE 7
#define QJIT_ERR_INTERNAL 8

/* A generated CPU kernel: y[r] = W[r] . x for rows [row0, row1) of one
 * packed linear (calling convention: runtime/qj_cpu_kernels.h). */
typedef void (*qjit_kernel_fn)(const uint32_t *codes, const uint16_t *scales, const uint16_t *zeros, const float *x,
                               const float *xsum, const int8_t *xd, const float *xds, float *y, int64_t row0,
                               int64_t row1);

/* One kernel of an export: the spec it computes and its linked-in code. */
typedef struct qjit_kernel {
    int bits, group;            /* code width 2..8, resolved group size */
    int64_t n, k;               /* rows, columns */
    int symmetric, scale_bf16;  /* no zero points; bf16 (else f16) scales */
    qjit_kernel_fn fn;
    const char *symbol;
} qjit_kernel;

/* What an export defines (qjit_export.h names it): the package's bytes and
 * the CPU code compiled ahead of time for it. Written by qjit export only. */
typedef struct qjit_image {
    int abi;                      /* QJIT_EMBED_ABI */
    const char *name;             /* the export's name */
    const unsigned char *package; /* the package file, byte for byte */
    size_t package_len;
    const char *cpu_triple, *cpu_name, *cpu_level, *cpu_features, *llvm_version; /* the code's target */
    int kernel_abi;               /* the kernels' calling convention */
    const qjit_kernel *kernels;
    int n_kernels;
} qjit_image;

typedef struct qjit_model qjit_model;

/* Load an export: checks the package (checksums included), that this CPU has
 * the features the code was compiled for, and binds a kernel to every packed
 * linear. Errors name the image and what was expected. */
qjit_status qjit_load(const qjit_image *image, qjit_model **out);

/* Free a model (NULL is a no-op). */
void qjit_free(qjit_model *m);

/* Run token at position pos (0-based, < qjit_context_length) after positions
 * 0..pos-1; *logits receives qjit_vocab_size floats, owned by the model. */
qjit_status qjit_forward(qjit_model *m, int token, int pos, const float **logits);

typedef struct qjit_generate_params {
    const char *prompt; /* text to continue; "" or NULL: from BOS */
    int steps;          /* positions in all, prompt included (capped at the context) */
    float temperature;  /* 0 = greedy */
    float top_p;        /* nucleus sampling threshold */
    uint64_t seed;      /* sampling seed */
} qjit_generate_params;

/* steps 256, temperature 1.0, top_p 0.9, seed 42: qjit generate's defaults. */
qjit_generate_params qjit_generate_default_params(void);

/* Called for each token after BOS (prompt tokens with from_prompt = 1) with
 * its text; return non-zero to stop. */
typedef int (*qjit_token_fn)(void *user, int token, int from_prompt, const char *piece, size_t len);

/* Generate from the prompt (the same tokens as `qjit generate` with the same
 * parameters); *n_generated (may be NULL) receives the number of sampled tokens. */
qjit_status qjit_generate(qjit_model *m, const qjit_generate_params *p, qjit_token_fn on_token, void *user,
                          int *n_generated);

/* The model's vocabulary size, context length, BOS and EOS ids. */
int qjit_vocab_size(const qjit_model *m);
int qjit_context_length(const qjit_model *m);
int qjit_bos_id(const qjit_model *m);
int qjit_eos_id(const qjit_model *m);

/* One line: the plan, the size and the CPU code's target. */
const char *qjit_describe(const qjit_model *m);

/* The message of the last failure on this thread ("" when none). */
const char *qjit_last_error(void);
/* "ok", "io", "format", ... for a status. Never NULL. */
const char *qjit_status_string(qjit_status s);

#ifdef __cplusplus
}
#endif
#endif
