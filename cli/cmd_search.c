/* cmd_search.c — qjit search: Bayesian-optimisation search over per-layer
 * bit widths and group sizes whose objective is a real trial: every proposed
 * plan is compiled (quantized, and on --device cuda its kernels generated and
 * compiled through the cache), run and measured. Objectives: perplexity under
 * a size limit, measured decode tokens/s under a perplexity limit (a second GP
 * gives the probability of meeting it) or under a data-free layer-output error
 * limit (exact, so no plan over it is ever tried), or the error itself. The
 * history is a JSONL file appended trial by trial, so an interrupted search
 * resumes (--resume) without repeating or losing a trial. Trials run in this
 * process, or in worker processes (--workers N on the CPU, --gpus LIST one per
 * GPU: this binary started again with --worker-slot K, see cli/pool.c), a
 * batch of them at a time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "compile.h"
#include "gp.h"
#include "gpu_bench.h"
#include "gpu_model.h"
#include "llvm_kernels.h"
#include "plot.h"
#include "quant.h"
#include "qj_eval.h"
#include "qj_io.h"
#include "qj_package.h"
#include "qj_progress.h"
#include "search.h"

static void usage(FILE *f) {
    fprintf(f, "usage: qjit search (--model PATH | --synthetic PRESET) --objective ppl|throughput|error\n"
               "                   [--max-size GB] [--max-ppl P] [--max-error E] [--text FILE | --tokens FILE]\n"
               "                   [--device cpu|cuda] [--trials N] [--init N] [--space FILE]\n"
               "                   [--initial-samples FILE] [--history FILE] [--output FILE] [--resume] [--seed N]\n"
               "                   [--workers N | --gpus LIST | --mpi]\n\n"
               "Searches per-layer bit widths and group sizes (the seed's parameter space: bitwidth.{i}.,\n"
               "groupsize.{i}.). Each trial compiles the plan, runs it and measures it. A Gaussian process\n"
               "(Matern-5/2, one length scale per coordinate, fitted by maximum likelihood, per-trial noise from\n"
               "repeated measurements) over the plans tried so far proposes the next by expected improvement.\n"
               "Size and the layer-output error are exact and known without compiling, so no plan over\n"
               "--max-size or --max-error is ever tried; --max-ppl is measured, and a second GP on perplexity\n"
               "weighs the improvement by the probability of meeting it. Every trial is appended to the history\n"
               "(JSONL) as it ends, the seed's CSV is rewritten, and the end prints the best config.\n\n" CLI_MODEL_HELP
               "  --objective O         ppl: minimise perplexity (needs --max-size and a text);\n"
               "                        throughput: maximise measured decode tokens/s (batch 1);\n"
               "                        error: minimise the layer-output error (needs --max-size)\n"
               "  --max-size GB         size limit in GB (1e9 bytes), the seed's model_size\n"
               "  --max-ppl P           perplexity limit (throughput; needs a text)\n"
               "  --max-error E         limit on the data-free layer-output error: the root mean square over\n"
               "                        the blocks' linears of each one's relative output error against the\n"
               "                        dense layer on random N(0,1) inputs (works without text, on synthetic\n"
               "                        models too)\n"
               "  --error-rows N        rows per linear the error samples (default 256; 0: every row)\n"
               "  --text FILE           calibration text (tokenized with the model's tokenizer)\n"
               "  --tokens FILE         calibration token ids instead\n"
               "  --max-tokens N        ids of the text measured per trial (default 2000)\n"
               "  --ctx N               perplexity window (default: the model's context)\n"
               "  --repeats N           throughput: decode measurements per trial (default 3); their mean is the\n"
               "                        trial's value and their spread the GP's noise for it\n"
               "  --decode-tokens N     throughput: decode steps per measurement (default 64, after 8 warm-up)\n"
               "  --trials N            trials in all, initial ones included (default 40)\n"
               "  --init N              initial trials without --initial-samples (default 10): the uniform\n"
               "                        plans within the limits (per bit width, its finest group for ppl and\n"
               "                        error, its smallest plan for throughput), then a Latin hypercube\n"
               "  --space FILE          the seed's parameter space (default: bits 2,3,4,5,6,8 x groups\n"
               "                        32..512 per layer)\n"
               "  --initial-samples FILE the seed's initial samples (tried first; those over a limit are skipped)\n"
               "  --history FILE        JSONL history (default search_history.jsonl)\n"
               "  --output FILE         the seed's CSV (default search_output.csv)\n"
               "  --resume              continue the search in --history (same settings), repeating nothing\n"
               "  --seed N              the search's seed (also the synthetic weights'), default 1\n"
               "  --plots PREFIX        PNG plots PREFIX_pareto.png (objective against size, or tokens/s against\n"
               "                        accuracy: every trial, the uniform plans and the Pareto front),\n"
               "                        PREFIX_progress.png (best so far vs trial), PREFIX_plan.png (the best\n"
               "                        plan per layer); default: the history's name without .jsonl\n"
               "  --quant-cache GB      quantized tensors kept across trials, so a layer's setting seen before\n"
               "                        is never quantized again (default 4 GB; 0: no limit)\n"
               "  --strategy S          bo (default) or random: after the initial trials, uniformly random\n"
               "                        untried plans within the limits (the baseline BO is measured against)\n"
               "  --workers N           CPU trials in N worker processes at once (default 1), each with its share\n"
               "                        of the cores; trials go in batches of N, proposed together (each later\n"
               "                        point with the earlier ones fantasised at the GP's mean), recorded in\n"
               "                        order, so a run is reproducible for a given N (throughput measured\n"
               "                        this way shares the cores: compare such runs only with each other)\n"
               "  --gpus LIST           CUDA trials, one worker process per device of LIST (e.g. 0,1), in\n"
               "                        batches of one per device; implies --device cuda\n"
               "  --mpi                 under mpirun (Open MPI): rank 0 drives, every other rank is a worker,\n"
               "                        on any host (mpirun -np 3 --host a,b,c qjit search --mpi ...); with\n"
               "                        --device cuda the k-th worker of a host takes device k of --gpus LIST\n"
               "                        (default: device k); the batches and history are --workers' for as\n"
               "                        many workers\n");
}

typedef enum { OBJ_PPL, OBJ_THROUGHPUT, OBJ_ERROR } search_objective;
static const char *const obj_name[] = {"ppl", "throughput", "error"};

typedef struct search_opts {
    search_objective obj;
    double max_gb, max_ppl, max_error;
    int repeats, decode_tokens, error_rows, cuda, need_ppl;
} search_opts;

typedef struct trial {
    int *choice;
    double ppl, tps, tps_var, error, seconds; /* tps_var: variance of the mean of log tokens/s */
    uint64_t bytes;
} trial;

/* the settings a resumed search must share with its history */
static cJSON *settings_json(const cli_model *cm, const search_opts *so, const char *space, uint64_t seed, int init,
                            size_t max_tokens, int ctx, const char *text, int random_search) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "strategy", random_search ? "random" : "bo");
    cJSON_AddStringToObject(o, "model", cm->run->origin);
    cJSON_AddStringToObject(o, "objective", obj_name[so->obj]);
    cJSON_AddNumberToObject(o, "max_size_gb", so->max_gb);
    cJSON_AddNumberToObject(o, "max_ppl", so->max_ppl);
    cJSON_AddNumberToObject(o, "max_error", so->max_error);
    cJSON_AddNumberToObject(o, "error_rows", so->error_rows);
    cJSON_AddStringToObject(o, "device", so->cuda ? "cuda" : "cpu");
    if (so->obj == OBJ_THROUGHPUT) {
        cJSON_AddNumberToObject(o, "repeats", so->repeats);
        cJSON_AddNumberToObject(o, "decode_tokens", so->decode_tokens);
    }
    cJSON_AddNumberToObject(o, "seed", (double)seed);
    cJSON_AddNumberToObject(o, "init", init);
    cJSON_AddStringToObject(o, "space", space);
    cJSON_AddStringToObject(o, "calibration", text ? text : "");
    cJSON_AddNumberToObject(o, "max_tokens", (double)max_tokens);
    cJSON_AddNumberToObject(o, "ctx", ctx);
    return o;
}

/* What the GP models for perplexity: log of the NLL (= log log perplexity). Plans with 2-bit
 * layers reach perplexities 50x the good ones; on log perplexity they set the GP's scale and the
 * good region looks flat. */
