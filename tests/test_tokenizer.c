/* test_tokenizer.c — tokenizers: a hand-built llama2.c vocab with known ids
 * (merge order, ties, byte fallback, dummy prefix, BOS, empty text), invalid
 * UTF-8, truncated/corrupt tokenizer.bin and malformed tokenizer.json, a
 * hand-built HF BPE file, and the tokenizer.bin -> tokenizer.json round trip
 * on the real vocabs and texts in ../shared (skipped when absent). */
// ctest-labels: unit
#include <stdint.h>
#include <time.h>

#include "qj_io.h"
#include "qj_test.h"
#include "tokenizer.h"
#include "tokenizer_internal.h" /* segment_min: compare with the unsegmented engine */

/* ---------------------------------------------------------------- helpers */

typedef struct bin {
    unsigned char *p;
    size_t n, cap;
} bin;

static void bin_put(bin *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void bin_i32(bin *b, int32_t v) { bin_put(b, &v, 4); } /* the tests run little endian */
static void bin_tok(bin *b, const char *s, float score) {
    bin_put(b, &score, 4);
    bin_i32(b, (int32_t)strlen(s));
    bin_put(b, s, strlen(s));
}

/* The small vocab: <unk>, BOS, EOS, 256 byte tokens, then: */
enum {
    SP = 259, A, B, C, AB, BC, ABC, SP_A, AA, E_ACUTE, E_ACUTE_A, CA, AC, XX, LOW, L, O, W, LO, N_SMALL
};
static const struct {
    const char *s;
    float score;
} small_extra[] = {
    {" ", -100}, {"a", -100}, {"b", -100}, {"c", -100}, {"ab", -1}, {"bc", -2}, {"abc", -3},
    {" a", -5}, {"aa", -4}, {"\xc3\xa9", -100}, {"\xc3\xa9" "a", -6}, {"ca", -7}, {"ac", -7},
    {"xx", -8}, {"low", -1e10f}, {"l", -100}, {"o", -100}, {"w", -100}, {"lo", -9},
};

static bin small_bin(void) {
    bin b = {0};
    bin_i32(&b, 8);
    bin_tok(&b, "<unk>", 0);
    bin_tok(&b, "\n<s>\n", 0);
    bin_tok(&b, "\n</s>\n", 0);
    for (int i = 0; i < 256; i++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", i);
        bin_tok(&b, s, 0);
    }
    for (size_t i = 0; i < sizeof small_extra / sizeof small_extra[0]; i++)
        bin_tok(&b, small_extra[i].s, small_extra[i].score);
    return b;
}

/* Encode and compare with expected ids (terminated by -1). */
static void check_ids(const qj_tokenizer *t, const char *text, size_t len, int bos, const int *want,
                      const char *label) {
    int *ids = NULL;
    size_t n = 0;
    qj_status s = qj_tokenizer_encode(t, text, len, bos, &ids, &n);
    QJ_CHECK_MSG(s == QJ_OK, "%s: %s", label, qj_last_error());
    size_t nw = 0;
    while (want[nw] >= 0) nw++;
    int same = s == QJ_OK && n == nw;
    for (size_t i = 0; same && i < n; i++) same = ids[i] == want[i];
    if (!same) {
        fprintf(stderr, "%s: got", label);
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, ", want");
        for (size_t i = 0; i < nw; i++) fprintf(stderr, " %d", want[i]);
        fputc('\n', stderr);
    }
    QJ_CHECK_MSG(same, "%s", label);
    free(ids);
}
#define IDS(...) ((const int[]){__VA_ARGS__, -1})
#define CHECK_IDS(t, str, bos, ...) check_ids(t, str, sizeof(str) - 1, bos, IDS(__VA_ARGS__), str)

static int write_bytes(const char *path, const void *d, size_t n) {
    return qj_write_file_atomic(path, d, n) == QJ_OK;
}

/* ---------------------------------------------------------------- the small vocab */

