/* cmd_baselines.c — qjit baselines: the seed's comparison table for a model:
 * bf16, int8 and int4 weight-only uniform plans, the seed's "manual" rule, and
 * (with --history) the best plan of a qjit search, each compiled and measured
 * on the same text (perplexity and model size in GB), or with --throughput the
 * seed's other table: accuracy (perplexity, or without a text the data-free
 * layer-output error) and measured decode tokens/s, on the CPU or the GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "compile.h"
#include "qj_eval.h"
#include "qj_io.h"
#include "qj_package.h"
#include "quant.h"
#include "search.h"

static void usage(FILE *f) {
    fprintf(f, "usage: qjit baselines (--model PATH | --synthetic PRESET) (--text FILE | --tokens FILE)\n"
               "                      [--max-tokens N] [--ctx N] [--history FILE]\n"
               "       qjit baselines (--model PATH | --synthetic PRESET) --throughput [--device cpu|cuda]\n"
               "                      [--text FILE | --tokens FILE] [--history FILE]\n\n"
               "Perplexity and size of the uniform baselines the seed compares against, measured here:\n"
               "bf16, int8 weight-only (per channel, symmetric), int4 weight-only (group 128), the seed's\n"
               "manual rule (<5-bit, group 32> for the first 3 and last 2 layers, <4-bit, group 64> for\n"
               "the rest) and, with --history, the best plan of a qjit search history; printed as the\n"
               "seed's table.\n\n" CLI_MODEL_HELP
               "  --text FILE           text (tokenized with the model's tokenizer)\n"
               "  --tokens FILE         token ids instead\n"
               "  --max-tokens N        ids measured (default 2000)\n"
               "  --ctx N               perplexity window (default: the model's context)\n"
               "  --history FILE        a qjit search history: its best trial (by the history's objective,\n"
               "                        within its limits) is measured too\n"
               "  --throughput          the seed's throughput table: accuracy and decode tokens/s (batch 1) on\n"
               "                        --device; accuracy is perplexity with a text, else the data-free\n"
               "                        layer-output error (as qjit search --max-error measures it)\n"
               "  --decode-tokens N     decode steps per measurement (default 64)\n"
               "  --repeats N           measurements per plan, their mean printed (default 3)\n"
               "  --error-rows N        rows per linear the error samples (default 256; 0: all)\n");
}

typedef struct best_ctx {
    cJSON *best;
    double score;   /* the best's, minimised */
    const char *key; /* what the history minimises (or maximises: throughput) */
    double max_ppl;  /* its perplexity limit, 0 none */
} best_ctx;

/* line 1 sets the objective; the trials after it compete on it, within the history's --max-ppl */
static qj_status best_line(void *ctx, const cJSON *o, int line) {
    best_ctx *b = ctx;
    const cJSON *set = cJSON_GetObjectItemCaseSensitive(o, "search");
    if (line == 1 && cJSON_IsObject(set)) {
        const cJSON *obj = cJSON_GetObjectItemCaseSensitive(set, "objective"), *mp = cJSON_GetObjectItemCaseSensitive(set, "max_ppl");
        const char *on = cJSON_IsString(obj) ? obj->valuestring : "ppl";
        b->key = !strcmp(on, "throughput") ? "cal_throughput" : !strcmp(on, "error") ? "layer_error" : "cal_PPL";
        b->max_ppl = cJSON_IsNumber(mp) ? mp->valuedouble : 0;
        return QJ_OK;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, b->key), *cfg = cJSON_GetObjectItemCaseSensitive(o, "quant_config");
    const cJSON *ppl = cJSON_GetObjectItemCaseSensitive(o, "cal_PPL");
    if (b->max_ppl > 0 && !(cJSON_IsNumber(ppl) && ppl->valuedouble <= b->max_ppl)) return QJ_OK;
    if (!cJSON_IsNumber(v) || !cJSON_IsObject(cfg)) return QJ_OK;
    const double sc = !strcmp(b->key, "cal_throughput") ? -v->valuedouble : v->valuedouble;
    if (sc < b->score) {
        b->score = sc;
        cJSON_Delete(b->best);
        b->best = cJSON_Duplicate(cfg, 1);
    }
    return QJ_OK;
}

