/* cmd_search.c — qjit search: Bayesian-optimisation search over per-layer
 * bit widths and group sizes whose objective is a real trial: every proposed
 * plan is compiled (quantized) and its perplexity measured on a calibration
 * text. This version: --objective ppl under --max-size (CPU); the history is a
 * JSONL file appended trial by trial, so an interrupted search resumes
 * (--resume) without repeating or losing a trial. */
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
#include "plot.h"
#include "qj_eval.h"
#include "qj_io.h"
#include "qj_package.h"
#include "qj_progress.h"
#include "search.h"

static void usage(FILE *f) {
    fprintf(f, "usage: qjit search (--model PATH | --synthetic PRESET) --objective ppl --max-size GB\n"
               "                   (--text FILE | --tokens FILE) [--trials N] [--init N] [--space FILE]\n"
               "                   [--initial-samples FILE] [--history FILE] [--output FILE] [--resume] [--seed N]\n\n"
               "Searches per-layer bit widths and group sizes (the seed's parameter space: bitwidth.{i}.,\n"
               "groupsize.{i}.) for the plan of lowest perplexity whose compiled size is at most --max-size GB\n"
               "(exact, computed without compiling, so no oversized plan is ever tried). Each trial compiles\n"
               "the plan and measures perplexity on the text (CPU). A Gaussian process (Matern-5/2, one length\n"
               "scale per coordinate, fitted by maximum likelihood) over the plans tried so far proposes the next\n"
               "by expected improvement. Every trial is appended to the history (JSONL) as it ends, the seed's\n"
               "CSV (cal_PPL, model_size, quant_config) is rewritten, and the end prints the best config.\n\n" CLI_MODEL_HELP
               "  --objective ppl       minimise perplexity (the only objective of this version)\n"
               "  --max-size GB         size limit in GB (1e9 bytes), the seed's model_size\n"
               "  --text FILE           calibration text (tokenized with the model's tokenizer)\n"
               "  --tokens FILE         calibration token ids instead\n"
               "  --max-tokens N        ids of the text measured per trial (default 2000)\n"
               "  --ctx N               perplexity window (default: the model's context)\n"
               "  --trials N            trials in all, initial ones included (default 40)\n"
               "  --init N              initial trials without --initial-samples (default 10): the uniform\n"
               "                        plans that fit (per bit width, its finest group), then a Latin\n"
               "                        hypercube\n"
               "  --space FILE          the seed's parameter space (default: bits 2,3,4,5,6,8 x groups\n"
               "                        32..512 per layer)\n"
               "  --initial-samples FILE the seed's initial samples (tried first; those over the size are skipped)\n"
               "  --history FILE        JSONL history (default search_history.jsonl)\n"
               "  --output FILE         the seed's CSV (default search_output.csv)\n"
               "  --resume              continue the search in --history (same settings), repeating nothing\n"
               "  --seed N              the search's seed (also the synthetic weights'), default 1\n"
               "  --plots PREFIX        PNG plots PREFIX_pareto.png (perplexity vs size, every trial, the\n"
               "                        uniform plans and the Pareto front), PREFIX_progress.png (best so far\n"
               "                        vs trial), PREFIX_plan.png (the best plan per layer); default: the\n"
               "                        history's name without .jsonl\n"
               "  --quant-cache GB      quantized tensors kept across trials, so a layer's setting seen before\n"
               "                        is never quantized again (default 4 GB; 0: no limit)\n"
               "  --strategy S          bo (default) or random: after the initial trials, uniformly random\n"
               "                        untried plans that fit (the baseline BO is measured against)\n");
}

typedef struct trial {
    int *choice;
    double ppl, seconds;
    uint64_t bytes;
} trial;

