/* common.h — options and model opening shared by the qjit subcommands. */
#ifndef QJ_CLI_COMMON_H
#define QJ_CLI_COMMON_H

#include <getopt.h>
#include <stdint.h>

#include "compile.h"
#include "gpu_model.h"
#include "llvm_kernels.h"
#include "plan.h"
#include "qj_eval.h"
#include "qj_model.h"
#include "tokenizer.h"

typedef struct cli_model {
    /* options */
    const char *model;     /* --model: HF dir, llama2.c .bin or .qjp package */
    const char *synthetic; /* --synthetic PRESET|config.json */
    uint64_t seed;         /* --seed (synthetic weights) */
    qj_dtype synth_dtype;  /* --synthetic-dtype */
    const char *plan;      /* --plan */
    const char *tokenizer; /* --tokenizer */
    int no_verify;         /* --no-verify: skip package checksums */
    int cuda;              /* --device cuda */
    int device_set;        /* --device given */
    int cpu_jit;           /* set before opening: run packed linears on the LLVM kernels (CPU), unless
                            * QJ_CPU_KERNELS=reference or the build has no LLVM */
    qj_cpu_code_mode cpu_code; /* --cpu-code: a package's CPU object code (auto, require, jit) */
    /* results of cli_model_open */
    qj_model *src;   /* as loaded (NULL for a package) */
    qj_model *run;   /* compiled with the plan, or the package */
    qj_plan *plan_obj;
    qj_tokenizer *tok; /* NULL when none was found and none was needed */
    int is_package;
    qj_compile_stats stats;
    qj_gpu_model *gpu;     /* with --device cuda */
    qj_cpu_kernels *cpu_kernels; /* attached to run (cpu_jit) */
    qj_cpu_attach_info cpu_info;
    qj_gpu_build_stats gpu_stats;
} cli_model;

#define CLI_OPT_SYNTHETIC 1001
#define CLI_OPT_SEED 1002
#define CLI_OPT_TOKENIZER 1003
#define CLI_OPT_NO_VERIFY 1004
#define CLI_OPT_THREADS 1005
#define CLI_OPT_SYNTH_DTYPE 1006
#define CLI_OPT_DEVICE 1007
#define CLI_OPT_CPU_CODE 1008

#define CLI_MODEL_OPTIONS                                                                    \
    {"model", required_argument, 0, 'm'}, {"synthetic", required_argument, 0, CLI_OPT_SYNTHETIC}, \
        {"seed", required_argument, 0, CLI_OPT_SEED}, {"plan", required_argument, 0, 'p'},      \
        {"tokenizer", required_argument, 0, CLI_OPT_TOKENIZER},                               \
        {"no-verify", no_argument, 0, CLI_OPT_NO_VERIFY},                                     \
        {"threads", required_argument, 0, CLI_OPT_THREADS},                                   \
        {"synthetic-dtype", required_argument, 0, CLI_OPT_SYNTH_DTYPE},                       \
        {"device", required_argument, 0, CLI_OPT_DEVICE}, {"cpu-code", required_argument, 0, CLI_OPT_CPU_CODE}

#define CLI_MODEL_HELP                                                                              \
    "  --model PATH          Hugging Face directory, llama2.c checkpoint or qjit package (.qjp)\n"   \
    "  --synthetic PRESET    random weights of real shapes: llama3-8b, llama2-7b, mistral-7b,\n"      \
    "                        qwen2-0.5b, small, tiny, or an HF config.json (always labelled synthetic)\n" \
    "  --seed N              seed of synthetic weights (default 1)\n"                               \
    "  --synthetic-dtype T   f32, f16 or bf16 (default bf16)\n"                                     \
    "  --plan P              plan JSON file or shorthand: source, fp32, bf16, f16, int4-g128,\n"       \
    "                        int8-pc, int4-g32-sym ... (default source; not with a package)\n"       \
    "  --tokenizer PATH      tokenizer.bin or tokenizer.json (default: found beside the model)\n"    \
    "  --no-verify           skip checking a package's checksums\n"                                \
    "  --threads N           CPU threads (default: all cores)\n"                                   \
    "  --device D            cpu (default) or cuda (kernels generated and compiled with NVRTC)\n"      \
    "  --cpu-code M          a package's CPU object code: auto (default: linked when it matches this\n" \
    "                        machine, else the kernels are JIT-compiled, with a note), require (refuse\n" \
    "                        when it is missing or does not match), jit (ignore it)\n"

void cli_model_init(cli_model *c);
/* Handles a shared option; returns 1 when handled, 0 when not one, -1 on a bad value. */
int cli_model_option(cli_model *c, int opt, const char *arg);
/* Load (and compile with the plan; with --device cuda also build the GPU
 * model). need_tokenizer: fail when none found. */
qj_status cli_model_open(cli_model *c, int need_tokenizer, int progress);
void cli_model_close(cli_model *c);

/* The ids of a text (tokenized with c's tokenizer) or of a token-id file (exactly one of
 * text, tokens given; vocab bounds the ids); *ids malloc'd. Errors name the file. */
qj_status cli_read_ids(const cli_model *c, const char *text, const char *tokens, int vocab, int **ids, size_t *n);

