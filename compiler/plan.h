/* plan.h — quantization plans, parameter spaces and initial samples.
 *
 * A plan says, for every tensor the compiler may quantize, what it becomes:
 * each of the 7 linear weights of each transformer block (qj_linear order),
 * the token embedding and the output head. Plans come from a shorthand
 * ("int4-g128", "bf16", ...) or from the seed's JSON sample form
 * ({"bitwidth.0.": 5, "groupsize.0.": 32, ...}) with qjit's additive
 * extensions; docs/FORMATS.md is the reference for every format here.
 *
 * A parameter space (the seed's *_parameters.json) lists, per block, the
 * bit widths and group sizes a search may pick; initial samples
 * ({"initial_samples": [plan, ...]}) are plans a search starts from.
 *
 * Ownership: qj_plan, qj_space and qj_samples objects are created by the
 * functions below and released with their *_free function (each accepts
 * NULL). An out-pointer is written only on success (on failure it is set to
 * NULL and the last-error message names the file and the JSON path at fault).
 * Input strings and cJSON trees are borrowed for the duration of the call
 * only. qj_plan_to_json returns a malloc'd string the caller free()s;
 * qj_plan_to_cjson returns a tree the caller cJSON_Delete()s.
 */
#ifndef QJ_PLAN_H
#define QJ_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "qj_model.h"
#include "qj_status.h"
#include "qj_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Dense, in whatever dtype the source model stores the tensor. */
#define QJ_PLAN_DTYPE_SOURCE QJ_DTYPE_COUNT
/* Largest number of layers a plan or space may describe. */
#define QJ_PLAN_MAX_LAYERS 4096

/* What one tensor becomes. */
typedef struct qj_tensor_plan {
    /* QJ_DTYPE_Q: quantized as q. QJ_DTYPE_F32/F16/BF16: dense in that dtype.
     * QJ_PLAN_DTYPE_SOURCE: dense, kept in the source model's dtype. */
    qj_dtype dtype;
    /* dtype == QJ_DTYPE_Q only (all zero otherwise). bits 2..8; group one of
     * 32, 64, 128, 256, 512, or 0 = per-channel (one group per row: K rounded
     * up to 32, see qj_plan_group_size); scale_dtype F16 or BF16. */
    qj_qformat q;
} qj_tensor_plan;

typedef struct qj_plan {
    int n_layers;
    qj_tensor_plan *linear;  /* (n_layers, QJ_LIN_COUNT), see qj_plan_linear */
    qj_tensor_plan embed;    /* token embedding (vocab_size, dim) */
    qj_tensor_plan lm_head;  /* output head (vocab_size, dim); when the model ties it
                                to the embedding and the two settings differ, the
                                package stores them untied */
    char method[16];         /* quantization method: "rtn" */
    char desc[256];          /* summary: "int4-g128", "bf16", "mixed (plan.json)" */
} qj_plan;

/* Setting of linear l of block `layer` (0 <= layer < n_layers; not checked). */
static inline qj_tensor_plan *qj_plan_linear(const qj_plan *p, int layer, qj_linear l) {
    return &p->linear[(size_t)layer * QJ_LIN_COUNT + (size_t)l];
}
static inline int qj_tensor_plan_quantized(const qj_tensor_plan *t) {
    return t->dtype == QJ_DTYPE_Q;
}
/* Dense dtype a tensor plan resolves to for a source tensor stored as `source`
 * (QJ_DTYPE_Q when it is quantized). */
static inline qj_dtype qj_tensor_plan_dtype(const qj_tensor_plan *t, qj_dtype source) {
    return t->dtype == QJ_PLAN_DTYPE_SOURCE ? source : t->dtype;
}
/* Group size a plan's qformat resolves to for rows of K values: q->group, or
 * for per-channel (q->group == 0) K rounded up to a multiple of 32, so that
 * every row is one group and groups stay whole packed blocks. */
int64_t qj_plan_group_size(const qj_qformat *q, int64_t K);

/* An all-dense plan (every tensor QJ_PLAN_DTYPE_SOURCE, method "rtn"). */
qj_status qj_plan_alloc(int n_layers, qj_plan **out);
qj_status qj_plan_clone(const qj_plan *p, qj_plan **out);
void qj_plan_free(qj_plan *p);

/* A plan from a spec: "{...}" (inline JSON), a shorthand, or a path to a JSON
 * file. Shorthands: f32 | fp32 | f16 | fp16 | bf16 | source (every tensor
 * dense in that dtype, embedding and head included), int<B>-g<G> | int<B>-pc
 * with optional -sym/-asym and -f16/-bf16 (scale dtype) suffixes (all 7
 * linears of every block quantized; embedding and head stay dense source).
 * A shorthand wins over a file of the same name (write ./bf16 for the file).
 * n_layers > 0 is the model's block count; 0 infers it from a JSON plan's
 * highest layer index (shorthands need n_layers > 0). */
qj_status qj_plan_parse(const char *spec, int n_layers, qj_plan **out);
/* A plan from JSON text; name_for_errors (e.g. the file name) prefixes every
 * error message ("plan" when NULL). */
