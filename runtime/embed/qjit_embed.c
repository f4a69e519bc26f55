/* qjit_embed.c — the embeddable runtime (runtime/qjit_embed.h): an export's
 * package bytes loaded in place, its linked-in CPU kernels bound to the
 * packed linears, the reference forward pass around them, generation. Built
 * into libqjit_embed.a with the runtime and the tokenizer; no LLVM, no NVRTC. */
#include "qjit_embed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "qj_cpu_kernels.h"
#include "qj_forward.h"
#include "qj_package.h"
#include "tokenizer.h"

_Static_assert(QJIT_OK == QJ_OK && QJIT_ERR_IO == QJ_ERR_IO && QJIT_ERR_FORMAT == QJ_ERR_FORMAT &&
                   QJIT_ERR_INVALID == QJ_ERR_INVALID && QJIT_ERR_UNSUPPORTED == QJ_ERR_UNSUPPORTED &&
                   QJIT_ERR_NOMEM == QJ_ERR_NOMEM && QJIT_ERR_DEVICE == QJ_ERR_DEVICE &&
                   QJIT_ERR_COMPILE == QJ_ERR_COMPILE && QJIT_ERR_INTERNAL == QJ_ERR_INTERNAL,
               "qjit_embed.h status codes follow qj_status");

struct qjit_model {
    const qjit_image *image;
    qj_model *model;
    qj_cpu_binding *bind;
    qj_tokenizer *tok;
    qj_state *state; /* KV cache for the whole context */
    char describe[512];
};

static qj_status image_lookup(void *ctx, const qj_cpu_kspec *s, qj_cpu_gemv_fn *fn) {
    const qjit_image *im = ctx;
    for (int i = 0; i < im->n_kernels; i++) {
        const qjit_kernel *k = &im->kernels[i];
        qj_cpu_kspec ks = {k->bits, k->group, k->n, k->k, k->symmetric, k->scale_bf16};
        if (qj_cpu_kspec_equal(&ks, s) && k->fn) {
            *fn = (qj_cpu_gemv_fn)k->fn;
            return QJ_OK;
        }
    }
    char name[160];
    qj_cpu_kspec_name(s, "", name, sizeof name);
    return qj_fail(QJ_ERR_FORMAT, "export %s: no CPU kernel for %s, which the model needs (expected one per packed-linear spec)",
                   im->name, name);
}

qjit_status qjit_load(const qjit_image *im, qjit_model **out) {
    *out = NULL;
    if (!im) return qj_fail(QJ_ERR_INVALID, "qjit_load: no image");
    if (im->abi != QJIT_EMBED_ABI)
        return qj_fail(QJ_ERR_UNSUPPORTED, "export %s: image layout %d, this runtime expects %d (re-export with this qjit)",
                       im->name ? im->name : "?", im->abi, QJIT_EMBED_ABI);
    if (im->n_kernels && im->kernel_abi != QJ_CPU_KERNEL_ABI)
        return qj_fail(QJ_ERR_UNSUPPORTED, "export %s: its kernels use calling convention %d, this runtime's is %d",
                       im->name, im->kernel_abi, QJ_CPU_KERNEL_ABI);
    char missing[32] = "";
    if (im->n_kernels && qj_cpu_host_has(im->cpu_features, missing, sizeof missing) == 0)
        return qj_fail(QJ_ERR_UNSUPPORTED,
                       "export %s: its CPU code was compiled for %s (%s, %s) and needs +%s, which this CPU lacks: "
                       "export from a package compiled with --cpu-arch for this machine (e.g. x86-64-v2)",
                       im->name, im->cpu_name, im->cpu_level, im->cpu_triple, missing);
    qjit_model *m = calloc(1, sizeof *m);
    if (!m) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    m->image = im;
    char where[200];
    snprintf(where, sizeof where, "export %s (embedded package)", im->name);
    qj_status s = qj_package_load_mem(im->package, im->package_len, where, NULL, &m->model);
    if (!s && m->model->tokenizer_blob)
        s = qj_tokenizer_load_mem(m->model->tokenizer_blob, m->model->tokenizer_blob_len, where, &m->tok);
    if (!s) s = qj_cpu_bind(m->model, image_lookup, (void *)im, &m->bind, NULL);
    if (!s) s = qj_state_alloc(m->model, 0, &m->state);
    if (s) {
        qjit_free(m);
        return s;
    }
    qj_size_info z;
    qj_model_size(m->model, &z);
    snprintf(m->describe, sizeof m->describe, "%s: plan %s, %.6f GB (%.3f bits/weight), CPU code %s (%s) for %s, LLVM %s",
             im->name, m->model->plan_desc, z.gb, z.bits_per_weight, im->n_kernels ? im->cpu_name : "none (reference)",
             im->n_kernels ? im->cpu_level : "-", im->n_kernels ? im->cpu_triple : "-", im->n_kernels ? im->llvm_version : "-");
    *out = m;
    return QJ_OK;
}

void qjit_free(qjit_model *m) {
    if (!m) return;
    qj_state_free(m->state);
    qj_tokenizer_free(m->tok);
    qj_cpu_binding_free(m->model, m->bind);
    qj_model_free(m->model);
    free(m);
}

qjit_status qjit_forward(qjit_model *m, int token, int pos, const float **logits) {
    *logits = NULL;
    if (token < 0 || token >= m->model->cfg.vocab_size)
        return qj_fail(QJ_ERR_INVALID, "qjit_forward: token %d out of range (vocabulary %d)", token, m->model->cfg.vocab_size);
    return qj_forward(m->state, token, pos, logits);
}

qjit_generate_params qjit_generate_default_params(void) {
    qj_generate_params d = qj_generate_default_params();
    qjit_generate_params p = {d.prompt, d.steps, d.temperature, d.top_p, d.seed};
    return p;
}

static qj_status state_forward(void *ctx, int token, int pos, const float **logits) {
    return qj_forward((qj_state *)ctx, token, pos, logits);
}

typedef struct piece_relay {
    qjit_token_fn fn;
    void *user;
} piece_relay;

static int relay(void *ctx, int token, int from_prompt, const char *piece, size_t len) {
    const piece_relay *r = ctx;
    return r->fn ? r->fn(r->user, token, from_prompt, piece, len) : 0;
}

qjit_status qjit_generate(qjit_model *m, const qjit_generate_params *p, qjit_token_fn on_token, void *user,
                          int *n_generated) {
    if (n_generated) *n_generated = 0;
    if (!m->tok) return qj_fail(QJ_ERR_INVALID, "export %s: the package carries no tokenizer", m->image->name);
    qj_generate_params gp = {p->prompt, p->steps, p->temperature, p->top_p, p->seed};
    piece_relay r = {on_token, user};
    qj_generate_stats st;
    qj_status s = qj_generate(&m->model->cfg, state_forward, m->state, m->tok, &gp, relay, &r, &st);
    if (!s && n_generated) *n_generated = st.generated;
    return s;
}

int qjit_vocab_size(const qjit_model *m) { return m->model->cfg.vocab_size; }
int qjit_context_length(const qjit_model *m) { return m->model->cfg.seq_len; }
int qjit_bos_id(const qjit_model *m) { return m->model->cfg.bos_id; }
int qjit_eos_id(const qjit_model *m) { return m->model->cfg.eos_id; }
const char *qjit_describe(const qjit_model *m) { return m->describe; }
const char *qjit_last_error(void) { return qj_last_error(); }
const char *qjit_status_string(qjit_status s) {
    return s == QJIT_OK ? "ok" : qj_status_str((qj_status)s);
}
