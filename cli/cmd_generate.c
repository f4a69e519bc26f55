/* cmd_generate.c — qjit generate: sample text (temperature / top-p, seeded). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "qj_forward.h"
#include "qj_progress.h"
#include "generate.h"

static void usage(FILE *f) {
    fprintf(f, "usage: qjit generate (--model PATH | --synthetic PRESET) [--plan P] [--prompt TEXT]\n"
               "                     [--steps N] [--temperature T] [--top-p P] [--seed N]\n\n" CLI_MODEL_HELP
               "  --prompt TEXT         text to continue (default: empty)\n"
               "  --steps N             tokens to generate (default 256, at most the context)\n"
               "  --temperature T       0 = greedy (default 1.0)\n"
               "  --top-p P             nucleus sampling threshold (default 0.9)\n"
               "  --sample-seed N       sampling seed (default 42)\n"
               "  --print-ids           print the token ids (BOS, prompt, generated) instead of the text\n");
}

static int print_piece(void *ctx, int token, int from_prompt, const char *piece, size_t len) {
    (void)ctx, (void)token, (void)from_prompt;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static int print_id(void *ctx, int token, int from_prompt, const char *piece, size_t len) {
    (void)ctx, (void)from_prompt, (void)piece, (void)len;
    printf(" %d", token);
    return 0;
}

int cmd_generate(int argc, char **argv) {
    static const struct option opts[] = {CLI_MODEL_OPTIONS,
                                         {"prompt", required_argument, 0, 'P'},
                                         {"steps", required_argument, 0, 'n'},
                                         {"temperature", required_argument, 0, 't'},
                                         {"top-p", required_argument, 0, 'k'},
                                         {"sample-seed", required_argument, 0, 's'},
                                         {"print-ids", no_argument, 0, 'I'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    cli_model cm;
    cli_model_init(&cm);
    const char *prompt = "";
    long steps = 256, sseed = 42;
    double temp = 1.0, topp = 0.9;
    int o, r, print_ids = 0;
    while ((o = getopt_long(argc, argv, "m:p:h", opts, NULL)) != -1) {
        if ((r = cli_model_option(&cm, o, optarg))) {
            if (r < 0) return cli_error("generate");
            continue;
        }
        switch (o) {
        case 'P': prompt = optarg; break;
        case 'n': if (cli_parse_long(optarg, "steps", 1, 1 << 20, &steps)) return cli_error("generate"); break;
        case 't': if (cli_parse_double(optarg, "temperature", 0.0, 100.0, &temp)) return cli_error("generate"); break;
        case 'k': if (cli_parse_double(optarg, "top-p", 0.0, 1.0, &topp)) return cli_error("generate"); break;
        case 's': if (cli_parse_long(optarg, "sample-seed", 0, 0x7fffffffL, &sseed)) return cli_error("generate"); break;
        case 'I': print_ids = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "qjit generate: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    qj_state *st = NULL;
    cm.cpu_jit = 1;
    if (cli_model_open(&cm, 1, 0)) goto fail;
    const qj_config *c = &cm.run->cfg;
    if (steps > c->seq_len) steps = c->seq_len;
    void *fctx;
    int max_ctx;
    qj_forward_fn fwd = cli_forward_fn(&cm, &fctx, &max_ctx);
    if (!cm.gpu) {
        if (qj_state_alloc(cm.run, (int)steps, &st)) goto fail;
        fctx = st;
    }
    if (cm.run->synthetic) fprintf(stderr, "%s\n", cli_synthetic_label(cm.run));
    qj_generate_params gp = qj_generate_default_params();
    gp.prompt = prompt;
    gp.steps = (int)steps;
    gp.temperature = (float)temp;
    gp.top_p = (float)topp;
    gp.seed = (uint64_t)sseed;
    qj_generate_stats gs;
    if (print_ids) printf("%d", c->bos_id);
    if (qj_generate(c, fwd, fctx, cm.tok, &gp, print_ids ? print_id : print_piece, NULL, &gs)) goto fail;
    printf("\n");
    fflush(stdout);
    fprintf(stderr, "generated %d tokens, %.1f tokens/s\n", gs.generated, gs.tokens_per_s);
    qj_state_free(st);
    cli_model_close(&cm);
    return 0;
fail:
    qj_state_free(st);
    cli_model_close(&cm);
    return cli_error("generate");
}
