/* test_plan.c — plans (shorthands, plan JSON, overrides, defaults, canonical
 * JSON round trip), parameter spaces and initial samples, every error message.
 * The seed's real space/sample files come from QJ_SHARED/formats when present.
 */
// ctest-labels: unit
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "qj_io.h"
#include "qj_test.h"

/* JSON with ' for " so the cases stay readable. */
static const char *J(const char *s) {
    static char buf[8][8192];
    static int k;
    char *b = buf[k++ % 8];
    size_t i = 0;
    for (; s[i] && i < sizeof buf[0] - 1; i++) b[i] = s[i] == '\'' ? '"' : s[i];
    b[i] = '\0';
    return b;
}

static qj_plan *pj(const char *json_squote, int n_layers) {
    qj_plan *p = NULL;
    qj_status s = qj_plan_parse_json(J(json_squote), "plan.json", n_layers, &p);
    QJ_CHECK_MSG(s == QJ_OK, "%s", qj_last_error());
    return p;
}

static qj_status pj_status(const char *json_squote, int n_layers) {
    qj_plan *p = (qj_plan *)1;
    qj_status s = qj_plan_parse_json(J(json_squote), "plan.json", n_layers, &p);
    if (s != QJ_OK) QJ_CHECK(p == NULL); /* out-pointer cleared on failure */
    qj_plan_free(s == QJ_OK ? p : NULL);
    return s;
}

static qj_status sp_status(const char *json_squote, int n_layers) {
    qj_space *sp = NULL;
    qj_status s = qj_space_parse_json(J(json_squote), "space.json", n_layers, &sp);
    qj_space_free(sp);
    return s;
}

static int is_q(const qj_tensor_plan *t, int bits, int group, int sym, qj_dtype scale) {
    return t->dtype == QJ_DTYPE_Q && t->q.bits == bits && t->q.group == group && t->q.symmetric == sym &&
           t->q.scale_dtype == scale;
}

static int all_linears(const qj_plan *p, int (*pred)(const qj_tensor_plan *)) {
    for (int i = 0; i < p->n_layers; i++)
        for (int l = 0; l < QJ_LIN_COUNT; l++)
            if (!pred(qj_plan_linear(p, i, (qj_linear)l))) return 0;
    return 1;
}
static int is_int4_g128(const qj_tensor_plan *t) { return is_q(t, 4, 128, 0, QJ_DTYPE_F16); }
static int is_int8_pc_sym(const qj_tensor_plan *t) { return is_q(t, 8, 0, 1, QJ_DTYPE_F16); }
static int is_int3_g64_bf16(const qj_tensor_plan *t) { return is_q(t, 3, 64, 0, QJ_DTYPE_BF16); }
static int is_bf16(const qj_tensor_plan *t) { return t->dtype == QJ_DTYPE_BF16; }
static int is_f32(const qj_tensor_plan *t) { return t->dtype == QJ_DTYPE_F32; }
static int is_source(const qj_tensor_plan *t) { return t->dtype == QJ_PLAN_DTYPE_SOURCE; }

/* to_json, parse back with the same layer count, compare. */
static void check_roundtrip(const qj_plan *p, const char *what) {
    char *text = NULL;
    qj_plan *back = NULL;
    QJ_CHECK_OK(qj_plan_to_json(p, &text));
    if (!text) return;
    qj_status s = qj_plan_parse_json(text, "roundtrip.json", p->n_layers, &back);
    QJ_CHECK_MSG(s == QJ_OK, "%s: %s\n%s", what, qj_last_error(), text);
    if (back) QJ_CHECK_MSG(qj_plan_equal(p, back), "%s: round trip differs\n%s", what, text);
    /* Canonical: writing the parsed plan again gives the same text. */
    char *again = NULL;
    if (back) QJ_CHECK_OK(qj_plan_to_json(back, &again));
    if (again) QJ_CHECK_MSG(strcmp(text, again) == 0, "%s: not canonical", what);
    free(again);
    free(text);
    qj_plan_free(back);
}

static void test_shorthands(void) {
    qj_plan *p = NULL;
    QJ_CHECK_OK(qj_plan_parse("int4-g128", 32, &p));
    if (p) {
        QJ_CHECK(p->n_layers == 32);
        QJ_CHECK(all_linears(p, is_int4_g128));
        QJ_CHECK(is_source(&p->embed) && is_source(&p->lm_head));
        QJ_CHECK(strcmp(p->method, "rtn") == 0);
        QJ_CHECK(strcmp(p->desc, "int4-g128") == 0);
        check_roundtrip(p, "int4-g128");
    }
    qj_plan_free(p);

    QJ_CHECK_OK(qj_plan_parse("int8-pc-sym", 5, &p));
    if (p) {
        QJ_CHECK(all_linears(p, is_int8_pc_sym));
        QJ_CHECK(strcmp(p->desc, "int8-pc-sym") == 0);
        QJ_CHECK(qj_plan_group_size(&p->linear[0].q, 172) == 192); /* per-channel: K up to 32 */
        QJ_CHECK(qj_plan_group_size(&p->linear[0].q, 64) == 64);
        QJ_CHECK(qj_plan_group_size(&p->linear[0].q, 4096) == 4096);
        check_roundtrip(p, "int8-pc-sym");
    }
    qj_plan_free(p);

    QJ_CHECK_OK(qj_plan_parse("INT3-G64-BF16", 2, &p)); /* case-insensitive; bf16 scales */
    if (p) {
        QJ_CHECK(all_linears(p, is_int3_g64_bf16));
        QJ_CHECK(strcmp(p->desc, "int3-g64-bf16") == 0);
        QJ_CHECK(qj_plan_group_size(&p->linear[0].q, 172) == 64);
        check_roundtrip(p, "int3-g64-bf16");
    }
    qj_plan_free(p);

    QJ_CHECK_OK(qj_plan_parse("int2-g32-asym", 2, &p));
    if (p) QJ_CHECK(is_q(&p->linear[0], 2, 32, 0, QJ_DTYPE_F16));
    qj_plan_free(p);
    QJ_CHECK_OK(qj_plan_parse("int7-g512-sym", 2, &p)); /* 7 bits: the packed format has it */
    if (p) QJ_CHECK(is_q(&p->linear[13], 7, 512, 1, QJ_DTYPE_F16));
    qj_plan_free(p);

    /* Dense shorthands cover the embedding and the head too. */
    QJ_CHECK_OK(qj_plan_parse("bf16", 4, &p));
    if (p) {
        QJ_CHECK(all_linears(p, is_bf16) && is_bf16(&p->embed) && is_bf16(&p->lm_head));
        QJ_CHECK(strcmp(p->desc, "bf16") == 0);
        check_roundtrip(p, "bf16");
    }
    qj_plan_free(p);
    const char *f32_names[] = {"fp32", "f32"};
    for (int k = 0; k < 2; k++) {
        QJ_CHECK_OK(qj_plan_parse(f32_names[k], 3, &p));
        if (p) QJ_CHECK(all_linears(p, is_f32) && is_f32(&p->embed) && is_f32(&p->lm_head));
        if (p) QJ_CHECK(strcmp(p->desc, "f32") == 0);
        qj_plan_free(p);
    }
    QJ_CHECK_OK(qj_plan_parse("f16", 3, &p));
    if (p) QJ_CHECK(p->linear[20].dtype == QJ_DTYPE_F16 && p->lm_head.dtype == QJ_DTYPE_F16);
    qj_plan_free(p);
    QJ_CHECK_OK(qj_plan_parse("source", 3, &p));
    if (p) {
        QJ_CHECK(all_linears(p, is_source) && is_source(&p->embed));
        QJ_CHECK(strcmp(p->desc, "source") == 0);
        check_roundtrip(p, "source");
    }
    qj_plan_free(p);

    /* Inline JSON as a spec. */
    QJ_CHECK_OK(qj_plan_parse(J(" {'bitwidth.0.': 4, 'groupsize.0.': 64}"), 1, &p));
    if (p) QJ_CHECK(is_q(&p->linear[3], 4, 64, 0, QJ_DTYPE_F16));
    qj_plan_free(p);

    /* A file as a spec. */
    const char *path = qj_test_tmp("test_plan_spec.json");
    FILE *f = fopen(path, "wb");
    QJ_CHECK(f != NULL);
    if (f) {
        fputs(J("{'bitwidth.0.': 5, 'groupsize.0.': 32, 'bitwidth.1.': 3}"), f);
        fclose(f);
        QJ_CHECK_OK(qj_plan_parse(path, 2, &p));
        if (p) {
            QJ_CHECK(is_q(&p->linear[0], 5, 32, 0, QJ_DTYPE_F16));
            QJ_CHECK(is_q(qj_plan_linear(p, 1, QJ_LIN_DOWN), 3, 128, 0, QJ_DTYPE_F16));
            QJ_CHECK(strcmp(p->desc, "mixed (test_plan_spec.json)") == 0);
        }
        qj_plan_free(p);
        QJ_CHECK_OK(qj_plan_parse(path, 0, &p)); /* layer count inferred */
        if (p) QJ_CHECK(p->n_layers == 2);
        qj_plan_free(p);
        QJ_CHECK_FAILS(qj_plan_parse(path, 1, &p), "\"bitwidth.1.\": layer 1 out of range (model has 1 layers)");
        QJ_CHECK_FAILS(qj_plan_parse(path, 1, &p), "test_plan_spec.json: ");
        remove(path);
    }

    /* Shorthand errors. */
    QJ_CHECK_FAILS(qj_plan_parse("int9-g128", 4, &p), "plan \"int9-g128\": 9 bits is out of range (2..8)");
    QJ_CHECK_FAILS(qj_plan_parse("int1-g128", 4, &p), "1 bits is out of range");
    QJ_CHECK_FAILS(qj_plan_parse("int4-g100", 4, &p), "group size 100 is not one of 32,64,128,256,512");
    QJ_CHECK_FAILS(qj_plan_parse("int4-g48", 4, &p), "group size 48 is not one of");
    QJ_CHECK_FAILS(qj_plan_parse("int4-g1024", 4, &p), "group size 1024 is not one of");
    QJ_CHECK_FAILS(qj_plan_parse("int4-g0", 4, &p), "write -pc for per-channel");
    QJ_CHECK_FAILS(qj_plan_parse("int4", 4, &p), "missing group size: write int4-g<group>");
    QJ_CHECK_FAILS(qj_plan_parse("int4-g128-foo", 4, &p), "unknown suffix \"-foo\"");
    QJ_CHECK_FAILS(qj_plan_parse("int4-g128-sym-asym", 4, &p), "conflicts with an earlier one");
    QJ_CHECK_FAILS(qj_plan_parse("int4-x", 4, &p), "expected -g<group> or -pc after int4");
    QJ_CHECK_FAILS(qj_plan_parse("intx-g128", 4, &p), "expected int<bits>-g<group>");
    QJ_CHECK_FAILS(qj_plan_parse("q4_0", 4, &p), "plan \"q4_0\": not a shorthand");
    QJ_CHECK_FAILS(qj_plan_parse("/nonexistent/plan.json", 4, &p), "no such file");
    QJ_CHECK_FAILS(qj_plan_parse("int4-g128", 0, &p), "a shorthand needs the model's layer count");
    QJ_CHECK_FAILS(qj_plan_parse("", 4, &p), "empty plan spec");
    QJ_CHECK_FAILS(qj_plan_parse(NULL, 4, &p), "empty plan spec");
    QJ_CHECK(p == NULL);
}

