/* cmd_info.c — qjit info: architecture, every tensor with shape and format, size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "qj_package.h"

static void usage(FILE *f) {
    fprintf(f, "usage: qjit info (--model PATH [--plan P] | --synthetic PRESET [--plan P]) [--summary] [--json]\n"
               "       qjit info --manifest PACKAGE.qjp\n\n"
               "Prints the architecture, the plan, every tensor with its shape and format, and the\n"
               "size: real bytes in GB (10^9) and GiB and bits per weight.\n\n" CLI_MODEL_HELP
               "  --summary             omit the tensor list\n"
               "  --json                print the same as JSON\n"
               "  --manifest PKG        print a package's manifest JSON\n");
}

static void format_str(const qj_tensor *t, char *buf, size_t n) {
    if (t->dtype == QJ_DTYPE_Q)
        snprintf(buf, n, "int%d g%d %s %s", t->q.bits, t->q.group, t->q.symmetric ? "sym" : "asym",
                 qj_dtype_name(t->q.scale_dtype));
    else snprintf(buf, n, "%s", qj_dtype_name(t->dtype));
}

static void shape_str(const qj_tensor *t, char *buf, size_t n) {
    if (t->ndim == 1) snprintf(buf, n, "(%lld)", (long long)t->shape[0]);
    else snprintf(buf, n, "(%lld, %lld)", (long long)t->shape[0], (long long)t->shape[1]);
}

static qj_status print_tensor(const qj_tensor *t, void *ctx) {
    (void)ctx;
    char fmt[64], shp[48];
    format_str(t, fmt, sizeof fmt);
    shape_str(t, shp, sizeof shp);
    printf("  %-48s %-16s %-26s %12zu\n", t->name, shp, fmt, qj_tensor_bytes(t));
    return QJ_OK;
}

static qj_status json_tensor(const qj_tensor *t, void *ctx) {
    cJSON *arr = ctx, *o = cJSON_CreateObject(), *sh = cJSON_CreateArray();
    char fmt[64];
    format_str(t, fmt, sizeof fmt);
    cJSON_AddStringToObject(o, "name", t->name);
    for (int i = 0; i < t->ndim; i++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[i]));
    cJSON_AddItemToObject(o, "shape", sh);
    cJSON_AddStringToObject(o, "dtype", qj_dtype_name(t->dtype));
    cJSON_AddStringToObject(o, "format", fmt);
    cJSON_AddNumberToObject(o, "bytes", (double)qj_tensor_bytes(t));
    cJSON_AddItemToArray(arr, o);
    return QJ_OK;
}

int cmd_info(int argc, char **argv) {
    static const struct option opts[] = {CLI_MODEL_OPTIONS, {"json", no_argument, 0, 'j'},
                                         {"summary", no_argument, 0, 't'}, {"manifest", required_argument, 0, 'M'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    cli_model cm;
    cli_model_init(&cm);
    int json = 0, tensors = 1, o, r;
    const char *manifest = NULL;
    while ((o = getopt_long(argc, argv, "m:p:h", opts, NULL)) != -1) {
        if ((r = cli_model_option(&cm, o, optarg))) {
            if (r < 0) return cli_error("info");
            continue;
        }
        switch (o) {
        case 'j': json = 1; break;
        case 't': tensors = 0; break;
        case 'M': manifest = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "qjit info: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (manifest) {
        char *j;
        if (qj_package_manifest(manifest, &j)) return cli_error("info");
        printf("%s\n", j);
        free(j);
        return 0;
    }
    if (cli_model_open(&cm, 0, !json)) {
        cli_model_close(&cm);
        return cli_error("info");
    }
    const qj_model *m = cm.run;
    const qj_config *c = &m->cfg;
    qj_size_info z;
    qj_model_size(m, &z);
    char plan_desc[300];
    snprintf(plan_desc, sizeof plan_desc, "%s%s", m->plan_desc, cm.is_package ? " (from the package)" : "");
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "origin", m->origin);
        cJSON_AddBoolToObject(root, "synthetic", m->synthetic);
        cJSON_AddStringToObject(root, "arch", qj_arch_name(c->arch));
        cJSON *cfg = cJSON_AddObjectToObject(root, "config");
        cJSON_AddNumberToObject(cfg, "dim", c->dim);
        cJSON_AddNumberToObject(cfg, "hidden_dim", c->hidden_dim);
        cJSON_AddNumberToObject(cfg, "n_layers", c->n_layers);
        cJSON_AddNumberToObject(cfg, "n_heads", c->n_heads);
        cJSON_AddNumberToObject(cfg, "n_kv_heads", c->n_kv_heads);
        cJSON_AddNumberToObject(cfg, "head_dim", c->head_dim);
        cJSON_AddNumberToObject(cfg, "vocab_size", c->vocab_size);
        cJSON_AddNumberToObject(cfg, "seq_len", c->seq_len);
        cJSON_AddBoolToObject(cfg, "tied_embeddings", c->tied_embeddings);
        cJSON_AddStringToObject(root, "plan", plan_desc);
        cJSON *arr = cJSON_AddArrayToObject(root, "tensors");
        qj_model_each_tensor(m, json_tensor, arr);
        cJSON_AddItemToObject(root, "size", qj_size_to_cjson(&z));
        cJSON_AddNumberToObject(root, "model_size", z.gb);
        char *text = cJSON_Print(root);
        printf("%s\n", text ? text : "{}");
        free(text);
        cJSON_Delete(root);
    } else {
        if (m->synthetic) printf("model:      %s\n            %s\n", m->origin, cli_synthetic_label(m));
        else printf("model:      %s\n", m->origin);
        printf("arch:       %s  dim %d  hidden %d  layers %d  heads %d  kv heads %d  head_dim %d\n", qj_arch_name(c->arch),
               c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim);
        printf("            vocab %d  context %d  rope theta %g (%s)  rms eps %g  head %s%s\n", c->vocab_size,
               c->seq_len, (double)c->rope_theta, c->rope_style == QJ_ROPE_HALF ? "half" : "interleaved",
               (double)c->rms_eps, c->tied_embeddings ? "tied" : "untied", c->qkv_bias ? "  qkv bias" : "");
        printf("plan:       %s\n", plan_desc);
        if (tensors) {
            printf("tensors:\n  %-48s %-16s %-26s %12s\n", "name", "shape", "format", "bytes");
            qj_model_each_tensor(m, print_tensor, NULL);
        }
        printf("size:       %llu bytes = %.6f GB = %.6f GiB, %.4f bits/weight over %llu weights\n",
               (unsigned long long)z.bytes, z.gb, z.gib, z.bits_per_weight, (unsigned long long)z.params);
        printf("model_size: %.4f\n", z.gb);
        for (int i = 0; i < m->n_cpu_code; i++) {
            const qj_cpu_code *cc = &m->cpu_code[i];
            printf("%s %d kernels for %s %s (%s), %zu bytes of object code, LLVM %s\n", i ? "           " : "cpu code:  ",
                   cc->n_kernels, cc->triple, cc->cpu, cc->level, cc->len, cc->llvm);
        }
        if (m->n_kernels) printf("cuda code:  %d kernels for %s\n", m->n_kernels, m->kernels[0].arch);
    }
    cli_model_close(&cm);
    return 0;
}
