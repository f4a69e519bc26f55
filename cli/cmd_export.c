/* cmd_export.c — qjit export: a package as something an application links. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "export.h"

static void usage(FILE *f) {
    fprintf(f, "usage: qjit export --model PKG.qjp -o DIR [--name NAME] [--cpu CPU] [--runtime-lib PATH]\n\n"
               "Turns a package into a directory an application builds against, with neither LLVM nor NVRTC\n"
               "at run time: qjit_embed.h (the API: load, forward, generate, free), qjit_export.h, NAME.c (the\n"
               "package's bytes and the kernel table), NAME_cpu.o (the package's ahead-of-time CPU code, so\n"
               "the package must be compiled with --target cpu), libqjit_embed.a (the runtime), qjit_export.mk\n"
               "and README.txt. DIR must not exist; it appears only when complete.\n\n"
               "  --model PKG           a qjit package with CPU code (qjit compile --target cpu)\n"
               "  -o, --output DIR      the directory to write\n"
               "  --name NAME           C name of the image, qjit_image_NAME (default: from PKG's file name)\n"
               "  --cpu CPU             the cpu_code entry to export, by CPU name (default: the one that runs\n"
               "                        on this machine)\n"
               "  --runtime-lib PATH    libqjit_embed.a to copy (default: beside qjit, else the build's)\n");
}

int cmd_export(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"output", required_argument, 0, 'o'},
                                         {"name", required_argument, 0, 'n'}, {"cpu", required_argument, 0, 'c'},
                                         {"runtime-lib", required_argument, 0, 'r'}, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    qj_export_params p = qj_export_default_params();
    const char *model = NULL, *out = NULL;
    int o;
    while ((o = getopt_long(argc, argv, "m:o:h", opts, NULL)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        case 'n': p.name = optarg; break;
        case 'c': p.cpu = optarg; break;
        case 'r': p.runtime_lib = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "qjit export: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (!model || !out) {
        fprintf(stderr, "qjit export: --model PKG and -o DIR are required\n");
        usage(stderr);
        return 2;
    }
    qj_export_info info;
    if (qj_export(model, out, &p, &info)) return cli_error("export");
    printf("wrote %s: qjit_image_%s, package %zu bytes", out, info.name, info.package_bytes);
    if (info.n_kernels)
        printf(", %d CPU kernels for %s %s (%s), %zu bytes of object code\n", info.n_kernels, info.triple, info.cpu,
               info.level, info.object_bytes);
    else
        printf(", no packed linears (no CPU kernels)\n");
    printf("build: see %s/README.txt\n", out);
    return 0;
}
