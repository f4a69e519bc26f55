/* common.c — shared option handling and model opening for the subcommands. */
#include "common.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders.h"
#include "qj_eval.h"
#include "qj_forward.h"
#include "qj_io.h"
#include "qj_package.h"
#include "qj_progress.h"

void cli_model_init(cli_model *c) {
    memset(c, 0, sizeof *c);
    c->seed = 1;
    c->synth_dtype = QJ_DTYPE_BF16;
}

qj_status cli_read_ids(const cli_model *c, const char *text, const char *tokens, int vocab, int **ids, size_t *n) {
    if (tokens) return qj_read_token_file(tokens, vocab, ids, n);
    char *buf;
    size_t len;
    qj_status s = qj_read_file(text, &buf, &len);
    if (s) return s;
    s = qj_tokenizer_encode(c->tok, buf, len, 0, ids, n);
    free(buf);
    if (s) qj_fail_context(s, "%s", text);
    return s;
}

qj_status cli_jsonl_each(const char *path, cli_jsonl_fn fn, void *ctx, size_t *valid, int *lines) {
    char *buf;
    size_t len;
    *valid = 0;
    *lines = 0;
    qj_status st = qj_read_file(path, &buf, &len);
    if (st) return st;
    for (char *p = buf, *nl; !st && p < buf + len && (nl = memchr(p, '\n', (size_t)(buf + len - p))); p = nl + 1) {
        *nl = 0;
        const int line = ++*lines;
        cJSON *o = cJSON_Parse(p);
        *valid = (size_t)(nl + 1 - buf);
        st = o ? fn(ctx, o, line) : qj_fail(QJ_ERR_FORMAT, "%s:%d: not a JSON object", path, line);
        cJSON_Delete(o);
    }
    free(buf);
    return st;
}

qj_status cli_parse_long(const char *arg, const char *opt, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (end == arg || *end || errno || v < lo || v > hi)
        return qj_fail(QJ_ERR_INVALID, "--%s: \"%s\" is not an integer in %ld..%ld", opt, arg, lo, hi);
    *out = v;
    return QJ_OK;
}

qj_status cli_parse_double(const char *arg, const char *opt, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (end == arg || *end || errno || !isfinite(v) || v < lo || v > hi)
        return qj_fail(QJ_ERR_INVALID, "--%s: \"%s\" is not a number in %g..%g", opt, arg, lo, hi);
    *out = v;
    return QJ_OK;
}

int cli_model_option(cli_model *c, int opt, const char *arg) {
    long v;
    switch (opt) {
    case 'm': c->model = arg; return 1;
    case 'p': c->plan = arg; return 1;
    case CLI_OPT_SYNTHETIC: c->synthetic = arg; return 1;
    case CLI_OPT_TOKENIZER: c->tokenizer = arg; return 1;
    case CLI_OPT_NO_VERIFY: c->no_verify = 1; return 1;
    case CLI_OPT_SEED:
        if (cli_parse_long(arg, "seed", 0, 0x7fffffffL, &v)) return -1;
        c->seed = (uint64_t)v;
        return 1;
    case CLI_OPT_THREADS:
        if (cli_parse_long(arg, "threads", 1, 1024, &v)) return -1;
        omp_set_num_threads((int)v);
        return 1;
    case CLI_OPT_DEVICE:
        c->device_set = 1;
        if (!strcmp(arg, "cuda")) c->cuda = 1;
        else if (!strcmp(arg, "cpu")) c->cuda = 0;
        else {
            qj_fail(QJ_ERR_INVALID, "--device: \"%s\" is not cpu or cuda", arg);
            return -1;
        }
        return 1;
    case CLI_OPT_CPU_CODE:
        return qj_cpu_code_mode_parse(arg, &c->cpu_code) ? -1 : 1;
    case CLI_OPT_SYNTH_DTYPE:
        if (qj_dtype_parse(arg, &c->synth_dtype)) {
            qj_fail_context(QJ_ERR_INVALID, "--synthetic-dtype");
            return -1;
        }
        return 1;
    default: return 0;
    }
}

