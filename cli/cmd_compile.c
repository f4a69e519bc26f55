/* cmd_compile.c — qjit compile: quantize a model with a plan, write a package. */
#include <stdio.h>

#include "cli.h"
#include "common.h"
#include "package_write.h"
#include "qj_package.h"
#include "cuda_codegen.h"
#include "nvrtc.h"
#include "qj_cuda.h"
#include "qj_progress.h"
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: qjit compile (--model PATH | --synthetic PRESET) --plan P -o OUT.qjp\n\n"
               "Quantizes the model as the plan says and writes a package (manifest + packed tensors +\n"
               "tokenizer), atomically: on any failure no file is left at OUT.\n\n" CLI_MODEL_HELP
               "  -o, --output PATH     the package to write\n"
               "  --target T            what the package carries besides the weights (default: nothing):\n"
               "                        cpu (CPU object code of every packed-linear kernel, compiled by LLVM\n"
               "                        ahead of time), cuda (every CUDA kernel the model needs, compiled with\n"
               "                        NVRTC), or cpu,cuda; running the package then compiles nothing\n"
               "  --cpu-arch LIST       what the CPU code is for, comma-separated (default host): host,\n"
               "                        x86-64, x86-64-v2, x86-64-v3, x86-64-v4, or TRIPLE:CPU[:FEATURES]\n"
               "                        for another architecture; one object each\n"
               "  --arch A              CUDA target for --target cuda (default: this machine's GPU, else sm_90a)\n");
}

int cmd_compile(int argc, char **argv) {
    static const struct option opts[] = {CLI_MODEL_OPTIONS, {"output", required_argument, 0, 'o'},
                                         {"target", required_argument, 0, 'T'}, {"arch", required_argument, 0, 'A'},
                                         {"cpu-arch", required_argument, 0, 'C'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    cli_model cm;
    cli_model_init(&cm);
    const char *out = NULL, *arch = NULL, *cpu_arch = NULL;
    int o, r, cuda = 0, cpu = 0;
    while ((o = getopt_long(argc, argv, "m:p:o:h", opts, NULL)) != -1) {
        if ((r = cli_model_option(&cm, o, optarg))) {
            if (r < 0) return cli_error("compile");
            continue;
        }
        switch (o) {
        case 'o': out = optarg; break;
        case 'T': {
            char buf[64];
            snprintf(buf, sizeof buf, "%s", optarg);
            for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
                if (!strcmp(t, "cuda")) cuda = 1;
                else if (!strcmp(t, "cpu")) cpu = 1;
                else {
                    fprintf(stderr, "qjit compile: --target: \"%s\" is not cpu or cuda\n", t);
                    return 2;
                }
            }
            break;
        }
        case 'A': arch = optarg; break;
        case 'C': cpu_arch = optarg; break;
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
    qj_gpu_build_stats ks;
    memset(&ks, 0, sizeof ks);
    if (cuda) {
        char detected[32] = "sm_90a";
        qj_cuda *cu = NULL;
        if (!arch && qj_cuda_available() && qj_cuda_open(0, &cu) == QJ_OK) {
            const qj_cuda_info *I = qj_cuda_get_info(cu);
            qj_cuda_arch_string(I->cc_major, I->cc_minor, I->cc_major * 10 + I->cc_minor > 120, detected, sizeof detected);
            qj_cuda_close(cu);
        }
        qj_clear_error();
        qj_kernel_blob *kb = NULL;
        int nk = 0;
        if (qj_gpu_compile_kernels(cm.run, arch ? arch : detected, 0, 1, &kb, &nk, &ks)) {
            cli_model_close(&cm);
            return cli_error("compile");
        }
        /* the model owns the images from here on */
        for (int i = 0; i < nk; i++)
            if (qj_model_adopt(cm.run, (void *)kb[i].image, kb[i].len, 0)) {
                for (int j = i; j < nk; j++) free((void *)kb[j].image);
                free(kb);
                cli_model_close(&cm);
                return cli_error("compile");
            }
        cm.run->kernels = kb;
        cm.run->n_kernels = nk;
    }
    double cpu_secs = 0;
    if (cpu_arch && !cpu) {
        cli_model_close(&cm);
        fprintf(stderr, "qjit compile: --cpu-arch needs --target cpu\n");
        return 2;
    }
    if (cpu && !qj_cpu_llvm_available()) {
        fprintf(stderr, "qjit compile: this qjit was built without LLVM: the package carries no CPU code (it is "
                        "JIT-compiled where it runs, if that qjit has LLVM)\n");
    } else if (cpu) {
        char list[1024];
        snprintf(list, sizeof list, "%s", cpu_arch ? cpu_arch : "host");
        /* targets are comma-separated; a comma before '+' or '-' belongs to a FEATURES string */
        int n = 1;
        for (char *p = list; *p; p++)
            if (*p == ',' && p[1] != '+' && p[1] != '-') *p = '\n', n++;
        cm.run->cpu_code = calloc((size_t)n, sizeof *cm.run->cpu_code);
        if (!cm.run->cpu_code) {
            qj_fail(QJ_ERR_NOMEM, "out of memory");
            cli_model_close(&cm);
            return cli_error("compile");
        }
        char *save = NULL;
        for (char *t = strtok_r(list, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
            qj_cpu_target tg;
            qj_cpu_code *c = &cm.run->cpu_code[cm.run->n_cpu_code];
            double secs = 0;
            if (qj_cpu_target_parse(t, &tg) || qj_cpu_aot_compile(cm.run, &tg, c, &secs)) {
                cli_model_close(&cm);
                return cli_error("compile");
            }
            cm.run->n_cpu_code++;
            if (qj_model_adopt(cm.run, (void *)c->object, c->len, 0)) { /* the model frees the object */
                cli_model_close(&cm);
                return cli_error("compile");
            }
            cpu_secs += secs;
        }
    }
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
    for (int i = 0; i < cm.run->n_cpu_code; i++) {
        const qj_cpu_code *c = &cm.run->cpu_code[i];
        printf("  cpu code: %d kernels for %s %s (%s), %zu bytes of object code, LLVM %s\n", c->n_kernels, c->triple,
               c->cpu, c->level, c->len, c->llvm);
    }
    if (cm.run->n_cpu_code) printf("  cpu code compiled in %.2f s\n", cpu_secs);
    if (cuda)
        printf("  cuda kernels: %d for %s in %.2f s (%d compiled with NVRTC, %d from the cache %s)\n", ks.kernels, ks.arch,
               ks.compile_seconds, ks.kernels - ks.cache_hits, ks.cache_hits, qj_kcache_dir());
    cli_model_close(&cm);
    return 0;
}
