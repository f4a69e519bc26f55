/* cmd_bench.c — qjit bench: decode throughput and per-kernel timings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "cpu_bench.h"
#include "gpu_bench.h"
#include "qj_forward.h"
#include "qj_package.h"
#include "qj_progress.h"

static void usage(FILE *f) {
    fprintf(f, "usage: qjit bench (--model PATH | --synthetic PRESET) [--plan P] [--device cuda|cpu] [--tokens N] [--batch B]\n"
               "       qjit bench --kernels (--model PATH | --synthetic PRESET) [--plan P] [--layer L] [--batch B] [--iters N]\n\n"
               "Decode: tokens/s of batch-1 steps (CUDA: replays of one captured graph), the weight bytes\n"
               "one token reads, and the achieved weight bandwidth next to the device's copy ceiling; with\n"
               "--device cuda --batch B also B sequences decoding together (one step gives each a token).\n"
               "--kernels: each linear kernel of one layer (fused groups as the runtime launches them)\n"
               "and the head over rotating weight copies (every launch reads DRAM), timed two ways with\n"
               "CUDA events: cold (each launch alone between two events, median of --iters) and\n"
               "back-to-back (intervals of 16 launches, as a decode step runs them), with GB/s, the copy ceiling measured in the same run, and two dense\n"
               "bf16 baselines of the same shape timed in the same run: qjit's own kernel (CUDA cores;\n"
               "\"bf16 us\", speedup = bf16 us / us) and cuBLAS's GEMM (tensor cores, fp32 accumulate;\n"
               "\"cuBLAS us\", vs cuBLAS = cuBLAS us / us). cuBLAS is loaded at run time (libcublas.so.13,\n"
               ".so.12, .so, or only the file in $QJ_CUBLAS); without it its columns show \"-\".\n\n"
               CLI_MODEL_HELP
               "  --tokens N            decode steps to time (default 256)\n"
               "  --kernels             per-kernel timings (CUDA; with --device cpu the LLVM-generated\n"
               "                        CPU kernels next to a memory-read ceiling of the same run)\n"
               "  --layer L             layer whose kernels are timed (default 0)\n"
               "  --batch B             activations per kernel launch, 1..64 (default 1); CUDA decode: also\n"
               "                        time B sequences a step (a second model built for batch B)\n"
               "  --iters N             timed launches per kernel (default 200)\n"
               "  --no-baselines        --kernels on CUDA: time only qjit's kernels (no dense bf16, no cuBLAS)\n"
               "  --fp32-baseline       CPU decode: also time the same model compiled dense fp32 on the\n"
               "                        reference forward, in this run, and print the speed-up\n");
}

int cmd_bench(int argc, char **argv) {
    static const struct option opts[] = {CLI_MODEL_OPTIONS,
                                         {"tokens", required_argument, 0, 'n'},
                                         {"kernels", no_argument, 0, 'k'},
                                         {"layer", required_argument, 0, 'l'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"iters", required_argument, 0, 'i'},
                                         {"no-baselines", no_argument, 0, 'B'},
                                         {"fp32-baseline", no_argument, 0, 'F'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    cli_model cm;
    cli_model_init(&cm);
    long tokens = 256, layer = 0, batch = 1, iters = 200;
    int kernels = 0, baselines = 1, fp32_baseline = 0, o, r;
    while ((o = getopt_long(argc, argv, "m:p:h", opts, NULL)) != -1) {
        if ((r = cli_model_option(&cm, o, optarg))) {
            if (r < 0) return cli_error("bench");
            continue;
        }
        switch (o) {
        case 'n': if (cli_parse_long(optarg, "tokens", 1, 1 << 20, &tokens)) return cli_error("bench"); break;
        case 'k': kernels = 1; break;
        case 'B': baselines = 0; break;
        case 'F': fp32_baseline = 1; break;
        case 'l': if (cli_parse_long(optarg, "layer", 0, 4095, &layer)) return cli_error("bench"); break;
        case 'b': if (cli_parse_long(optarg, "batch", 1, 64, &batch)) return cli_error("bench"); break;
        case 'i': if (cli_parse_long(optarg, "iters", 5, 100000, &iters)) return cli_error("bench"); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "qjit bench: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (fp32_baseline && (kernels || cm.cuda)) {
        fprintf(stderr, "qjit bench: --fp32-baseline goes with CPU decode (no --kernels, no --device cuda)\n");
        return 2;
    }
    if (batch > 1 && !kernels && !cm.cuda) {
        fprintf(stderr, "qjit bench: decode at --batch %ld runs on the GPU (--device cuda); CPU decode is batch 1\n", batch);
        return 2;
    }
    int cpu_kernels = kernels && cm.device_set && !cm.cuda; /* --kernels --device cpu: the LLVM kernels */
    int want_cuda = cm.cuda || (kernels && !cpu_kernels);
    cm.cuda = want_cuda && !kernels; /* --kernels builds its own kernels, not the whole model */
    cm.cpu_jit = !kernels;            /* CPU decode: the LLVM kernels (QJ_CPU_KERNELS=reference: the reference) */
    if (cli_model_open(&cm, 0, 1)) goto fail;
    const qj_model *m = cm.run;
    if (m->synthetic) printf("%s\n", cli_synthetic_label(m));
    printf("model %s  plan %s\n", m->origin, m->plan_desc);
    if (cpu_kernels) {
        qj_cpu_kbench_report rep;
        if (qj_cpu_kernel_bench(m, (int)layer, (int)iters, &rep)) goto fail;
        printf("device cpu: %s, %d threads; read ceiling %.1f GB/s (median of the rows' ceilings)\n", rep.target,
               rep.threads, rep.read_gbs);
        uint64_t rot_min = 0;
        for (int i = 0; i < rep.n; i++)
            if (!rot_min || rep.rows[i].rot_bytes < rot_min) rot_min = rep.rows[i].rot_bytes;
        printf("layer %ld, median of %ld calls, rotating weight copies (>= %.0f MiB a kernel); LLVM-generated kernels; before\n"
               "each call a %zu MiB integer-sum read pass (256 MiB or 4x the last-level cache), whose median is the row's ceiling;\n"
               "%s\n",
               layer, iters, (double)rot_min / 1048576.0, rep.ceil_bytes >> 20,
               rep.interleaved ? "the calls in rounds, one of each kernel a round (every row samples the same stretch of time)"
                               : "one kernel after another (the rotating copies of all at once would not fit in half the memory)");
        printf("%-22s %6s %6s %4s %5s %9s %8s %9s %8s %8s %7s\n", "kernel", "N", "K", "bits", "group", "MiB", "jit ms", "us",
               "GB/s", "ceil", "%ceil");
        for (int i = 0; i < rep.n; i++) {
            const qj_cpu_kbench_row *w = &rep.rows[i];
            printf("%-22s %6lld %6lld %4d %5d %9.2f %8.1f %9.1f %8.2f %8.2f %6.1f%%\n", w->what, (long long)w->N,
                   (long long)w->K, w->bits, w->group, (double)w->weight_bytes / 1048576.0, w->jit_ms, w->us, w->gbs,
                   w->ceil_gbs, 100.0 * w->gbs / w->ceil_gbs);
        }
        if (!rep.n) printf("(no packed linear in layer %ld: dense weights have no JIT kernel yet)\n", layer);
    } else if (kernels) {
        qj_kbench_report rep;
        if (qj_gpu_kernel_bench(m, (int)layer, (int)batch, (int)iters, baselines, &rep)) goto fail;
        printf("device %s  copy ceiling %.1f GB/s (1 GiB device-to-device, read + write)\n", rep.device, rep.copy_gbs);
        printf("%s\n", rep.cublas);
        for (int t = 0; t < QJ_KTIME_N; t++) {
            printf("\nlayer %ld, batch %ld, rotating weight copies (> 3x L2), PDL %s; ", layer, batch, rep.pdl ? "on" : "off");
            if (t == QJ_KTIME_COLD)
                printf("cold: median of %ld launches, each alone between two CUDA events", iters);
            else
                printf("back-to-back: median of %ld intervals of %d launches between two events, per launch", iters,
                       QJ_KBENCH_B2B);
            printf("\n%-28s %6s %6s %4s %5s %9s %9s %6s %8s %7s %9s %8s %7s %9s %9s\n", "kernel", "N", "K", "bits", "group",
                   "MiB", "us", "prep", "GB/s", "%ceil", "bf16 us", "bf16GB/s", "speedup", "cuBLAS us", "vs cuBLAS");
            for (int i = 0; i < rep.n; i++) {
                const qj_kbench_row *w = &rep.rows[i];
                const qj_ktimes *k = &w->t[t];
                double gbs = (double)w->weight_bytes / (k->us * 1e-6) / 1e9;
                char cub_us[32] = "-", cub_x[32] = "-", d_us[32] = "-", d_gbs[32] = "-", d_x[32] = "-";
                if (k->dense_us > 0) {
                    snprintf(d_us, sizeof d_us, "%.2f", k->dense_us);
                    snprintf(d_gbs, sizeof d_gbs, "%.1f", (double)w->dense_bytes / (k->dense_us * 1e-6) / 1e9);
                    snprintf(d_x, sizeof d_x, "%.2fx", k->dense_us / k->us);
                }
                if (k->cublas_us > 0) {
                    snprintf(cub_us, sizeof cub_us, "%.2f", k->cublas_us);
                    snprintf(cub_x, sizeof cub_x, "%.2fx", k->cublas_us / k->us);
                }
                printf("%-28s %6lld %6lld %4d %5d %9.2f %9.2f %6.2f %8.1f %6.1f%% %9s %8s %7s %9s %9s\n", w->what,
                       (long long)w->N, (long long)w->K, w->bits, w->bits <= 8 ? w->group : 0,
                       (double)w->weight_bytes / 1048576.0, k->us, k->prep_us, gbs, 100.0 * gbs / rep.copy_gbs, d_us, d_gbs,
                       d_x, cub_us, cub_x);
            }
        }
        printf("\n");
        for (int i = 0; i < rep.n; i++) printf("  %s\n", rep.rows[i].name);
    } else if (cm.gpu) {
        qj_decode_bench db;
        double ceil_gbs = 0;
        if (qj_gpu_decode_bench(cm.gpu, (int)tokens, &db)) goto fail;
        if (qj_gpu_copy_ceiling(qj_gpu_cuda(cm.gpu), qj_gpu_stream(cm.gpu), &ceil_gbs)) goto fail;
        printf("device %s (%s): %d kernels ready in %.2f s (%d from the package, %d from the cache, %d compiled)\n",
               cm.gpu_stats.device, cm.gpu_stats.arch, cm.gpu_stats.kernels, cm.gpu_stats.compile_seconds,
               cm.gpu_stats.from_package, cm.gpu_stats.cache_hits,
               cm.gpu_stats.kernels - cm.gpu_stats.from_package - cm.gpu_stats.cache_hits);
        printf("decode batch 1: %.1f tokens/s (%.3f ms/token) over %d tokens; prefill runs the same steps; "
               "programmatic dependent launch %s\n",
               db.tokens_per_s, db.ms_per_token, db.tokens, cm.gpu_stats.pdl ? "on" : "off");
        printf("weights read per token %.4f GB; achieved weight bandwidth %.1f GB/s = %.1f%% of the copy ceiling %.1f GB/s\n",
               (double)db.bytes_per_token / 1e9, db.weight_gbs, 100.0 * db.weight_gbs / ceil_gbs, ceil_gbs);
        if (batch > 1) { /* B sequences a step: every kernel built for batch B, a KV cache per sequence */
            qj_gpu_params gp = qj_gpu_default_params();
            gp.batch = (int)batch;
            gp.max_seq = QJ_DECODE_BENCH_POSITIONS;
            qj_gpu_model *gb = NULL;
            qj_gpu_build_stats bs;
            qj_decode_bench dbb;
            if (qj_gpu_model_create(m, &gp, &gb, &bs)) goto fail;
            qj_status st = qj_gpu_decode_bench(gb, (int)tokens, &dbb);
            qj_gpu_model_free(gb);
            if (st) goto fail;
            printf("decode batch %ld: %.1f tokens/s (%ld sequences x %.1f steps/s, %.3f ms/step) over %d steps; "
                   "%.2fx batch 1; %d kernels ready in %.2f s\n",
                   batch, dbb.tokens_per_s, batch, 1e3 / dbb.ms_per_token, dbb.ms_per_token, dbb.tokens,
                   dbb.tokens_per_s / db.tokens_per_s, bs.kernels, bs.compile_seconds);
            printf("batch %ld: weights read per step %.4f GB; achieved weight bandwidth %.1f GB/s = %.1f%% of the copy "
                   "ceiling\n",
                   batch, (double)dbb.bytes_per_token / 1e9, dbb.weight_gbs, 100.0 * dbb.weight_gbs / ceil_gbs);
        }
    } else {
        int n = (int)(tokens < m->cfg.seq_len ? tokens : m->cfg.seq_len);
        double tps = 0, tps32 = 0;
        if (cli_cpu_decode(m, n, &tps)) goto fail;
        qj_size_info z;
        qj_model_size(m, &z);
        printf("device cpu: decode batch 1: %.2f tokens/s over %d tokens (%s); %.4f GB of weights\n", tps, n,
               cm.cpu_kernels ? "packed linears on the LLVM kernels, the rest on the reference forward"
                              : "reference forward",
               z.gb);
        if (fp32_baseline) { /* the same model compiled dense fp32, on the reference forward, in this run */
            if (!cm.src) {
                fprintf(stderr, "qjit bench: --fp32-baseline needs the source model (--model checkpoint or "
                                "--synthetic), not a package\n");
                cli_model_close(&cm);
                return 2;
            }
            qj_plan *p32 = NULL;
            qj_model *m32 = NULL;
            qj_compile_stats cs;
            qj_status st = qj_plan_parse("fp32", cm.src->cfg.n_layers, &p32);
            if (!st) st = qj_compile_model(cm.src, p32, 0, &m32, &cs);
            if (!st) st = cli_cpu_decode(m32, n, &tps32);
            qj_plan_free(p32);
            qj_model_free(m32);
            if (st) goto fail;
            printf("device cpu: fp32 reference forward of the same model, same run: %.2f tokens/s; this plan is %.2fx\n",
                   tps32, tps / tps32);
        }
    }
    cli_model_close(&cm);
    return 0;
fail:
    cli_model_close(&cm);
    return cli_error("bench");
}
