// ctest-labels: unit
/* test_package.c — llama2.c loader (and its bad inputs), synthetic models,
 * compile -> package -> load round trip, package corruption, atomic writes,
 * and the model size against a hand count. */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compile.h"
#include "loaders.h"
#include "package_write.h"
#include "plan.h"
#include "qj_eval.h"
#include "qj_io.h"
#include "qj_package.h"
#include "qj_test.h"

static int write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t w = fwrite(data, 1, n, f);
    fclose(f);
    return w == n;
}

/* Temporary files "<prefix>.tmp.*" left in dir (other tests run beside this one). */
static int count_tmp_files(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    int n = 0;
    size_t pl = strlen(prefix);
    struct dirent *e;
    while (d && (e = readdir(d))) n += !strncmp(e->d_name, prefix, pl) && strstr(e->d_name + pl, ".tmp.") == e->d_name + pl;
    if (d) closedir(d);
    return n;
}

/* ---- llama2.c ---- */

static void test_llama2c_bad_inputs(void) {
    qj_model *m = (qj_model *)1;
    /* a tiny consistent legacy checkpoint: dim 8, hidden 16, 1 layer, 2 heads, 1 kv head, vocab 10, seq 4 */
    int32_t h[7] = {8, 16, 1, 2, 1, 10, 4};
    size_t nf = 10 * 8 + 8 + 8 * 8 + 4 * 8 * 2 + 8 * 8 + 8 + 16 * 8 * 3 + 8 + 4 * 4;
    size_t n = 28 + nf * 4;
    unsigned char *buf = calloc(1, n + 64);
    memcpy(buf, h, sizeof h);
    for (size_t i = 0; i < nf; i++) ((float *)(buf + 28))[i] = 0.01f * (float)(i % 7);
    const char *p = qj_test_tmp("tiny_l2c.bin");
    QJ_CHECK(write_bytes(p, buf, n));
    QJ_CHECK_OK(qj_load_llama2c(p, &m));
    if (m != (qj_model *)1 && m) {
        QJ_CHECK(m->cfg.dim == 8 && m->cfg.n_kv_heads == 1 && m->cfg.tied_embeddings);
        QJ_CHECK(m->cfg.rope_style == QJ_ROPE_INTERLEAVED);
        qj_model_free(m);
    }
    /* truncated by 4 bytes */
    QJ_CHECK(write_bytes(p, buf, n - 4));
    QJ_CHECK_FAILS(qj_load_llama2c(p, &m), "implies");
    QJ_CHECK(m == NULL);
    /* trailing garbage */
    QJ_CHECK(write_bytes(p, buf, n + 8));
    QJ_CHECK_FAILS(qj_load_llama2c(p, &m), "implies");
    /* header shorter than 28 bytes */
    QJ_CHECK(write_bytes(p, buf, 20));
    QJ_CHECK_FAILS(qj_load_llama2c(p, &m), "truncated header");
    /* non-positive field */
    int32_t bad[7] = {8, -16, 1, 2, 1, 10, 4};
    memcpy(buf, bad, sizeof bad);
    QJ_CHECK(write_bytes(p, buf, n));
    QJ_CHECK_FAILS(qj_load_llama2c(p, &m), "hidden_dim = -16");
    /* heads not dividing dim */
    int32_t bad2[7] = {8, 16, 1, 3, 1, 10, 4};
    memcpy(buf, bad2, sizeof bad2);
    QJ_CHECK(write_bytes(p, buf, n));
    QJ_CHECK_FAILS(qj_load_llama2c(p, &m), "inconsistent header");
    /* version-2 (int8) checkpoints are refused */
    uint32_t magic = 0x616b3432u;
    int32_t ver = 2;
    memset(buf, 0, 256);
    memcpy(buf, &magic, 4);
    memcpy(buf + 4, &ver, 4);
    QJ_CHECK(write_bytes(p, buf, 300));
    QJ_CHECK_FAILS(qj_load_llama2c(p, &m), "version 2 is not supported");
    /* empty and missing files */
    QJ_CHECK(write_bytes(p, buf, 0));
    QJ_CHECK_FAILS(qj_load_llama2c(p, &m), "empty");
    QJ_CHECK_FAILS(qj_load_llama2c(qj_test_tmp("no_such_file.bin"), &m), "cannot open");
    free(buf);
}

