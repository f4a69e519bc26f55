/* cmd_eval.c — qjit eval: perplexity on a text or a token-id file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "qj_eval.h"
#include "qj_io.h"
#include "qj_package.h"

static void usage(FILE *f) {
    fprintf(f, "usage: qjit eval (--model PATH | --synthetic PRESET) [--plan P] (--text FILE | --tokens FILE)\n"
               "                 [--ctx N] [--max-tokens N] [--json]\n\n"
               "Perplexity over non-overlapping windows of --ctx tokens, each BOS followed by the next ctx-1\n"
               "ids; the mean NLL is over every predicted id.\n\n" CLI_MODEL_HELP
               "  --text FILE           UTF-8 text, tokenized with the model's tokenizer\n"
               "  --tokens FILE         whitespace-separated token ids\n"
               "  --ctx N               window length including BOS (default: the model's context)\n"
               "  --max-tokens N        evaluate only the first N ids\n"
               "  --json                print the result as JSON\n");
}

int cmd_eval(int argc, char **argv) {
    static const struct option opts[] = {CLI_MODEL_OPTIONS,
                                         {"text", required_argument, 0, 'T'},
                                         {"tokens", required_argument, 0, 'K'},
                                         {"ctx", required_argument, 0, 'c'},
                                         {"max-tokens", required_argument, 0, 'n'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    cli_model cm;
    cli_model_init(&cm);
    qj_eval_params ep = qj_eval_default_params();
    const char *text = NULL, *tokens = NULL;
    int json = 0, o, r;
    long v;
    while ((o = getopt_long(argc, argv, "m:p:h", opts, NULL)) != -1) {
        if ((r = cli_model_option(&cm, o, optarg))) {
            if (r < 0) return cli_error("eval");
            continue;
        }
        switch (o) {
        case 'T': text = optarg; break;
        case 'K': tokens = optarg; break;
        case 'c':
            if (cli_parse_long(optarg, "ctx", 2, 1 << 20, &v)) return cli_error("eval");
            ep.ctx = (int)v;
            break;
        case 'n':
            if (cli_parse_long(optarg, "max-tokens", 1, 0x7fffffffL, &v)) return cli_error("eval");
            ep.max_tokens = (size_t)v;
            break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "qjit eval: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (!!text == !!tokens) {
        fprintf(stderr, "qjit eval: give exactly one of --text FILE or --tokens FILE\n");
        return 2;
    }
    int *ids = NULL;
    size_t n = 0;
    qj_eval_result res;
    cm.cpu_jit = 1;
    if (cli_model_open(&cm, text != NULL, !json)) goto fail;
    if (cli_read_ids(&cm, text, tokens, cm.run->cfg.vocab_size, &ids, &n)) goto fail;
    ep.progress = !json;
    if (cm.gpu) {
        void *ctx;
        int max_ctx;
        qj_forward_fn fn = cli_forward_fn(&cm, &ctx, &max_ctx);
        if (qj_eval_nll_with(&cm.run->cfg, max_ctx, fn, ctx, ids, n, &ep, &res)) goto fail;
    } else if (qj_eval_nll(cm.run, ids, n, &ep, &res)) goto fail;
    qj_size_info z;
    qj_model_size(cm.run, &z);
    const char *plan = cm.run->plan_desc;
    if (json) {
        cJSON *jo = cJSON_CreateObject();
        cJSON_AddNumberToObject(jo, "nll", res.nll);
        cJSON_AddNumberToObject(jo, "ppl", res.ppl);
        cJSON_AddNumberToObject(jo, "tokens", (double)res.tokens);
        cJSON_AddNumberToObject(jo, "windows", (double)res.windows);
        cJSON_AddNumberToObject(jo, "ctx", res.ctx);
        cJSON_AddNumberToObject(jo, "model_size", z.gb);
        cJSON_AddNumberToObject(jo, "size_bytes", (double)z.bytes);
        cJSON_AddNumberToObject(jo, "gib", z.gib);
        cJSON_AddNumberToObject(jo, "bits_per_weight", z.bits_per_weight);
        cJSON_AddNumberToObject(jo, "seconds", res.seconds);
        cJSON_AddNumberToObject(jo, "tokens_per_s", res.tokens_per_s);
        cJSON_AddStringToObject(jo, "plan", plan);
        cJSON_AddBoolToObject(jo, "synthetic", cm.run->synthetic);
        cJSON_AddStringToObject(jo, "device", cm.gpu ? cm.gpu_stats.device : "cpu");
        char *js = cJSON_PrintUnformatted(jo);
        printf("%s\n", js ? js : "{}");
        free(js);
        cJSON_Delete(jo);
    } else {
        if (cm.run->synthetic) printf("%s\n", cli_synthetic_label(cm.run));
        printf("model %s  plan %s  device %s\n", cm.run->origin, plan, cm.gpu ? cm.gpu_stats.device : "cpu");
        printf("nll %.6f  perplexity %.4f  tokens %zu  (%zu windows of ctx %d)\n", res.nll, res.ppl, res.tokens,
               res.windows, res.ctx);
        printf("size %.6f GB (%.6f GiB, %.3f bits/weight)  speed %.1f tokens/s  %.2f s\n", z.gb, z.gib,
               z.bits_per_weight, res.tokens_per_s, res.seconds);
    }
    free(ids);
    cli_model_close(&cm);
    return 0;
fail:
    free(ids);
    cli_model_close(&cm);
    return cli_error("eval");
}