/* the best trial's quant_config of a search history (a new object), or NULL with an error */
static cJSON *best_of_history(const char *path) {
    best_ctx b = {NULL, INFINITY, "cal_PPL", 0};
    size_t valid;
    int lines;
    if (cli_jsonl_each(path, best_line, &b, &valid, &lines)) {
        cJSON_Delete(b.best);
        return NULL;
    }
    if (!b.best) qj_fail(QJ_ERR_FORMAT, "%s: no trial with \"%s\" and \"quant_config\"%s", path, b.key,
                         b.max_ppl > 0 ? " within its --max-ppl" : "");
    return b.best;
}

int cmd_baselines(int argc, char **argv) {
    static const struct option opts[] = {CLI_MODEL_OPTIONS,
                                         {"text", required_argument, 0, 'T'},
                                         {"tokens", required_argument, 0, 'K'},
                                         {"max-tokens", required_argument, 0, 'n'},
                                         {"ctx", required_argument, 0, 'c'},
                                         {"history", required_argument, 0, 'H'},
                                         {"throughput", no_argument, 0, 'P'},
                                         {"decode-tokens", required_argument, 0, 'D'},
                                         {"repeats", required_argument, 0, 'r'},
                                         {"error-rows", required_argument, 0, 'W'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    cli_model cm;
    cli_model_init(&cm);
    const char *text = NULL, *tokens = NULL, *history = NULL;
    qj_eval_params ep = qj_eval_default_params();
    ep.max_tokens = 2000;
    ep.progress = 0;
    int o, r, throughput = 0;
    long v, decode_tokens = 64, repeats = 3, error_rows = 256;
    while ((o = getopt_long(argc, argv, "m:p:h", opts, NULL)) != -1) {
        if ((r = cli_model_option(&cm, o, optarg))) {
            if (r < 0) return cli_error("baselines");
            continue;
        }
        switch (o) {
        case 'T': text = optarg; break;
        case 'K': tokens = optarg; break;
        case 'n':
            if (cli_parse_long(optarg, "max-tokens", 1, 0x7fffffffL, &v)) return cli_error("baselines");
            ep.max_tokens = (size_t)v;
            break;
        case 'c':
            if (cli_parse_long(optarg, "ctx", 2, 1 << 20, &v)) return cli_error("baselines");
            ep.ctx = (int)v;
            break;
        case 'H': history = optarg; break;
        case 'P': throughput = 1; break;
        case 'D': if (cli_parse_long(optarg, "decode-tokens", 1, 1 << 20, &decode_tokens)) return cli_error("baselines"); break;
        case 'r': if (cli_parse_long(optarg, "repeats", 1, CLI_MAX_REPEATS, &repeats)) return cli_error("baselines"); break;
        case 'W': if (cli_parse_long(optarg, "error-rows", 0, 1 << 30, &error_rows)) return cli_error("baselines"); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "qjit baselines: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (text && tokens) {
        fprintf(stderr, "qjit baselines: give one of --text FILE or --tokens FILE, not both\n");
        return 2;
    }
    if (!throughput && !text && !tokens) {
        fprintf(stderr, "qjit baselines: give --text FILE or --tokens FILE (or --throughput, whose accuracy without a "
                        "text is the layer-output error)\n");
        return 2;
    }
    if (cm.plan) {
        fprintf(stderr, "qjit baselines: --plan does not apply (the baselines have their own plans)\n");
        return 2;
    }
    if (cm.cuda && !throughput) {
        fprintf(stderr, "qjit baselines: --device cuda goes with --throughput (perplexity is measured on the CPU)\n");
        return 2;
    }
    const int use_cuda = cm.cuda, has_text = text || tokens;
    cm.cuda = 0;    /* each plan builds its own GPU model */
    cm.cpu_jit = 0; /* and attaches its own CPU kernels */
    int *ids = NULL, rc = 1;
    size_t nid = 0;
    cJSON *bo = NULL;
    if (history && !(bo = best_of_history(history))) return cli_error("baselines");
    if (cli_model_open(&cm, text != NULL, 0)) goto done;
    if (cm.src && cm.src->synthetic) printf("%s\n", cli_synthetic_label(cm.src));
    if (cm.is_package) {
        qj_fail(QJ_ERR_INVALID, "%s is a compiled package; the baselines need the source model", cm.model);
        goto done;
    }
    if (has_text && cli_read_ids(&cm, text, tokens, cm.src->cfg.vocab_size, &ids, &nid)) goto done;
    const int L = cm.src->cfg.n_layers;
    /* the manual rule as a seed sample */
    cJSON *manual = cJSON_CreateObject();
    for (int i = 0; i < L; i++) {
        char kb[32], kg[32];
        const int hi = i < 3 || i >= L - 2;
        snprintf(kb, sizeof kb, "bitwidth.%d.", i);
        snprintf(kg, sizeof kg, "groupsize.%d.", i);
        cJSON_AddNumberToObject(manual, kb, hi ? 5 : 4);
        cJSON_AddNumberToObject(manual, kg, hi ? 32 : 64);
    }
    const char *names[5] = {"bf16 baseline", "int8wo uniform quantization", "int4wo uniform quantization",
                            "manual baseline", "BO mixed-precision quantization"};
    const char *specs[3] = {"bf16", "int8-pc-sym", "int4-g128"};
    const cli_measure mp = {use_cuda, 0, has_text, ids, nid, ep, (int)decode_tokens, throughput ? (int)repeats : 0,
                            !use_cuda && cli_cpu_jit_enabled(), NULL};
    if (throughput)
        printf("|    %s   |%s | throughput|\n| ---------------- | ------ | ------ |\n", cm.src->origin,
               has_text ? "ppl" : "layer error");
    else
        printf("|    %s   |ppl | model size|\n| ---------------- | ------ | ------ |\n", cm.src->origin);
    for (int k = 0; k < 5; k++) {
        if (k == 4 && !bo) break;
        qj_plan *plan = NULL;
        qj_model *m = NULL;
        cli_measured ms;
        double err = -1;
        qj_status st = k < 3 ? qj_plan_parse(specs[k], L, &plan)
                             : qj_plan_from_cjson(k == 3 ? manual : bo, k == 3 ? "manual baseline" : history, L, &plan);
        if (!st) st = qj_compile_model(cm.src, plan, 0, &m, NULL);
        if (!st) st = cli_measure_model(m, &mp, &ms);
        if (!st && !has_text) st = qj_plan_output_error(cm.src, plan, error_rows, cm.seed, &err);
        qj_size_info z;
        if (!st) qj_model_size(m, &z);
        qj_model_free(m);
        qj_plan_free(plan);
        if (st) {
            cJSON_Delete(manual);
            goto done;
        }
        if (!throughput) printf("| %s  | %.4f | %.6g |\n", names[k], ms.er.ppl, z.gb);
        else if (has_text) printf("| %s  | %.4f | %.2f |\n", names[k], ms.er.ppl, ms.tps);
        else printf("| %s  | %.5f | %.2f |\n", names[k], err, ms.tps);
        fflush(stdout);
    }
    cJSON_Delete(manual);
    if (has_text)
        printf("(perplexity over %zu ids of %s", ep.max_tokens < nid ? ep.max_tokens : nid, text ? text : tokens);
    else
        printf("(layer-output error: %d random inputs, %s rows per linear", QJ_OUTERR_INPUTS, error_rows ? "sampled" : "all");
    if (throughput)
        printf("; throughput: decode tokens/s at batch 1 on %s, mean of %ld runs of %ld steps)\n",
               use_cuda ? "the GPU" : mp.cpu_kernels ? "the CPU's LLVM kernels" : "the CPU reference", repeats, decode_tokens);
    else
        printf("; model size in GB of 1e9 bytes)\n");
    rc = 0;
done:
    if (rc) cli_error("baselines");
    cJSON_Delete(bo);
    free(ids);
    cli_model_close(&cm);
    return rc;
}