static void test_small(void) {
    bin b = small_bin();
    const char *path = qj_test_tmp("tok_small.bin");
    QJ_CHECK(write_bytes(path, b.p, b.n));
    qj_tokenizer *t = NULL;
    QJ_CHECK_OK(qj_tokenizer_load(path, &t));
    free(b.p);
    if (!t) return;
    QJ_CHECK(qj_tokenizer_vocab_size(t) == N_SMALL);
    QJ_CHECK(qj_tokenizer_bos(t) == 1);
    QJ_CHECK(qj_tokenizer_eos(t) == 2);

    int *ids = (int *)1;
    size_t n = 99;
    QJ_CHECK_OK(qj_tokenizer_encode(t, "", 0, 0, &ids, &n));
    QJ_CHECK(n == 0); /* empty text: no dummy prefix, nothing */
    free(ids);
    check_ids(t, "", 0, 1, IDS(1), "empty with BOS");
    CHECK_IDS(t, "abc", 0, SP, ABC);          /* ab (-1) before bc (-2), then abc */
    CHECK_IDS(t, "bca", 0, SP, BC, A);        /* bc; "bca" is not a token */
    CHECK_IDS(t, "x", 0, SP, 'x' + 3);        /* byte fallback */
    CHECK_IDS(t, "xx", 0, SP, 'x' + 3, 'x' + 3); /* byte tokens never merge into "xx" */
    CHECK_IDS(t, "\xc3\xa9", 0, SP, E_ACUTE); /* a 2-byte codepoint in the vocab */
    CHECK_IDS(t, "\xc3\xa9" "a", 0, SP, E_ACUTE_A);
    CHECK_IDS(t, "\xe2\x82\xac", 0, SP, 0xE2 + 3, 0x82 + 3, 0xAC + 3); /* € not in vocab */
    CHECK_IDS(t, "cac", 0, SP, CA, C);        /* ca and ac tie at -7: leftmost wins */
    CHECK_IDS(t, "aaa", 0, SP, AA, A);        /* aa beats " a"; leftmost aa */
    CHECK_IDS(t, "a", 1, 1, SP_A);            /* BOS, then the dummy prefix merges */
    CHECK_IDS(t, "low", 0, SP, LO, W);        /* "low" scores -1e10: never merged */
    CHECK_IDS(t, "ab ab", 0, SP, AB, SP, AB);
    CHECK_IDS(t, "a\0b", 0, SP_A, 0 + 3, B);  /* NUL is an ordinary (byte-fallback) char */

    size_t l;
    const char *p = qj_tokenizer_piece(t, -1, SP_A, &l);
    QJ_CHECK(p && l == 2 && !memcmp(p, " a", 2));
    p = qj_tokenizer_piece(t, 1, SP_A, &l); /* leading space dropped after BOS */
    QJ_CHECK(p && l == 1 && p[0] == 'a');
    p = qj_tokenizer_piece(t, AB, 0x0A + 3, &l);
    QJ_CHECK(p && l == 1 && p[0] == '\n');
    p = qj_tokenizer_piece(t, -1, 3, &l);
    QJ_CHECK(p && l == 1 && p[0] == 0);
    p = qj_tokenizer_piece(t, 1, 0x20 + 3, &l); /* <0x20> after BOS stays a space */
    QJ_CHECK(p && l == 1 && p[0] == ' ');
    QJ_CHECK(qj_tokenizer_piece(t, -1, N_SMALL, &l) == NULL && l == 0);
    QJ_CHECK(qj_tokenizer_piece(t, -1, -1, &l) == NULL);

    /* invalid UTF-8 */
    static const struct {
        const char *s;
        size_t off;
        const char *why;
    } bad[] = {
        {"ab\xff" "c", 2, "invalid lead byte"},
        {"\x80", 0, "unexpected continuation"},
        {"abc\xc3", 3, "truncated"},
        {"\xc3" "a", 0, "truncated"},
        {"a\xe2\x82", 1, "truncated"},
        {"\xc0\xaf", 0, "overlong"},
        {"\xe0\x80\xaf", 0, "overlong"},
        {"xy\xf0\x80\x80\xaf", 2, "overlong"},
        {"\xed\xa0\x80", 0, "surrogate"},
        {"\xf4\x90\x80\x80", 0, "code point above U+10FFFF"},
        {"\xf8\x88\x80\x80\x80", 0, "invalid lead byte"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "invalid UTF-8 at byte offset %zu (%s", bad[i].off, bad[i].why);
        ids = (int *)1;
        QJ_CHECK_FAILS(qj_tokenizer_encode(t, bad[i].s, strlen(bad[i].s), 0, &ids, &n), needle);
        QJ_CHECK(ids == NULL && n == 0);
    }
    QJ_CHECK_OK(qj_utf8_validate("\xf4\x8f\xbf\xbf \xed\x9f\xbf \xee\x80\x80", 12, "x")); /* edges */
    QJ_CHECK_FAILS(qj_utf8_validate("ok\xfe", 3, "notes.txt"), "notes.txt: invalid UTF-8 at byte offset 2");

    /* the small vocab written as HF json gives the same ids */
    const char *jpath = qj_test_tmp("tok_small.json");
    QJ_CHECK_OK(qj_tokenizer_save_hf_json(t, jpath));
    qj_tokenizer *h = NULL;
    QJ_CHECK_OK(qj_tokenizer_load(jpath, &h));
    if (h) {
        QJ_CHECK(qj_tokenizer_vocab_size(h) == N_SMALL && qj_tokenizer_bos(h) == 1 && qj_tokenizer_eos(h) == 2);
        CHECK_IDS(h, "abc", 0, SP, ABC);
        CHECK_IDS(h, "cac", 0, SP, CA, C);
        CHECK_IDS(h, "aaa", 0, SP, AA, A);
        CHECK_IDS(h, "a", 1, 1, SP_A);
        CHECK_IDS(h, "low", 0, SP, LO, W);
        CHECK_IDS(h, "xx", 0, SP, 'x' + 3, 'x' + 3);
        CHECK_IDS(h, "\xe2\x82\xac", 0, SP, 0xE2 + 3, 0x82 + 3, 0xAC + 3);
        check_ids(h, "", 0, 1, IDS(1), "hf empty with BOS");
        p = qj_tokenizer_piece(h, 1, SP_A, &l);
        QJ_CHECK(p && l == 1 && p[0] == 'a');
        p = qj_tokenizer_piece(h, 5, SP_A, &l);
        QJ_CHECK(p && l == 2 && !memcmp(p, " a", 2));
    }
    qj_tokenizer_free(h);
    qj_tokenizer_free(t);
    qj_tokenizer_free(NULL);
}