/* the settings a resumed search must share with its history */
static cJSON *settings_json(const cli_model *cm, const char *space, double max_gb, uint64_t seed, int init, size_t max_tokens,
                            int ctx, const char *text, int random_search) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "strategy", random_search ? "random" : "bo");
    cJSON_AddStringToObject(o, "model", cm->run->origin);
    cJSON_AddStringToObject(o, "objective", "ppl");
    cJSON_AddNumberToObject(o, "max_size_gb", max_gb);
    cJSON_AddNumberToObject(o, "seed", (double)seed);
    cJSON_AddNumberToObject(o, "init", init);
    cJSON_AddStringToObject(o, "space", space);
    cJSON_AddStringToObject(o, "calibration", text);
    cJSON_AddNumberToObject(o, "max_tokens", (double)max_tokens);
    cJSON_AddNumberToObject(o, "ctx", ctx);
    return o;
}

/* What the GP models: log of the NLL (= log log perplexity). Plans with 2-bit layers reach
 * perplexities 50x the good ones; on log perplexity they set the GP's scale and the good region
 * looks flat. */
static double gp_target(double ppl) { return log(log(ppl > 1.0000001 ? ppl : 1.0000001)); }

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

static qj_status write_csv(const char *path, const qj_search *s, const trial *t, int n) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    len += (size_t)snprintf(buf, cap, "cal_PPL,model_size,quant_config\n");
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
        len += (size_t)snprintf(buf + len, cap - len, "%.6f,%.9g,\"%s\"\n", t[i].ppl, (double)t[i].bytes / 1e9, js);
        free(js);
    }
    qj_status st = qj_write_file_atomic(path, buf, len);
    free(buf);
    return st;
}

typedef struct history_ctx {
    const char *path;
    const cJSON *want;
    const qj_search *s;
    trial *t;
    int max, n;
} history_ctx;

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
    const cJSON *ppl = cJSON_GetObjectItemCaseSensitive(o, "cal_PPL");
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(o, "seconds");
    char where[600];
    snprintf(where, sizeof where, "%s:%d: quant_config", h->path, line);
    if (h->n >= h->max) return qj_fail(QJ_ERR_INVALID, "%s: more trials than --trials %d", h->path, h->max);
    if (!cJSON_IsNumber(ppl)) return qj_fail(QJ_ERR_FORMAT, "%s:%d: \"cal_PPL\" is missing", h->path, line);
    trial *t = &h->t[h->n];
    qj_status st = qj_search_from_config(h->s, cfg, where, t->choice);
    if (st) return st;
    t->ppl = ppl->valuedouble;
    t->seconds = cJSON_IsNumber(sec) ? sec->valuedouble : 0;
    t->bytes = qj_search_bytes(h->s, t->choice);
    h->n++;
    return QJ_OK;
}

/* Reads a history: its settings line must equal `want`; trials go to t (choices decoded
 * through s). A last line cut short (an interrupted append) is dropped: *valid ends before it. */