/* version-1 header: same weights as the legacy file, norms first */
static void test_llama2c_v1_matches_legacy(const char *legacy) {
    qj_model *a = NULL, *b = NULL;
    QJ_CHECK_OK(qj_load_llama2c(legacy, &a));
    if (!a) return;
    const qj_config *c = &a->cfg;
    size_t D = (size_t)c->dim, H = (size_t)c->hidden_dim, L = (size_t)c->n_layers, V = (size_t)c->vocab_size,
           KV = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    size_t nf = L * D * 2 + D + V * D + L * (D * D * 2 + KV * D * 2 + H * D * 3);
    unsigned char *buf = calloc(1, 256 + nf * 4);
    uint32_t magic = 0x616b3432u;
    int32_t ver = 1, hdr[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len};
    memcpy(buf, &magic, 4);
    memcpy(buf + 4, &ver, 4);
    memcpy(buf + 8, hdr, sizeof hdr);
    buf[36] = 1;
    float *w = (float *)(buf + 256);
#define PUT(t) (memcpy(w, (t).data, (t).nbytes), w += (t).nbytes / 4)
    for (size_t i = 0; i < L; i++) PUT(a->layers[i].attn_norm);
    for (size_t i = 0; i < L; i++) PUT(a->layers[i].ffn_norm);
    PUT(a->final_norm);
    PUT(a->tok_embedding);
    for (size_t i = 0; i < L; i++) PUT(a->layers[i].wq);
    for (size_t i = 0; i < L; i++) PUT(a->layers[i].wk);
    for (size_t i = 0; i < L; i++) PUT(a->layers[i].wv);
    for (size_t i = 0; i < L; i++) PUT(a->layers[i].wo);
    for (size_t i = 0; i < L; i++) PUT(a->layers[i].w_gate);
    for (size_t i = 0; i < L; i++) PUT(a->layers[i].w_down);
    for (size_t i = 0; i < L; i++) PUT(a->layers[i].w_up);
#undef PUT
    const char *p = qj_test_tmp("stories_v1.bin");
    QJ_CHECK(write_bytes(p, buf, 256 + nf * 4));
    QJ_CHECK_OK(qj_load_llama2c(p, &b));
    if (b) {
        int same = 1;
        for (size_t i = 0; i < L; i++)
            for (int l = 0; l < QJ_LIN_COUNT; l++)
                same &= !memcmp(qj_layer_linear(&a->layers[i], (qj_linear)l)->data,
                                qj_layer_linear(&b->layers[i], (qj_linear)l)->data,
                                qj_layer_linear(&a->layers[i], (qj_linear)l)->nbytes);
        same &= !memcmp(a->final_norm.data, b->final_norm.data, a->final_norm.nbytes);
        QJ_CHECK_MSG(same, "version-1 weights differ from legacy");
    }
    qj_model_free(a);
    qj_model_free(b);
    free(buf);
}

/* ---- synthetic ---- */