/* ---------------------------------------------------------------- corrupt tokenizer.bin */

static void check_bin_fails(const void *d, size_t n, const char *needle) {
    qj_tokenizer *t = (qj_tokenizer *)1;
    QJ_CHECK_FAILS(qj_tokenizer_load_mem(d, n, "bad.bin", &t), needle);
    QJ_CHECK(t == (qj_tokenizer *)1); /* untouched on failure */
    QJ_CHECK(strncmp(qj_last_error(), "bad.bin: ", 9) == 0);
}

static void test_corrupt_bin(void) {
    check_bin_fails("", 0, "empty file");
    check_bin_fails("\x08\x00", 2, "truncated");
    bin b = {0};
    bin_i32(&b, 8);
    check_bin_fails(b.p, b.n, "no tokens");
    b.n = 0;
    bin_i32(&b, -1);
    bin_tok(&b, "a", 0);
    check_bin_fails(b.p, b.n, "max_token_length -1 is absurd");
    b.n = 0;
    bin_i32(&b, 1 << 30);
    bin_tok(&b, "a", 0);
    check_bin_fails(b.p, b.n, "is absurd");
    b.n = 0;
    bin_i32(&b, 8);
    bin_tok(&b, "a", 0);
    float sc = 0;
    bin_put(&b, &sc, 4);
    bin_i32(&b, -5);
    check_bin_fails(b.p, b.n, "token 1 at byte offset 13 has negative length -5");
    b.n = 0;
    bin_i32(&b, 8);
    bin_tok(&b, "a", 0);
    bin_put(&b, &sc, 4);
    bin_i32(&b, 6);
    bin_put(&b, "abc", 3);
    check_bin_fails(b.p, b.n, "runs past the end of the file");
    b.n = 0;
    bin_i32(&b, 8);
    bin_tok(&b, "a", 0);
    bin_put(&b, &sc, 4);
    bin_put(&b, "\x01", 1);
    check_bin_fails(b.p, b.n, "truncated at byte offset 13");
    b.n = 0;
    bin_i32(&b, 2);
    bin_tok(&b, "abc", 0);
    check_bin_fails(b.p, b.n, "length 3 > max_token_length 2");
    b.n = 0;
    check_bin_fails("{\x01\x02", 3, "invalid JSON"); /* '{' and no NUL: JSON */
    /* max_token_length 123 starts with '{' but is a tokenizer.bin */
    bin_i32(&b, 123);
    bin_tok(&b, " ", 0);
    qj_tokenizer *t = NULL;
    QJ_CHECK_OK(qj_tokenizer_load_mem(b.p, b.n, NULL, &t));
    QJ_CHECK(t && qj_tokenizer_vocab_size(t) == 1 && qj_tokenizer_bos(t) == -1);
    if (t) {
        int *ids;
        size_t n;
        QJ_CHECK_FAILS(qj_tokenizer_encode(t, "a", 1, 1, &ids, &n), "no BOS");
        QJ_CHECK_FAILS(qj_tokenizer_encode(t, "a", 1, 0, &ids, &n), "byte fallback");
    }
    qj_tokenizer_free(t);
    free(b.p);
    QJ_CHECK_FAILS(qj_tokenizer_load(qj_test_tmp("no_such_tokenizer.bin"), &t), "no_such_tokenizer.bin");

    /* every truncation of a valid file loads or fails cleanly (sanitizer builds check) */
    bin s = small_bin();
    int ok = 0, failed = 0;
    for (size_t n = 0; n <= s.n; n++) {
        t = NULL;
        qj_status st = qj_tokenizer_load_mem(s.p, n, "cut.bin", &t);
        if (st == QJ_OK) {
            ok++;
            int *ids;
            size_t ni;
            if (qj_tokenizer_encode(t, "abc", 3, 1, &ids, &ni) == QJ_OK) free(ids);
        } else {
            failed++;
        }
        qj_tokenizer_free(t);
    }
    QJ_CHECK(ok == N_SMALL + 0 && failed == (int)s.n + 1 - N_SMALL); /* ok exactly at token ends */
    /* random corruption */
    unsigned seed = 12345;
    for (int k = 0; k < 300; k++) {
        unsigned char *c = malloc(s.n);
        memcpy(c, s.p, s.n);
        for (int j = 0; j < 4; j++) {
            seed = seed * 1103515245u + 12345u;
            c[(seed >> 8) % s.n] = (unsigned char)(seed >> 3);
        }
        t = NULL;
        if (qj_tokenizer_load_mem(c, s.n, "fuzz.bin", &t) == QJ_OK) {
            int *ids;
            size_t ni;
            if (qj_tokenizer_encode(t, "abc x \xc3\xa9", 8, 1, &ids, &ni) == QJ_OK) free(ids);
        }
        qj_tokenizer_free(t);
        free(c);
    }
    free(s.p);
}

