/* cmd_generate.c — qjit generate: sample text (temperature / top-p, seeded). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "qj_forward.h"
#include "qj_progress.h"
#include "sampler.h"

static void usage(FILE *f) {
    fprintf(f, "usage: qjit generate (--model PATH | --synthetic PRESET) [--plan P] [--prompt TEXT]\n"
               "                     [--steps N] [--temperature T] [--top-p P] [--seed N]\n\n" CLI_MODEL_HELP
               "  --prompt TEXT         text to continue (default: empty)\n"
               "  --steps N             tokens to generate (default 256, at most the context)\n"
               "  --temperature T       0 = greedy (default 1.0)\n"
               "  --top-p P             nucleus sampling threshold (default 0.9)\n"
               "  --sample-seed N       sampling seed (default 42)\n");
}

int cmd_generate(int argc, char **argv) {
    static const struct option opts[] = {CLI_MODEL_OPTIONS,
                                         {"prompt", required_argument, 0, 'P'},
                                         {"steps", required_argument, 0, 'n'},
                                         {"temperature", required_argument, 0, 't'},
                                         {"top-p", required_argument, 0, 'k'},
                                         {"sample-seed", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    cli_model cm;
    cli_model_init(&cm);
    const char *prompt = "";
    long steps = 256, sseed = 42;
    double temp = 1.0, topp = 0.9;
    int o, r;
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
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "qjit generate: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    int *ids = NULL;
    size_t n = 0;
    qj_state *st = NULL;
    cm.cpu_jit = 1;
    if (cli_model_open(&cm, 1, 0)) goto fail;
    if (qj_tokenizer_encode(cm.tok, prompt, strlen(prompt), 1, &ids, &n)) goto fail;
    const qj_config *c = &cm.run->cfg;
    if (steps > c->seq_len) steps = c->seq_len;
    if ((long)n >= steps) {
        qj_fail(QJ_ERR_INVALID, "the prompt has %zu tokens; --steps %ld leaves no room to generate", n, steps);
        goto fail;
    }
    void *fctx;
    int max_ctx;
    qj_forward_fn fwd = cli_forward_fn(&cm, &fctx, &max_ctx);
    if (!cm.gpu) {
        if (qj_state_alloc(cm.run, (int)steps, &st)) goto fail;
        fctx = st;
    }
    if (cm.run->synthetic) fprintf(stderr, "%s\n", cli_synthetic_label(cm.run));
    qj_sampler smp;
    qj_sampler_init(&smp, c->vocab_size, (float)temp, (float)topp, (uint64_t)sseed);
    int tok = ids[0], next;
    double t0 = qj_now(), t1 = 0;
    int generated = 0;
    for (int pos = 0; pos < steps - 1; pos++) {
        const float *logits;
        if (fwd(fctx, tok, pos, &logits)) goto fail;
        if ((size_t)pos + 1 < n) next = ids[pos + 1];
        else {
            next = qj_sampler_sample(&smp, logits);
            generated++;
            if (generated == 1) t1 = qj_now();
        }
        if (next == c->eos_id || next == c->bos_id) break;
        size_t len;
        const char *piece = qj_tokenizer_piece(cm.tok, tok, next, &len);
        if (piece) fwrite(piece, 1, len, stdout);
        fflush(stdout);
        tok = next;
    }
    printf("\n");
    fflush(stdout);
    double el = qj_now() - (t1 ? t1 : t0);
    fprintf(stderr, "generated %d tokens, %.1f tokens/s\n", generated, generated > 1 ? (generated - 1) / el : 0.0);
    qj_sampler_free(&smp);
    qj_state_free(st);
    free(ids);
    cli_model_close(&cm);
    return 0;
fail:
    qj_state_free(st);
    free(ids);
    cli_model_close(&cm);
    return cli_error("generate");
}
