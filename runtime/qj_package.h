/* qj_package.h — the qjit package: one file holding a compiled model.
 *
 * Layout (little-endian):
 *   0   char[8]  magic "QJITPKG\0"
 *   8   u32      format version (QJ_PACKAGE_VERSION)
 *   12  u32      reserved (0)
 *   16  u64      manifest length in bytes
 *   24  u64      data offset (multiple of 4096)
 *   32  u64      data length
 *   40  manifest JSON (UTF-8), then zero padding up to the data offset
 *   data: tensor arrays, each 64-byte aligned, offsets relative to the data offset
 * docs/FORMATS.md describes the manifest fields.
 *
 * Ownership: qj_package_load returns a qj_model that owns the file's memory map;
 * qj_package_load_mem's model borrows the caller's bytes.
 */
#ifndef QJ_PACKAGE_H
#define QJ_PACKAGE_H

#include <stddef.h>
#include <stdint.h>

#include "qj_model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QJ_PACKAGE_MAGIC "QJITPKG"
#define QJ_PACKAGE_VERSION 1
#define QJ_PACKAGE_HEADER 40
#define QJ_PACKAGE_ALIGN 64
#define QJ_PACKAGE_DATA_ALIGN 4096

/* 1 when the first bytes of a file are a package's magic. */
int qj_package_sniff(const void *head, size_t n);

typedef struct qj_load_params {
    int verify_checksums; /* 1 (default): hash every array and compare with the manifest */
} qj_load_params;
qj_load_params qj_load_default_params(void);

qj_status qj_package_load(const char *path, const qj_load_params *p, qj_model **out);
/* The same from a package image in memory (an exported application's
 * embedded bytes): data is borrowed and must outlive the model; name is what
 * messages call it. */
qj_status qj_package_load_mem(const void *data, size_t len, const char *name, const qj_load_params *p, qj_model **out);

/* The manifest of a package file as JSON text (malloc'd, caller frees). */
qj_status qj_package_manifest(const char *path, char **json);

/* 64-bit checksum (XXH3) of a byte range, as used in manifests. */
uint64_t qj_checksum(const void *data, size_t n);

/* Real size of a model: every stored array counted once (a tied head once). */
typedef struct qj_size_info {
    uint64_t bytes;   /* packed weights + scales + zero points + dense tensors */
    uint64_t params;  /* weights (elements), tied head counted once */
    double gb;        /* bytes / 1e9 (the seed's model_size) */
    double gib;       /* bytes / 2^30 */
    double bits_per_weight;
} qj_size_info;
void qj_model_size(const qj_model *m, qj_size_info *out);
/* The size as a JSON object {"bytes", "params", "gb", "gib", "bits_per_weight"}
 * (a cJSON tree the caller deletes; void * keeps cJSON out of this header). */
void *qj_size_to_cjson(const qj_size_info *z);

/* Calls fn for every distinct tensor of a model in the package's canonical
 * order (embedding, per layer: norms, q/k/v(+bias)/o, gate/up/down; final
 * norm; head when untied). */
typedef qj_status (*qj_tensor_fn)(const qj_tensor *t, void *ctx);
qj_status qj_model_each_tensor(const qj_model *m, qj_tensor_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
