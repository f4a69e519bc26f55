/* generate_app — a small text-generation program built against a `qjit
 * export` directory: the model, its CPU kernels and the runtime are linked in,
 * so it needs no package file, no LLVM and no NVRTC when it runs.
 *
 *   qjit compile --model stories260K.bin --plan plan.json --target cpu -o m.qjp
 *   qjit export --model m.qjp -o m_export
 *   make EXPORT=m_export          (or see m_export/README.txt)
 *   ./generate_app --prompt "Once upon a time" --steps 100 --temperature 0.8
 *
 * Options: --prompt TEXT, --steps N (256), --temperature T (1.0; 0 = greedy),
 * --top-p P (0.9), --seed N (42), --print-ids (token ids instead of text, as
 * `qjit generate --print-ids`), --info (describe the model on stderr). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qjit_export.h"

static int print_piece(void *user, int token, int from_prompt, const char *piece, size_t len) {
    (void)user, (void)token, (void)from_prompt;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static int print_id(void *user, int token, int from_prompt, const char *piece, size_t len) {
    (void)user, (void)from_prompt, (void)piece, (void)len;
    printf(" %d", token);
    return 0;
}

static int usage(const char *argv0) {
    fprintf(stderr, "usage: %s [--prompt TEXT] [--steps N] [--temperature T] [--top-p P] [--seed N] [--print-ids] [--info]\n",
            argv0);
    return 2;
}

int main(int argc, char **argv) {
    qjit_generate_params p = qjit_generate_default_params();
    int print_ids = 0, info = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--print-ids")) print_ids = 1;
        else if (!strcmp(a, "--info")) info = 1;
        else if (!v) return usage(argv[0]);
        else if (!strcmp(a, "--prompt")) p.prompt = v, i++;
        else if (!strcmp(a, "--steps")) p.steps = (int)strtol(v, &end, 10), i++;
        else if (!strcmp(a, "--temperature")) p.temperature = strtof(v, &end), i++;
        else if (!strcmp(a, "--top-p")) p.top_p = strtof(v, &end), i++;
        else if (!strcmp(a, "--seed")) p.seed = strtoull(v, &end, 10), i++;
        else return usage(argv[0]);
        if (end && *end) {
            fprintf(stderr, "%s: %s: \"%s\" is not a number\n", argv[0], a, v);
            return 2;
        }
    }
    qjit_model *m = NULL;
    if (qjit_load(QJIT_EXPORT_IMAGE, &m) != QJIT_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], qjit_last_error());
        return 1;
    }
    if (info) fprintf(stderr, "%s\n", qjit_describe(m));
    if (print_ids) printf("%d", qjit_bos_id(m));
    int n = 0;
    qjit_status s = qjit_generate(m, &p, print_ids ? print_id : print_piece, NULL, &n);
    printf("\n");
    if (s != QJIT_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], qjit_last_error());
        qjit_free(m);
        return 1;
    }
    fprintf(stderr, "generated %d tokens\n", n);
    qjit_free(m);
    return 0;
}