static double gp_target(double ppl) { return log(log(ppl > 1.0000001 ? ppl : 1.0000001)); }

/* The minimised GP target of a trial */
static double trial_y(const search_opts *so, const trial *t) {
    if (so->obj == OBJ_PPL) return gp_target(t->ppl);
    if (so->obj == OBJ_THROUGHPUT) return -log(t->tps);
    return log(t->error > 1e-300 ? t->error : 1e-300);
}

/* measured limits only (size and error hold by construction) */
static int trial_ok(const search_opts *so, const trial *t) { return !(so->max_ppl > 0) || t->ppl <= so->max_ppl; }

/* the best trial meeting the limits, -1 when none does */
static int best_trial(const search_opts *so, const trial *t, int n) {
    int bi = -1;
    for (int i = 0; i < n; i++)
        if (trial_ok(so, &t[i]) && (bi < 0 || trial_y(so, &t[i]) < trial_y(so, &t[bi]))) bi = i;
    return bi;
}

/* The objective's value as printed */
static double trial_value(const search_opts *so, const trial *t) {
    return so->obj == OBJ_PPL ? t->ppl : so->obj == OBJ_THROUGHPUT ? t->tps : t->error;
}
static const char *value_key(const search_opts *so) {
    return so->obj == OBJ_PPL ? "cal_PPL" : so->obj == OBJ_THROUGHPUT ? "cal_throughput" : "layer_error";
}
/* The seed's second column: model_size for ppl and error; for throughput the accuracy it is held to */
static const char *second_key(const search_opts *so) {
    return so->obj != OBJ_THROUGHPUT ? "model_size" : so->need_ppl ? "cal_PPL" : "layer_error";
}
static double second_value(const search_opts *so, const trial *t) {
    return so->obj != OBJ_THROUGHPUT ? (double)t->bytes / 1e9 : so->need_ppl ? t->ppl : t->error;
}

/* Python-dict style, as the seed prints: {'bitwidth.0.': 5, ...} */
static void print_pydict(FILE *f, const cJSON *o) {
    fputc('{', f);
    int first = 1;
    for (const cJSON *it = o->child; it; it = it->next) {
        fprintf(f, "%s'%s': %g", first ? "" : ", ", it->string, it->valuedouble);
        first = 0;
    }
    fputc('}', f);
}

static qj_status write_csv(const char *path, const search_opts *so, const qj_search *s, const trial *t, int n) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    len += (size_t)snprintf(buf, cap, "%s,%s,quant_config\n", value_key(so), second_key(so));
    for (int i = 0; i < n; i++) {
        cJSON *cfg = qj_search_config(s, t[i].choice);
        char *js = cfg ? cJSON_PrintUnformatted(cfg) : NULL;
        cJSON_Delete(cfg);
        if (!js) {
            free(buf);
            return qj_fail(QJ_ERR_NOMEM, "out of memory");
        }
        for (char *p = js; *p; p++)
            if (*p == '"') *p = '\''; /* the seed's dict quoting; CSV-quoted below */
        const size_t need = strlen(js) + 64;
        if (len + need >= cap) {
            while (len + need >= cap) cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(js);
                free(buf);
                return qj_fail(QJ_ERR_NOMEM, "out of memory");
            }
            buf = nb;
        }
        len += (size_t)snprintf(buf + len, cap - len, "%.6f,%.9g,\"%s\"\n", trial_value(so, &t[i]),
                                second_value(so, &t[i]), js);
        free(js);
    }
    qj_status st = qj_write_file_atomic(path, buf, len);
    free(buf);
    return st;
}

typedef struct history_ctx {
    const char *path;
    const cJSON *want;
    const search_opts *so;
    const qj_search *s;
    trial *t;
    int max, n;
} history_ctx;

static qj_status need_number(const cJSON *o, const char *key, const char *path, int line, double *v) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(it)) return qj_fail(QJ_ERR_FORMAT, "%s:%d: \"%s\" is missing", path, line, key);
    *v = it->valuedouble;
    return QJ_OK;
}

/* line 1: the settings, which must equal the search's; the rest: trials */
static qj_status history_line(void *ctx, const cJSON *o, int line) {
    history_ctx *h = ctx;
    if (line == 1) {
        const cJSON *set = cJSON_GetObjectItemCaseSensitive(o, "search");
        if (set && cJSON_Compare(set, h->want, 1)) return QJ_OK;
        char *a = set ? cJSON_PrintUnformatted(set) : NULL, *b = cJSON_PrintUnformatted(h->want);
        qj_status st = qj_fail(QJ_ERR_INVALID, "%s: the history's settings %s differ from this search's %s; --resume "
                               "continues the same search", h->path, a ? a : "(none)", b ? b : "?");
        free(a);
        free(b);
        return st;
    }
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(o, "quant_config");
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(o, "seconds");
    char where[600];
    snprintf(where, sizeof where, "%s:%d: quant_config", h->path, line);
    if (h->n >= h->max) return qj_fail(QJ_ERR_INVALID, "%s: more trials than --trials %d", h->path, h->max);
    trial *t = &h->t[h->n];
    qj_status st = QJ_OK;
    if (h->so->need_ppl) st = need_number(o, "cal_PPL", h->path, line, &t->ppl);
    if (!st && h->so->obj == OBJ_THROUGHPUT) {
        st = need_number(o, "cal_throughput", h->path, line, &t->tps);
        if (!st) st = need_number(o, "throughput_log_var", h->path, line, &t->tps_var);
        if (!st && !(t->tps > 0)) st = qj_fail(QJ_ERR_FORMAT, "%s:%d: \"cal_throughput\" must be positive", h->path, line);
    }
    if (!st) st = qj_search_from_config(h->s, cfg, where, t->choice);
    if (st) return st;
    t->error = qj_search_error(h->s, t->choice);
    t->seconds = cJSON_IsNumber(sec) ? sec->valuedouble : 0;
    t->bytes = qj_search_bytes(h->s, t->choice);
    h->n++;
    return QJ_OK;
}

/* Reads a history: its settings line must equal `want`; trials go to t (choices decoded
 * through s). A last line cut short (an interrupted append) is dropped: *valid ends before it. */
static qj_status read_history(const char *path, const cJSON *want, const search_opts *so, const qj_search *s, trial *t,
                              int max, int *n, size_t *valid) {
    history_ctx h = {path, want, so, s, t, max, 0};
    int lines = 0;
    qj_status st = cli_jsonl_each(path, history_line, &h, valid, &lines);
    *n = h.n;
    if (!st && lines == 0) st = qj_fail(QJ_ERR_FORMAT, "%s: empty history", path);
    return st;
}

/* every layer at one setting */
static int uniform_point(const qj_search *s, const int *c) {
    for (int k = 2; k < qj_search_nchoice(s); k++)
        if (qj_search_value(s, k, c[k]) != qj_search_value(s, k % 2, c[k % 2])) return 0;
    return 1;
}