static void test_defaults(void) {
    /* Empty plan: every tensor dense in the source dtype. */
    qj_plan *p = pj("{}", 3);
    if (p) {
        QJ_CHECK(all_linears(p, is_source) && is_source(&p->embed) && is_source(&p->lm_head));
        QJ_CHECK(strcmp(p->method, "rtn") == 0);
        QJ_CHECK(strcmp(p->desc, "source (plan.json)") == 0);
    }
    qj_plan_free(p);

    /* Missing bitwidth: dense (dense_dtype, default source); missing groupsize: 128;
     * 16 / 32: bf16 / f32 dense (a groupsize beside them is ignored). */
    p = pj("{'bitwidth.0.': 4, 'bitwidth.1.': 16, 'groupsize.1.': 64, 'bitwidth.2.': 32}", 4);
    if (p) {
        QJ_CHECK(is_q(qj_plan_linear(p, 0, QJ_LIN_K), 4, 128, 0, QJ_DTYPE_F16));
        QJ_CHECK(is_bf16(qj_plan_linear(p, 1, QJ_LIN_UP)));
        QJ_CHECK(is_f32(qj_plan_linear(p, 2, QJ_LIN_GATE)));
        QJ_CHECK(is_source(qj_plan_linear(p, 3, QJ_LIN_O)));
        QJ_CHECK(is_source(&p->embed) && is_source(&p->lm_head));
        check_roundtrip(p, "defaults");
    }
    qj_plan_free(p);

    /* Globals: symmetric, scale dtype, dense dtype. */
    p = pj("{'symmetric': true, 'scale_dtype': 'bf16', 'dense_dtype': 'f16', 'method': 'rtn',"
           " 'bitwidth.0.': 6, 'groupsize.0.': 0}", 2);
    if (p) {
        QJ_CHECK(is_q(qj_plan_linear(p, 0, QJ_LIN_V), 6, 0, 1, QJ_DTYPE_BF16));
        QJ_CHECK(qj_plan_linear(p, 1, QJ_LIN_V)->dtype == QJ_DTYPE_F16);
        QJ_CHECK(is_source(&p->embed)); /* dense_dtype is about linears only */
        check_roundtrip(p, "globals");
    }
    qj_plan_free(p);

    /* A whole uniform JSON plan is described by its setting. */
    p = pj("{'bitwidth.0.': 4, 'groupsize.0.': 128, 'bitwidth.1.': 4}", 2);
    if (p) QJ_CHECK(strcmp(p->desc, "int4-g128 (plan.json)") == 0);
    qj_plan_free(p);

    /* Layer count inferred from the highest index (block keys and overrides). */
    p = pj("{'bitwidth.2.': 4, 'overrides': {'layers.5.q_proj': 'bf16'}}", 0);
    if (p) QJ_CHECK(p->n_layers == 6);
    qj_plan_free(p);
    QJ_CHECK_FAILS(pj_status("{'overrides': {'lm_head': 'bf16'}}", 0), "cannot infer the number of layers");
}