/* ---------------------------------------------------------------- tokenizer.json */

static void check_json_fails(const char *json, const char *needle) {
    qj_tokenizer *t = NULL;
    QJ_CHECK_FAILS(qj_tokenizer_load_mem(json, strlen(json), "bad.json", &t), needle);
    QJ_CHECK(t == NULL);
}

#define M "\xe2\x96\x81" /* '▁' */
static const char *hf_vocab =
    "{\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2, \"" M "\": 3, \"a\": 4, \"b\": 5, \"c\": 6, \"ab\": 7, \"bc\": 8, "
    "\"" M "a\": 9, \"<0x78>\": 10, \"a" M "\": 11}";

static qj_tokenizer *hf_small(const char *merges, const char *norm, const char *pre) {
    char json[2048];
    snprintf(json, sizeof json,
             "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true}, {\"id\": 1, \"content\": "
             "\"<s>\", \"special\": true}, {\"id\": 2, \"content\": \"</s>\", \"special\": true}],"
             " \"normalizer\": %s, \"pre_tokenizer\": %s, \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\","
             " \"fuse_unk\": true, \"byte_fallback\": true, \"vocab\": %s, \"merges\": %s}}",
             norm, pre, hf_vocab, merges);
    qj_tokenizer *t = NULL;
    QJ_CHECK_OK(qj_tokenizer_load_mem(json, strlen(json), "small.json", &t));
    return t;
}

