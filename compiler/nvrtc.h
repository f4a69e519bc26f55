/* nvrtc.h — run-time CUDA compilation with NVRTC (loaded with dlopen), kernel
 * templates embedded at build time, and the on-disk kernel cache.
 *
 * Ownership: qj_nvrtc_compile returns a malloc'd image (cubin or PTX) and a
 * malloc'd log; the caller frees both (free(NULL) is fine).
 */
#ifndef QJ_NVRTC_H
#define QJ_NVRTC_H

#include <stddef.h>
#include <stdint.h>

#include "qj_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when libnvrtc can be loaded; major and minor (may be NULL) get its version. */
int qj_nvrtc_available(int *major, int *minor);

/* Compile CUDA C source for `arch`: "sm_90a" (or any sm_XY[a]) gives a cubin,
 * "compute_90a" gives PTX (the fallback the driver JIT-compiles). Template
 * headers are resolved from the embedded templates. On a compile error the
 * status is QJ_ERR_COMPILE and the message carries NVRTC's log. */
qj_status qj_nvrtc_compile(const char *source, const char *name, const char *arch, void **image, size_t *image_len,
                           char **log);

/* Embedded template text by file name ("qj_gemv.cu", "qj_layout.h", ...), or
 * NULL. QJ_TEMPLATE_DIR in the environment overrides (development). */
const char *qj_template_source(const char *name);
/* NULL-terminated list of embedded template file names. */
const char *const *qj_template_names(void);

/* The cache: images keyed by a hash of (source, arch, NVRTC version, options).
 * Directory: $QJ_CACHE_DIR, else $XDG_CACHE_HOME/qjit, else ~/.cache/qjit. */
typedef struct qj_kcache_stats {
    int hits, misses;
    double compile_seconds;
} qj_kcache_stats;

/* Compile through the cache; *hit says whether it came from disk. */
qj_status qj_kcache_compile(const char *source, const char *name, const char *arch, void **image, size_t *image_len,
                            int *hit);
qj_kcache_stats qj_kcache_get_stats(void);
/* The cache directory in use (created on first use). */
const char *qj_kcache_dir(void);

#ifdef __cplusplus
}
#endif
#endif