/* The three PNGs of a search (see the usage); PREFIX from the history's name by default. */
static qj_status write_plots(const char *prefix, const char *history, const search_opts *so, const qj_search *s,
                             const trial *t, int n, int best) {
    if (!qj_plot_available()) {
        printf("plots: this qjit was built without libpng; none written\n");
        return QJ_OK;
    }
    if (best < 0) {
        printf("plots: no trial met the limits; none written\n");
        return QJ_OK;
    }
    char pre[4096], path[4200];
    if (prefix) snprintf(pre, sizeof pre, "%s", prefix);
    else {
        snprintf(pre, sizeof pre, "%s", history);
        const size_t l = strlen(pre);
        if (l > 6 && !strcmp(pre + l - 6, ".jsonl")) pre[l - 6] = 0;
    }
    const int L = qj_search_nchoice(s) / 2;
    double *gx = malloc((size_t)(4 * n + 3 * L + 8) * sizeof *gx), *gy = malloc((size_t)(4 * n + 3 * L + 8) * sizeof *gy);
    int *ord = malloc((size_t)n * sizeof *ord);
    if (!gx || !gy || !ord) {
        free(gx);
        free(gy);
        free(ord);
        return qj_fail(QJ_ERR_NOMEM, "out of memory");
    }
    /* all trials; uniform ones; the Pareto front; the best. ppl and error: the value against the
     * size (lowest value at each size); throughput: tokens/s against the accuracy measure it is
     * held to (highest tokens/s at each accuracy) */
    const int tput = so->obj == OBJ_THROUGHPUT, maxfront = tput;
    double *ax = gx, *ay = gy, *ux = gx + n, *uy = gy + n, *fx = gx + 2 * n, *fy = gy + 2 * n, *bx = gx + 3 * n,
           *by = gy + 3 * n;
    int nu = 0, nf = 0;
    for (int i = 0; i < n; i++) {
        ax[i] = second_value(so, &t[i]); /* the size, or for throughput the accuracy it is held to */
        ay[i] = trial_value(so, &t[i]);
        if (uniform_point(s, t[i].choice)) ux[nu] = ax[i], uy[nu++] = ay[i];
        ord[i] = i;
    }
    for (int i = 1; i < n; i++) /* by x, then the better y first */
        for (int j = i; j > 0; j--) {
            const int a = ord[j], b = ord[j - 1];
            const int before = ax[a] < ax[b] || (ax[a] == ax[b] && (maxfront ? ay[a] > ay[b] : ay[a] < ay[b]));
            if (!before) break;
            ord[j] = b;
            ord[j - 1] = a;
        }
    double run = maxfront ? -INFINITY : INFINITY;
    for (int i = 0; i < n; i++) {
        const double y = ay[ord[i]];
        if (!trial_ok(so, &t[ord[i]]) || (maxfront ? !(y > run) : !(y < run))) continue;
        run = y;
        fx[nf] = ax[ord[i]], fy[nf++] = y;
    }
    bx[0] = ax[best];
    by[0] = ay[best];
    qj_plot p;
    memset(&p, 0, sizeof p);
    char title[128], ylab[64];
    if (tput) {
        snprintf(title, sizeof title, "Decode tokens/s vs %s", so->need_ppl ? "perplexity" : "layer-output error");
        p.xlabel = so->need_ppl ? "perplexity" : "layer-output error";
        p.ylabel = "tokens/s";
    } else {
        snprintf(title, sizeof title, "%s vs model size", so->obj == OBJ_PPL ? "Perplexity" : "Layer-output error");
        p.xlabel = "model size (GB)";
        p.ylabel = so->obj == OBJ_PPL ? "perplexity (log)" : "layer-output error (log)";
        p.logy = 1;
    }
    p.title = title;
    p.series[0] = (qj_plot_series){ax, ay, n, 0x909090, QJ_MARK_DOT, "trials"};
    p.series[1] = (qj_plot_series){fx, fy, nf, 0x2050D0, QJ_MARK_LINE, "pareto front"};
    p.series[2] = (qj_plot_series){ux, uy, nu, 0xD03020, QJ_MARK_SQUARE, "uniform plans"};
    p.series[3] = (qj_plot_series){bx, by, 1, 0x20A040, QJ_MARK_SQUARE, "best"};
    p.n_series = 4;
    snprintf(path, sizeof path, "%s_pareto.png", pre);
    qj_status st = qj_plot_png(path, &p, 800, 560);
    /* best so far (within the limits) against the trial */
    double *tx = gx, *ty = gy;
    int np = 0, bs = -1;
    for (int i = 0; !st && i < n; i++) {
        if (trial_ok(so, &t[i]) && (bs < 0 || trial_y(so, &t[i]) < trial_y(so, &t[bs]))) bs = i;
        if (bs < 0) continue;
        tx[np] = i + 1;
        ty[np++] = trial_value(so, &t[bs]);
    }
    if (!st) {
        memset(&p, 0, sizeof p);
        snprintf(title, sizeof title, "Best %s so far", tput ? "tokens/s" : so->obj == OBJ_PPL ? "perplexity" : "error");
        snprintf(ylab, sizeof ylab, "best %s", tput ? "tokens/s" : so->obj == OBJ_PPL ? "perplexity" : "error");
        p.title = title;
        p.xlabel = "trial";
        p.ylabel = ylab;
        p.series[0] = (qj_plot_series){tx, ty, np, 0x2050D0, QJ_MARK_LINE, "best so far"};
        p.n_series = 1;
        snprintf(path, sizeof path, "%s_progress.png", pre);
        st = qj_plot_png(path, &p, 800, 480);
    }
    /* the best plan: bits per layer (bars) and log2 of the group (line; per-channel as 10) */
    double *lx = gx, *lb = gy, *lg = gy + L;
    for (int i = 0; !st && i < L; i++) {
        lx[i] = i;
        lb[i] = qj_search_value(s, 2 * i, t[best].choice[2 * i]);
        const int g = qj_search_value(s, 2 * i + 1, t[best].choice[2 * i + 1]);
        lg[i] = g > 0 ? log2((double)g) : 10.0;
    }
    if (!st) {
        memset(&p, 0, sizeof p);
        p.title = "Best plan per layer";
        p.xlabel = "layer";
        p.ylabel = "bits / log2 group";
        p.series[0] = (qj_plot_series){lx, lb, L, 0x2050D0, QJ_MARK_BAR, "bits"};
        p.series[1] = (qj_plot_series){lx, lg, L, 0xD03020, QJ_MARK_LINE, "log2 group"};
        p.n_series = 2;
        snprintf(path, sizeof path, "%s_plan.png", pre);
        st = qj_plot_png(path, &p, 800, 480);
    }
    if (!st) printf("plots %s_pareto.png, %s_progress.png, %s_plan.png\n", pre, pre, pre);
    free(gx);
    free(gy);
    free(ord);
    return st;
}

static qj_status append_line(const char *path, const char *line) {
    FILE *f = fopen(path, "a");
    if (!f) return qj_fail(QJ_ERR_IO, "%s: cannot open for appending", path);
    int bad = fputs(line, f) < 0 || fputc('\n', f) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    return bad ? qj_fail(QJ_ERR_IO, "%s: write failed", path) : QJ_OK;
}

#define MAX_REPEATS CLI_MAX_REPEATS
#define MAX_WORKERS 64

/* What a trial needs besides its point */
typedef struct trial_env {
    const search_opts *so;
    const qj_model *src;
    const qj_search *s;
    qj_quant_cache *qcache;
    const int *ids;
    size_t nid;
    qj_eval_params ep;
    int ordinal;           /* the CUDA device of --device cuda trials */
    qj_cpu_kcache *kcache; /* CPU throughput trials: kernels kept across trials (NULL: the reference) */
} trial_env;

typedef struct trial_out {
    qj_compile_stats cst;
    cli_measured ms;
} trial_out;

/* A trial's values: what was measured, and its exact size and error */
static void trial_take(trial *t, const qj_search *s, const int *c, const cli_measured *ms) {
    t->error = qj_search_error(s, c);
    t->bytes = qj_search_bytes(s, c);
    t->ppl = ms->er.ppl;
    t->tps = ms->tps;
    t->tps_var = ms->tps_log_var;
}

/* One trial: compile the point's plan (through the quantization cache), build it on the device
 * (kernels through the kernel cache), measure what the objective and limits need (into o; the
 * error objective, exact, runs nothing). */
static qj_status run_trial(const trial_env *e, const int *c, trial_out *o) {
    const search_opts *so = e->so;
    memset(o, 0, sizeof *o);
    if (so->obj == OBJ_ERROR) return QJ_OK;
    qj_plan *plan = NULL;
    qj_model *m = NULL;
    qj_status st = qj_search_plan(e->s, c, &plan);
    if (!st) st = qj_compile_model_cached(e->src, plan, e->qcache, 0, &m, &o->cst);
    if (!st) {
        qj_size_info z;
        qj_model_size(m, &z);
        if (z.bytes != qj_search_bytes(e->s, c))
            st = qj_fail(QJ_ERR_INTERNAL, "compiled size %llu differs from the predicted %llu",
                         (unsigned long long)z.bytes, (unsigned long long)qj_search_bytes(e->s, c));
    }
    if (!st) {
        cli_measure mp = {so->cuda, e->ordinal, so->need_ppl, e->ids, e->nid, e->ep,
                          so->decode_tokens, so->obj == OBJ_THROUGHPUT ? so->repeats : 0, e->kcache != NULL, e->kcache};
        st = cli_measure_model(m, &mp, &o->ms);
    }
    qj_model_free(m);
    qj_plan_free(plan);
    return st;
}