/* Each newline-terminated line of a JSONL file (qjit search's history) parsed and given to fn
 * with its 1-based number, until fn fails; a last line without its newline (an append that was
 * interrupted) is left out. *valid: bytes up to the end of the last line read; *lines: lines
 * read. Errors name the file and line. */
typedef qj_status (*cli_jsonl_fn)(void *ctx, const cJSON *obj, int line);
qj_status cli_jsonl_each(const char *path, cli_jsonl_fn fn, void *ctx, size_t *valid, int *lines);

/* Parse an integer option value in [lo, hi]; error names the option. */
qj_status cli_parse_long(const char *arg, const char *opt, long lo, long hi, long *out);
qj_status cli_parse_double(const char *arg, const char *opt, double lo, double hi, double *out);

/* The forward pass the options chose, for qj_eval_nll_with and generation. */
qj_forward_fn cli_forward_fn(cli_model *c, void **ctx, int *max_ctx);

/* Print the label line of a synthetic model ("" otherwise). */
const char *cli_synthetic_label(const qj_model *m);

/* 1 when packed linears on the CPU run on the LLVM kernels: this build has LLVM and
 * QJ_CPU_KERNELS is not "reference" */
int cli_cpu_jit_enabled(void);

/* tokens/s of n batch-1 decode steps of m on the CPU forward it has (the reference, or the
 * LLVM kernels attached to it), tokens 1 + i % 100 at positions 0..n-1 (n <= the context) */
qj_status cli_cpu_decode(const qj_model *m, int n, double *tps);

/* Worker processes (cli/pool.c): n copies of this executable started afresh with the
 * command's arguments (argc, argv from the command name on) plus "slot_opt k" for worker k,
 * env1 ("NAME=value", or NULL) added to the environment unless NAME is set; requests go to a
 * worker's stdin, replies come from its stdout, as fixed-size binary records. Errors name the
 * worker. cli_pool_stop closes the requests (a worker exits at their end), with kill_now sends
 * SIGTERM too, and waits for every worker; NULL is a no-op. */
typedef struct cli_pool cli_pool;
qj_status cli_pool_start(cli_pool **out, int n, int argc, char *const *argv, const char *slot_opt, const char *env1);
qj_status cli_pool_send(cli_pool *p, int k, const void *buf, size_t len);
qj_status cli_pool_recv(cli_pool *p, int k, void *buf, size_t len);
void cli_pool_stop(cli_pool *p, int kill_now);
/* The worker's side: read or write exactly len bytes (fd -1: from/to MPI rank 0); *eof 1 when
 * the requests ended cleanly. */
qj_status cli_worker_read(int fd, void *buf, size_t len, int *eof);
qj_status cli_worker_write(int fd, const void *buf, size_t len);

/* The same pool over MPI ranks (mpirun ... qjit search --mpi): cli_mpi_start calls MPI_Init;
 * on rank 0 *pool is the pool of workers (ranks 1..size-1; cli_pool_stop sends each a zeroed
 * record of stop_bytes, with kill_now MPI_Abort), on the others NULL. host_worker: the rank's
 * index among the workers of its host (its GPU). cli_mpi_end finalizes (aborts when failed).
 * Without MPI in the build cli_mpi_start fails saying so. */
typedef struct cli_mpi {
    int active, rank, size, host_worker;
} cli_mpi;
int cli_mpi_available(void);
qj_status cli_mpi_start(int *argc, char ***argv, size_t stop_bytes, cli_mpi *out, cli_pool **pool);
void cli_mpi_end(cli_mpi *m, int failed);

/* What to measure on a compiled model (cli/measure.c): perplexity on ids (ppl), batch-1 decode
 * tokens/s repeats times over decode_tokens steps (repeats 0: none), on the GPU (cuda, device
 * ordinal: the model is built there, kernels through the kernel cache) or the CPU (cpu_kernels:
 * decode on the LLVM kernels, from kcache when given, else the reference forward). */
#define CLI_MAX_REPEATS 16
typedef struct cli_measure {
    int cuda, ordinal;
    int ppl;
    const int *ids;
    size_t nid;
    qj_eval_params ep;
    int decode_tokens, repeats;
    int cpu_kernels;
    qj_cpu_kcache *kcache;
} cli_measure;
typedef struct cli_measured { /* plain data: the search's workers send it as bytes */
    qj_eval_result er;
    double runs[CLI_MAX_REPEATS]; /* tokens/s of each repeat */
    double tps, tps_log_var;      /* their mean, and the variance of the mean of their logs */
    int gpu_kernels, gpu_compiled; /* kernels the GPU model needed, and of those compiled now */
    int cpu_kernels, cpu_compiled; /* the same for the CPU's LLVM kernels */
    double gpu_build_s;
} cli_measured;
qj_status cli_measure_model(qj_model *m, const cli_measure *p, cli_measured *out);

/* The GPU forward of a qj_gpu_model (ctx) as a qj_forward_fn, for qj_eval_nll_with. */
qj_status cli_gpu_forward_fn(void *ctx, int token, int pos, const float **logits);

#endif
