/* main.c — qjit's entry point: dispatches to the subcommands in cli/cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "qj_status.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"info", cmd_info, "print a model's or package's architecture, tensors and size"},
    {"compile", cmd_compile, "quantize a model with a plan and write a package"},
    {"eval", cmd_eval, "perplexity on a text or token file"},
    {"generate", cmd_generate, "sample text"},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"convert", cmd_convert, "write a model as a Hugging Face safetensors directory"},
    {"export", cmd_export, "turn a package into C source + object code an application links"},
    {"search", cmd_search, "Bayesian-optimisation search for the best plan under a size limit"},
    {"baselines", cmd_baselines, "the seed's table: bf16, int8, int4, the manual rule and a search's best"},
    {"bench", cmd_bench, "decode tokens/s, weight bandwidth, per-kernel timings (--kernels)"},
};

int cli_error(const char *cmd) {
    fprintf(stderr, "qjit %s: %s\n", cmd, qj_last_error()[0] ? qj_last_error() : "failed");
    return 1;
}

static void usage(FILE *f) {
    fprintf(f, "usage: qjit <command> [options]   (qjit <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("qjit 0.1.0\n");
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "qjit: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
