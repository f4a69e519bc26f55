// ctest-labels: unit
/* test_safetensors.c — the safetensors reader refuses every kind of corrupt
 * file with a message naming the problem, and writer -> reader is bit-exact. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "qj_test.h"
#include "safetensors.h"

/* Write a file: 8-byte length (hlen_override when nonzero), the header, data. */
static void write_raw(const char *path, const char *header, uint64_t hlen_override, const void *data,
                      size_t data_len) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    uint64_t h = hlen_override ? hlen_override : strlen(header);
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)(h >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    if (data_len) fwrite(data, 1, data_len, f);
    fclose(f);
}

static uint8_t zeros64[64];

/* A header that must be refused with a message containing needle (and the path). */
static void check_bad(const char *header, size_t data_len, const char *needle) {
    const char *path = qj_test_tmp("st_bad.safetensors");
    write_raw(path, header, 0, zeros64, data_len);
    qj_st_file *f = (qj_st_file *)1;
    QJ_CHECK_FAILS(qj_st_open(path, &f), needle);
    QJ_CHECK_MSG(strstr(qj_last_error(), "st_bad.safetensors") != NULL, "message does not name the file: %s",
                 qj_last_error());
    QJ_CHECK(f == NULL);
}

static void test_corrupt(void) {
    const char *path = qj_test_tmp("st_bad.safetensors");

    /* empty file */
    FILE *fp = fopen(path, "wb");
    fclose(fp);
    qj_st_file *f;
    QJ_CHECK_FAILS(qj_st_open(path, &f), "empty");
    /* shorter than the length field */
    fp = fopen(path, "wb");
    fwrite("\x10\0\0", 1, 3, fp);
    fclose(fp);
    QJ_CHECK_FAILS(qj_st_open(path, &f), "truncated");
    /* header length past EOF, and absurd */
    write_raw(path, "{}", 1000, NULL, 0);
    QJ_CHECK_FAILS(qj_st_open(path, &f), "runs past the end of the file");
    write_raw(path, "{}", (uint64_t)1 << 40, NULL, 0);
    QJ_CHECK_FAILS(qj_st_open(path, &f), "absurd");
    /* nonexistent */
    QJ_CHECK_FAILS(qj_st_open(qj_test_tmp("st_no_such_file.safetensors"), &f), "cannot open");

    /* JSON */
    check_bad("{\"a\": {\"dtype\": \"F32\", ", 0, "not valid JSON");
    check_bad("[1, 2, 3]", 0, "not an object");
    check_bad("{\"a\": 5}", 0, "not an object");
    check_bad("{\"a\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} xx", 4, "trailing bytes");
    /* missing fields */
    check_bad("{\"w\": {\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor \"w\": missing \"dtype\"");
    check_bad("{\"w\": {\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "tensor \"w\": missing \"shape\"");
    check_bad("{\"w\": {\"dtype\":\"F32\",\"shape\":[2]}}", 8, "tensor \"w\": missing \"data_offsets\"");
    /* dtypes */
    check_bad("{\"w\": {\"dtype\":\"XYZ\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype \"XYZ\"");
    check_bad("{\"w\": {\"dtype\":\"I8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8, "unsupported dtype \"I8\"");
    check_bad("{\"w\": {\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, "unsupported dtype \"F64\"");
    check_bad("{\"w\": {\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "\"dtype\" is not a string");
    /* shapes */
    check_bad("{\"w\": {\"dtype\":\"F32\",\"shape\":[-2,2],\"data_offsets\":[0,16]}}", 16, "shape[0] is negative");
    check_bad("{\"w\": {\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "shape[0] is not");
    check_bad("{\"w\": {\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "dimensions");
    /* offsets */
    check_bad("{\"w\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "\"data_offsets\" is not an array of two");
    check_bad("{\"w\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", 8, "\"data_offsets\" is not an array of two");
    check_bad("{\"w\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}}", 8, "two non-negative integers");
    check_bad("{\"w\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, "two non-negative integers");
    check_bad("{\"w\": {\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, "decrease");
    check_bad("{\"w\": {\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}}", 16,
              "run past the end of the data section");
    /* wrong-shaped: 16 bytes for 3 floats */
    check_bad("{\"w\": {\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16, "byte length mismatch");
    check_bad("{\"w\": {\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16, "needs 8");
    /* overlapping */
    check_bad("{\"a\": {\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
              " \"b\": {\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
              24, "overlap");
    check_bad("{\"a\": {\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[0,24]},"
              " \"b\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
              24, "overlap");
    /* duplicate name, bad metadata, empty name */
    check_bad("{\"a\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              " \"a\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
              8, "appears twice");
    check_bad("{\"__metadata__\": {\"format\": 1}}", 0, "__metadata__");
    check_bad("{\"__metadata__\": [1]}", 0, "\"__metadata__\" is not an object");
    check_bad("{\"\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "empty name");

    /* truncated copy of a valid file: the last tensor runs past the end */
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}";
    write_raw(path, hdr, 0, v, 20);
    QJ_CHECK_FAILS(qj_st_open(path, &f), "tensor \"b\": data_offsets [16, 32] run past the end");
    QJ_CHECK(strstr(qj_last_error(), "truncated") != NULL);
}

/* A spec-valid file written by hand: unpadded header, no metadata, an empty
 * tensor, a misaligned F32 after a 3-element F16, a gap (accepted). */
static void test_handmade(void) {
    const char *path = qj_test_tmp("st_hand.safetensors");
    uint8_t data[32] = {0};
    uint16_t h[3] = {qj_f32_to_f16(1.5f), qj_f32_to_f16(-2.0f), qj_f32_to_f16(0.25f)};
    memcpy(data, h, 6);
    float x = 3.25f;
    memcpy(data + 6, &x, 4);
    uint16_t b = qj_f32_to_bf16(-7.5f);
    memcpy(data + 12, &b, 2); /* 2-byte gap at [10, 12) */
    const char *hdr = "{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                      "\"x\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[6,10]},"
                      "\"e\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[10,10]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,1],\"data_offsets\":[12,14]}}";
    write_raw(path, hdr, 0, data, 14);
    qj_st_file *f;
    QJ_CHECK_OK(qj_st_open(path, &f));
    if (!f) return;
    QJ_CHECK(qj_st_count(f) == 4);
    const qj_tensor *th = qj_st_find(f, "h"), *tx = qj_st_find(f, "x"), *te = qj_st_find(f, "e"),
                    *tb = qj_st_find(f, "b");
    QJ_CHECK(th && tx && te && tb && !qj_st_find(f, "zz"));
    if (th && tx && te && tb) {
        QJ_CHECK(th->dtype == QJ_DTYPE_F16 && th->ndim == 1 && th->shape[0] == 3 && th->nbytes == 6);
        QJ_CHECK(qj_load_f32(th->data, th->dtype, 2) == 0.25f);
        QJ_CHECK(tx->ndim == 0 && qj_tensor_numel(tx) == 1);
        QJ_CHECK((uintptr_t)tx->data % 4 == 0); /* copied to an aligned buffer */
        QJ_CHECK(((const float *)tx->data)[0] == 3.25f);
        QJ_CHECK(te->nbytes == 0 && te->shape[0] == 0 && te->shape[1] == 4);
        QJ_CHECK(qj_bf16_to_f32(((const uint16_t *)tb->data)[0]) == -7.5f);
        QJ_CHECK(qj_st_file_offset(f, 3) == 8 + strlen(hdr) + 12);
    }
    QJ_CHECK(qj_st_metadata(f, "format") == NULL);
    QJ_CHECK(!strcmp(qj_st_name(f, 1), "x"));
    qj_st_close(f);
    qj_st_close(NULL);
}

static uint32_t rng = 12345;
static float rnd(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static int no_temp_files(void) {
    const char *dir = qj_test_tmp("");
    DIR *d = opendir(dir);
    if (!d) return 1;
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "st_", 3) && strstr(e->d_name, ".tmp.")) found = 1;
    closedir(d);
    return !found;
}

static void test_roundtrip(void) {
    /* tensors of every dtype, with odd sizes so alignment ordering matters */
    enum { N = 6 };
    static const int64_t shapes[N][2] = {{5, 3}, {4, 8}, {7, 0}, {3, 3}, {16, 2}, {1, 1}};
    static const qj_dtype dts[N] = {QJ_DTYPE_F16, QJ_DTYPE_F32, QJ_DTYPE_BF16, QJ_DTYPE_BF16, QJ_DTYPE_F16,
                                    QJ_DTYPE_F32};
    qj_tensor t[N];
    void *buf[N];
    char name[N][32];
    for (int i = 0; i < N; i++) {
        int nd = shapes[i][1] ? 2 : 1;
        int64_t numel = shapes[i][0] * (nd == 2 ? shapes[i][1] : 1);
        size_t es = qj_dtype_size(dts[i]);
        buf[i] = malloc((size_t)numel * es);
        for (int64_t k = 0; k < numel; k++) {
            float v = rnd() * 100.0f;
            if (es == 4) ((float *)buf[i])[k] = v;
            else ((uint16_t *)buf[i])[k] = dts[i] == QJ_DTYPE_F16 ? qj_f32_to_f16(v) : qj_f32_to_bf16(v);
        }
        if (i == 1) ((float *)buf[i])[3] = -0.0f; /* sign of zero survives */
        snprintf(name[i], sizeof name[i], "layer.%d.weight", i);
        qj_tensor_set(&t[i], name[i], dts[i], nd, shapes[i], buf[i]);
    }
    const char *path = qj_test_tmp("st_rt.safetensors");
    const char *meta[] = {"format", "pt", "note", "qjit \"test\""};
    QJ_CHECK_OK(qj_st_write(path, t, N, meta, 2));
    qj_st_file *f;
    QJ_CHECK_OK(qj_st_open(path, &f));
    if (!f) return;
    QJ_CHECK(qj_st_count(f) == N);
    QJ_CHECK(!strcmp(qj_st_metadata(f, "format"), "pt"));
    QJ_CHECK(!strcmp(qj_st_metadata(f, "note"), "qjit \"test\""));
    int aligned = 0;
    for (int i = 0; i < N; i++) {
        const qj_tensor *r = qj_st_find(f, name[i]);
        QJ_CHECK(r != NULL);
        if (!r) continue;
        QJ_CHECK(r->dtype == dts[i] && r->ndim == t[i].ndim && r->shape[0] == t[i].shape[0] &&
                 r->shape[1] == t[i].shape[1]);
        QJ_CHECK(r->nbytes == t[i].nbytes);
        QJ_CHECK_MSG(!t[i].nbytes || memcmp(r->data, t[i].data, t[i].nbytes) == 0, "%s differs", name[i]);
        int idx = (int)(r - qj_st_tensor(f, 0));
        QJ_CHECK(!strcmp(qj_st_name(f, idx), name[i])); /* header keeps the given order */
        QJ_CHECK(idx == i);
        if (t[i].nbytes % 8 == 0) aligned += qj_st_file_offset(f, idx) % 8 == 0;
        else aligned++;
    }
    QJ_CHECK(aligned == N); /* tensors whose size is a multiple of 8 all start 8-aligned */
    /* the data section starts 8-aligned: header padded with spaces */
    FILE *fp = fopen(path, "rb");
    uint8_t len8[8];
    QJ_CHECK(fread(len8, 1, 8, fp) == 8);
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--) hl = hl << 8 | len8[k];
    QJ_CHECK(hl % 8 == 0);
    char *hdr = calloc(1, (size_t)hl + 1);
    QJ_CHECK(fread(hdr, 1, (size_t)hl, fp) == hl);
    QJ_CHECK(hdr[hl - 1] == ' ' || hdr[hl - 1] == '}');
    free(hdr);
    fclose(fp);
    qj_st_close(f);

    /* every dtype alone, bit-exact, with special values */
    static const float specials[] = {0.0f, -0.0f, 1.0f, -65504.0f, 1e-8f, 3.4e38f, INFINITY, -INFINITY, NAN};
    for (int d = 0; d < 3; d++) {
        qj_dtype dt = (qj_dtype)d;
        uint8_t raw[sizeof specials * 1];
        for (size_t k = 0; k < 9; k++) {
            if (dt == QJ_DTYPE_F32) ((float *)raw)[k] = specials[k];
            else ((uint16_t *)raw)[k] = dt == QJ_DTYPE_F16 ? qj_f32_to_f16(specials[k]) : qj_f32_to_bf16(specials[k]);
        }
        qj_tensor one;
        int64_t sh[1] = {9};
        qj_tensor_set(&one, "x", dt, 1, sh, raw);
        QJ_CHECK_OK(qj_st_write(path, &one, 1, NULL, 0));
        QJ_CHECK_OK(qj_st_open(path, &f));
        if (!f) continue;
        const qj_tensor *r = qj_st_find(f, "x");
        QJ_CHECK_MSG(r && r->dtype == dt && memcmp(r->data, raw, one.nbytes) == 0, "%s round trip",
                     qj_dtype_name(dt));
        qj_st_close(f);
    }

    /* writer misuse: refused, and no file or temporary is left */
    const char *bad = qj_test_tmp("st_writer_bad.safetensors");
    unlink(bad);
    qj_st_entry e[2] = {{"a", QJ_DTYPE_F32, 1, {2}}, {"b", QJ_DTYPE_F16, 1, {3}}};
    qj_st_writer *w;
    QJ_CHECK_OK(qj_st_writer_open(&w, bad, e, 2, NULL, 0));
    int first = qj_st_writer_next(w);
    QJ_CHECK(first == 0); /* "a" (8 bytes) goes first; "b" (6 bytes) after */
    QJ_CHECK_FAILS(qj_st_writer_put(w, zeros64, 12), "more than its 8 bytes");
    QJ_CHECK_FAILS(qj_st_writer_commit(w), "more than its 8 bytes");
    QJ_CHECK(access(bad, F_OK) != 0);
    QJ_CHECK_OK(qj_st_writer_open(&w, bad, e, 2, NULL, 0));
    qj_st_writer_next(w);
    QJ_CHECK_OK(qj_st_writer_put(w, zeros64, 8));
    QJ_CHECK_FAILS(qj_st_writer_commit(w), "tensor \"b\": no data given");
    QJ_CHECK(access(bad, F_OK) != 0);
    QJ_CHECK_OK(qj_st_writer_open(&w, bad, e, 2, NULL, 0));
    qj_st_writer_next(w);
    QJ_CHECK_OK(qj_st_writer_put(w, zeros64, 4));
    qj_st_writer_next(w);
    QJ_CHECK_FAILS(qj_st_writer_commit(w), "tensor \"a\": 4 of its 8 bytes given");
    QJ_CHECK(access(bad, F_OK) != 0);
    QJ_CHECK_OK(qj_st_writer_open(&w, bad, e, 2, NULL, 0));
    qj_st_writer_abort(w);
    QJ_CHECK(access(bad, F_OK) != 0);
    qj_st_entry dup[2] = {{"a", QJ_DTYPE_F32, 1, {2}}, {"a", QJ_DTYPE_F32, 1, {2}}};
    QJ_CHECK_FAILS(qj_st_writer_open(&w, bad, dup, 2, NULL, 0), "given twice");
    qj_st_entry q[1] = {{"q", QJ_DTYPE_Q, 1, {2}}};
    QJ_CHECK_FAILS(qj_st_writer_open(&w, bad, q, 1, NULL, 0), "cannot be written");
    QJ_CHECK_FAILS(qj_st_write(qj_test_tmp("no_such_dir/x.safetensors"), t, 1, NULL, 0), "cannot create");
    QJ_CHECK(access(bad, F_OK) != 0);
    QJ_CHECK(no_temp_files());
    /* an empty file (no tensors) is valid */
    QJ_CHECK_OK(qj_st_write(path, NULL, 0, NULL, 0));
    QJ_CHECK_OK(qj_st_open(path, &f));
    if (f) QJ_CHECK(qj_st_count(f) == 0);
    qj_st_close(f);
    for (int i = 0; i < N; i++) free(buf[i]);
}

int main(void) {
    test_corrupt();
    test_handmade();
    test_roundtrip();
    return qj_test_finish();
}
