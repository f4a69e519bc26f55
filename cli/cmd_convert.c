/* cmd_convert.c — qjit convert: write a model (llama2.c checkpoint or Hugging
 * Face directory) as a Hugging Face safetensors directory. A thin layer over
 * qj_load_model and qj_save_hf_ex (compiler/hf_model.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "hf_model.h"
#include "loaders.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: qjit convert --model PATH -o DIR [--dtype f32|f16|bf16] [--shards N] [--tokenizer PATH]\n\n"
            "Writes the model as a Hugging Face directory: config.json and model.safetensors, or with\n"
            "--shards N > 1 model-0000k-of-0000N.safetensors and model.safetensors.index.json.\n"
            "A llama2.c checkpoint has its wq/wk rows permuted to Hugging Face's RoPE order, so both\n"
            "compute the same function. DIR must not exist; it appears only when complete.\n\n"
            "  --model PATH          llama2.c checkpoint (.bin) or Hugging Face directory\n"
            "  -o, --output DIR      directory to create\n"
            "  --dtype T             f32, f16 or bf16 (default: the dtype of the model's embedding)\n"
            "  --shards N            number of safetensors files (default 1)\n"
            "  --tokenizer PATH      tokenizer.bin / tokenizer.json to copy into DIR\n"
            "                        (default: the one found beside the model, if any)\n");
}

static void print_bytes(const char *what, uint64_t b) {
    if (b >= 1000000000ull)
        printf("  %-10s %llu bytes (%.3f GB, %.3f GiB)\n", what, (unsigned long long)b, (double)b / 1e9,
               (double)b / (1024.0 * 1024.0 * 1024.0));
    else printf("  %-10s %llu bytes (%.3f MB)\n", what, (unsigned long long)b, (double)b / 1e6);
}

int cmd_convert(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"output", required_argument, 0, 'o'},
                                         {"dtype", required_argument, 0, 'd'},
                                         {"shards", required_argument, 0, 's'},
                                         {"tokenizer", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *model_path = NULL, *out_dir = NULL, *tok_path = NULL;
    qj_dtype dtype = QJ_DTYPE_COUNT;
    long shards = 1;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'o': out_dir = optarg; break;
        case 't': tok_path = optarg; break;
        case 'd':
            if (qj_dtype_parse(optarg, &dtype)) {
                qj_fail_context(QJ_ERR_INVALID, "--dtype");
                return cli_error("convert");
            }
            break;
        case 's':
            if (cli_parse_long(optarg, "shards", 1, 99999, &shards)) return cli_error("convert");
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        qj_fail(QJ_ERR_INVALID, "unexpected argument \"%s\"", argv[optind]);
        return cli_error("convert");
    }
    if (!model_path || !out_dir) {
        qj_fail(QJ_ERR_INVALID, "give --model PATH and -o DIR (see qjit convert --help)");
        return cli_error("convert");
    }

    qj_model *m = NULL;
    qj_status s = qj_load_model(model_path, &m);
    if (s) return cli_error("convert");
    char found[4096];
    if (tok_path) {
        if ((s = qj_model_attach_tokenizer(m, tok_path))) {
            qj_model_free(m);
            return cli_error("convert");
        }
    } else if (qj_find_tokenizer(model_path, found, sizeof found) && qj_model_attach_tokenizer(m, found)) {
        /* one found beside the model is a convenience: say why it is not copied, go on */
        fprintf(stderr, "qjit convert: warning: tokenizer not copied: %s\n", qj_last_error());
    }
    if (dtype == QJ_DTYPE_COUNT) dtype = m->tok_embedding.dtype;
    qj_hf_save_info info;
    s = qj_save_hf_ex(m, out_dir, dtype, (int)shards, &info);
    qj_model_free(m);
    if (s) return cli_error("convert");

    printf("wrote %s (Hugging Face %s, %s)\n", out_dir, info.n_files > 1 ? "sharded safetensors" : "safetensors",
           qj_dtype_name(dtype));
    printf("  tensors    %d in %d file%s\n", info.n_tensors, info.n_files, info.n_files == 1 ? "" : "s");
    print_bytes("data", info.data_bytes);
    print_bytes("on disk", info.total_bytes);
    if (info.rope_permuted)
        printf("  rope       wq/wk rows permuted from interleaved (llama2.c) to half (Hugging Face) order\n");
    if (info.tied) printf("  lm_head    tied to model.embed_tokens.weight (tie_word_embeddings)\n");
    printf("  tokenizer  %s\n", info.tokenizer_file[0] ? info.tokenizer_file : "none written");
    return 0;
}
