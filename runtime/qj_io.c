/* qj_io.c — atomic output files (temp + fsync + rename) and whole-file reads. */
#include "qj_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned tmp_counter;

qj_status qj_afile_open(qj_afile *f, const char *path) {
    memset(f, 0, sizeof *f);
    if (strlen(path) >= sizeof f->path) return qj_fail(QJ_ERR_INVALID, "%s: path too long", path);
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->tmp, sizeof f->tmp, "%s.tmp.%ld.%u", path, (long)getpid(), tmp_counter++);
    f->fp = fopen(f->tmp, "wb");
    if (!f->fp) return qj_fail(QJ_ERR_IO, "%s: cannot create: %s", f->tmp, strerror(errno));
    return QJ_OK;
}

qj_status qj_afile_write(qj_afile *f, const void *data, size_t n) {
    if (f->failed) return QJ_ERR_IO;
    if (n && fwrite(data, 1, n, f->fp) != n) {
        f->failed = 1;
        return qj_fail(QJ_ERR_IO, "%s: write failed: %s", f->path, strerror(errno));
    }
    return QJ_OK;
}

qj_status qj_afile_align(qj_afile *f, size_t align) {
    static const char zeros[4096];
    long pos = ftell(f->fp);
    if (pos < 0) {
        f->failed = 1;
        return qj_fail(QJ_ERR_IO, "%s: ftell failed: %s", f->path, strerror(errno));
    }
    size_t pad = (align - (size_t)pos % align) % align;
    while (pad) {
        size_t n = pad < sizeof zeros ? pad : sizeof zeros;
        qj_status s = qj_afile_write(f, zeros, n);
        if (s) return s;
        pad -= n;
    }
    return QJ_OK;
}

qj_status qj_afile_commit(qj_afile *f) {
    if (!f->fp) return qj_fail(QJ_ERR_INTERNAL, "%s: file not open", f->path);
    int bad = f->failed || fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0;
    int e = errno;
    if (fclose(f->fp) != 0 && !bad) { bad = 1; e = errno; }
    f->fp = NULL;
    if (bad) {
        unlink(f->tmp);
        return qj_fail(QJ_ERR_IO, "%s: write failed: %s", f->path, strerror(e));
    }
    if (rename(f->tmp, f->path) != 0) {
        e = errno;
        unlink(f->tmp);
        return qj_fail(QJ_ERR_IO, "%s: cannot rename into place: %s", f->path, strerror(e));
    }
    return QJ_OK;
}

void qj_afile_abort(qj_afile *f) {
    if (f->fp) {
        fclose(f->fp);
        f->fp = NULL;
        unlink(f->tmp);
    }
}

qj_status qj_read_file(const char *path, char **data, size_t *len) {
    *data = NULL;
    if (len) *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return qj_fail(QJ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) { fclose(fp); return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", path); }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); fclose(fp); return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", path); }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, fp);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(fp);
    fclose(fp);
    if (err) { free(buf); return qj_fail(QJ_ERR_IO, "%s: read failed", path); }
    buf[n] = '\0';
    *data = buf;
    if (len) *len = n;
    return QJ_OK;
}

qj_status qj_write_file_atomic(const char *path, const void *data, size_t len) {
    qj_afile f;
    qj_status s = qj_afile_open(&f, path);
    if (s) return s;
    if ((s = qj_afile_write(&f, data, len))) { qj_afile_abort(&f); return s; }
    return qj_afile_commit(&f);
}