static void test_overrides(void) {
    /* Specific layer beats wildcard beats block keys, whatever the JSON order. */
    qj_plan *p = pj("{'bitwidth.0.': 4, 'groupsize.0.': 64, 'bitwidth.1.': 4,"
                    " 'overrides': {"
                    "   'layers.1.down_proj': 'bf16',"
                    "   'down_proj': 'int8-g64',"
                    "   'layers.0.q_proj': {'bits': 6, 'group': 32, 'symmetric': true, 'scale_dtype': 'bf16'},"
                    "   'layers.*.k_proj': {'bits': 5},"
                    "   'layers.2.k_proj': {'dtype': 'f32'},"
                    "   'embed': 'int8-pc',"
                    "   'lm_head': {'dtype': 'f16'}}}",
                    3);
    if (p) {
        QJ_CHECK(is_q(qj_plan_linear(p, 0, QJ_LIN_DOWN), 8, 64, 0, QJ_DTYPE_F16));
        QJ_CHECK(is_bf16(qj_plan_linear(p, 1, QJ_LIN_DOWN)));
        QJ_CHECK(is_q(qj_plan_linear(p, 2, QJ_LIN_DOWN), 8, 64, 0, QJ_DTYPE_F16)); /* dense layer too */
        QJ_CHECK(is_q(qj_plan_linear(p, 0, QJ_LIN_Q), 6, 32, 1, QJ_DTYPE_BF16));
        QJ_CHECK(is_q(qj_plan_linear(p, 0, QJ_LIN_V), 4, 64, 0, QJ_DTYPE_F16));
        QJ_CHECK(is_q(qj_plan_linear(p, 1, QJ_LIN_V), 4, 128, 0, QJ_DTYPE_F16));
        QJ_CHECK(is_q(qj_plan_linear(p, 0, QJ_LIN_K), 5, 128, 0, QJ_DTYPE_F16)); /* object group default 128 */
        QJ_CHECK(is_f32(qj_plan_linear(p, 2, QJ_LIN_K)));
        QJ_CHECK(is_source(qj_plan_linear(p, 2, QJ_LIN_Q)));
        QJ_CHECK(is_q(&p->embed, 8, 0, 0, QJ_DTYPE_F16));
        QJ_CHECK(p->lm_head.dtype == QJ_DTYPE_F16);
        QJ_CHECK(!qj_plan_layer_uniform(p, 0) && !qj_plan_layer_uniform(p, 1));
        QJ_CHECK(strcmp(p->desc, "mixed (plan.json)") == 0);
        check_roundtrip(p, "overrides");
    }
    qj_plan_free(p);

    /* "layers.*.<linear>" is the same as "<linear>". */
    qj_plan *a = pj("{'bitwidth.0.': 4, 'overrides': {'layers.*.o_proj': 'int8-g32'}}", 2);
    qj_plan *b = pj("{'bitwidth.0.': 4, 'overrides': {'o_proj': 'int8-g32'}}", 2);
    if (a && b) QJ_CHECK(qj_plan_equal(a, b));
    qj_plan_free(a);
    qj_plan_free(b);

    /* Strings inherit the plan's symmetric / scale_dtype unless they say otherwise. */
    p = pj("{'symmetric': true, 'scale_dtype': 'bf16', 'bitwidth.0.': 4,"
           " 'overrides': {'q_proj': 'int8-g64', 'k_proj': 'int8-g64-asym-f16', 'v_proj': {'bits': 3}}}",
           1);
    if (p) {
        QJ_CHECK(is_q(qj_plan_linear(p, 0, QJ_LIN_Q), 8, 64, 1, QJ_DTYPE_BF16));
        QJ_CHECK(is_q(qj_plan_linear(p, 0, QJ_LIN_K), 8, 64, 0, QJ_DTYPE_F16));
        QJ_CHECK(is_q(qj_plan_linear(p, 0, QJ_LIN_V), 3, 128, 1, QJ_DTYPE_BF16));
        check_roundtrip(p, "inherit");
    }
    qj_plan_free(p);

    /* A quantized head with a dense embedding (the package unties them). */
    p = pj("{'overrides': {'lm_head': 'int6-g32-sym'}}", 2);
    if (p) {
        QJ_CHECK(is_source(&p->embed));
        QJ_CHECK(is_q(&p->lm_head, 6, 32, 1, QJ_DTYPE_F16));
        check_roundtrip(p, "head");
    }
    qj_plan_free(p);
}

/* A deterministic PRNG for random plans. */
static uint32_t rng_state = 12345u;
static uint32_t rnd(uint32_t n) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return (rng_state >> 8) % n;
}
static qj_tensor_plan random_setting(int quant_bias) {
    static const int groups[] = {0, 32, 64, 128, 256, 512};
    static const qj_dtype dense[] = {QJ_DTYPE_F32, QJ_DTYPE_F16, QJ_DTYPE_BF16, QJ_PLAN_DTYPE_SOURCE};
    qj_tensor_plan t;
    memset(&t, 0, sizeof t);
    if ((int)rnd(10) < quant_bias) {
        t.dtype = QJ_DTYPE_Q;
        t.q.bits = 2 + (int)rnd(7);
        t.q.group = groups[rnd(6)];
        t.q.symmetric = (int)rnd(2);
        t.q.scale_dtype = rnd(2) ? QJ_DTYPE_BF16 : QJ_DTYPE_F16;
    } else t.dtype = dense[rnd(4)];
    return t;
}

static void test_roundtrip(void) {
    for (int trial = 0; trial < 300; trial++) {
        int L = 1 + (int)rnd(8);
        qj_plan *p = NULL;
        QJ_CHECK_OK(qj_plan_alloc(L, &p));
        if (!p) continue;
        int style = trial % 4;
        for (int i = 0; i < L; i++) {
            qj_tensor_plan block = random_setting(8);
            for (int l = 0; l < QJ_LIN_COUNT; l++) {
                qj_tensor_plan *t = qj_plan_linear(p, i, (qj_linear)l);
                /* style 0: uniform blocks; 1: a few odd tensors; 2: all random; 3: one linear fixed */
                if (style == 0) *t = block;
                else if (style == 1) *t = rnd(5) ? block : random_setting(5);
                else if (style == 2) *t = random_setting(6);
                else *t = l == QJ_LIN_DOWN ? random_setting(10) : block;
            }
        }
        if (style == 3) /* the same down_proj in every layer: a wildcard */
            for (int i = 1; i < L; i++) *qj_plan_linear(p, i, QJ_LIN_DOWN) = *qj_plan_linear(p, 0, QJ_LIN_DOWN);
        if (rnd(2)) p->embed = random_setting(3);
        if (rnd(2)) p->lm_head = random_setting(5);
        QJ_CHECK_OK(qj_plan_validate(p));
        char what[32];
        snprintf(what, sizeof what, "random %d", trial);
        check_roundtrip(p, what);
        qj_plan *c = NULL;
        QJ_CHECK_OK(qj_plan_clone(p, &c));
        if (c) QJ_CHECK(qj_plan_equal(p, c));
        qj_plan_free(c);
        qj_plan_free(p);
    }

    /* The canonical form of a wildcard. */
    qj_plan *p = pj("{'bitwidth.0.': 4, 'bitwidth.1.': 4, 'overrides': {'down_proj': 'int8-g64'}}", 2);
    char *text = NULL;
    if (p) QJ_CHECK_OK(qj_plan_to_json(p, &text));
    if (text) {
        QJ_CHECK(strstr(text, "\"down_proj\":\t\"int8-g64\"") != NULL);
        QJ_CHECK(strstr(text, "layers.") == NULL);
        QJ_CHECK(strstr(text, "\"method\":\t\"rtn\"") != NULL);
        QJ_CHECK(strstr(text, "\"groupsize.1.\":\t128") != NULL);
    }
    free(text);
    qj_plan_free(p);

    /* Invalid plans built in code are refused by validate and to_json. */
    QJ_CHECK_OK(qj_plan_alloc(2, &p));
    if (p) {
        qj_plan_linear(p, 1, QJ_LIN_UP)->dtype = QJ_DTYPE_Q;
        qj_plan_linear(p, 1, QJ_LIN_UP)->q.bits = 9;
        QJ_CHECK_FAILS(qj_plan_validate(p), "plan: layers.1.up_proj: 9 bits is out of range (2..8)");
        QJ_CHECK_FAILS(qj_plan_to_json(p, &text), "layers.1.up_proj");
        qj_plan_linear(p, 1, QJ_LIN_UP)->q.bits = 4;
        qj_plan_linear(p, 1, QJ_LIN_UP)->q.group = 96;
        qj_plan_linear(p, 1, QJ_LIN_UP)->q.scale_dtype = QJ_DTYPE_F16;
        QJ_CHECK_FAILS(qj_plan_validate(p), "group size 96 is not one of");
        qj_plan_linear(p, 1, QJ_LIN_UP)->q.group = 64;
        p->embed.dtype = QJ_DTYPE_Q;
        p->embed.q.bits = 8;
        p->embed.q.group = 32;
        p->embed.q.scale_dtype = QJ_DTYPE_F32;
        QJ_CHECK_FAILS(qj_plan_validate(p), "plan: embed: scale dtype f32 is not f16 or bf16");
        p->embed.q.scale_dtype = QJ_DTYPE_BF16;
        QJ_CHECK_OK(qj_plan_validate(p));
        snprintf(p->method, sizeof p->method, "gptq");
        QJ_CHECK_FAILS(qj_plan_validate(p), "\"gptq\" is not supported (only \"rtn\" for now)");
    }
    qj_plan_free(p);
    QJ_CHECK_FAILS(qj_plan_alloc(0, &p), "0 layers is out of range");
    QJ_CHECK_FAILS(qj_plan_alloc(QJ_PLAN_MAX_LAYERS + 1, &p), "layers is out of range");
    qj_plan_free(NULL);
    qj_space_free(NULL);
    qj_samples_free(NULL);
}

