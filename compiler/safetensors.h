/* safetensors.h — reading and writing .safetensors files.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON (an object:
 * tensor name -> {"dtype", "shape", "data_offsets": [begin, end]}, plus an
 * optional "__metadata__" object of string -> string), then the data section;
 * offsets are relative to the start of the data section. qjit reads and writes
 * the dtypes F32, F16 and BF16; any other dtype is refused as unsupported.
 *
 * Ownership:
 *  - qj_st_open returns a qj_st_file the caller frees with qj_st_close (NULL is
 *    a no-op). It owns the file's memory map and every string it hands out;
 *    tensor descriptors and their data stay valid until qj_st_close, or, after
 *    qj_st_give_to_model, until that model is freed.
 *  - Tensor data points into the map, except for a tensor whose offset is not a
 *    multiple of its element size (legal in the format, rare in practice): that
 *    one is copied into an aligned buffer the qj_st_file owns, so every data
 *    pointer may be read as float / uint16_t without undefined behaviour.
 *  - The writer borrows the tensors it is given, only for the duration of the call.
 *
 * Validation (every failure names the file and the tensor or field at fault,
 * with a byte offset where one applies): file shorter than 8 bytes, header
 * length past the end of the file or above 100 MB, header not valid JSON or not
 * an object, an entry that is not an object or lacks dtype/shape/data_offsets,
 * an unknown or unsupported dtype, a shape that is not an array of at most
 * QJ_MAX_DIMS non-negative integers, data_offsets that are not two
 * non-decreasing non-negative integers, offsets past the data section, a byte
 * length different from numel * element size, overlapping tensors, duplicate
 * names, a __metadata__ that is not an object of strings. Gaps between tensors
 * are accepted on reading (the reference reader refuses them; qjit's writer
 * never produces them).
 */
#ifndef QJ_SAFETENSORS_H
#define QJ_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "qj_model.h"
#include "qj_status.h"
#include "qj_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Upper bound on the JSON header, the same as the reference implementation's. */
#define QJ_ST_MAX_HEADER 100000000u

typedef struct qj_st_file qj_st_file; /* opaque */

/* Map and validate a .safetensors file. On failure *out is NULL. */
qj_status qj_st_open(const char *path, qj_st_file **out);
void qj_st_close(qj_st_file *f);

const char *qj_st_path(const qj_st_file *f);
int qj_st_count(const qj_st_file *f);
/* The i-th tensor in header order (0 <= i < count). Its name field is truncated
 * to QJ_NAME_MAX-1 characters; qj_st_name gives the full name. */
const qj_tensor *qj_st_tensor(const qj_st_file *f, int i);
const char *qj_st_name(const qj_st_file *f, int i);
/* Tensor by full name, or NULL when absent. */
const qj_tensor *qj_st_find(const qj_st_file *f, const char *name);
/* Byte offset of tensor i's data from the start of the file. */
uint64_t qj_st_file_offset(const qj_st_file *f, int i);
/* Value of a __metadata__ key, or NULL. */
const char *qj_st_metadata(const qj_st_file *f, const char *key);

/* Move the file's map and any aligned copies into m (qj_model_adopt), so the
 * descriptors outlive qj_st_close; the caller still calls qj_st_close. */
qj_status qj_st_give_to_model(qj_st_file *f, qj_model *m);

/* "F32", "F16", "BF16" for the dense dtypes, NULL otherwise. */
const char *qj_st_dtype_name(qj_dtype t);

/* ---- writing ---------------------------------------------------------- */

/* One tensor to write: name (full length, not limited to QJ_NAME_MAX), dtype,
 * shape. Its bytes come from the producer the caller drives (see below). */
typedef struct qj_st_entry {
    const char *name;
    qj_dtype dtype; /* F32, F16 or BF16 */
    int ndim;
    int64_t shape[QJ_MAX_DIMS];
} qj_st_entry;

typedef struct qj_st_writer qj_st_writer; /* opaque */

/* Streaming writer, for tensors produced on the fly (converted, permuted):
 *   qj_st_writer_open(&w, path, entries, n, meta_kv, n_meta)  writes the header
 *   for (k = 0; k < n; k++) {
 *       int i = qj_st_writer_next(w);      which entry's bytes come next
 *       qj_st_writer_put(w, bytes, len);   repeatedly, exactly its byte size in all
 *   }
 *   qj_st_writer_commit(w)                 or qj_st_writer_abort(w) on any failure
 * The data section is contiguous (no gaps, as the reference reader demands);
 * entries whose size is a multiple of 8 bytes come first, so with the header
 * padded (spaces) to a multiple of 8 their offsets are all 8-byte aligned; the
 * header lists entries in the caller's order. meta_kv holds n_meta key/value
 * string pairs (meta_kv[2k], meta_kv[2k+1]) for __metadata__. The file appears
 * at path only at commit (qj_afile). commit and abort free the writer. */
qj_status qj_st_writer_open(qj_st_writer **out, const char *path, const qj_st_entry *entries, int n,
                            const char *const *meta_kv, int n_meta);
int qj_st_writer_next(qj_st_writer *w);
qj_status qj_st_writer_put(qj_st_writer *w, const void *data, size_t len);
qj_status qj_st_writer_commit(qj_st_writer *w);
void qj_st_writer_abort(qj_st_writer *w);
/* Bytes of the whole file being written (header + data), known after open. */
uint64_t qj_st_writer_file_bytes(const qj_st_writer *w);

/* Write n dense tensors (their names, dtypes, shapes, data) atomically. */
qj_status qj_st_write(const char *path, const qj_tensor *tensors, int n, const char *const *meta_kv,
                      int n_meta);

#ifdef __cplusplus
}
#endif
#endif
