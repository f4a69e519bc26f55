/* qj_io.h — atomic output files and whole-file reads.
 *
 * An atomic file is written to "<path>.tmp.<pid>.<n>" in the same directory and
 * renamed over <path> only by qj_afile_commit; qj_afile_abort (or a failed
 * commit) removes the temporary, so a failure never leaves a partial output.
 */
#ifndef QJ_IO_H
#define QJ_IO_H

#include <stdio.h>
#include <stddef.h>

#include "qj_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qj_afile {
    FILE *fp;
    char path[4096];
    char tmp[4200];
    int failed; /* a write failed; commit will refuse */
} qj_afile;

qj_status qj_afile_open(qj_afile *f, const char *path);
/* Write n bytes; remembers failure (checked again at commit). */
qj_status qj_afile_write(qj_afile *f, const void *data, size_t n);
/* Pad with zero bytes up to a multiple of align. */
qj_status qj_afile_align(qj_afile *f, size_t align);
/* Flush, fsync, close, rename into place. On failure the temporary is removed. */
qj_status qj_afile_commit(qj_afile *f);
/* Close and remove the temporary. Safe to call after commit or twice. */
void qj_afile_abort(qj_afile *f);

/* Read a whole file into a NUL-terminated malloc'd buffer (caller frees). */
qj_status qj_read_file(const char *path, char **data, size_t *len);
/* Write a whole buffer atomically. */
qj_status qj_write_file_atomic(const char *path, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
