/* export.h — `qjit export`: a package turned into what an application links
 * (see docs/FORMATS.md, "Export"): a directory holding
 *   qjit_embed.h      the public runtime header (runtime/qjit_embed.h)
 *   qjit_export.h     declares the image, QJIT_EXPORT_IMAGE names it
 *   NAME.c            generated: the package's bytes and the kernel table
 *   NAME_cpu.o        the package's ahead-of-time CPU object code (one target)
 *   libqjit_embed.a   the runtime (no LLVM, no NVRTC)
 *   qjit_export.mk    make variables QJIT_CFLAGS, QJIT_SOURCES, QJIT_OBJECTS, QJIT_LIBS
 *   README.txt        how to build against it
 * The directory must not exist; it is built under a temporary name beside it
 * and renamed when complete, so a failure leaves nothing.
 */
#ifndef QJ_EXPORT_H
#define QJ_EXPORT_H

#include "qj_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qj_export_params {
    const char *name;        /* C identifier part (default: from the package's file name) */
    const char *cpu;         /* the cpu_code entry's CPU name to export (default: the one that runs here) */
    const char *runtime_lib; /* libqjit_embed.a to copy (default: beside the qjit executable, else the build's) */
    const char *link_flags;  /* what an application links besides the library (recorded in qjit_export.mk) */
} qj_export_params;
qj_export_params qj_export_default_params(void);

typedef struct qj_export_info {
    char name[64];
    char cpu[64], level[16], triple[64];
    int n_kernels;
    size_t package_bytes, object_bytes;
} qj_export_info;

qj_status qj_export(const char *package, const char *dir, const qj_export_params *p, qj_export_info *info);

#ifdef __cplusplus
}
#endif
#endif