static qj_status read_history(const char *path, const cJSON *want, const qj_search *s, trial *t, int max, int *n,
                              size_t *valid) {
    history_ctx h = {path, want, s, t, max, 0};
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
static qj_status write_plots(const char *prefix, const char *history, const qj_search *s, const trial *t, int n, int best) {
    if (!qj_plot_available()) {
        printf("plots: this qjit was built without libpng; none written\n");
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
    /* all trials; uniform ones; the Pareto front (lowest perplexity at each size); the best */
    double *ax = gx, *ay = gy, *ux = gx + n, *uy = gy + n, *fx = gx + 2 * n, *fy = gy + 2 * n, *bx = gx + 3 * n,
           *by = gy + 3 * n;
    int nu = 0, nf = 0;
    for (int i = 0; i < n; i++) {
        ax[i] = (double)t[i].bytes / 1e9;
        ay[i] = t[i].ppl;
        if (uniform_point(s, t[i].choice)) ux[nu] = ax[i], uy[nu++] = ay[i];
        ord[i] = i;
    }
    for (int i = 1; i < n; i++) /* by size, then perplexity */
        for (int j = i; j > 0 && (t[ord[j]].bytes < t[ord[j - 1]].bytes ||
                                  (t[ord[j]].bytes == t[ord[j - 1]].bytes && t[ord[j]].ppl < t[ord[j - 1]].ppl));
             j--) {
            const int tmp = ord[j];
            ord[j] = ord[j - 1];
            ord[j - 1] = tmp;
        }
    double lo = INFINITY;
    for (int i = 0; i < n; i++)
        if (t[ord[i]].ppl < lo) {
            lo = t[ord[i]].ppl;
            fx[nf] = (double)t[ord[i]].bytes / 1e9, fy[nf++] = lo;
        }
    bx[0] = ax[best];
    by[0] = ay[best];
    qj_plot p;
    memset(&p, 0, sizeof p);
    p.title = "Perplexity vs model size";
    p.xlabel = "model size (GB)";
    p.ylabel = "perplexity (log)";
    p.logy = 1;
    p.series[0] = (qj_plot_series){ax, ay, n, 0x909090, QJ_MARK_DOT, "trials"};
    p.series[1] = (qj_plot_series){fx, fy, nf, 0x2050D0, QJ_MARK_LINE, "pareto front"};
    p.series[2] = (qj_plot_series){ux, uy, nu, 0xD03020, QJ_MARK_SQUARE, "uniform plans"};
    p.series[3] = (qj_plot_series){bx, by, 1, 0x20A040, QJ_MARK_SQUARE, "best"};
    p.n_series = 4;
    snprintf(path, sizeof path, "%s_pareto.png", pre);
    qj_status st = qj_plot_png(path, &p, 800, 560);
    /* best so far against the trial */
    double *tx = gx, *ty = gy, run = INFINITY;
    for (int i = 0; !st && i < n; i++) {
        run = fmin(run, t[i].ppl);
        tx[i] = i + 1;
        ty[i] = run;
    }
    if (!st) {
        memset(&p, 0, sizeof p);
        p.title = "Best perplexity so far";
        p.xlabel = "trial";
        p.ylabel = "best perplexity";
        p.series[0] = (qj_plot_series){tx, ty, n, 0x2050D0, QJ_MARK_LINE, "best so far"};
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

int cmd_search(int argc, char **argv) {
    static const struct option opts[] = {CLI_MODEL_OPTIONS,
                                         {"objective", required_argument, 0, 'O'},
                                         {"max-size", required_argument, 0, 'S'},
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
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    cli_model cm;
    cli_model_init(&cm);
    const char *objective = NULL, *text = NULL, *tokens = NULL, *space_path = NULL, *samples_path = NULL;
    const char *history = "search_history.jsonl", *output = "search_output.csv", *plots = NULL;
    double max_gb = 0, cache_gb = 4.0;
    long v, trials = 40, n_init = 10;
    int resume = 0, o, r, ctx = 0, random_search = 0;
    size_t max_tokens = 2000;
    while ((o = getopt_long(argc, argv, "m:p:h", opts, NULL)) != -1) {
        if ((r = cli_model_option(&cm, o, optarg))) {
            if (r < 0) return cli_error("search");
            continue;
        }
        switch (o) {
        case 'O': objective = optarg; break;
        case 'S': {
            char *end;
            max_gb = strtod(optarg, &end);
            if (*end || !(max_gb > 0) || !isfinite(max_gb)) {
                fprintf(stderr, "qjit search: --max-size \"%s\": expected a positive size in GB\n", optarg);
                return 2;
            }
            break;
        }
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
        case 'P': space_path = optarg; break;
        case 'i': samples_path = optarg; break;
        case 'H': history = optarg; break;
        case 'o': output = optarg; break;
        case 'R': resume = 1; break;
        case 'L': plots = optarg; break;
        case 'C': {
            char *end;
            cache_gb = strtod(optarg, &end);
            if (*end || !(cache_gb >= 0) || !isfinite(cache_gb)) {
                fprintf(stderr, "qjit search: --quant-cache \"%s\": expected a size in GB (0: no limit)\n", optarg);
                return 2;
            }
            break;
        }
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
    if (!objective || strcmp(objective, "ppl")) {
        fprintf(stderr, "qjit search: --objective %s%s: this version searches --objective ppl (under --max-size)\n",
                objective ? objective : "(missing)", objective && !strcmp(objective, "throughput") ? " is not built yet" : "");
        return 2;
    }
    if (max_gb <= 0) {
        fprintf(stderr, "qjit search: --objective ppl needs --max-size GB\n");
        return 2;
    }
    if (!!text == !!tokens) {
        fprintf(stderr, "qjit search: give exactly one of --text FILE or --tokens FILE\n");
        return 2;
    }
    if (cm.cuda) {
        fprintf(stderr, "qjit search: trials run on the CPU in this version (no --device cuda)\n");
        return 2;
    }
    if (cm.plan) {
        fprintf(stderr, "qjit search: --plan does not apply (the search makes the plans)\n");
        return 2;
    }
    struct stat sb;
    if (!resume && stat(history, &sb) == 0) {
        fprintf(stderr, "qjit search: %s exists: --resume continues that search, or remove it to start anew\n", history);
        return 2;
    }
    if (!qj_gp_available()) {
        fprintf(stderr, "qjit search: this qjit was built without LAPACKE, which the search's Gaussian process needs\n");
        return 2;
    }
    const uint64_t seed = cm.seed;
    int *ids = NULL, *pts = NULL, *hist = NULL, *starts = NULL, n_pts = 0, nt = 0, nc = 0;
    size_t nid = 0;
    qj_space *space = NULL;
    qj_samples *samples = NULL;
    qj_search *s = NULL;
    trial *t = NULL;
    cJSON *settings = NULL;
    double *X = NULL, *Y = NULL;
    qj_quant_cache *qcache = NULL;
    int rc = 1;
    if (cli_model_open(&cm, text != NULL, 1)) goto fail;
    if (cm.is_package) {
        qj_fail(QJ_ERR_INVALID, "%s is a compiled package; the search needs the source model", cm.model);
        goto fail;
    }
    if (cli_read_ids(&cm, text, tokens, cm.src->cfg.vocab_size, &ids, &nid)) goto fail;
    const int L = cm.src->cfg.n_layers;
    if (space_path ? qj_space_parse(space_path, L, &space) : qj_space_default(L, &space)) goto fail;
    if (qj_search_setup(cm.src, space, &s)) goto fail;
    nc = qj_search_nchoice(s);
    const int d = qj_search_ndim(s);
    const uint64_t max_bytes = (uint64_t)floor(max_gb * 1e9 + 0.5); /* to the byte: 0.000264928 GB is 264,928 */
    /* the initial points: the samples that fit, else a Latin hypercube under the size */
    pts = calloc((size_t)(trials + n_init) * (size_t)nc, sizeof *pts);
    hist = calloc((size_t)trials * (size_t)nc, sizeof *hist);     /* the trials' points, row i = trial i */
    starts = calloc((size_t)4 * (size_t)nc, sizeof *starts);      /* the best 4 of them */
    t = calloc((size_t)trials, sizeof *t);
    X = calloc((size_t)trials * (size_t)(d + 1), sizeof *X);
    Y = calloc((size_t)trials, sizeof *Y);
    if (!pts || !hist || !starts || !t || !X || !Y) {
        qj_fail(QJ_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (long i = 0; i < trials; i++)
        if (!(t[i].choice = calloc((size_t)nc, sizeof(int)))) {
            qj_fail(QJ_ERR_NOMEM, "out of memory");
            goto fail;
        }
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
            if (qj_search_bytes(s, c) > max_bytes) {
                printf("initial sample %d: %.6f GB is over --max-size %g: skipped\n", i, (double)qj_search_bytes(s, c) / 1e9,
                       max_gb);
                continue;
            }
            n_pts++;
        }
        cJSON_Delete(sj);
    } else {
        /* the uniform plans that fit first (per bit width of layer 0's list, its smallest group
         * that fits: the baselines a mixed plan has to beat), then a Latin hypercube */
        int nu = 0;
        for (int bi = 0; bi < qj_search_nvalues(s, 0) && nu < n_init && nu < trials; bi++) {
            int *c = pts + (size_t)nu * nc, found = 0;
            const int bits = qj_search_value(s, 0, bi);
            int bestg = -1;
            for (int gi = 0; gi < qj_search_nvalues(s, 1); gi++) {
                const int grp = qj_search_value(s, 1, gi);
                if (qj_search_uniform(s, bits, grp, c)) {
                    qj_clear_error();
                    continue;
                }
                /* smaller is finer; per-channel (0) is the coarsest */
                const int key = grp == 0 ? 1 << 30 : grp;
                if (qj_search_bytes(s, c) <= max_bytes && (bestg < 0 || key < bestg)) bestg = key, found = grp;
            }
            if (bestg < 0) continue;
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
        qj_fail(QJ_ERR_INVALID, "no initial plan fits --max-size %g GB (the smallest the space allows is larger)", max_gb);
        goto fail;
    }
    settings = settings_json(&cm, space->name, max_gb, seed, n_pts, max_tokens, ctx, text ? text : tokens, random_search);
    if (resume && stat(history, &sb) == 0) {
        size_t valid = 0;
        if (read_history(history, settings, s, t, (int)trials, &nt, &valid)) goto fail;
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
    if (qj_quant_cache_new((uint64_t)(cache_gb * 1e9), &qcache)) goto fail;
    qj_eval_params ep = qj_eval_default_params();
    ep.ctx = ctx;
    ep.max_tokens = max_tokens;
    ep.progress = 0;
    double t0 = qj_now(), spent = 0;
    int ran = 0;
    for (int i = 0; i < nt; i++) {
        qj_search_encode(s, t[i].choice, X + (size_t)i * d);
        memcpy(hist + (size_t)i * nc, t[i].choice, (size_t)nc * sizeof *hist);
        Y[i] = gp_target(t[i].ppl);
    }
    while (nt < trials) {
        int *c = t[nt].choice;
        const char *how = "initial";
        double acq = 0;
        if (nt < n_pts) memcpy(c, pts + (size_t)nt * nc, (size_t)nc * sizeof *c);
        else if (random_search) {
            if (qj_search_random(s, seed * 7919u + (uint64_t)nt, max_bytes, hist, nt, c)) goto fail;
            how = "random";
        } else {
            /* the GP on log perplexity of every trial so far, then the point of largest EI */
            qj_gp *g = NULL;
            qj_gp_opts go = qj_gp_default_opts();
            go.seed = seed * 1000003u + (uint64_t)nt;
            if (qj_gp_fit(X, Y, NULL, nt, d, &go, &g)) goto fail;
            qj_acq_params ap = qj_acq_default_params();
            ap.max_bytes = max_bytes;
            ap.seed = seed * 7919u + (uint64_t)nt;
            ap.best = INFINITY;
            for (int i = 0; i < nt; i++) ap.best = fmin(ap.best, Y[i]);
            ap.exclude = hist;
            ap.n_exclude = nt;
            /* local search also from next to the best 4 trials */
            int order[4], no = 0;
            for (int q = 0; q < 4 && q < nt; q++) {
                int bi = -1;
                for (int i = 0; i < nt; i++) {
                    int used = 0;
                    for (int u = 0; u < no; u++) used |= order[u] == i;
                    if (!used && (bi < 0 || Y[i] < Y[bi])) bi = i;
                }
                order[no++] = bi;
            }
            for (int u = 0; u < no; u++) memcpy(starts + (size_t)u * nc, t[order[u]].choice, (size_t)nc * sizeof *starts);
            ap.starts = starts;
            ap.n_starts = no;
            qj_status st = qj_search_propose(s, g, &ap, c, &acq);
            qj_gp_free(g);
            if (st) goto fail;
            how = "bo";
        }
        /* the trial: compile the plan, measure perplexity */
        const double ts = qj_now();
        qj_plan *plan = NULL;
        qj_model *m = NULL;
        qj_eval_result er;
        qj_compile_stats cst;
        memset(&cst, 0, sizeof cst);
        qj_status st = qj_search_plan(s, c, &plan);
        if (!st) st = qj_compile_model_cached(cm.src, plan, qcache, 0, &m, &cst);
        if (!st) st = qj_eval_nll(m, ids, nid, &ep, &er);
        qj_size_info z;
        if (!st) qj_model_size(m, &z);
        qj_model_free(m);
        qj_plan_free(plan);
        if (st) goto fail;
        if (z.bytes != qj_search_bytes(s, c)) {
            qj_fail(QJ_ERR_INTERNAL, "trial %d: compiled size %llu differs from the predicted %llu", nt,
                    (unsigned long long)z.bytes, (unsigned long long)qj_search_bytes(s, c));
            goto fail;
        }
        t[nt].ppl = er.ppl;
        t[nt].bytes = z.bytes;
        t[nt].seconds = qj_now() - ts;
        /* the record, appended before anything depends on it */
        cJSON *rec = cJSON_CreateObject();
        cJSON_AddNumberToObject(rec, "trial", nt);
        cJSON_AddStringToObject(rec, "kind", how);
        cJSON_AddNumberToObject(rec, "cal_PPL", er.ppl);
        cJSON_AddNumberToObject(rec, "nll", er.nll);
        cJSON_AddNumberToObject(rec, "model_size", (double)z.bytes / 1e9);
        cJSON_AddNumberToObject(rec, "size_bytes", (double)z.bytes);
        cJSON_AddNumberToObject(rec, "tokens", (double)er.tokens);
        cJSON_AddNumberToObject(rec, "acquisition", acq);
        cJSON_AddNumberToObject(rec, "seconds", t[nt].seconds);
        cJSON_AddItemToObject(rec, "quant_config", qj_search_config(s, c));
        char *js = cJSON_PrintUnformatted(rec);
        cJSON_Delete(rec);
        st = js ? append_line(history, js) : qj_fail(QJ_ERR_NOMEM, "out of memory");
        free(js);
        if (st) goto fail;
        qj_search_encode(s, c, X + (size_t)nt * d);
        memcpy(hist + (size_t)nt * nc, c, (size_t)nc * sizeof *hist);
        Y[nt] = gp_target(er.ppl);
        nt++;
        ran++;
        if (write_csv(output, s, t, nt)) goto fail;
        double best = INFINITY;
        for (int i = 0; i < nt; i++) best = fmin(best, t[i].ppl);
        spent = qj_now() - t0;
        const double eta = spent / ran * (double)(trials - nt);
        printf("trial %d/%ld (%s): ppl %.4f  size %.6g GB  best %.4f  %.2f s (%d of %d tensors quantized before)  "
               "ETA %.0f s\n", nt, trials, how, er.ppl, (double)z.bytes / 1e9, best, t[nt - 1].seconds, cst.cached_tensors,
               cst.cached_tensors + cst.quantized_tensors, eta);
        fflush(stdout);
    }
    int bi = 0;
    for (int i = 1; i < nt; i++)
        if (t[i].ppl < t[bi].ppl) bi = i;
    cJSON *cfg = qj_search_config(s, t[bi].choice);
    printf("------Best config------\n{'cal_PPL': %.4f, 'model_size': %.6g} ", t[bi].ppl, (double)t[bi].bytes / 1e9);
    if (cfg) print_pydict(stdout, cfg);
    printf("\n");
    cJSON_Delete(cfg);
    printf("history %s, CSV %s (%d trials, %d run now in %.1f s)\n", history, output, nt, ran, spent);
    if (write_plots(plots, history, s, t, nt, bi)) goto fail;
    rc = 0;
fail:
    if (rc) cli_error("search");
    if (t)
        for (long i = 0; i < trials; i++) free(t[i].choice);
    free(t);
    free(X);
    free(Y);
    free(pts);
    free(hist);
    free(starts);
    free(ids);
    cJSON_Delete(settings);
    qj_quant_cache_free(qcache);
    qj_search_free(s);
    qj_samples_free(samples);
    qj_space_free(space);
    cli_model_close(&cm);
    return rc;
}
