/* load_any.c — picks the loader for a path (HF directory, qjit package,
 * llama2.c checkpoint) and attaches a tokenizer file to a model. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hf_model.h"
#include "loaders.h"
#include "qj_io.h"
#include "qj_package.h"
#include "tokenizer.h"

qj_status qj_load_model(const char *path, qj_model **out) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return qj_fail(QJ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return qj_load_hf(path, out);
    unsigned char head[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return qj_fail(QJ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    if (qj_package_sniff(head, n)) return qj_package_load(path, NULL, out);
    return qj_load_llama2c(path, out);
}

/* A tokenizer file for a model path: dir/tokenizer.json or dir/tokenizer.bin
 * for a directory; for a file, tokenizer.bin beside it or the only tok*.bin
 * there. Returns 0 when none is found. */
int qj_find_tokenizer(const char *model_path, char *buf, size_t n) {
    struct stat st;
    if (stat(model_path, &st) != 0) return 0;
    char dir[4096];
    if (S_ISDIR(st.st_mode)) snprintf(dir, sizeof dir, "%s", model_path);
    else {
        snprintf(dir, sizeof dir, "%s", model_path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
    }
    static const char *const names[] = {"tokenizer.json", "tokenizer.bin"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(buf, n, "%s/%s", dir, names[i]);
        if (stat(buf, &st) == 0 && S_ISREG(st.st_mode)) return 1;
    }
    if (stat(model_path, &st) != 0 || S_ISDIR(st.st_mode)) return 0; /* no tok*.bin search in HF dirs */
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (!strncmp(e->d_name, "tok", 3) && len > 4 && !strcmp(e->d_name + len - 4, ".bin")) {
            if (found++) break;
            snprintf(buf, n, "%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    return found == 1;
}

qj_status qj_model_attach_tokenizer(qj_model *m, const char *path) {
    char *data;
    size_t len;
    qj_status s = qj_read_file(path, &data, &len);
    if (s) return s;
    qj_tokenizer *t;
    if ((s = qj_tokenizer_load_mem(data, len, path, &t))) { free(data); return s; }
    int vs = qj_tokenizer_vocab_size(t);
    qj_tokenizer_free(t);
    if (vs > m->cfg.vocab_size) {
        free(data);
        return qj_fail(QJ_ERR_INVALID, "%s: tokenizer has %d tokens, the model's vocabulary only %d", path, vs,
                       m->cfg.vocab_size);
    }
    free(m->tokenizer_blob);
    m->tokenizer_blob = data;
    m->tokenizer_blob_len = len;
    snprintf(m->tokenizer_kind, sizeof m->tokenizer_kind, "%s", data[0] == '{' ? "hf-json" : "llama2c");
    return QJ_OK;
}