qj_status cli_model_open(cli_model *c, int need_tokenizer, int progress) {
    qj_status s;
    if (!!c->model == !!c->synthetic)
        return qj_fail(QJ_ERR_INVALID, "give exactly one of --model PATH or --synthetic PRESET");
    if (c->synthetic) {
        if ((s = qj_load_synthetic(c->synthetic, c->seed, c->synth_dtype, &c->src))) return s;
    } else {
        if ((s = qj_load_model(c->model, &c->src))) return s;
    }
    c->is_package = c->src->source == QJ_SOURCE_PACKAGE;
    if (c->is_package) {
        if (c->plan)
            return qj_fail(QJ_ERR_INVALID, "%s is a compiled package with its own plan; --plan applies to models only",
                           c->model);
        c->run = c->src;
        c->src = NULL;
    } else {
        char found[4096];
        const char *tp = c->tokenizer;
        if (!tp && c->model && qj_find_tokenizer(c->model, found, sizeof found)) tp = found;
        if (tp && (s = qj_model_attach_tokenizer(c->src, tp))) return s;
        if ((s = qj_plan_parse(c->plan ? c->plan : "source", c->src->cfg.n_layers, &c->plan_obj))) return s;
        if ((s = qj_compile_model(c->src, c->plan_obj, progress, &c->run, &c->stats))) return s;
    }
    if (c->is_package && c->tokenizer) {
        if ((s = qj_tokenizer_load(c->tokenizer, &c->tok))) return s;
    } else if (c->run->tokenizer_blob) {
        if ((s = qj_tokenizer_load_mem(c->run->tokenizer_blob, c->run->tokenizer_blob_len, "tokenizer", &c->tok)))
            return s;
    }
    if (need_tokenizer && !c->tok)
        return qj_fail(QJ_ERR_INVALID, "no tokenizer: give --tokenizer PATH (none was found beside the model)");
    if (c->tok && qj_tokenizer_vocab_size(c->tok) > c->run->cfg.vocab_size)
        return qj_fail(QJ_ERR_INVALID, "tokenizer has %d tokens, the model's vocabulary only %d",
                       qj_tokenizer_vocab_size(c->tok), c->run->cfg.vocab_size);
    const char *ck = getenv("QJ_CPU_KERNELS");
    if (ck && *ck && strcmp(ck, "reference") && strcmp(ck, "jit"))
        return qj_fail(QJ_ERR_INVALID, "QJ_CPU_KERNELS=\"%s\": expected jit (the default) or reference", ck);
    if (!c->cuda && c->cpu_jit && cli_cpu_jit_enabled()) {
        qj_cpu_attach_info *ci = &c->cpu_info;
        if ((s = qj_cpu_kernels_attach_ex(c->run, c->cpu_code, &c->cpu_kernels, ci))) return s;
        if (ci->note[0]) fprintf(stderr, "%s\n", ci->note);
        if (progress && ci->n_kernels)
            fprintf(stderr, "cpu: %d kernels for %s: %s in %.4f s\n", ci->n_kernels,
                    qj_cpu_kernels_target(c->cpu_kernels), ci->from_package ? "linked, nothing compiled" : "JIT-compiled",
                    ci->seconds);
        if (!ci->n_kernels) { /* nothing packed: the reference everywhere */
            qj_cpu_kernels_free(c->run, c->cpu_kernels);
            c->cpu_kernels = NULL;
        }
    } else if (c->cpu_code == QJ_CPU_CODE_REQUIRE) {
        return qj_fail(QJ_ERR_INVALID, "--cpu-code=require: %s", c->cuda ? "the CPU kernels do not run with --device cuda"
                       : !qj_cpu_llvm_available() ? "this qjit was built without LLVM, so it cannot link CPU object code"
                       : "QJ_CPU_KERNELS=reference runs the plain-C reference instead");
    }
    if (c->cuda) {
        qj_gpu_params gp = qj_gpu_default_params();
        gp.progress = progress;
        if ((s = qj_gpu_model_create(c->run, &gp, &c->gpu, &c->gpu_stats))) return s;
        if (progress)
            fprintf(stderr,
                    "cuda: %s (%s): %d kernels (%d from the package, %d from the cache, %d compiled) in %.2f s, "
                    "%.2f GB of weights uploaded in %.2f s\n",
                    c->gpu_stats.device, c->gpu_stats.arch, c->gpu_stats.kernels, c->gpu_stats.from_package,
                    c->gpu_stats.cache_hits, c->gpu_stats.kernels - c->gpu_stats.from_package - c->gpu_stats.cache_hits,
                    c->gpu_stats.compile_seconds, (double)c->gpu_stats.weight_bytes / 1e9, c->gpu_stats.upload_seconds);
    }
    return QJ_OK;
}

int cli_cpu_jit_enabled(void) {
    const char *ck = getenv("QJ_CPU_KERNELS");
    return qj_cpu_llvm_available() && !(ck && !strcmp(ck, "reference"));
}

qj_status cli_cpu_decode(const qj_model *m, int n, double *tps) {
    qj_state *st = NULL;
    qj_status s = qj_state_alloc(m, 0, &st);
    if (s) return s;
    const float *lg;
    double t0 = qj_now();
    for (int i = 0; i < n && !s; i++) s = qj_forward(st, 1 + i % 100, i, &lg);
    double el = qj_now() - t0;
    qj_state_free(st);
    if (!s) *tps = n / el;
    return s;
}

qj_status cli_gpu_forward_fn(void *ctx, int token, int pos, const float **logits) {
    return qj_gpu_forward((qj_gpu_model *)ctx, token, pos, logits);
}

static qj_status cpu_fn(void *ctx, int token, int pos, const float **logits) {
    return qj_forward((qj_state *)ctx, token, pos, logits);
}

qj_forward_fn cli_forward_fn(cli_model *c, void **ctx, int *max_ctx) {
    *max_ctx = c->run->cfg.seq_len;
    if (c->gpu) {
        *ctx = c->gpu;
        return cli_gpu_forward_fn;
    }
    *ctx = NULL; /* the caller allocates a qj_state */
    return cpu_fn;
}

void cli_model_close(cli_model *c) {
    qj_cpu_kernels_free(c->run, c->cpu_kernels);
    qj_gpu_model_free(c->gpu);
    qj_tokenizer_free(c->tok);
    qj_model_free(c->run); /* before src: it may borrow from it */
    qj_model_free(c->src);
    qj_plan_free(c->plan_obj);
    memset(c, 0, sizeof *c);
}

const char *cli_synthetic_label(const qj_model *m) {
    return m->synthetic ? "SYNTHETIC (random weights, real shapes: speed only, accuracy meaningless)" : "";
}
