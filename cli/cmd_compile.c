/* cmd_compile.c — qjit compile: quantize a model with a plan, write a package. */
#include <stdio.h>

#include "cli.h"
#include "common.h"
#include "package_write.h"
#include "qj_package.h"
#include "qj_progress.h"

static void usage(FILE *f) {
    fprintf(f, "usage: qjit compile (--model PATH | --synthetic PRESET) --plan P -o OUT.qjp\n\n"
               "Quantizes the model as the plan says and writes a package (manifest + packed tensors +\n"
               "tokenizer), atomically: on any failure no file is left at OUT.\n\n" CLI_MODEL_HELP
               "  -o, --output PATH     the package to write\n");
}

int cmd_compile(int argc, char **argv) {
    static const struct option opts[] = {CLI_MODEL_OPTIONS, {"output", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    cli_model cm;
    cli_model_init(&cm);
    const char *out = NULL;
    int o, r;
    while ((o = getopt_long(argc, argv, "m:p:o:h", opts, NULL)) != -1) {
        if ((r = cli_model_option(&cm, o, optarg))) {
            if (r < 0) return cli_error("compile");
            continue;
        }
        switch (o) {
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "qjit compile: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (!out) {
        fprintf(stderr, "qjit compile: -o OUT is required\n");
        usage(stderr);
        return 2;
    }
    double t0 = qj_now();
    if (cli_model_open(&cm, 0, 1)) {
        cli_model_close(&cm);
        return cli_error("compile");
    }
    if (cm.is_package) {
        cli_model_close(&cm);
        fprintf(stderr, "qjit compile: %s is already a package\n", cm.model ? cm.model : "input");
        return 1;
    }
    if (!cm.plan) fprintf(stderr, "qjit compile: no --plan given; every tensor keeps its source dtype\n");
    if (qj_package_write(cm.run, cm.plan_obj, out)) {
        cli_model_close(&cm);
        return cli_error("compile");
    }
    qj_size_info z;
    qj_model_size(cm.run, &z);
    printf("wrote %s\n", out);
    if (cm.run->synthetic) printf("  %s\n", cli_synthetic_label(cm.run));
    printf("  plan %s: %d tensors quantized, %d converted, %d kept; quantize %.2f s, total %.2f s\n",
           cm.plan_obj->desc, cm.stats.quantized_tensors, cm.stats.converted_tensors, cm.stats.kept_tensors,
           cm.stats.seconds, qj_now() - t0);
    printf("  size %llu bytes = %.6f GB = %.6f GiB, %.4f bits/weight\n", (unsigned long long)z.bytes, z.gb, z.gib,
           z.bits_per_weight);
    printf("  tokenizer %s\n", cm.run->tokenizer_blob ? cm.run->tokenizer_kind : "none (eval --text will need --tokenizer)");
    cli_model_close(&cm);
    return 0;
}