/* Trials in worker processes (--workers, --gpus): a request is a header and the point's nc
 * choice indices; a reply carries what run_trial measured. Both ends are this binary. */
#define WIRE_MAGIC 0x51534a57 /* "WJSQ" */
typedef struct wire_req {
    int32_t magic, trial;
} wire_req;
typedef struct wire_res {
    int32_t magic, trial, status, pad;
    double seconds;
    trial_out to;
    char err[1024];
} wire_res;

/* A worker: trials until the requests end (its driver finished or died; over MPI, a zeroed
 * request). mpi: requests from rank 0 instead of stdin. */
static int worker_loop(const trial_env *env, int nc, int mpi) {
    const int in = mpi ? -1 : 0, out = mpi ? -1 : dup(1); /* replies only on the original stdout */
    if (!mpi && (out < 0 || dup2(2, 1) < 0)) return 1;  /* anything printed goes to stderr */
    int *c = calloc((size_t)nc, sizeof *c);
    if (!c) return 1;
    for (;;) {
        wire_req rq;
        int eof = 0;
        if (cli_worker_read(in, &rq, sizeof rq, &eof)) break;
        if (mpi && rq.magic == 0) break; /* the end */
        if (rq.magic != WIRE_MAGIC || cli_worker_read(in, c, (size_t)nc * sizeof *c, &eof)) {
            fprintf(stderr, "qjit search worker: a malformed request\n");
            free(c);
            return 1;
        }
        wire_res rs;
        memset(&rs, 0, sizeof rs);
        rs.magic = WIRE_MAGIC;
        rs.trial = rq.trial;
        const double ts = qj_now();
        rs.status = (int32_t)run_trial(env, c, &rs.to);
        rs.seconds = qj_now() - ts;
        if (rs.status) snprintf(rs.err, sizeof rs.err, "%s", qj_last_error());
        if (cli_worker_write(out, &rs, sizeof rs)) break;
    }
    free(c);
    if (!mpi) close(out);
    return 0;
}

/* What proposing needs: the trials so far (rows of X, G, Y, Yn, Yc and hist) and scratch
 * for a batch's fantasised rows */
typedef struct proposer {
    const search_opts *so;
    const qj_search *s;
    const trial *t;
    double *X, *G, *Y, *Yn, *Yc; /* (trials, d) coordinates; GP target; objective; noise; log NLL */
    int *hist;                   /* (trials, nc) the trials' points */
    const int *pts;                    /* (n_pts, nc) the initial points */
    int n_pts, nc, d, random_search;
    uint64_t max_bytes, bytes_off, seed;
    double *sx, *sg, *sn, *sc; /* scratch: (trials + batch) rows */
    int *sh, *starts;          /* scratch: (trials + batch, nc) and (4, nc) */
} proposer;

/* Trial i (measured) as rows of the GP's data. Throughput: the GP models the log of the achieved
 * bandwidth (tokens/s x bytes read per step), the bytes being exact for every point. */
static void proposer_add(const proposer *P, int i) {
    const trial *t = &P->t[i];
    qj_search_encode(P->s, t->choice, P->X + (size_t)i * P->d);
    memcpy(P->hist + (size_t)i * P->nc, t->choice, (size_t)P->nc * sizeof *P->hist);
    P->Y[i] = trial_y(P->so, t);
    P->G[i] = P->so->obj == OBJ_THROUGHPUT ? P->Y[i] - log((double)(t->bytes - P->bytes_off)) : P->Y[i];
    P->Yn[i] = t->tps_var;
    if (P->so->need_ppl) P->Yc[i] = gp_target(t->ppl);
}

/* The points of trials b0 .. b0 + bn - 1, from the trials before b0 only (so a batch cut short
 * by an interruption is proposed again the same way): the initial points; random untried
 * points; or BO, each later point of the batch proposed with the earlier ones fantasised at
 * the GP's mean (the "kriging believer"), so a batch spreads out instead of repeating one
 * point. bp: (bn, nc); acq and how per point. bn = 1 is the sequential search. */
static qj_status propose_batch(const proposer *P, int b0, int bn, int *bp, double *acq, const char **how) {
    const search_opts *so = P->so;
    const int nc = P->nc, d = P->d;
    qj_gp *g = NULL, *gc = NULL, *gf = NULL, *gcf = NULL;
    qj_status st = QJ_OK;
    /* the exclusion list: the trials, then the batch's points as they come */
    memcpy(P->sh, P->hist, (size_t)b0 * (size_t)nc * sizeof *P->sh);
    for (int j = 0; j < bn && !st; j++) {
        const int idx = b0 + j;
        int *c = bp + (size_t)j * nc;
        acq[j] = 0;
        if (idx < P->n_pts) {
            memcpy(c, P->pts + (size_t)idx * nc, (size_t)nc * sizeof *c);
            how[j] = "initial";
        } else if (P->random_search) {
            st = qj_search_random(P->s, P->seed * 7919u + (uint64_t)idx, P->max_bytes, P->sh, b0 + j, c);
            how[j] = "random";
        } else {
            /* the GP on the objective of the trials (with each one's measured noise), a GP on
             * perplexity for --max-ppl, then the point of largest (constrained) EI */
            qj_gp_opts go = qj_gp_default_opts();
            go.seed = P->seed * 1000003u + (uint64_t)idx;
            const double *noise = so->obj == OBJ_THROUGHPUT ? P->Yn : NULL;
            if (!g && (st = qj_gp_fit(P->X, P->G, noise, b0, d, &go, &g))) break;
            if (so->max_ppl > 0 && !gc && (st = qj_gp_fit(P->X, P->Yc, NULL, b0, d, &go, &gc))) break;
            const qj_gp *use = g, *usec = gc;
            if (j > 0) { /* the trials and the batch's earlier points at the GP's mean */
                const size_t rows = (size_t)(b0 + j);
                memcpy(P->sx, P->X, (size_t)b0 * (size_t)d * sizeof *P->sx);
                memcpy(P->sg, P->G, (size_t)b0 * sizeof *P->sg);
                memcpy(P->sn, P->Yn, (size_t)b0 * sizeof *P->sn);
                memcpy(P->sc, P->Yc, (size_t)b0 * sizeof *P->sc);
                for (int q = 0; q < j; q++) {
                    double *x = P->sx + (size_t)(b0 + q) * d, var;
                    qj_search_encode(P->s, bp + (size_t)q * nc, x);
                    qj_gp_predict(g, x, &P->sg[b0 + q], &var);
                    P->sn[b0 + q] = 0;
                    if (gc) qj_gp_predict(gc, x, &P->sc[b0 + q], &var);
                }
                qj_gp_free(gf);
                qj_gp_free(gcf);
                gf = gcf = NULL;
                if ((st = qj_gp_fit(P->sx, P->sg, noise ? P->sn : NULL, (int)rows, d, &go, &gf))) break;
                if (gc && (st = qj_gp_fit(P->sx, P->sc, NULL, (int)rows, d, &go, &gcf))) break;
                use = gf;
                usec = gcf;
            }
            qj_acq_params ap = qj_acq_default_params();
            ap.log_bytes_mean = so->obj == OBJ_THROUGHPUT;
            ap.bytes_offset = P->bytes_off;
            if (usec) {
                ap.constraint = usec;
                ap.limit = gp_target(so->max_ppl);
            }
            ap.max_bytes = P->max_bytes;
            ap.seed = P->seed * 7919u + (uint64_t)idx;
            /* the incumbent: the best trial within the limits; none yet: the worst, so the
             * acquisition is driven by the probability of meeting the limit */
            const int bt = best_trial(so, P->t, b0);
            ap.best = bt >= 0 ? P->Y[bt] : -INFINITY;
            if (bt < 0)
                for (int i = 0; i < b0; i++) ap.best = fmax(ap.best, P->Y[i]);
            ap.exclude = P->sh;
            ap.n_exclude = b0 + j;
            /* local search also from next to the best 4 trials within the limits */
            int order[4], no = 0;
            for (int q = 0; q < 4 && q < b0; q++) {
                int bi = -1;
                for (int i = 0; i < b0; i++) {
                    int used = 0;
                    for (int u = 0; u < no; u++) used |= order[u] == i;
                    if (!used && trial_ok(so, &P->t[i]) && (bi < 0 || P->Y[i] < P->Y[bi])) bi = i;
                }
                if (bi < 0) break;
                order[no++] = bi;
            }
            for (int u = 0; u < no; u++)
                memcpy(P->starts + (size_t)u * nc, P->t[order[u]].choice, (size_t)nc * sizeof *P->starts);
            ap.starts = P->starts;
            ap.n_starts = no;
            st = qj_search_propose(P->s, use, &ap, c, &acq[j]);
            how[j] = "bo";
        }
        if (!st) memcpy(P->sh + (size_t)(b0 + j) * nc, c, (size_t)nc * sizeof *c);
    }
    qj_gp_free(g);
    qj_gp_free(gc);
    qj_gp_free(gf);
    qj_gp_free(gcf);
    return st;
}