static void test_plan_errors(void) {
    /* malformed JSON, with its position */
    QJ_CHECK_FAILS(pj_status("{'bitwidth.0.': 4,,}", 2), "plan.json: malformed JSON at line 1, column 20 (byte 19) near \"}\"");
    QJ_CHECK_FAILS(pj_status("{\n  'bitwidth.0.': 4\n  'groupsize.0.': 32}", 2), "malformed JSON at line 3, column 3");
    QJ_CHECK_FAILS(pj_status("{'bitwidth.0.': 4", 2), "unexpected end of input");
    QJ_CHECK_FAILS(pj_status("{} trailing", 2), "near \"trailing\"");
    QJ_CHECK_FAILS(pj_status("", 2), "plan.json: malformed JSON");
    /* not an object */
    QJ_CHECK_FAILS(pj_status("[4, 128]", 2), "plan.json: expected a JSON object, got an array");
    QJ_CHECK_FAILS(pj_status("4", 2), "expected a JSON object, got a number");
    /* unknown keys */
    QJ_CHECK_FAILS(pj_status("{'foo': 1}", 2), "plan.json: unknown key \"foo\"");
    QJ_CHECK_FAILS(pj_status("{'bitwidht.3.': 4}", 8),
                   "plan.json: unknown key \"bitwidht.3.\" (did you mean \"bitwidth.<layer>.\"?)");
    QJ_CHECK_FAILS(pj_status("{'symetric': true}", 8), "(did you mean \"symmetric\"?)");
    QJ_CHECK_FAILS(pj_status("{'parameters': []}", 8), "looks like a parameter space file");
    QJ_CHECK_FAILS(pj_status("{'initial_samples': []}", 8), "looks like an initial-samples file");
    QJ_CHECK_FAILS(pj_status("{'bitwidth.0.': 4, 'bitwidth.0.': 5}", 2), "plan.json: duplicate key \"bitwidth.0.\"");
    /* malformed layer indices */
    QJ_CHECK_FAILS(pj_status("{'bitwidth.x.': 4}", 2), "plan.json: \"bitwidth.x.\": malformed key (expected \"bitwidth.<layer>.\")");
    QJ_CHECK_FAILS(pj_status("{'bitwidth.3': 4}", 8), "\"bitwidth.3\": malformed key");
    QJ_CHECK_FAILS(pj_status("{'groupsize.03.': 32}", 8), "\"groupsize.03.\": malformed key (expected \"groupsize.<layer>.\")");
    QJ_CHECK_FAILS(pj_status("{'bitwidth.-1.': 4}", 8), "\"bitwidth.-1.\": malformed key");
    QJ_CHECK_FAILS(pj_status("{'bitwidth': 4}", 8), "\"bitwidth\": malformed key");
    /* wrong value types */
    QJ_CHECK_FAILS(pj_status("{'bitwidth.0.': '4'}", 2), "\"bitwidth.0.\": expected an integer, got a string \"4\"");
    QJ_CHECK_FAILS(pj_status("{'bitwidth.0.': [4]}", 2), "expected an integer, got an array [4]");
    QJ_CHECK_FAILS(pj_status("{'bitwidth.0.': null}", 2), "expected an integer, got null");
    QJ_CHECK_FAILS(pj_status("{'symmetric': 'yes'}", 2), "\"symmetric\": expected true or false, got a string \"yes\"");
    QJ_CHECK_FAILS(pj_status("{'symmetric': 1}", 2), "\"symmetric\": expected true or false, got a number 1");
    QJ_CHECK_FAILS(pj_status("{'method': 1}", 2), "\"method\": expected a string, got a number");
    QJ_CHECK_FAILS(pj_status("{'overrides': []}", 2), "\"overrides\": expected an object, got an array");
    QJ_CHECK_FAILS(pj_status("{'scale_dtype': 16}", 2), "\"scale_dtype\": expected a string, got a number");
    /* bad values */
    QJ_CHECK_FAILS(pj_status("{'bitwidth.1.': 1}", 2), "plan.json: \"bitwidth.1.\": 1 is not a bit width (2..8, or 16 = bf16 / 32 = f32 dense)");
    QJ_CHECK_FAILS(pj_status("{'bitwidth.1.': 9}", 2), "\"bitwidth.1.\": 9 is not a bit width");
    QJ_CHECK_FAILS(pj_status("{'bitwidth.1.': 2.5}", 2), "\"bitwidth.1.\": 2.5 is not an integer");
    QJ_CHECK_FAILS(pj_status("{'bitwidth.1.': 1e30}", 2), "is not an integer");
    QJ_CHECK(pj_status("{'bitwidth.1.': 7}", 2) == QJ_OK); /* 7 bits is valid in a plan */
    QJ_CHECK(pj_status("{'bitwidth.1.': 4.0}", 2) == QJ_OK);
    QJ_CHECK_FAILS(pj_status("{'bitwidth.0.': 4, 'groupsize.0.': 48}", 2), "\"groupsize.0.\": 48 is not a group size (32, 64, 128, 256, 512, or 0 = per-channel)");
    QJ_CHECK_FAILS(pj_status("{'bitwidth.0.': 4, 'groupsize.0.': 1024}", 2), "\"groupsize.0.\": 1024 is not a group size");
    QJ_CHECK_FAILS(pj_status("{'bitwidth.0.': 4, 'groupsize.0.': -1}", 2), "\"groupsize.0.\": -1 is not a group size");
    QJ_CHECK_FAILS(pj_status("{'scale_dtype': 'f32'}", 2), "\"scale_dtype\": \"f32\" is not a scale dtype (f16 or bf16)");
    QJ_CHECK_FAILS(pj_status("{'dense_dtype': 'int4'}", 2), "\"dense_dtype\": \"int4\" is not a dtype (f32, f16, bf16 or source)");
    /* layer out of range */
    QJ_CHECK_FAILS(pj_status("{'bitwidth.40.': 4}", 32), "plan.json: \"bitwidth.40.\": layer 40 out of range (model has 32 layers)");
    QJ_CHECK_FAILS(pj_status("{'groupsize.32.': 32, 'bitwidth.32.': 4}", 32), "layer 32 out of range (model has 32 layers)");
    QJ_CHECK_FAILS(pj_status("{'bitwidth.5000.': 4}", 0), "layer 5000 out of range (at most 4096 layers)");
    QJ_CHECK_FAILS(pj_status("{'bitwidth.0.': 4}", -1), "-1 layers is out of range");
    /* groupsize without bitwidth */
    QJ_CHECK_FAILS(pj_status("{'bitwidth.0.': 4, 'groupsize.1.': 64}", 2), "\"groupsize.1.\": given but \"bitwidth.1.\" is missing");
    /* method */
    qj_plan *p = NULL;
    qj_status s = qj_plan_parse_json(J("{'method': 'gptq'}"), "plan.json", 2, &p);
    QJ_CHECK(s == QJ_ERR_UNSUPPORTED);
    QJ_CHECK(strstr(qj_last_error(), "plan.json: \"method\": \"gptq\" is not supported (only \"rtn\" for now)") != NULL);
    /* override patterns */
    QJ_CHECK_FAILS(pj_status("{'overrides': {'attn': 'bf16'}}", 2), "plan.json: overrides.\"attn\": unknown override pattern (expected \"embed\", \"lm_head\"");
    QJ_CHECK_FAILS(pj_status("{'overrides': {'layers.1.foo': 'bf16'}}", 2), "overrides.\"layers.1.foo\": unknown tensor \"foo\" (expected q_proj");
    QJ_CHECK_FAILS(pj_status("{'overrides': {'layers.*.mlp': 'bf16'}}", 2), "unknown tensor \"mlp\"");
    QJ_CHECK_FAILS(pj_status("{'overrides': {'layers.x.q_proj': 'bf16'}}", 2), "overrides.\"layers.x.q_proj\": malformed layer index");
    QJ_CHECK_FAILS(pj_status("{'overrides': {'layers.1': 'bf16'}}", 2), "overrides.\"layers.1\": malformed layer index");
    QJ_CHECK_FAILS(pj_status("{'overrides': {'layers.9.q_proj': 'bf16'}}", 4), "overrides.\"layers.9.q_proj\": layer 9 out of range (model has 4 layers)");
    QJ_CHECK_FAILS(pj_status("{'overrides': {'down_proj': 'bf16', 'layers.*.down_proj': 'f32'}}", 2),
                   "overrides: \"down_proj\" and \"layers.*.down_proj\" both set down_proj of every layer");
    QJ_CHECK_FAILS(pj_status("{'overrides': {'embed': 'bf16', 'embed': 'f32'}}", 2), "\"overrides\": duplicate key \"embed\"");
    /* override settings */
    QJ_CHECK_FAILS(pj_status("{'overrides': {'down_proj': 'int9-g64'}}", 2), "overrides.\"down_proj\": \"int9-g64\": 9 bits is out of range (2..8)");
    QJ_CHECK_FAILS(pj_status("{'overrides': {'down_proj': 'fp8'}}", 2), "overrides.\"down_proj\": \"fp8\" is not a setting (expected");
    QJ_CHECK_FAILS(pj_status("{'overrides': {'down_proj': 5}}", 2), "overrides.\"down_proj\": expected a string or an object, got a number 5");
    QJ_CHECK_FAILS(pj_status("{'overrides': {'down_proj': {'bits': 4, 'group': 48}}}", 2), "overrides.\"down_proj\".group: 48 is not a group size");
    QJ_CHECK_FAILS(pj_status("{'overrides': {'down_proj': {'bits': 16}}}", 2), "overrides.\"down_proj\".bits: 16 is not a bit width (2..8; write {\"dtype\": \"bf16\"}");
    QJ_CHECK_FAILS(pj_status("{'overrides': {'down_proj': {'bits': '4'}}}", 2), "overrides.\"down_proj\".bits: expected an integer, got a string \"4\"");
    QJ_CHECK_FAILS(pj_status("{'overrides': {'down_proj': {'bits': 4, 'symmetric': 'no'}}}", 2), "overrides.\"down_proj\".symmetric: expected true or false");
    QJ_CHECK_FAILS(pj_status("{'overrides': {'down_proj': {'bits': 4, 'scale_dtype': 'f32'}}}", 2), "overrides.\"down_proj\".scale_dtype: \"f32\" is not a scale dtype");
    QJ_CHECK_FAILS(pj_status("{'overrides': {'down_proj': {'dtype': 'f8'}}}", 2), "overrides.\"down_proj\".dtype: \"f8\" is not a dtype");
    QJ_CHECK_FAILS(pj_status("{'overrides': {'down_proj': {'dtype': 'bf16', 'bits': 4}}}", 2), "\"dtype\" (dense) cannot be combined with \"bits\" (quantized)");
    QJ_CHECK_FAILS(pj_status("{'overrides': {'down_proj': {}}}", 2), "overrides.\"down_proj\": expected \"bits\" (quantized) or \"dtype\" (dense)");
    QJ_CHECK_FAILS(pj_status("{'overrides': {'down_proj': {'bits': 4, 'groups': 64}}}", 2), "overrides.\"down_proj\": unknown key \"groups\" (expected bits, group");
    QJ_CHECK(p == NULL);
}