static void test_synthetic(void) {
    qj_model *a = NULL, *b = NULL, *c = NULL;
    QJ_CHECK_OK(qj_load_synthetic("tiny", 7, QJ_DTYPE_BF16, &a));
    QJ_CHECK_OK(qj_load_synthetic("tiny", 7, QJ_DTYPE_BF16, &b));
    QJ_CHECK_OK(qj_load_synthetic("tiny", 8, QJ_DTYPE_BF16, &c));
    if (a && b && c) {
        QJ_CHECK(a->synthetic && strstr(a->origin, "synthetic"));
        QJ_CHECK(!memcmp(a->layers[1].w_down.data, b->layers[1].w_down.data, a->layers[1].w_down.nbytes));
        QJ_CHECK(memcmp(a->layers[1].w_down.data, c->layers[1].w_down.data, a->layers[1].w_down.nbytes));
        /* weights look like N(0, 1/K): mean ~ 0, variance ~ 1/K */
        const qj_tensor *t = &a->layers[0].w_gate;
        double s = 0, s2 = 0;
        int64_t n = qj_tensor_numel(t);
        for (int64_t i = 0; i < n; i++) {
            double v = qj_load_f32(t->data, t->dtype, (size_t)i);
            s += v;
            s2 += v * v;
        }
        double var = s2 / (double)n - (s / (double)n) * (s / (double)n), want = 1.0 / (double)t->shape[1];
        QJ_CHECK_MSG(fabs(var / want - 1.0) < 0.05, "variance %g, want %g", var, want);
    }
    qj_model_free(a);
    qj_model_free(b);
    qj_model_free(c);
    qj_config cfg;
    QJ_CHECK_OK(qj_synthetic_config("llama3-8b", &cfg));
    QJ_CHECK(cfg.dim == 4096 && cfg.hidden_dim == 14336 && cfg.n_kv_heads == 8 && cfg.vocab_size == 128256);
    QJ_CHECK_OK(qj_synthetic_config("llama2-7b", &cfg));
    QJ_CHECK(cfg.hidden_dim == 11008 && cfg.n_kv_heads == 32);
    QJ_CHECK_OK(qj_synthetic_config("mistral-7b", &cfg));
    QJ_CHECK(cfg.hidden_dim == 14336 && cfg.n_kv_heads == 8);
    QJ_CHECK_FAILS(qj_synthetic_config("llama9-1t", &cfg), "unknown synthetic preset \"llama9-1t\"");
}

/* ---- packages ---- */

/* Hand count of a compiled stories-like model's bytes: f32 embedding and norms,
 * every linear of layer i quantized with (bits[i], group[i]) asymmetric f16. */