/* CPU throughput trials decode on the LLVM kernels (unless QJ_CPU_KERNELS=reference or no LLVM) */
static int cpu_kernels_wanted(const search_opts *so) {
    return so->obj == OBJ_THROUGHPUT && !so->cuda && cli_cpu_jit_enabled();
}

static qj_status parse_gb(const char *arg, const char *opt, int zero_ok, double *out) {
    char *end;
    const double v = strtod(arg, &end);
    if (*end || !isfinite(v) || (zero_ok ? !(v >= 0) : !(v > 0)))
        return qj_fail(QJ_ERR_INVALID, "--%s \"%s\": expected a %s number", opt, arg, zero_ok ? "non-negative" : "positive");
    *out = v;
    return QJ_OK;
}

/* the uniform plans of the space: size, error and whether they meet the limits */
static void print_uniform(const qj_search *s, uint64_t max_bytes, int *tmp) {
    printf("uniform plans (every layer at one setting):\n");
    for (int bi = 0; bi < qj_search_nvalues(s, 0); bi++)
        for (int gi = 0; gi < qj_search_nvalues(s, 1); gi++) {
            const int bits = qj_search_value(s, 0, bi), grp = qj_search_value(s, 1, gi);
            if (qj_search_uniform(s, bits, grp, tmp)) {
                qj_clear_error();
                continue;
            }
            const double err = qj_search_error(s, tmp);
            char es[48] = "", name[32];
            if (err >= 0) snprintf(es, sizeof es, "  layer-output error %.5f", err);
            if (grp) snprintf(name, sizeof name, "int%d-g%d", bits, grp);
            else snprintf(name, sizeof name, "int%d-pc", bits);
            printf("  %-11s %10.6f GB%s  %s\n", name, (double)qj_search_bytes(s, tmp) / 1e9, es,
                   qj_search_feasible(s, tmp, max_bytes) ? "within the limits" : "over a limit");
        }
}