static void test_space_errors(void) {
    const char *ok = "{'parameters': ["
                     "{'name': 'bitwidth', 'name_format': 'bitwidth.{i}.', 'layers': ["
                     "  {'range': [0, 2], 'type': 'fixed', 'value': 5},"
                     "  {'range': [2, 4], 'type': 'choice', 'values': [2, 3, 4, 16]}]},"
                     "{'name': 'groupsize', 'name_format': 'groupsize.{i}.', 'layers': ["
                     "  {'range': [0, 4], 'type': 'choice', 'values': [32, 0]}]}]}";
    qj_space *sp = NULL;
    QJ_CHECK_OK(qj_space_parse_json(J(ok), "space.json", 0, &sp));
    if (sp) {
        QJ_CHECK(sp->n_layers == 4);
        const qj_space_choice *c = &sp->params[QJ_SPACE_BITWIDTH].layers[1];
        QJ_CHECK(c->fixed && c->n_values == 1 && c->values[0] == 5);
        c = &sp->params[QJ_SPACE_BITWIDTH].layers[3];
        QJ_CHECK(!c->fixed && c->n_values == 4 && c->values[3] == 16);
        QJ_CHECK(qj_space_allows(sp, QJ_SPACE_GROUPSIZE, 2, 0) && !qj_space_allows(sp, QJ_SPACE_GROUPSIZE, 2, 64));
        QJ_CHECK(!qj_space_allows(sp, QJ_SPACE_BITWIDTH, 4, 5));
        QJ_CHECK(strcmp(sp->params[QJ_SPACE_GROUPSIZE].name_format, "groupsize.{i}.") == 0);

        /* Plans against the space. */
        qj_plan *p = pj("{'bitwidth.0.': 5, 'groupsize.0.': 32, 'bitwidth.1.': 5, 'groupsize.1.': 0,"
                        " 'bitwidth.2.': 16, 'bitwidth.3.': 2, 'groupsize.3.': 32}", 4);
        if (p) QJ_CHECK_OK(qj_space_check_plan(sp, p, "p"));
        qj_plan_free(p);
        p = pj("{'bitwidth.0.': 5, 'groupsize.0.': 32, 'bitwidth.1.': 5, 'groupsize.1.': 64,"
               " 'bitwidth.2.': 16, 'bitwidth.3.': 2, 'groupsize.3.': 32}", 4);
        if (p) QJ_CHECK_FAILS(qj_space_check_plan(sp, p, "p"), "p: \"groupsize.1.\": 64 is not allowed by the space (choices 32,0)");
        qj_plan_free(p);
        p = pj("{'bitwidth.0.': 4, 'groupsize.0.': 32}", 4);
        if (p) QJ_CHECK_FAILS(qj_space_check_plan(sp, p, "p"), "p: \"bitwidth.0.\": 4 is not allowed by the space (fixed at 5)");
        qj_plan_free(p);
        p = pj("{'bitwidth.0.': 5, 'groupsize.0.': 32, 'bitwidth.1.': 5, 'groupsize.1.': 32}", 4);
        if (p) QJ_CHECK_FAILS(qj_space_check_plan(sp, p, "p"), "p: layer 2 is dense source, which a space cannot express");
        qj_plan_free(p);
        p = pj("{'bitwidth.0.': 5, 'groupsize.0.': 32, 'overrides': {'layers.0.down_proj': 'int8-g32'}}", 4);
        if (p) QJ_CHECK_FAILS(qj_space_check_plan(sp, p, "p"), "p: layer 0: q_proj is int5-g32 but down_proj is int8-g32");
        qj_plan_free(p);
        QJ_CHECK_OK(qj_plan_parse("int4-g32", 3, &p));
        if (p) QJ_CHECK_FAILS(qj_space_check_plan(sp, p, "p"), "p: the plan has 3 layers, the space 4");
        qj_plan_free(p);

        /* JSON samples against the space. */
        cJSON *smp = cJSON_Parse(J("{'bitwidth.0.': 5, 'groupsize.0.': 32, 'bitwidth.1.': 5, 'groupsize.1.': 0,"
                                   " 'bitwidth.2.': 16, 'groupsize.2.': 32, 'bitwidth.3.': 2, 'groupsize.3.': 32,"
                                   " 'symmetric': true}"));
        QJ_CHECK_OK(qj_space_check_json(sp, smp, "s.json"));
        cJSON_ReplaceItemInObject(smp, "bitwidth.3.", cJSON_CreateNumber(7));
        QJ_CHECK_FAILS(qj_space_check_json(sp, smp, "s.json"), "s.json: \"bitwidth.3.\": 7 is not allowed by the space (choices 2,3,4,16)");
        cJSON_ReplaceItemInObject(smp, "bitwidth.3.", cJSON_CreateString("2"));
        QJ_CHECK_FAILS(qj_space_check_json(sp, smp, "s.json"), "s.json: \"bitwidth.3.\": expected an integer, got a string \"2\"");
        cJSON_ReplaceItemInObject(smp, "bitwidth.3.", cJSON_CreateNumber(2));
        cJSON_DeleteItemFromObject(smp, "groupsize.2.");
        QJ_CHECK_FAILS(qj_space_check_json(sp, smp, "s.json"), "s.json: \"groupsize.2.\": missing (the space has 4 layers)");
        cJSON_AddNumberToObject(smp, "groupsize.2.", 32);
        cJSON_AddNumberToObject(smp, "bitwidth.4.", 4);
        QJ_CHECK_FAILS(qj_space_check_json(sp, smp, "s.json"), "s.json: \"bitwidth.4.\": layer 4 is beyond the space (4 layers)");
        cJSON_Delete(smp);
    }
    qj_space_free(sp);
    QJ_CHECK_OK(qj_space_parse_json(J(ok), "space.json", 4, &sp));
    qj_space_free(sp);

#define BW(ranges) "{'name': 'bitwidth', 'name_format': 'bitwidth.{i}.', 'layers': [" ranges "]}"
#define GS(ranges) "{'name': 'groupsize', 'name_format': 'groupsize.{i}.', 'layers': [" ranges "]}"
#define GS4 GS("{'range': [0, 4], 'type': 'fixed', 'value': 64}")
#define BW4 BW("{'range': [0, 4], 'type': 'fixed', 'value': 4}")
#define SPACE(a, b) "{'parameters': [" a ", " b "]}"
    QJ_CHECK(sp_status(SPACE(BW4, GS4), 4) == QJ_OK);
    /* overlapping ranges */
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [0, 3], 'type': 'fixed', 'value': 5}, {'range': [2, 4], 'type': 'fixed', 'value': 4}"), GS4), 0),
                   "space.json: parameters[0].layers[1].range: [2, 4] overlaps parameters[0].layers[0] (range [0, 3]) at layer 2");
    /* gaps */
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [0, 2], 'type': 'fixed', 'value': 5}, {'range': [3, 4], 'type': 'fixed', 'value': 4}"), GS4), 0),
                   "space.json: parameters[0] (\"bitwidth\"): layer 2 has no value (a gap between ranges)");
    QJ_CHECK_FAILS(sp_status(SPACE(BW4, GS("{'range': [2, 4], 'type': 'fixed', 'value': 32}")), 0),
                   "parameters[1] (\"groupsize\"): layers 0..1 have no value");
    QJ_CHECK_FAILS(sp_status(SPACE(BW4, GS4), 6), "space.json: parameters: layers 4..5 have no value (model has 6 layers)");
    /* both parameters cover the same layers */
    QJ_CHECK_FAILS(sp_status(SPACE(BW4, GS("{'range': [0, 3], 'type': 'fixed', 'value': 32}")), 0),
                   "\"bitwidth\" covers layers [0, 4) but \"groupsize\" covers [0, 3): both must cover the same layers");
    /* range out of bounds, empty, negative, malformed */
    QJ_CHECK_FAILS(sp_status(SPACE(BW4, GS4), 3), "space.json: parameters[0].layers[0].range: [0, 4] is out of bounds (model has 3 layers)");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [3, 3], 'type': 'fixed', 'value': 5}"), GS4), 0),
                   "parameters[0].layers[0].range: [3, 3] is empty (start must be < end");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [4, 2], 'type': 'fixed', 'value': 5}"), GS4), 0), "[4, 2] is empty");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [-1, 4], 'type': 'fixed', 'value': 5}"), GS4), 0), "[-1, 4] starts below 0");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [0, 99999], 'type': 'fixed', 'value': 5}"), GS4), 0), "out of bounds (at most 4096 layers)");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [0], 'type': 'fixed', 'value': 5}"), GS4), 0), "parameters[0].layers[0].range: expected [start, end], got [0]");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [0, 'x'], 'type': 'fixed', 'value': 5}"), GS4), 0), "expected [start, end] of integers");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'type': 'fixed', 'value': 5}"), GS4), 0), "parameters[0].layers[0]: missing \"range\"");
    /* types and values */
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [0, 4], 'type': 'choice', 'values': []}"), GS4), 0),
                   "space.json: parameters[0].layers[0].values: empty choice list");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [0, 4], 'type': 'choice', 'values': [2, 9]}"), GS4), 0),
                   "parameters[0].layers[0].values[1]: 9 is not allowed (bit widths are 2..8, 16 (bf16 dense) or 32 (f32 dense))");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [0, 4], 'type': 'fixed', 'value': 1}"), GS4), 0),
                   "parameters[0].layers[0].value: 1 is not allowed (bit widths are");
    QJ_CHECK_FAILS(sp_status(SPACE(BW4, GS("{'range': [0, 4], 'type': 'choice', 'values': [32, 48]}")), 0),
                   "parameters[1].layers[0].values[1]: 48 is not allowed (group sizes are 32, 64, 128, 256, 512 or 0 (per-channel))");
    QJ_CHECK_FAILS(sp_status(SPACE(BW4, GS("{'range': [0, 4], 'type': 'fixed', 'value': 1024}")), 0), "1024 is not allowed (group sizes");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [0, 4], 'type': 'choice', 'values': [2, 4, 2]}"), GS4), 0),
                   "parameters[0].layers[0].values[2]: 2 appears twice");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [0, 4], 'type': 'choice', 'values': [2.5]}"), GS4), 0), "values[0]: 2.5 is not an integer");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [0, 4], 'type': 'choice', 'values': 4}"), GS4), 0), "values: expected an array, got a number 4");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [0, 4], 'type': 'any', 'value': 4}"), GS4), 0),
                   "parameters[0].layers[0].type: \"any\" is not \"fixed\" or \"choice\"");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [0, 4], 'type': 'fixed', 'values': [4]}"), GS4), 0), "\"values\" belongs to \"type\": \"choice\"");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [0, 4], 'type': 'choice', 'value': 4}"), GS4), 0), "\"value\" belongs to \"type\": \"fixed\"");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [0, 4], 'type': 'fixed'}"), GS4), 0), "missing \"value\" for \"type\": \"fixed\"");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [0, 4], 'type': 'choice'}"), GS4), 0), "missing \"values\" for \"type\": \"choice\"");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [0, 4], 'value': 4}"), GS4), 0), "missing \"type\"");
    QJ_CHECK_FAILS(sp_status(SPACE(BW("{'range': [0, 4], 'type': 'fixed', 'value': 4, 'step': 1}"), GS4), 0),
                   "parameters[0].layers[0]: unknown key \"step\"");
    /* parameters */
    QJ_CHECK_FAILS(sp_status("{'parameters': [{'name': 'bits', 'name_format': 'bits.{i}.', 'layers': []}]}", 0),
                   "space.json: parameters[0].name: unknown parameter \"bits\" (expected \"bitwidth\" or \"groupsize\")");
    QJ_CHECK_FAILS(sp_status("{'parameters': [{'name': 'bitwidth', 'name_format': 'bitwidth', 'layers': []}]}", 0),
                   "parameters[0].name_format: \"bitwidth\" has no \"{i}\"");
    QJ_CHECK_FAILS(sp_status("{'parameters': [{'name': 'bitwidth', 'name_format': 'bw.{i}', 'layers': []}]}", 0),
                   "parameters[0].name_format: \"bw.{i}\" must be \"bitwidth.{i}.\"");
    QJ_CHECK_FAILS(sp_status("{'parameters': [{'name': 'bitwidth', 'name_format': 'bitwidth.{i}.', 'layers': []}]}", 0),
                   "parameters[0].layers: no ranges");
    QJ_CHECK_FAILS(sp_status(SPACE(BW4, BW4), 0), "parameters[1].name: \"bitwidth\" appears twice (also parameters[0])");
    QJ_CHECK_FAILS(sp_status("{'parameters': [" BW4 "]}", 0),
                   "space.json: parameters: missing parameter \"groupsize\" (a space needs both");
    QJ_CHECK_FAILS(sp_status("{'parameters': [{'name': 'bitwidth', 'layers': []}]}", 0), "parameters[0]: missing \"name_format\"");
    QJ_CHECK_FAILS(sp_status("{'parameters': [{'name_format': 'bitwidth.{i}.'}]}", 0), "parameters[0]: missing \"name\"");
    QJ_CHECK_FAILS(sp_status("{'parameters': [{'name': 'bitwidth', 'name_format': 'bitwidth.{i}.', 'layers': [], 'x': 1}]}", 0),
                   "parameters[0]: unknown key \"x\" (expected name, name_format or layers)");
    QJ_CHECK_FAILS(sp_status("{'parameters': [4]}", 0), "parameters[0]: expected an object, got a number 4");
    QJ_CHECK_FAILS(sp_status("{'parameters': {}}", 0), "space.json: parameters: expected an array, got an object");
    QJ_CHECK_FAILS(sp_status("{}", 0), "space.json: missing \"parameters\"");
    QJ_CHECK_FAILS(sp_status("{'parameters': [], 'seed': 1}", 0), "space.json: unknown key \"seed\"");
    QJ_CHECK_FAILS(sp_status("{'initial_samples': []}", 0), "this looks like an initial-samples file");
    QJ_CHECK_FAILS(sp_status("[1]", 0), "space.json: expected a JSON object, got an array");
    QJ_CHECK_FAILS(sp_status("{'parameters': [", 0), "space.json: malformed JSON at line 1");
    QJ_CHECK_FAILS(qj_space_parse("/nonexistent/space.json", 0, &sp), "/nonexistent/space.json: cannot open");
    QJ_CHECK(sp == NULL);

    /* The default space. */
    QJ_CHECK_OK(qj_space_default(3, &sp));
    if (sp) {
        QJ_CHECK(sp->n_layers == 3);
        int nb = sp->params[QJ_SPACE_BITWIDTH].layers[2].n_values, ng = sp->params[QJ_SPACE_GROUPSIZE].layers[2].n_values;
        QJ_CHECK(nb == 6 && ng == 5);
        QJ_CHECK(qj_space_allows(sp, QJ_SPACE_BITWIDTH, 0, 8) && !qj_space_allows(sp, QJ_SPACE_BITWIDTH, 0, 7));
        QJ_CHECK(qj_space_allows(sp, QJ_SPACE_GROUPSIZE, 1, 512) && !qj_space_allows(sp, QJ_SPACE_GROUPSIZE, 1, 0));
        qj_plan *p = NULL;
        QJ_CHECK_OK(qj_plan_parse("int4-g128", 3, &p));
        if (p) QJ_CHECK_OK(qj_space_check_plan(sp, p, NULL));
        qj_plan_free(p);
        QJ_CHECK_OK(qj_plan_parse("int4-pc", 3, &p));
        if (p) QJ_CHECK_FAILS(qj_space_check_plan(sp, p, NULL), "int4-pc: \"groupsize.0.\": 0 is not allowed by the space (choices 32,64,128,256,512)");
        qj_plan_free(p);
    }
    qj_space_free(sp);
    QJ_CHECK_FAILS(qj_space_default(0, &sp), "0 layers is out of range");
}

