/* cmd_baselines.c — qjit baselines: the seed's comparison table for a model:
 * bf16, int8 and int4 weight-only uniform plans, the seed's "manual" rule, and
 * (with --history) the best plan of a qjit search, each compiled and measured
 * on the same text (perplexity and model size in GB). */
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

static void usage(FILE *f) {
    fprintf(f, "usage: qjit baselines (--model PATH | --synthetic PRESET) (--text FILE | --tokens FILE)\n"
               "                      [--max-tokens N] [--ctx N] [--history FILE]\n\n"
               "Perplexity and size of the uniform baselines the seed compares against, measured here:\n"
               "bf16, int8 weight-only (per channel, symmetric), int4 weight-only (group 128), the seed's\n"
               "manual rule (<5-bit, group 32> for the first 3 and last 2 layers, <4-bit, group 64> for\n"
               "the rest) and, with --history, the best plan of a qjit search history; printed as the\n"
               "seed's table.\n\n" CLI_MODEL_HELP
               "  --text FILE           text (tokenized with the model's tokenizer)\n"
               "  --tokens FILE         token ids instead\n"
               "  --max-tokens N        ids measured (default 2000)\n"
               "  --ctx N               perplexity window (default: the model's context)\n"
               "  --history FILE        a qjit search history: its best trial is measured too\n");
}

typedef struct best_ctx {
    cJSON *best;
    double ppl;
} best_ctx;

static qj_status best_line(void *ctx, const cJSON *o, int line) {
    (void)line;
    best_ctx *b = ctx;
    const cJSON *ppl = cJSON_GetObjectItemCaseSensitive(o, "cal_PPL"), *cfg = cJSON_GetObjectItemCaseSensitive(o, "quant_config");
    if (cJSON_IsNumber(ppl) && cJSON_IsObject(cfg) && ppl->valuedouble < b->ppl) {
        b->ppl = ppl->valuedouble;
        cJSON_Delete(b->best);
        b->best = cJSON_Duplicate(cfg, 1);
    }
    return QJ_OK;
}

/* the best trial's quant_config of a search history (a new object), or NULL with an error */
static cJSON *best_of_history(const char *path) {
    best_ctx b = {NULL, INFINITY};
    size_t valid;
    int lines;
    if (cli_jsonl_each(path, best_line, &b, &valid, &lines)) {
        cJSON_Delete(b.best);
        return NULL;
    }
    if (!b.best) qj_fail(QJ_ERR_FORMAT, "%s: no trial with \"cal_PPL\" and \"quant_config\"", path);
    return b.best;
}

int cmd_baselines(int argc, char **argv) {
    static const struct option opts[] = {CLI_MODEL_OPTIONS,
                                         {"text", required_argument, 0, 'T'},
                                         {"tokens", required_argument, 0, 'K'},
                                         {"max-tokens", required_argument, 0, 'n'},
                                         {"ctx", required_argument, 0, 'c'},
                                         {"history", required_argument, 0, 'H'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    cli_model cm;
    cli_model_init(&cm);
    const char *text = NULL, *tokens = NULL, *history = NULL;
    qj_eval_params ep = qj_eval_default_params();
    ep.max_tokens = 2000;
    ep.progress = 0;
    int o, r;
    long v;
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
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "qjit baselines: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (!!text == !!tokens) {
        fprintf(stderr, "qjit baselines: give exactly one of --text FILE or --tokens FILE\n");
        return 2;
    }
    if (cm.plan || cm.cuda) {
        fprintf(stderr, "qjit baselines: --plan and --device cuda do not apply (CPU, the baselines' own plans)\n");
        return 2;
    }
    int *ids = NULL, rc = 1;
    size_t nid = 0;
    cJSON *bo = NULL;
    if (history && !(bo = best_of_history(history))) return cli_error("baselines");
    if (cli_model_open(&cm, text != NULL, 0)) goto done;
    if (cm.is_package) {
        qj_fail(QJ_ERR_INVALID, "%s is a compiled package; the baselines need the source model", cm.model);
        goto done;
    }
    if (cli_read_ids(&cm, text, tokens, cm.src->cfg.vocab_size, &ids, &nid)) goto done;
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
    printf("|    %s   |ppl | model size|\n| ---------------- | ------ | ------ |\n", cm.src->origin);
    for (int k = 0; k < 5; k++) {
        if (k == 4 && !bo) break;
        qj_plan *plan = NULL;
        qj_model *m = NULL;
        qj_eval_result er;
        qj_status st = k < 3 ? qj_plan_parse(specs[k], L, &plan)
                             : qj_plan_from_cjson(k == 3 ? manual : bo, k == 3 ? "manual baseline" : history, L, &plan);
        if (!st) st = qj_compile_model(cm.src, plan, 0, &m, NULL);
        if (!st) st = qj_eval_nll(m, ids, nid, &ep, &er);
        qj_size_info z;
        if (!st) qj_model_size(m, &z);
        qj_model_free(m);
        qj_plan_free(plan);
        if (st) {
            cJSON_Delete(manual);
            goto done;
        }
        printf("| %s  | %.4f | %.6g |\n", names[k], er.ppl, z.gb);
        fflush(stdout);
    }
    cJSON_Delete(manual);
    printf("(perplexity over %zu ids of %s; model size in GB of 1e9 bytes)\n", ep.max_tokens < nid ? ep.max_tokens : nid,
           text ? text : tokens);
    rc = 0;
done:
    if (rc) cli_error("baselines");
    cJSON_Delete(bo);
    free(ids);
    cli_model_close(&cm);
    return rc;
}