/* args: the arguments as given (getopt reorders argv), for the worker processes */
static int search_main(int argc, char **argv, char **args) {
    static const struct option opts[] = {CLI_MODEL_OPTIONS,
                                         {"objective", required_argument, 0, 'O'},
                                         {"max-size", required_argument, 0, 'S'},
                                         {"max-ppl", required_argument, 0, 'E'},
                                         {"max-error", required_argument, 0, 'X'},
                                         {"error-rows", required_argument, 0, 'W'},
                                         {"repeats", required_argument, 0, 'r'},
                                         {"decode-tokens", required_argument, 0, 'D'},
                                         {"text", required_argument, 0, 'T'},
                                         {"tokens", required_argument, 0, 'K'},
                                         {"max-tokens", required_argument, 0, 'n'},
                                         {"ctx", required_argument, 0, 'c'},
                                         {"trials", required_argument, 0, 'N'},
                                         {"init", required_argument, 0, 'I'},
                                         {"space", required_argument, 0, 'P'},
                                         {"initial-samples", required_argument, 0, 'i'},
                                         {"history", required_argument, 0, 'H'},
                                         {"output", required_argument, 0, 'o'},
                                         {"resume", no_argument, 0, 'R'},
                                         {"strategy", required_argument, 0, 'G'},
                                         {"plots", required_argument, 0, 'L'},
                                         {"quant-cache", required_argument, 0, 'C'},
                                         {"workers", required_argument, 0, 'w'},
                                         {"gpus", required_argument, 0, 'g'},
                                         {"worker-slot", required_argument, 0, 'Z'},
                                         {"mpi", no_argument, 0, 'M'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    cli_model cm;
    cli_model_init(&cm);
    const char *objective = NULL, *text = NULL, *tokens = NULL, *space_path = NULL, *samples_path = NULL;
    const char *history = "search_history.jsonl", *output = "search_output.csv", *plots = NULL;
    search_opts so;
    memset(&so, 0, sizeof so);
    so.repeats = 3;
    so.decode_tokens = 64;
    so.error_rows = 256;
    double cache_gb = 4.0;
    long v, trials = 40, n_init = 10, workers = 1, slot = -1;
    int resume = 0, o, r, ctx = 0, random_search = 0, gpus[MAX_WORKERS], ngpus = 0, use_mpi = 0;
    cli_mpi mpi;
    memset(&mpi, 0, sizeof mpi);
    size_t max_tokens = 2000;
    while ((o = getopt_long(argc, argv, "m:p:h", opts, NULL)) != -1) {
        if ((r = cli_model_option(&cm, o, optarg))) {
            if (r < 0) return cli_error("search");
            continue;
        }
        switch (o) {
        case 'O': objective = optarg; break;
        case 'S': if (parse_gb(optarg, "max-size", 0, &so.max_gb)) return cli_error("search"); break;
        case 'E': if (parse_gb(optarg, "max-ppl", 0, &so.max_ppl)) return cli_error("search"); break;
        case 'X': if (parse_gb(optarg, "max-error", 0, &so.max_error)) return cli_error("search"); break;
        case 'C': if (parse_gb(optarg, "quant-cache", 1, &cache_gb)) return cli_error("search"); break;
        case 'W':
            if (cli_parse_long(optarg, "error-rows", 0, 1 << 30, &v)) return cli_error("search");
            so.error_rows = (int)v;
            break;
        case 'r':
            if (cli_parse_long(optarg, "repeats", 1, MAX_REPEATS, &v)) return cli_error("search");
            so.repeats = (int)v;
            break;
        case 'D':
            if (cli_parse_long(optarg, "decode-tokens", 1, 1 << 20, &v)) return cli_error("search");
            so.decode_tokens = (int)v;
            break;
        case 'T': text = optarg; break;
        case 'K': tokens = optarg; break;
        case 'n':
            if (cli_parse_long(optarg, "max-tokens", 1, 0x7fffffffL, &v)) return cli_error("search");
            max_tokens = (size_t)v;
            break;
        case 'c':
            if (cli_parse_long(optarg, "ctx", 2, 1 << 20, &v)) return cli_error("search");
            ctx = (int)v;
            break;
        case 'N': if (cli_parse_long(optarg, "trials", 1, 100000, &trials)) return cli_error("search"); break;
        case 'I': if (cli_parse_long(optarg, "init", 1, 100000, &n_init)) return cli_error("search"); break;
        case 'w': if (cli_parse_long(optarg, "workers", 1, MAX_WORKERS, &workers)) return cli_error("search"); break;
        case 'M': use_mpi = 1; break;
        case 'Z': if (cli_parse_long(optarg, "worker-slot", 0, MAX_WORKERS - 1, &slot)) return cli_error("search"); break;
        case 'g': {
            ngpus = 0;
            for (char *p = optarg, *end; *p; p = *end ? end + 1 : end) {
                const long gi = strtol(p, &end, 10);
                if (end == p || (*end && *end != ',') || gi < 0 || gi > 1023 || ngpus == MAX_WORKERS) {
                    fprintf(stderr, "qjit search: --gpus \"%s\": expected CUDA device numbers separated by commas "
                            "(at most %d)\n", optarg, MAX_WORKERS);
                    return 2;
                }
                gpus[ngpus++] = (int)gi;
            }
            if (!ngpus) {
                fprintf(stderr, "qjit search: --gpus \"%s\": no device given\n", optarg);
                return 2;
            }
            break;
        }
        case 'P': space_path = optarg; break;
        case 'i': samples_path = optarg; break;
        case 'H': history = optarg; break;
        case 'o': output = optarg; break;
        case 'R': resume = 1; break;
        case 'L': plots = optarg; break;
        case 'G':
            if (strcmp(optarg, "bo") && strcmp(optarg, "random")) {
                fprintf(stderr, "qjit search: --strategy \"%s\": expected bo or random\n", optarg);
                return 2;
            }
            random_search = !strcmp(optarg, "random");
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "qjit search: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    int known = 0;
    for (int k = 0; k < 3 && objective; k++)
        if (!strcmp(objective, obj_name[k])) so.obj = (search_objective)k, known = 1;
    if (!known) {
        fprintf(stderr, "qjit search: --objective %s: expected ppl, throughput or error\n", objective ? objective : "(missing)");
        return 2;
    }
    so.need_ppl = so.obj == OBJ_PPL || so.max_ppl > 0;
    so.cuda = cm.cuda || ngpus > 0;
    const char *bad = NULL;
    if (ngpus > 0 && cm.device_set && !cm.cuda) bad = "--gpus runs the trials on CUDA devices, not with --device cpu";
    else if (workers > 1 && so.cuda) bad = "CUDA trials run one per GPU: --gpus LIST, not --workers";
    else if (use_mpi && (workers > 1 || slot >= 0)) bad = "--mpi: the workers are the MPI ranks after the first, not --workers";
    else if ((workers > 1 || ngpus > 1 || use_mpi) && so.obj == OBJ_ERROR)
        bad = "--objective error runs nothing (it is exact): no workers";
    else if (use_mpi && !cli_mpi_available()) bad = "--mpi: this qjit was built without MPI (Open MPI: libopenmpi-dev)";
    else if (so.obj != OBJ_THROUGHPUT && !(so.max_gb > 0)) bad = "--objective ppl and error need --max-size GB";
    else if (so.max_ppl > 0 && so.obj != OBJ_THROUGHPUT) bad = "--max-ppl goes with --objective throughput";
    else if (so.max_error > 0 && so.obj == OBJ_ERROR) bad = "--max-error does not go with --objective error (it is the objective)";
    else if (so.need_ppl && !!text == !!tokens) bad = "perplexity needs exactly one of --text FILE or --tokens FILE";
    else if (!so.need_ppl && (text || tokens)) bad = "--text/--tokens apply to --objective ppl and --max-ppl only";
    else if (so.obj == OBJ_ERROR && so.cuda) bad = "--objective error runs nothing (it is exact): no --device cuda";
    else if (cm.plan) bad = "--plan does not apply (the search makes the plans)";
    else if (slot >= (ngpus > 0 ? ngpus : workers)) bad = "--worker-slot is internal: the number of a worker process";
    if (bad) {
        fprintf(stderr, "qjit search: %s\n", bad);
        return 2;
    }
    /* over MPI: rank 0 drives, rank r > 0 is worker r - 1 (on its host's GPU host_worker) */
    cli_pool *pool = NULL;
    if (use_mpi) {
        if (cli_mpi_start(&argc, &argv, sizeof(wire_req), &mpi, &pool)) { /* every rank alike: finalize */
            cli_error("search");
            cli_pool_stop(pool, 0);
            cli_mpi_end(&mpi, 0);
            return 2;
        }
        if (mpi.rank > 0) slot = mpi.rank - 1;
    }
    /* the CUDA device of this process's trials: --gpus LIST's entry for a worker process; over
     * MPI, the host's list entry (or device number) for the rank's place among its host's workers */
    const int ordinal = use_mpi ? (ngpus ? gpus[mpi.host_worker % ngpus] : mpi.host_worker)
                                : ngpus ? gpus[slot >= 0 ? slot : 0] : 0;
    /* trials at once: one per worker */
    const int W = use_mpi ? mpi.size - 1 : ngpus > 0 ? ngpus : (int)workers;
    const int remote = use_mpi || W > 1; /* trials in worker processes */
    struct stat sb;
    if (slot < 0 && !resume && stat(history, &sb) == 0) {
        fprintf(stderr, "qjit search: %s exists: --resume continues that search, or remove it to start anew\n", history);
        return 2;
    }
    if (!qj_gp_available()) {
        fprintf(stderr, "qjit search: this qjit was built without LAPACKE, which the search's Gaussian process needs\n");
        return 2;
    }
    cm.cuda = 0;    /* the trials build their own GPU models */
    cm.cpu_jit = 0; /* and attach their own CPU kernels */
    const uint64_t seed = cm.seed;
    int *ids = NULL, *pts = NULL, *hist = NULL, *starts = NULL, *tmp = NULL, n_pts = 0, nt = 0, nc = 0;
    size_t nid = 0;
    qj_space *space = NULL;
    qj_samples *samples = NULL;
    qj_search *s = NULL;
    trial *t = NULL;
    cJSON *settings = NULL;
    double *X = NULL, *Y = NULL, *G = NULL, *Yn = NULL, *Yc = NULL;
    qj_quant_cache *qcache = NULL;
    qj_cpu_kcache *kcache = NULL;
    double *sx = NULL, *sg = NULL, *sn = NULL, *sc = NULL, *acq = NULL;
    int *sh = NULL, *bp = NULL;
    const char **how = NULL;
    int rc = 1;
    if (cli_model_open(&cm, text != NULL, slot < 0)) goto fail;
    if (cm.is_package) {
        qj_fail(QJ_ERR_INVALID, "%s is a compiled package; the search needs the source model", cm.model);
        goto fail;
    }
    if (cm.src->synthetic && slot < 0) printf("%s\n", cli_synthetic_label(cm.src));
    if (so.need_ppl && cli_read_ids(&cm, text, tokens, cm.src->cfg.vocab_size, &ids, &nid)) goto fail;
    const int L = cm.src->cfg.n_layers;
    if (space_path ? qj_space_parse(space_path, L, &space) : qj_space_default(L, &space)) goto fail;
    if (qj_search_setup(cm.src, space, &s)) goto fail;
    nc = qj_search_nchoice(s);
    const int d = qj_search_ndim(s);
    const uint64_t max_bytes = so.max_gb > 0 ? (uint64_t)floor(so.max_gb * 1e9 + 0.5) : 0; /* to the byte */
    if (slot >= 0) { /* a worker process: trials as its driver sends them (its share of the cache) */
        if (qj_quant_cache_new((uint64_t)(cache_gb * 1e9 / W), &qcache)) goto fail;
        if (cpu_kernels_wanted(&so) && qj_cpu_kcache_new(&kcache)) goto fail;
        trial_env we = {&so, cm.src, s, qcache, ids, nid, qj_eval_default_params(), ordinal, kcache};
        we.ep.ctx = ctx;
        we.ep.max_tokens = max_tokens;
        we.ep.progress = 0;
        rc = worker_loop(&we, nc, mpi.active);
        goto fail;
    }
    if (so.obj == OBJ_ERROR || so.max_error > 0) {
        const double te = qj_now();
        if (qj_search_measure_error(s, cm.src, so.error_rows, seed, 1)) goto fail;
        qj_search_set_max_error(s, so.max_error);
        printf("layer-output error of every setting of every layer measured in %.2f s (%d random inputs, %s rows "
               "per linear)\n", qj_now() - te, QJ_OUTERR_INPUTS, so.error_rows > 0 ? "sampled" : "all");
    }
    pts = calloc((size_t)(trials + n_init) * (size_t)nc, sizeof *pts);
    hist = calloc((size_t)trials * (size_t)nc, sizeof *hist); /* the trials' points, row i = trial i */
    starts = calloc((size_t)4 * (size_t)nc, sizeof *starts);  /* the best 4 of them */
    tmp = calloc((size_t)nc, sizeof *tmp);
    t = calloc((size_t)trials, sizeof *t);
    X = calloc((size_t)trials * (size_t)(d + 1), sizeof *X);
    Y = calloc((size_t)trials, sizeof *Y);
    G = calloc((size_t)trials, sizeof *G);
    Yn = calloc((size_t)trials, sizeof *Yn);
    Yc = calloc((size_t)trials, sizeof *Yc);
    /* a batch's scratch: the trials and its fantasised points; its points, acquisitions, kinds */
    const size_t srows = (size_t)trials + (size_t)W;
    sx = calloc(srows * (size_t)(d + 1), sizeof *sx);
    sg = calloc(srows, sizeof *sg);
    sn = calloc(srows, sizeof *sn);
    sc = calloc(srows, sizeof *sc);
    sh = calloc(srows * (size_t)nc, sizeof *sh);
    bp = calloc((size_t)W * (size_t)nc, sizeof *bp);
    acq = calloc((size_t)W, sizeof *acq);
    how = calloc((size_t)W, sizeof *how);
    if (!pts || !hist || !starts || !tmp || !t || !X || !Y || !G || !Yn || !Yc || !sx || !sg || !sn || !sc || !sh || !bp ||
        !acq || !how) {
        qj_fail(QJ_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (long i = 0; i < trials; i++)
        if (!(t[i].choice = calloc((size_t)nc, sizeof(int)))) {
            qj_fail(QJ_ERR_NOMEM, "out of memory");
            goto fail;
        }
    print_uniform(s, max_bytes, tmp);
    /* the initial points: the samples within the limits, else the uniform plans within them and
     * a Latin hypercube */
    if (samples_path) {
        /* validated (inside the space, every layer given) by the samples parser, then read as points */
        if (qj_samples_parse(samples_path, space, L, &samples)) goto fail;
        char *sbuf;
        size_t slen;
        if (qj_read_file(samples_path, &sbuf, &slen)) goto fail;
        cJSON *sj = cJSON_ParseWithLength(sbuf, slen);
        free(sbuf);
        const cJSON *arr = sj ? cJSON_GetObjectItemCaseSensitive(sj, "initial_samples") : NULL;
        const int ns = cJSON_GetArraySize(arr);
        for (int i = 0; i < ns && n_pts < trials; i++) {
            char where[600];
            snprintf(where, sizeof where, "%s: initial_samples[%d]", samples_path, i);
            int *c = pts + (size_t)n_pts * nc;
            if (qj_search_from_config(s, cJSON_GetArrayItem(arr, i), where, c)) {
                cJSON_Delete(sj);
                goto fail;
            }
            if (!qj_search_feasible(s, c, max_bytes)) {
                printf("initial sample %d: %.6f GB%s is over a limit: skipped\n", i, (double)qj_search_bytes(s, c) / 1e9,
                       qj_search_error(s, c) >= 0 ? ", its layer-output error" : "");
                continue;
            }
            n_pts++;
        }
        cJSON_Delete(sj);
    } else {
        /* per bit width of layer 0's list, the uniform plan within the limits a mixed plan has to
         * beat: its finest group (accuracy objectives) or its smallest plan (throughput) */
        int nu = 0;
        for (int bi = 0; bi < qj_search_nvalues(s, 0) && nu < n_init && nu < trials; bi++) {
            int *c = pts + (size_t)nu * nc, found = 0;
            const int bits = qj_search_value(s, 0, bi);
            double bestkey = INFINITY;
            for (int gi = 0; gi < qj_search_nvalues(s, 1); gi++) {
                const int grp = qj_search_value(s, 1, gi);
                if (qj_search_uniform(s, bits, grp, c)) {
                    qj_clear_error();
                    continue;
                }
                /* smaller is finer; per-channel (0) is the coarsest */
                const double key = so.obj == OBJ_THROUGHPUT ? (double)qj_search_bytes(s, c) : grp == 0 ? 1e18 : grp;
                if (qj_search_feasible(s, c, max_bytes) && key < bestkey) bestkey = key, found = grp;
            }
            if (!isfinite(bestkey)) continue;
            if (!qj_search_uniform(s, bits, found, c)) nu++;
        }
        n_pts = nu + qj_search_initial(s, (int)((n_init < trials ? n_init : trials) - nu), seed, max_bytes,
                                       pts + (size_t)nu * nc);
        /* a hypercube point equal to an earlier initial point: a random untried one instead */
        for (int j = nu; j < n_pts; j++) {
            int dup = 0;
            for (int i = 0; i < j && !dup; i++) dup = !memcmp(pts + (size_t)i * nc, pts + (size_t)j * nc, (size_t)nc * sizeof *pts);
            if (dup && qj_search_random(s, seed * 31u + (uint64_t)j, max_bytes, pts, j, pts + (size_t)j * nc)) goto fail;
        }
    }
    if (n_pts == 0) {
        qj_fail(QJ_ERR_INVALID, "no initial plan meets the limits (--max-size %g GB, --max-error %g): the space's "
                "smallest or most accurate plan is over them", so.max_gb, so.max_error);
        goto fail;
    }
    settings = settings_json(&cm, &so, space->name, seed, n_pts, max_tokens, ctx, text ? text : tokens, random_search);
    cJSON_AddNumberToObject(settings, "workers", W); /* the batch size: part of what makes a run reproducible */
    if (resume && stat(history, &sb) == 0) {
        size_t valid = 0;
        if (read_history(history, settings, &so, s, t, (int)trials, &nt, &valid)) goto fail;
        /* a record cut short by the interruption goes; its trial runs again */
        if (stat(history, &sb) == 0 && (size_t)sb.st_size > valid) {
            if (truncate(history, (off_t)valid) != 0) {
                qj_fail(QJ_ERR_IO, "%s: cannot drop the unfinished last record", history);
                goto fail;
            }
            printf("%s: dropped an unfinished record (%zu bytes)\n", history, (size_t)sb.st_size - valid);
        }
        printf("resuming %s: %d trials done\n", history, nt);
    } else {
        cJSON *h = cJSON_CreateObject();
        cJSON_AddItemReferenceToObject(h, "search", settings);
        char *js = cJSON_PrintUnformatted(h);
        cJSON_Delete(h);
        qj_status st = js ? append_line(history, js) : qj_fail(QJ_ERR_NOMEM, "out of memory");
        free(js);
        if (st) goto fail;
    }
    if (!remote && qj_quant_cache_new((uint64_t)(cache_gb * 1e9), &qcache)) goto fail;
    if (!remote && cpu_kernels_wanted(&so) && qj_cpu_kcache_new(&kcache)) goto fail;
    trial_env env = {&so, cm.src, s, qcache, ids, nid, qj_eval_default_params(), ordinal, kcache};
    env.ep.ctx = ctx;
    env.ep.max_tokens = max_tokens;
    env.ep.progress = 0;
    double t0 = qj_now(), spent = 0;
    int ran = 0;
    /* bytes_off: the embedding table, which a step does not read (one row) unless it is also the head */
    const uint64_t bytes_off = cm.src->cfg.tied_embeddings ? 0 : (uint64_t)qj_tensor_bytes(&cm.src->tok_embedding);
    proposer P = {&so, s, t, X, G, Y, Yn, Yc, hist, pts, n_pts, nc, d, random_search, max_bytes, bytes_off, seed,
                  sx, sg, sn, sc, sh, starts};
    for (int i = 0; i < nt; i++) proposer_add(&P, i);
    if (mpi.active)
        printf("%d MPI worker ranks; trials in batches of %d\n", W, W);
    else if (W > 1) { /* worker processes, each with its share of the cores (and of the quantization cache) */
        const long np = sysconf(_SC_NPROCESSORS_ONLN);
        char omp[48];
        snprintf(omp, sizeof omp, "OMP_NUM_THREADS=%ld", np / W > 0 ? np / W : 1);
        if (cli_pool_start(&pool, W, argc, args, "--worker-slot", omp)) goto fail;
        if (so.cuda) {
            printf("%d worker processes, on CUDA devices", W);
            for (int k = 0; k < W; k++) printf("%s%d", k ? "," : " ", gpus[k]);
            printf("; trials in batches of %d\n", W);
        } else
            printf("%d worker processes on the CPU; trials in batches of %d\n", W, W);
    }
    while (nt < trials) {
        /* a batch: its points from the trials before it, run at once, recorded in order (a batch
         * cut short is proposed again the same way and only its missing trials run) */
        const int b0 = nt - nt % W, bn = (int)(trials - b0 < W ? trials - b0 : W);
        if (propose_batch(&P, b0, bn, bp, acq, how)) goto fail;
        for (int j = nt - b0; pool && j < bn; j++) {
            const wire_req rq = {WIRE_MAGIC, b0 + j};
            if (cli_pool_send(pool, j, &rq, sizeof rq) || cli_pool_send(pool, j, bp + (size_t)j * nc, (size_t)nc * sizeof *bp))
                goto fail;
        }
        for (int j = nt - b0; j < bn; j++) {
            int *c = t[nt].choice;
            memcpy(c, bp + (size_t)j * nc, (size_t)nc * sizeof *c);
            trial_out to;
            if (pool) {
                wire_res rs;
                if (cli_pool_recv(pool, j, &rs, sizeof rs)) goto fail;
                if (rs.magic != WIRE_MAGIC || rs.trial != nt) {
                    qj_fail(QJ_ERR_INTERNAL, "worker %d: a reply for trial %d, expected %d", j, (int)rs.trial, nt);
                    goto fail;
                }
                if (rs.status) {
                    qj_fail((qj_status)rs.status, "trial %d (worker %d): %s", nt, j, rs.err);
                    goto fail;
                }
                to = rs.to;
                t[nt].seconds = rs.seconds;
            } else {
                const double ts = qj_now();
                if (run_trial(&env, c, &to)) {
                    qj_fail_context(QJ_ERR_INVALID, "trial %d", nt);
                    goto fail;
                }
                t[nt].seconds = qj_now() - ts;
            }
            trial_take(&t[nt], s, c, &to.ms);
            /* the record, appended before anything depends on it */
            cJSON *rec = cJSON_CreateObject();
            cJSON_AddNumberToObject(rec, "trial", nt);
            cJSON_AddStringToObject(rec, "kind", how[j]);
            if (so.need_ppl) {
                cJSON_AddNumberToObject(rec, "cal_PPL", t[nt].ppl);
                cJSON_AddNumberToObject(rec, "nll", to.ms.er.nll);
                cJSON_AddNumberToObject(rec, "tokens", (double)to.ms.er.tokens);
            }
            if (so.obj == OBJ_THROUGHPUT) {
                cJSON_AddNumberToObject(rec, "cal_throughput", t[nt].tps);
                cJSON_AddNumberToObject(rec, "throughput_log_var", t[nt].tps_var);
                cJSON_AddItemToObject(rec, "throughput_runs", cJSON_CreateDoubleArray(to.ms.runs, so.repeats));
            }
            if (t[nt].error >= 0) cJSON_AddNumberToObject(rec, "layer_error", t[nt].error);
            cJSON_AddNumberToObject(rec, "model_size", (double)t[nt].bytes / 1e9);
            cJSON_AddNumberToObject(rec, "size_bytes", (double)t[nt].bytes);
            cJSON_AddNumberToObject(rec, "acquisition", acq[j]);
            cJSON_AddNumberToObject(rec, "seconds", t[nt].seconds);
            if (so.cuda) {
                cJSON_AddNumberToObject(rec, "gpu_kernels", to.ms.gpu_kernels);
                cJSON_AddNumberToObject(rec, "gpu_kernels_compiled", to.ms.gpu_compiled);
            } else if (to.ms.cpu_kernels) {
                cJSON_AddNumberToObject(rec, "cpu_kernels", to.ms.cpu_kernels);
                cJSON_AddNumberToObject(rec, "cpu_kernels_compiled", to.ms.cpu_compiled);
            }
            cJSON_AddItemToObject(rec, "quant_config", qj_search_config(s, c));
            char *js = cJSON_PrintUnformatted(rec);
            cJSON_Delete(rec);
            qj_status st = js ? append_line(history, js) : qj_fail(QJ_ERR_NOMEM, "out of memory");
            free(js);
            if (st) goto fail;
            proposer_add(&P, nt);
            nt++;
            ran++;
            if (write_csv(output, &so, s, t, nt)) goto fail;
            const int bt = best_trial(&so, t, nt);
            spent = qj_now() - t0;
            const double eta = spent / ran * (double)(trials - nt);
            char val[160], bst[64] = "none yet", ext[160] = "";
            if (so.obj == OBJ_THROUGHPUT)
                snprintf(val, sizeof val, "%.2f tokens/s (+-%.1f%%)", t[nt - 1].tps, 100.0 * sqrt(t[nt - 1].tps_var * so.repeats));
            else if (so.obj == OBJ_PPL) snprintf(val, sizeof val, "ppl %.4f", t[nt - 1].ppl);
            else snprintf(val, sizeof val, "error %.5f", t[nt - 1].error);
            if (bt >= 0) snprintf(bst, sizeof bst, "%.*f", so.obj == OBJ_ERROR ? 5 : so.obj == OBJ_PPL ? 4 : 2, trial_value(&so, &t[bt]));
            size_t el = 0;
            if (so.obj == OBJ_THROUGHPUT && so.need_ppl)
                el += (size_t)snprintf(ext + el, sizeof ext - el, "  ppl %.4f%s", t[nt - 1].ppl, trial_ok(&so, &t[nt - 1]) ? "" : " (over)");
            if (so.obj != OBJ_ERROR && t[nt - 1].error >= 0)
                el += (size_t)snprintf(ext + el, sizeof ext - el, "  error %.5f", t[nt - 1].error);
            if (so.cuda)
                snprintf(ext + el, sizeof ext - el, "  %d kernels, %d compiled", to.ms.gpu_kernels, to.ms.gpu_compiled);
            else if (to.ms.cpu_kernels)
                snprintf(ext + el, sizeof ext - el, "  %d CPU kernels, %d compiled", to.ms.cpu_kernels, to.ms.cpu_compiled);
            char qz[80] = "";
            if (so.obj != OBJ_ERROR)
                snprintf(qz, sizeof qz, " (%d of %d tensors quantized before)", to.cst.cached_tensors,
                         to.cst.cached_tensors + to.cst.quantized_tensors);
            printf("trial %d/%ld (%s): %s%s  size %.6g GB  best %s  %.2f s%s  ETA %.0f s\n", nt, trials, how[j], val, ext,
                   (double)t[nt - 1].bytes / 1e9, bst, t[nt - 1].seconds, qz, eta);
            fflush(stdout);
        }
    }
    cli_pool_stop(pool, 0);
    pool = NULL;
    const int bi = best_trial(&so, t, nt);
    if (bi < 0)
        printf("------Best config------\nno trial met --max-ppl %g\n", so.max_ppl);
    else {
        cJSON *cfg = qj_search_config(s, t[bi].choice);
        printf("------Best config------\n{'%s': %.6g, '%s': %.6g} ", value_key(&so), trial_value(&so, &t[bi]), second_key(&so),
               second_value(&so, &t[bi]));
        if (cfg) print_pydict(stdout, cfg);
        printf("\n");
        cJSON_Delete(cfg);
        /* against the uniform plans the search tried */
        int bu = -1;
        for (int i = 0; i < nt; i++)
            if (uniform_point(s, t[i].choice) && trial_ok(&so, &t[i]) && (bu < 0 || trial_y(&so, &t[i]) < trial_y(&so, &t[bu])))
                bu = i;
        if (bu >= 0)
            printf("best uniform plan tried (trial %d): %s %.6g; the best plan: %s %.6g\n", bu + 1, value_key(&so),
                   trial_value(&so, &t[bu]), value_key(&so), trial_value(&so, &t[bi]));
    }
    printf("history %s, CSV %s (%d trials, %d run now in %.1f s)\n", history, output, nt, ran, spent);
    if (write_plots(plots, history, &so, s, t, nt, bi)) goto fail;
    rc = 0;
fail:
    if (rc && slot < 0) cli_error("search");
    else if (rc) fprintf(stderr, "qjit search worker %ld: %s\n", slot, qj_last_error());
    cli_pool_stop(pool, rc != 0);
    cli_mpi_end(&mpi, rc != 0);
    free(sx);
    free(sg);
    free(sn);
    free(sc);
    free(sh);
    free(bp);
    free(acq);
    free(how);
    if (t)
        for (long i = 0; i < trials; i++) free(t[i].choice);
    free(t);
    free(X);
    free(Y);
    free(G);
    free(Yn);
    free(Yc);
    free(pts);
    free(hist);
    free(starts);
    free(tmp);
    free(ids);
    cJSON_Delete(settings);
    qj_quant_cache_free(qcache);
    qj_cpu_kcache_free(kcache);
    qj_search_free(s);
    qj_samples_free(samples);
    qj_space_free(space);
    cli_model_close(&cm);
    return rc;
}

int cmd_search(int argc, char **argv) {
    char **args = malloc((size_t)(argc + 1) * sizeof *args);
    if (!args) return cli_error("search");
    memcpy(args, argv, (size_t)argc * sizeof *args);
    args[argc] = NULL;
    const int rc = search_main(argc, argv, args);
    free(args);
    return rc;
}