static void test_samples_inline(void) {
    const char *space_json = "{'parameters': ["
                             "{'name': 'bitwidth', 'name_format': 'bitwidth.{i}.', 'layers': ["
                             "  {'range': [0, 2], 'type': 'choice', 'values': [4, 8]}]},"
                             "{'name': 'groupsize', 'name_format': 'groupsize.{i}.', 'layers': ["
                             "  {'range': [0, 2], 'type': 'fixed', 'value': 64}]}]}";
    qj_space *sp = NULL;
    QJ_CHECK_OK(qj_space_parse_json(J(space_json), "space.json", 2, &sp));
    if (!sp) return;
    qj_samples *ss = NULL;
    QJ_CHECK_OK(qj_samples_parse_json(J("{'initial_samples': ["
                                        "{'bitwidth.0.': 4, 'groupsize.0.': 64, 'bitwidth.1.': 8, 'groupsize.1.': 64},"
                                        "{'bitwidth.0.': 8, 'groupsize.0.': 64, 'bitwidth.1.': 8, 'groupsize.1.': 64}]}"),
                                      "s.json", sp, 0, &ss));
    if (ss) {
        QJ_CHECK(ss->n == 2);
        QJ_CHECK(is_q(qj_plan_linear(ss->plans[0], 1, QJ_LIN_DOWN), 8, 64, 0, QJ_DTYPE_F16));
        QJ_CHECK(strcmp(ss->plans[0]->desc, "mixed (s.json initial_samples[0])") == 0);
        QJ_CHECK(strcmp(ss->plans[1]->desc, "int8-g64 (s.json initial_samples[1])") == 0);
        for (int i = 0; i < ss->n; i++) QJ_CHECK_OK(qj_space_check_plan(sp, ss->plans[i], NULL));
    }
    qj_samples_free(ss);
    ss = NULL;
    QJ_CHECK_OK(qj_samples_parse_json(J("{'initial_samples': []}"), "s.json", sp, 0, &ss));
    if (ss) QJ_CHECK(ss->n == 0);
    qj_samples_free(ss);
    /* No space: each sample's layer count is inferred. */
    QJ_CHECK_OK(qj_samples_parse_json(J("{'initial_samples': [{'bitwidth.2.': 3}, {'bitwidth.0.': 3}]}"), "s.json", NULL, 0, &ss));
    if (ss) QJ_CHECK(ss->n == 2 && ss->plans[0]->n_layers == 3 && ss->plans[1]->n_layers == 1);
    qj_samples_free(ss);

    qj_status s;
#define SS(text) (ss = NULL, s = qj_samples_parse_json(J(text), "s.json", sp, 0, &ss), qj_samples_free(ss), s)
    QJ_CHECK_FAILS(SS("{'initial_samples': [{'bitwidth.0.': 4, 'groupsize.0.': 64, 'bitwidth.1.': 5, 'groupsize.1.': 64}]}"),
                   "s.json: initial_samples[0]: \"bitwidth.1.\": 5 is not allowed by the space (choices 4,8)");
    QJ_CHECK_FAILS(SS("{'initial_samples': [{'bitwidth.0.': 4, 'groupsize.0.': 64, 'bitwidth.1.': 4, 'groupsize.1.': 64},"
                      " {'bitwidth.0.': 4, 'groupsize.0.': 32, 'bitwidth.1.': 4, 'groupsize.1.': 64}]}"),
                   "s.json: initial_samples[1]: \"groupsize.0.\": 32 is not allowed by the space (fixed at 64)");
    QJ_CHECK_FAILS(SS("{'initial_samples': [{'bitwidth.0.': 4, 'groupsize.0.': 64}]}"),
                   "s.json: initial_samples[0]: \"bitwidth.1.\": missing (the space has 2 layers)");
    QJ_CHECK_FAILS(SS("{'initial_samples': [{'bitwidth.0.': 4, 'groupsize.0.': 64, 'bitwidth.1.': 4, 'groupsize.1.': 64, 'bitwidth.2.': 4}]}"),
                   "s.json: initial_samples[0]: \"bitwidth.2.\": layer 2 out of range (model has 2 layers)");
    QJ_CHECK_FAILS(SS("{'initial_samples': [{'bitwidth.0.': 4, 'groupsize.0.': 64, 'bitwidht.1.': 4}]}"),
                   "s.json: initial_samples[0]: unknown key \"bitwidht.1.\"");
    QJ_CHECK_FAILS(SS("{'initial_samples': [[4, 64]]}"), "s.json: initial_samples[0]: expected a JSON object, got an array");
    QJ_CHECK_FAILS(SS("{'initial_samples': {}}"), "s.json: initial_samples: expected an array, got an object");
    QJ_CHECK_FAILS(SS("{'samples': []}"), "s.json: unknown key \"samples\"");
    QJ_CHECK_FAILS(SS("{'bitwidth.0.': 4}"), "this looks like a single plan: wrap it as {\"initial_samples\": [plan]}");
    QJ_CHECK_FAILS(SS("{}"), "s.json: missing \"initial_samples\"");
    QJ_CHECK_FAILS(SS("{'initial_samples': [}"), "s.json: malformed JSON at line 1");
    ss = NULL;
    QJ_CHECK_FAILS(qj_samples_parse_json(J("{'initial_samples': []}"), "s.json", sp, 3, &ss),
                   "s.json: the model has 3 layers but the space (space.json) has 2");
    QJ_CHECK(ss == NULL);
    QJ_CHECK_FAILS(qj_samples_parse("/nonexistent/s.json", sp, 0, &ss), "/nonexistent/s.json: cannot open");
    qj_space_free(sp);
}

