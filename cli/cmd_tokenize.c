/* cmd_tokenize.c — qjit tokenize: print the token ids of a text, or with
 * --decode the text of a list of ids. A thin layer over compiler/tokenizer.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "qj_io.h"
#include "qj_status.h"
#include "tokenizer.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: qjit tokenize --tokenizer PATH (--text FILE | --string S) [--bos] [--max-tokens N] [--decode]\n"
            "\n"
            "Prints the token ids of the text on one line, separated by single spaces.\n"
            "\n"
            "  --tokenizer PATH  llama2.c tokenizer.bin or Hugging Face tokenizer.json (detected from content)\n"
            "  --text FILE       read the text (or, with --decode, the ids) from FILE\n"
            "  --string S        use S as the text (or the ids)\n"
            "  --bos             start with the BOS token\n"
            "  --max-tokens N    keep only the first N ids\n"
            "  --decode          read whitespace-separated ids and print their text instead\n"
            "  --help            this message\n");
}

/* Parse a non-negative decimal integer that fits in a long. */
static int parse_count(const char *s, long *out) {
    if (s[0] < '0' || s[0] > '9') return 0; /* no sign, no leading space */
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end) return 0;
    *out = v;
    return 1;
}

static qj_status write_out(const void *p, size_t n) {
    if (n && fwrite(p, 1, n, stdout) != n) return qj_fail(QJ_ERR_IO, "stdout: write failed");
    return QJ_OK;
}

static int is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* ids (whitespace-separated) -> text on stdout */
static qj_status decode_ids(const qj_tokenizer *t, const char *src, const char *s, size_t len, long max) {
    int prev = -1;
    long count = 0;
    for (size_t i = 0; i < len && (max < 0 || count < max);) {
        if (is_space(s[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && !is_space(s[j])) j++;
        char num[32];
        long id = -1;
        int ok = j - i < sizeof num;
        if (ok) {
            memcpy(num, s + i, j - i);
            num[j - i] = '\0';
            ok = parse_count(num, &id);
        }
        if (!ok)
            return qj_fail(QJ_ERR_INVALID, "%s: \"%.*s\" at byte offset %zu is not a token id", src,
                           (int)(j - i > 40 ? 40 : j - i), s + i, i);
        if (id >= qj_tokenizer_vocab_size(t))
            return qj_fail(QJ_ERR_INVALID, "%s: id %ld at byte offset %zu is out of range (vocab size %d)", src,
                           id, i, qj_tokenizer_vocab_size(t));
        size_t pl;
        const char *piece = qj_tokenizer_piece(t, prev, (int)id, &pl);
        qj_status st = write_out(piece, pl);
        if (st != QJ_OK) return st;
        prev = (int)id;
        count++;
        i = j;
    }
    return QJ_OK;
}

/* text -> "id id id\n" on stdout */
static qj_status encode_text(const qj_tokenizer *t, const char *src, const char *s, size_t len, int bos,
                             long max) {
    qj_status st = qj_utf8_validate(s, len, src);
    if (st != QJ_OK) return st;
    int *ids;
    size_t n;
    if ((st = qj_tokenizer_encode(t, s, len, bos, &ids, &n)) != QJ_OK) return st;
    if (max >= 0 && (size_t)max < n) n = (size_t)max;
    char *buf = malloc(n * 12 + 2);
    if (!buf) {
        free(ids);
        return qj_fail(QJ_ERR_NOMEM, "out of memory for %zu ids", n);
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) o += (size_t)sprintf(buf + o, i ? " %d" : "%d", ids[i]);
    buf[o++] = '\n';
    st = write_out(buf, o);
    free(buf);
    free(ids);
    return st;
}

int cmd_tokenize(int argc, char **argv) {
    const char *tok_path = NULL, *text_path = NULL, *str = NULL;
    int bos = 0, decode = 0;
    long max = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--bos")) {
            bos = 1;
        } else if (!strcmp(a, "--decode")) {
            decode = 1;
        } else if (!strcmp(a, "--tokenizer") || !strcmp(a, "--text") || !strcmp(a, "--string") ||
                   !strcmp(a, "--max-tokens")) {
            if (i + 1 >= argc) {
                qj_fail(QJ_ERR_INVALID, "%s needs a value (see qjit tokenize --help)", a);
                return cli_error("tokenize");
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--tokenizer")) tok_path = v;
            else if (!strcmp(a, "--text")) text_path = v;
            else if (!strcmp(a, "--string")) str = v;
            else if (!parse_count(v, &max)) {
                qj_fail(QJ_ERR_INVALID, "--max-tokens \"%s\" is not a non-negative integer", v);
                return cli_error("tokenize");
            }
        } else {
            qj_fail(QJ_ERR_INVALID, "unknown option \"%s\" (see qjit tokenize --help)", a);
            return cli_error("tokenize");
        }
    }
    if (!tok_path) {
        qj_fail(QJ_ERR_INVALID, "--tokenizer PATH is required (see qjit tokenize --help)");
        return cli_error("tokenize");
    }
    if ((text_path != NULL) == (str != NULL)) {
        qj_fail(QJ_ERR_INVALID, "give exactly one of --text FILE and --string S");
        return cli_error("tokenize");
    }

    qj_tokenizer *t = NULL;
    char *data = NULL;
    size_t len = 0;
    qj_status st = qj_tokenizer_load(tok_path, &t);
    if (st == QJ_OK && text_path) st = qj_read_file(text_path, &data, &len);
    if (st == QJ_OK) {
        const char *src = text_path ? text_path : "--string";
        const char *s = text_path ? data : str;
        if (!text_path) len = strlen(str);
        st = decode ? decode_ids(t, src, s, len, max) : encode_text(t, src, s, len, bos, max);
    }
    if (st == QJ_OK && fflush(stdout) != 0) st = qj_fail(QJ_ERR_IO, "stdout: write failed");
    free(data);
    qj_tokenizer_free(t);
    return st == QJ_OK ? 0 : cli_error("tokenize");
}