static void test_hf(void) {
    const char *llama_norm = "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"" M
                             "\"}, {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"" M "\"}]}";
    const char *metaspace = "{\"type\": \"Metaspace\", \"replacement\": \"" M "\", \"prepend_scheme\": \"first\", "
                            "\"split\": true}";
    const char *merges_str = "[\"b c\", \"a b\", \"" M " a\"]";
    const char *merges_arr = "[[\"b\", \"c\"], [\"a\", \"b\"], [\"" M "\", \"a\"]]";
    for (int k = 0; k < 3; k++) {
        qj_tokenizer *t = hf_small(k == 1 ? merges_arr : merges_str, k == 2 ? "null" : llama_norm,
                                   k == 2 ? metaspace : "null");
        if (!t) continue;
        QJ_CHECK(qj_tokenizer_vocab_size(t) == 12 && qj_tokenizer_bos(t) == 1 && qj_tokenizer_eos(t) == 2);
        CHECK_IDS(t, "abc", 0, 9, 8);        /* rank 0 "b c" first, though "a b" is leftmost */
        CHECK_IDS(t, "abc", 1, 1, 9, 8);
        CHECK_IDS(t, "x", 0, 3, 10);         /* byte fallback to <0x78> */
        CHECK_IDS(t, "yy", 0, 3, 0);         /* no <0x79>: unk, fused */
        CHECK_IDS(t, "a a", 0, 9, 9);
        check_ids(t, "", 0, 0, (const int[]){-1}, "hf empty"); /* nothing */
        size_t l;
        const char *p = qj_tokenizer_piece(t, 1, 9, &l);
        QJ_CHECK(p && l == 1 && p[0] == 'a');
        p = qj_tokenizer_piece(t, 4, 9, &l);
        QJ_CHECK(p && l == 2 && !memcmp(p, " a", 2));
        p = qj_tokenizer_piece(t, 4, 10, &l);
        QJ_CHECK(p && l == 1 && p[0] == 'x');
        qj_tokenizer_free(t);
    }
    /* Metaspace: split stops merges across words; never-prepend; an existing
     * leading replacement char is not doubled */
    qj_tokenizer *t = hf_small("[\"b c\", \"a b\", \"" M " a\", \"a " M "\"]", "null",
                               "{\"type\": \"Metaspace\", \"replacement\": \"" M "\", \"add_prefix_space\": true}");
    if (t) CHECK_IDS(t, "a a", 0, 9, 9); /* words "▁a" "▁a": no "a ▁" merge across */
    qj_tokenizer_free(t);
    t = hf_small("[\"b c\", \"a b\", \"a " M "\", \"" M " a\"]", "null",
                 "{\"type\": \"Metaspace\", \"replacement\": \"" M "\", \"split\": false}");
    if (t) CHECK_IDS(t, "a a", 0, 3, 11, 4); /* one word: "a ▁" (rank 2) before "▁ a" */
    qj_tokenizer_free(t);
    t = hf_small("[\"b c\", \"a b\"]", "null",
                 "{\"type\": \"Metaspace\", \"replacement\": \"" M "\", \"prepend_scheme\": \"never\"}");
    if (t) CHECK_IDS(t, "abc", 0, 4, 8);
    qj_tokenizer_free(t);
    t = hf_small("[\"" M " a\"]", "null", metaspace);
    if (t) CHECK_IDS(t, " a", 0, 9);
    qj_tokenizer_free(t);

    /* save and reload an HF tokenizer: same file, same ids */
    t = hf_small(merges_str, llama_norm, "null");
    if (t) {
        const char *p1 = qj_test_tmp("hf1.json"), *p2 = qj_test_tmp("hf2.json");
        QJ_CHECK_OK(qj_tokenizer_save_hf_json(t, p1));
        qj_tokenizer *u = NULL;
        QJ_CHECK_OK(qj_tokenizer_load(p1, &u));
        if (u) {
            CHECK_IDS(u, "abc", 1, 1, 9, 8);
            CHECK_IDS(u, "yy x", 0, 3, 0, 3, 10);
            QJ_CHECK_OK(qj_tokenizer_save_hf_json(u, p2));
            char *d1 = NULL, *d2 = NULL;
            size_t n1 = 0, n2 = 0;
            QJ_CHECK_OK(qj_read_file(p1, &d1, &n1));
            QJ_CHECK_OK(qj_read_file(p2, &d2, &n2));
            QJ_CHECK(d1 && d2 && n1 == n2 && !memcmp(d1, d2, n1));
            free(d1);
            free(d2);
        }
        qj_tokenizer_free(u);
    }
    qj_tokenizer_free(t);

    /* malformed and unsupported files */
    check_json_fails("{", "bad.json: invalid JSON");
    check_json_fails("{\"model\": 3}", "\"model\" is missing");
    check_json_fails("{\"model\": {\"type\": \"BPE\", \"merges\": []}}", "bad.json: model.vocab is missing");
    check_json_fails("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "model.merges is missing");
    check_json_fails("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 5}, \"merges\": []}}",
                     "model.vocab[\"b\"]: id 5 is out of range");
    check_json_fails("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": -1}, \"merges\": []}}",
                     "id -1 is out of range");
    check_json_fails("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": \"x\"}, \"merges\": []}}",
                     "the id is not a number");
    check_json_fails("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}",
                     "both have id 0");
    check_json_fails("{\"added_tokens\": [{\"id\": 0, \"content\": \"a\"}], "
                     "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 2}, \"merges\": []}}",
                     "is out of range: no token has id 1");
    check_json_fails("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, "
                     "\"merges\": [\"a b\", \"a c\"]}}",
                     "model.merges[1]: \"c\" is not in model.vocab");
    check_json_fails("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}",
                     "model.merges[0]: the merged token \"ab\" is not in model.vocab");
    check_json_fails("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [3]}}",
                     "model.merges[0]: expected");
    check_json_fails("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}",
                     "bad.json: model.type \"WordPiece\" is not supported");
    check_json_fails("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}", "model.type \"Unigram\"");
    check_json_fails("{\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false}, "
                     "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
                     "pre_tokenizer.type \"ByteLevel\" is not supported");
    check_json_fails("{\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFKC\"}]}, "
                     "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
                     "normalizer.normalizers[0].type \"NFKC\" is not supported");
    check_json_fails("{\"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"Regex\": \" +\"}, \"content\": \"x\"}, "
                     "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
                     "Regex patterns are not supported");
    check_json_fails("{\"model\": {\"type\": \"BPE\", \"dropout\": 0.1, \"vocab\": {\"a\": 0}, \"merges\": []}}",
                     "model.dropout");
    check_json_fails("{\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"vocab\": {\"a\": 0}, "
                     "\"merges\": []}}",
                     "model.unk_token \"<unk>\" is not in model.vocab");
    check_json_fails("{\"added_tokens\": [{\"id\": 0, \"content\": \"<s>\"}], "
                     "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
                     "added_tokens[0]: \"<s>\" has id 0, which model.vocab gives to \"a\"");
    check_json_fails("{\"added_tokens\": [{\"id\": 1, \"content\": \"a\"}], "
                     "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
                     "\"a\" appears twice");
    check_json_fails("{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}", "model.vocab is empty");

    /* unknown characters with neither byte fallback nor unk */
    const char *nofb = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}";
    t = NULL;
    QJ_CHECK_OK(qj_tokenizer_load_mem(nofb, strlen(nofb), "nofb.json", &t));
    if (t) {
        int *ids;
        size_t n;
        CHECK_IDS(t, "aa", 0, 0, 0);
        QJ_CHECK_FAILS(qj_tokenizer_encode(t, "ab", 2, 0, &ids, &n), "no byte fallback or unk_token");
        QJ_CHECK_FAILS(qj_tokenizer_encode(t, "a", 1, 1, &ids, &n), "no BOS");
    }
    qj_tokenizer_free(t);
}