/* The seed's real files: spaces of 32 layers, 10 initial samples each. */
static int test_real_formats(void) {
    static const char *const models[] = {"Llama3-8B", "Mistral-7B"};
    int ran = 0;
    for (int m = 0; m < 2; m++) {
        char rel[128];
        snprintf(rel, sizeof rel, "formats/%s_parameters.json", models[m]);
        const char *space_path = qj_test_shared(rel);
        snprintf(rel, sizeof rel, "formats/%s_initial_samples.json", models[m]);
        const char *samples_path = qj_test_shared(rel);
        if (!space_path || !samples_path) {
            printf("skip: %s formats not found (set QJ_SHARED)\n", models[m]);
            continue;
        }
        ran++;
        qj_space *sp = NULL, *sp0 = NULL;
        QJ_CHECK_OK(qj_space_parse(space_path, 32, &sp));
        QJ_CHECK_OK(qj_space_parse(space_path, 0, &sp0));
        qj_space *bad = NULL;
        QJ_CHECK_FAILS(qj_space_parse(space_path, 40, &bad), "layers 32..39 have no value (model has 40 layers)");
        QJ_CHECK_FAILS(qj_space_parse(space_path, 30, &bad), "is out of bounds (model has 30 layers)");
        QJ_CHECK(bad == NULL);
        if (!sp || !sp0) {
            qj_space_free(sp);
            qj_space_free(sp0);
            continue;
        }
        QJ_CHECK(sp0->n_layers == 32);
        const qj_space_choice *c0 = &sp->params[QJ_SPACE_BITWIDTH].layers[0];
        const qj_space_choice *c5 = &sp->params[QJ_SPACE_BITWIDTH].layers[5];
        const qj_space_choice *g5 = &sp->params[QJ_SPACE_GROUPSIZE].layers[5];
        QJ_CHECK(c0->fixed && c0->n_values == 1 && c0->values[0] == 5);
        QJ_CHECK(!c5->fixed && c5->n_values == 6 && c5->values[5] == 8);
        QJ_CHECK(!g5->fixed && g5->n_values == 4 && g5->values[3] == 256);
        QJ_CHECK(sp->params[QJ_SPACE_GROUPSIZE].layers[0].values[0] == 32);

        qj_samples *ss = NULL;
        QJ_CHECK_OK(qj_samples_parse(samples_path, sp, 32, &ss));
        if (ss) {
            QJ_CHECK(ss->n == 10);
            qj_space *def = NULL;
            QJ_CHECK_OK(qj_space_default(32, &def));
            for (int i = 0; i < ss->n; i++) {
                const qj_plan *p = ss->plans[i];
                QJ_CHECK(p->n_layers == 32);
                QJ_CHECK_OK(qj_space_check_plan(sp, p, NULL));
                if (def) QJ_CHECK_OK(qj_space_check_plan(def, p, NULL)); /* the seed's choices are in the default */
                for (int l = 0; l < 32; l++) QJ_CHECK(qj_plan_layer_uniform(p, l));
                QJ_CHECK(is_q(qj_plan_linear(p, 0, QJ_LIN_Q), 5, 32, 0, QJ_DTYPE_F16));
                QJ_CHECK(is_source(&p->embed) && is_source(&p->lm_head));
                check_roundtrip(p, "real sample");
            }
            qj_space_free(def);
        }
        qj_samples_free(ss);
        ss = NULL;
        QJ_CHECK_OK(qj_samples_parse(samples_path, NULL, 0, &ss)); /* without a space */
        if (ss) QJ_CHECK(ss->n == 10 && ss->plans[9]->n_layers == 32);
        qj_samples_free(ss);

        /* A sample pushed outside the space: the message names the sample and the key. */
        char *text = NULL;
        QJ_CHECK_OK(qj_read_file(samples_path, &text, NULL));
        cJSON *root = text ? cJSON_Parse(text) : NULL;
        QJ_CHECK(root != NULL);
        if (root) {
            cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "initial_samples");
            cJSON *s3 = cJSON_GetArrayItem(arr, 3);
            cJSON_ReplaceItemInObject(s3, "bitwidth.5.", cJSON_CreateNumber(7));
            char *mod = cJSON_PrintUnformatted(root);
            ss = NULL;
            QJ_CHECK_FAILS(qj_samples_parse_json(mod, "samples.json", sp, 32, &ss),
                           "samples.json: initial_samples[3]: \"bitwidth.5.\": 7 is not allowed by the space (choices 2,3,4,5,6,8)");
            cJSON_ReplaceItemInObject(s3, "bitwidth.5.", cJSON_CreateNumber(5));
            cJSON_ReplaceItemInObject(s3, "bitwidth.1.", cJSON_CreateNumber(4));
            cJSON_free(mod);
            mod = cJSON_PrintUnformatted(root);
            QJ_CHECK_FAILS(qj_samples_parse_json(mod, "samples.json", sp, 32, &ss),
                           "samples.json: initial_samples[3]: \"bitwidth.1.\": 4 is not allowed by the space (fixed at 5)");
            cJSON_free(mod);
            cJSON_Delete(root);
        }
        free(text);
        /* A space file is not a plan, and vice versa. */
        qj_plan *p = NULL;
        QJ_CHECK_FAILS(qj_plan_parse(space_path, 32, &p), "looks like a parameter space file");
        qj_space *wrong = NULL;
        QJ_CHECK_FAILS(qj_space_parse(samples_path, 32, &wrong), "looks like an initial-samples file");
        QJ_CHECK(wrong == NULL);
        qj_space_free(sp);
        qj_space_free(sp0);
    }
    return ran;
}

int main(void) {
    test_shorthands();
    test_defaults();
    test_overrides();
    test_roundtrip();
    test_plan_errors();
    test_space_errors();
    test_samples_inline();
    test_real_formats();
    return qj_test_finish();
}