qj_status qj_plan_parse_json(const char *json_text, const char *name_for_errors, int n_layers,
                             qj_plan **out);
/* The same from a parsed cJSON object (e.g. a package manifest's "plan"). */
qj_status qj_plan_from_cjson(const cJSON *obj, const char *name_for_errors, int n_layers,
                             qj_plan **out);

/* Check every setting of a plan built in code (errors name the tensor). */
qj_status qj_plan_validate(const qj_plan *p);
/* Canonical JSON of a resolved plan (plan-JSON format, with "method",
 * "symmetric", "scale_dtype", "dense_dtype" always present); parsing it back
 * with the same n_layers gives a plan that qj_plan_equal calls equal. */
qj_status qj_plan_to_cjson(const qj_plan *p, cJSON **out);
qj_status qj_plan_to_json(const qj_plan *p, char **out);
/* 1 when both plans resolve every tensor the same way (desc is not compared). */
int qj_plan_equal(const qj_plan *a, const qj_plan *b);
/* 1 when the 7 linears of block `layer` share one setting. */
int qj_plan_layer_uniform(const qj_plan *p, int layer);

/* Shorthand of one setting into buf: "int4-g128", "int8-pc-sym",
 * "int4-g64-bf16" (bf16 scales), "bf16", "source". Returns buf. */
const char *qj_tensor_plan_str(const qj_tensor_plan *t, char *buf, size_t n);
/* 1 when two settings are the same (fields of q compared only when quantized). */
int qj_tensor_plan_equal(const qj_tensor_plan *a, const qj_tensor_plan *b);

/* ---- parameter spaces ---------------------------------------------------- */

typedef enum qj_space_param_id {
    QJ_SPACE_BITWIDTH = 0, /* "bitwidth", keys "bitwidth.{i}." */
    QJ_SPACE_GROUPSIZE,    /* "groupsize", keys "groupsize.{i}." */
    QJ_SPACE_NPARAMS
} qj_space_param_id;

#define QJ_SPACE_MAX_VALUES 16

/* Allowed values of one parameter for one block. */
typedef struct qj_space_choice {
    int fixed;                       /* 1: the range said "type": "fixed" */
    int n_values;                    /* 1..QJ_SPACE_MAX_VALUES */
    int values[QJ_SPACE_MAX_VALUES]; /* (n_values) in file order */
} qj_space_choice;

typedef struct qj_space_param {
    char name[16];           /* "bitwidth" or "groupsize" */
    char name_format[32];    /* "bitwidth.{i}." or "groupsize.{i}." */
    qj_space_choice *layers; /* (n_layers) */
} qj_space_param;

typedef struct qj_space {
    int n_layers;
    qj_space_param params[QJ_SPACE_NPARAMS]; /* indexed by qj_space_param_id */
    char name[256];                          /* file the space came from, or "default" */
} qj_space;

/* Parse a *_parameters.json file. n_layers > 0: the model's block count, the
 * ranges must cover exactly [0, n_layers); 0: inferred from the ranges. */
qj_status qj_space_parse(const char *path, int n_layers, qj_space **out);
qj_status qj_space_parse_json(const char *json_text, const char *name_for_errors, int n_layers,
                              qj_space **out);
/* The default space: every block chooses bits {2,3,4,5,6,8} x group
 * {32,64,128,256,512}. */
qj_status qj_space_default(int n_layers, qj_space **out);
void qj_space_free(qj_space *s);
/* 1 when value v is allowed for block `layer` of parameter `param`. */
int qj_space_allows(const qj_space *s, qj_space_param_id param, int layer, int v);

/* Is a JSON sample inside the space: every "bitwidth.i." and "groupsize.i."
 * key present for every block with an allowed value, and no block key beyond
 * the space. Other plan keys (extensions) are not the space's business.
 * `where` prefixes error messages ("samples.json: initial_samples[3]"). */
qj_status qj_space_check_json(const qj_space *s, const cJSON *sample, const char *where);
/* Is a resolved plan inside the space: same block count, the 7 linears of
 * every block share one setting, whose bits (16 for bf16, 32 for f32 dense)
 * and group size are allowed. Embedding, head, symmetry and scale dtype are
 * not constrained by a space. */
qj_status qj_space_check_plan(const qj_space *s, const qj_plan *p, const char *where);

/* ---- initial samples ------------------------------------------------------ */

typedef struct qj_samples {
    int n;
    qj_plan **plans; /* (n), each owned */
} qj_samples;

/* Parse {"initial_samples": [plan, ...]}. With a space every sample must be
 * inside it (qj_space_check_json) and n_layers 0 means the space's; without
 * one n_layers 0 infers each sample's block count. */
qj_status qj_samples_parse(const char *path, const qj_space *space, int n_layers,
                           qj_samples **out);
qj_status qj_samples_parse_json(const char *json_text, const char *name_for_errors,
                                const qj_space *space, int n_layers, qj_samples **out);
void qj_samples_free(qj_samples *s);

#ifdef __cplusplus
}
#endif
#endif