/* ---------------------------------------------------------------- real vocabs */

static char *read_slice(const char *path, size_t start, size_t max, size_t *len) {
    char *d = NULL;
    size_t n = 0;
    if (qj_read_file(path, &d, &n) != QJ_OK) return NULL;
    if (start > n) start = n;
    size_t end = start + max < n ? start + max : n;
    while (end > start && d[end - 1] != '\n') end--; /* whole lines: never a cut codepoint */
    char *s = malloc(end - start + 1);
    memcpy(s, d + start, end - start);
    s[end - start] = '\0';
    free(d);
    *len = end - start;
    return s;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int same_ids(const qj_tokenizer *a, const qj_tokenizer *b, const char *text, size_t len, int bos,
                    const char *label) {
    int *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    QJ_CHECK_OK(qj_tokenizer_encode(a, text, len, bos, &x, &nx));
    QJ_CHECK_OK(qj_tokenizer_encode(b, text, len, bos, &y, &ny));
    size_t k = 0;
    while (k < nx && k < ny && x[k] == y[k]) k++;
    int same = nx == ny && k == nx;
    QJ_CHECK_MSG(same, "%s: %zu vs %zu ids, first difference at id %zu (%d vs %d)", label, nx, ny, k,
                 k < nx ? x[k] : -1, k < ny ? y[k] : -1);
    free(x);
    free(y);
    return same;
}

static void test_real(const char *rel, const char *label, int *skipped) {
    const char *path = qj_test_shared(rel);
    const char *ts = qj_test_shared("data/tinystories/valid_prefix.txt");
    const char *wt = qj_test_shared("data/wikitext-2/valid.txt");
    if (!path || !ts || !wt) {
        printf("skip %s: QJ_SHARED data missing\n", label);
        *skipped = 1;
        return;
    }
    qj_tokenizer *t = NULL, *h = NULL;
    QJ_CHECK_OK(qj_tokenizer_load(path, &t));
    if (!t) return;
    char jname[64];
    snprintf(jname, sizeof jname, "%s.tokenizer.json", label);
    const char *jpath = qj_test_tmp(jname);
    double t0 = now_s();
    QJ_CHECK_OK(qj_tokenizer_save_hf_json(t, jpath));
    double t1 = now_s();
    QJ_CHECK_OK(qj_tokenizer_load(jpath, &h));
    double t2 = now_s();
    printf("%s: save_hf_json %.1f ms, load json %.1f ms\n", label, 1e3 * (t1 - t0), 1e3 * (t2 - t1));
    if (!h) {
        qj_tokenizer_free(t);
        return;
    }
    QJ_CHECK(qj_tokenizer_vocab_size(h) == qj_tokenizer_vocab_size(t));
    QJ_CHECK(qj_tokenizer_bos(h) == 1 && qj_tokenizer_eos(h) == 2);
    int bad_pieces = 0;
    for (int id = 3; id < qj_tokenizer_vocab_size(t); id++) {
        size_t la, lb;
        const char *pa = qj_tokenizer_piece(t, 1, id, &la), *pb = qj_tokenizer_piece(h, 1, id, &lb);
        if (la != lb || memcmp(pa, pb, la)) bad_pieces++;
        pa = qj_tokenizer_piece(t, 7, id, &la);
        pb = qj_tokenizer_piece(h, 7, id, &lb);
        if (la != lb || memcmp(pa, pb, la)) bad_pieces++;
    }
    QJ_CHECK_MSG(bad_pieces == 0, "%s: %d pieces decode differently", label, bad_pieces);

    size_t n1, n2, n3;
    char *s1 = read_slice(ts, 0, 100000, &n1);
    char *s2 = read_slice(wt, 0, 200000, &n2);
    char *s3 = read_slice(ts, 0, 1 << 20, &n3); /* the whole 794 KB prefix */
    if (s1) same_ids(t, h, s1, n1, 1, "tinystories 100 KB");
    if (s2) same_ids(t, h, s2, n2, 1, "wikitext 200 KB");
    /* spaces runs: equal-score whitespace tokens are where rank order and
     * llama2.c's leftmost rule could part */
    char spaces[2048];
    size_t o = 0;
    for (int k = 1; k <= 40 && o < sizeof spaces - 64; k++) {
        o += (size_t)snprintf(spaces + o, sizeof spaces - o, "w%d", k);
        for (int j = 0; j < k; j++) spaces[o++] = ' ';
    }
    same_ids(t, h, spaces, o, 0, "space runs");
    static const char misc[] = "  leading\n\n\ttabs\t\t and caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 "
                               "<unk> <s> </s> <0x41> ... ---- ==== \n";
    same_ids(t, h, misc, sizeof misc - 1, 1, "misc");
    if (s3) {
        int *ids = NULL;
        size_t n = 0;
        double a = now_s();
        QJ_CHECK_OK(qj_tokenizer_encode(t, s3, n3, 1, &ids, &n));
        double b = now_s();
        free(ids);
        QJ_CHECK_OK(qj_tokenizer_encode(h, s3, n3, 1, &ids, &n));
        double c = now_s();
        free(ids);
        printf("%s: %zu bytes -> %zu ids: tokenizer.bin %.1f ms, tokenizer.json %.1f ms\n", label, n3, n,
               1e3 * (b - a), 1e3 * (c - b));
        same_ids(t, h, s3, n3, 0, "tinystories full prefix");
        /* segments change no result: the whole text as one merge queue */
        h->segment_min = SIZE_MAX;
        a = now_s();
        same_ids(t, h, s3, n3, 1, "tinystories, unsegmented json vs segmented bin");
        if (s2) same_ids(t, h, s2, n2, 1, "wikitext, unsegmented json vs segmented bin");
        h->segment_min = 1; /* as many segments as possible */
        same_ids(t, h, s3, n3, 1, "tinystories, 1-symbol segments");
        t->segment_min = SIZE_MAX;
        same_ids(t, h, s3, n3, 1, "tinystories, unsegmented bin");
        printf("%s: unsegmented checks %.1f ms\n", label, 1e3 * (now_s() - a));
    }
    free(s1);
    free(s2);
    free(s3);
    qj_tokenizer_free(h);
    qj_tokenizer_free(t);
}

int main(void) {
    test_small();
    test_corrupt_bin();
    test_hf();
    int skipped = 0;
    test_real("models/stories260K/tok512.bin", "tok512", &skipped);
    test_real("models/llama2-tokenizer/tokenizer.bin", "llama2-32k", &skipped);
    int rc = qj_test_finish();
    if (rc == 0 && skipped) {
        printf("(the parts needing QJ_SHARED were skipped)\n");
        return 77;
    }
    return rc;
}