static uint64_t hand_count(const qj_config *c, const int *bits, const int *group) {
    uint64_t D = (uint64_t)c->dim, H = (uint64_t)c->hidden_dim, KV = (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim;
    uint64_t bytes = (uint64_t)c->vocab_size * D * 4 + D * 4;
    for (int i = 0; i < c->n_layers; i++) {
        bytes += 2 * D * 4;
        uint64_t shapes[7][2] = {{D, D}, {KV, D}, {KV, D}, {D, D}, {H, D}, {H, D}, {D, H}};
        for (int l = 0; l < 7; l++) {
            uint64_t N = shapes[l][0], K = shapes[l][1];
            uint64_t words = (K + 31) / 32 * (uint64_t)bits[i];
            uint64_t groups = (K + (uint64_t)group[i] - 1) / (uint64_t)group[i];
            bytes += N * words * 4 + N * groups * 2 * 2;
        }
    }
    return bytes;
}

static void test_package_roundtrip(const char *stories) {
    qj_model *src = NULL, *comp = NULL, *pkg = NULL;
    qj_plan *plan = NULL;
    const char *json = "{\"bitwidth.0.\": 8, \"groupsize.0.\": 32, \"bitwidth.1.\": 3, \"groupsize.1.\": 64,"
                       " \"bitwidth.2.\": 5, \"groupsize.2.\": 128, \"bitwidth.3.\": 2, \"groupsize.3.\": 32,"
                       " \"bitwidth.4.\": 6, \"groupsize.4.\": 256}";
    int bits[5] = {8, 3, 5, 2, 6}, group[5] = {32, 64, 128, 32, 256};
    QJ_CHECK_OK(qj_load_llama2c(stories, &src));
    if (!src) return;
    QJ_CHECK_OK(qj_plan_parse_json(json, "plan.json", src->cfg.n_layers, &plan));
    if (!plan) goto done;
    QJ_CHECK_OK(qj_compile_model(src, plan, 0, &comp, NULL));
    if (!comp) goto done;
    qj_size_info z;
    qj_model_size(comp, &z);
    uint64_t hand = hand_count(&src->cfg, bits, group);
    QJ_CHECK_MSG(z.bytes == hand, "size %llu, hand count %llu", (unsigned long long)z.bytes, (unsigned long long)hand);
    QJ_CHECK_NEAR(z.gb, (double)hand / 1e9, 1e-12);
    QJ_CHECK_NEAR(z.gib, (double)hand / 1073741824.0, 1e-12);
    QJ_CHECK(z.params == 260032); /* stories260K: 64*512 + 5*(7 linears + 2 norms) + 64 */
    const char *path = qj_test_tmp("mixed.qjp");
    QJ_CHECK_OK(qj_package_write(comp, plan, path));
    QJ_CHECK(count_tmp_files(getenv("QJ_TEST_TMP") ? getenv("QJ_TEST_TMP") : "/tmp", "mixed.qjp") == 0);
    QJ_CHECK_OK(qj_package_load(path, NULL, &pkg));
    if (!pkg) goto done;
    qj_size_info z2;
    qj_model_size(pkg, &z2);
    QJ_CHECK(z2.bytes == hand);
    QJ_CHECK(pkg->cfg.tied_embeddings && pkg->lm_head.data == pkg->tok_embedding.data);
    for (int i = 0; i < 5; i++)
        for (int l = 0; l < QJ_LIN_COUNT; l++) {
            const qj_tensor *a = qj_layer_linear(&comp->layers[i], (qj_linear)l),
                            *b = qj_layer_linear(&pkg->layers[i], (qj_linear)l);
            QJ_CHECK(b->dtype == QJ_DTYPE_Q && b->q.bits == bits[i] && b->q.group == group[i]);
            QJ_CHECK(a->nbytes == b->nbytes && !memcmp(a->data, b->data, a->nbytes));
            QJ_CHECK(!memcmp(a->scales, b->scales, a->scales_nbytes) && !memcmp(a->zeros, b->zeros, a->zeros_nbytes));
        }
    /* same NLL in memory and from the package */
    int ids[300];
    for (int i = 0; i < 300; i++) ids[i] = (i * 37 + 11) % 512;
    qj_eval_params ep = qj_eval_default_params();
    ep.progress = 0;
    qj_eval_result r1, r2;
    QJ_CHECK_OK(qj_eval_nll(comp, ids, 300, &ep, &r1));
    QJ_CHECK_OK(qj_eval_nll(pkg, ids, 300, &ep, &r2));
    QJ_CHECK(r1.nll == r2.nll && r1.tokens == 300);

    /* corruptions of the package file */
    char *bytes;
    size_t len;
    QJ_CHECK_OK(qj_read_file(path, &bytes, &len));
    const char *bad = qj_test_tmp("bad.qjp");
    qj_model *m = NULL;
    QJ_CHECK(write_bytes(bad, bytes, len - 100));
    QJ_CHECK_FAILS(qj_package_load(bad, NULL, &m), "truncated or corrupted");
    QJ_CHECK(write_bytes(bad, bytes, 30));
    QJ_CHECK_FAILS(qj_package_load(bad, NULL, &m), "not a qjit package");
    bytes[len - 200] ^= 0x40; /* a byte of the last arrays */
    QJ_CHECK(write_bytes(bad, bytes, len));
    QJ_CHECK_FAILS(qj_package_load(bad, NULL, &m), "checksum mismatch");
    qj_load_params lp = {0};
    QJ_CHECK_OK(qj_package_load(bad, &lp, &m)); /* --no-verify loads it */
    qj_model_free(m);
    m = NULL;
    bytes[len - 200] ^= 0x40;
    uint32_t v2 = 2;
    memcpy(bytes + 8, &v2, 4);
    QJ_CHECK(write_bytes(bad, bytes, len));
    QJ_CHECK_FAILS(qj_package_load(bad, NULL, &m), "package format version 2 is newer");
    uint32_t v1 = 1;
    memcpy(bytes + 8, &v1, 4);
    char *mf = strstr(bytes + 40, "\"format\"");
    if (mf) mf[2] = 'X'; /* "fXrmat": the manifest no longer names its format */
    QJ_CHECK(write_bytes(bad, bytes, len));
    QJ_CHECK_FAILS(qj_package_load(bad, NULL, &m), "manifest.format");
    if (mf) mf[2] = 'o';
    char *sh = strstr(bytes + 40, "\"shape\"");
    if (sh) sh[1] = 'S'; /* first tensor loses its shape */
    QJ_CHECK(write_bytes(bad, bytes, len));
    QJ_CHECK_FAILS(qj_package_load(bad, NULL, &m), "\"shape\" must be");
    if (sh) sh[1] = 's';
    char *nm = strstr(bytes + 40, "model.layers.4.mlp.down_proj.weight");
    if (nm) nm[13] = '9'; /* layer 9 does not exist */
    QJ_CHECK(write_bytes(bad, bytes, len));
    QJ_CHECK_FAILS(qj_package_load(bad, NULL, &m), "unexpected tensor \"model.layers.9.mlp.down_proj.weight\"");
    QJ_CHECK(m == NULL);
    free(bytes);

    /* atomic write: a failing write leaves nothing behind, an existing file is replaced whole */
    QJ_CHECK_FAILS(qj_package_write(comp, plan, qj_test_tmp("no_such_dir/x.qjp")), "cannot create");
    QJ_CHECK(access(qj_test_tmp("no_such_dir/x.qjp"), F_OK) != 0);
    QJ_CHECK(count_tmp_files(getenv("QJ_TEST_TMP") ? getenv("QJ_TEST_TMP") : "/tmp", "bad.qjp") == 0);
    QJ_CHECK_OK(qj_package_write(comp, plan, bad));
    QJ_CHECK_OK(qj_package_load(bad, NULL, &m));
    qj_model_free(m);
done:
    qj_model_free(pkg);
    qj_model_free(comp);
    qj_model_free(src);
    qj_plan_free(plan);
}

static void test_untied_head_plan(const char *stories) {
    /* quantizing the head of a tied model unties it in the package */
    qj_model *src = NULL, *comp = NULL, *pkg = NULL;
    qj_plan *plan = NULL;
    QJ_CHECK_OK(qj_load_llama2c(stories, &src));
    QJ_CHECK_OK(qj_plan_parse_json("{\"overrides\": {\"lm_head\": \"int8-g64\"}}", "p.json", 5, &plan));
    if (!src || !plan) goto done;
    QJ_CHECK_OK(qj_compile_model(src, plan, 0, &comp, NULL));
    if (!comp) goto done;
    QJ_CHECK(!comp->cfg.tied_embeddings && comp->lm_head.dtype == QJ_DTYPE_Q && comp->tok_embedding.dtype == QJ_DTYPE_F32);
    QJ_CHECK(!strcmp(comp->lm_head.name, "lm_head.weight"));
    QJ_CHECK_OK(qj_package_write(comp, plan, qj_test_tmp("untied.qjp")));
    QJ_CHECK_OK(qj_package_load(qj_test_tmp("untied.qjp"), NULL, &pkg));
    if (pkg) QJ_CHECK(!pkg->cfg.tied_embeddings && pkg->lm_head.dtype == QJ_DTYPE_Q);
done:
    qj_model_free(pkg);
    qj_model_free(comp);
    qj_model_free(src);
    qj_plan_free(plan);
}

int main(void) {
    test_llama2c_bad_inputs();
    test_synthetic();
    const char *stories = qj_test_shared("models/stories260K/stories260K.bin");
    if (stories) {
        test_llama2c_v1_matches_legacy(stories);
        test_package_roundtrip(stories);
        test_untied_head_plan(stories);
    } else {
        printf("SKIP: stories260K parts (QJ_SHARED not set or model missing)\n");
    }
    return qj_test_finish();
}
