/* qj_forward.c — reference forward pass, one token at a time. */
#include "qj_forward.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "qj_layout.h"

struct qj_state {
    const qj_model *m;
    int max_seq;
    float *x;      /* (dim) residual stream */
    float *xb;     /* (max(dim, q_dim)) normed input / attention output */
    float *xb2;    /* (dim) */
    float *hb;     /* (hidden_dim) gate */
    float *hb2;    /* (hidden_dim) up */
    float *q;      /* (n_heads*head_dim) */
    float *att;    /* (n_heads, max_seq) scores */
    float *logits; /* (vocab_size) */
    float *kcache; /* (n_layers, max_seq, kv_dim) */
    float *vcache; /* (n_layers, max_seq, kv_dim) */
    float *rope_cos, *rope_sin; /* (max_seq, head_dim/2) */
    float *row;    /* (max K) dequantization scratch for the serial path */
};

qj_status qj_state_alloc(const qj_model *m, int max_seq, qj_state **out) {
    *out = NULL;
    const qj_config *c = &m->cfg;
    if (max_seq <= 0 || max_seq > c->seq_len) max_seq = c->seq_len;
    size_t qd = (size_t)c->n_heads * (size_t)c->head_dim, kvd = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    size_t dim = (size_t)c->dim, hid = (size_t)c->hidden_dim, ms = (size_t)max_seq, hd2 = (size_t)c->head_dim / 2;
    size_t big = dim > qd ? dim : qd;
    size_t maxk = big > hid ? big : hid;
    qj_state *s = calloc(1, sizeof *s);
    if (!s) return qj_fail(QJ_ERR_NOMEM, "out of memory (forward state)");
    s->m = m;
    s->max_seq = max_seq;
    s->x = malloc(dim * sizeof(float));
    s->xb = malloc(big * sizeof(float));
    s->xb2 = malloc(dim * sizeof(float));
    s->hb = malloc(hid * sizeof(float));
    s->hb2 = malloc(hid * sizeof(float));
    s->q = malloc(qd * sizeof(float));
    s->att = malloc((size_t)c->n_heads * ms * sizeof(float));
    s->logits = malloc((size_t)c->vocab_size * sizeof(float));
    s->kcache = malloc((size_t)c->n_layers * ms * kvd * sizeof(float));
    s->vcache = malloc((size_t)c->n_layers * ms * kvd * sizeof(float));
    s->rope_cos = malloc(ms * hd2 * sizeof(float));
    s->rope_sin = malloc(ms * hd2 * sizeof(float));
    s->row = malloc(maxk * sizeof(float));
    if (!s->x || !s->xb || !s->xb2 || !s->hb || !s->hb2 || !s->q || !s->att || !s->logits || !s->kcache ||
        !s->vcache || !s->rope_cos || !s->rope_sin || !s->row) {
        qj_state_free(s);
        return qj_fail(QJ_ERR_NOMEM, "out of memory (forward state, %d positions)", max_seq);
    }
    for (size_t p = 0; p < ms; p++)
        for (size_t i = 0; i < hd2; i++) {
            double freq = pow((double)c->rope_theta, -2.0 * (double)i / (double)c->head_dim);
            double a = (double)p * freq;
            s->rope_cos[p * hd2 + i] = (float)cos(a);
            s->rope_sin[p * hd2 + i] = (float)sin(a);
        }
    *out = s;
    return QJ_OK;
}

void qj_state_free(qj_state *s) {
    if (!s) return;
    free(s->x);
    free(s->xb);
    free(s->xb2);
    free(s->hb);
    free(s->hb2);
    free(s->q);
    free(s->att);
    free(s->logits);
    free(s->kcache);
    free(s->vcache);
    free(s->rope_cos);
    free(s->rope_sin);
    free(s->row);
    free(s);
}

static float dot(const float *a, const float *b, int64_t n) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

/* y = W x: the model's CPU kernels when they take W, else the reference. */
static void linear(const qj_model *m, const qj_tensor *w, const float *x, float *y, float *scratch) {
    if (w->dtype == QJ_DTYPE_Q && m->cpu_matvec && m->cpu_matvec(m->cpu_matvec_ctx, w, x, y)) return;
    qj_matvec(w, x, y, scratch);
}

/* One output row of y = W x. */
static float row_dot(const qj_tensor *w, int64_t n, const float *x, float *scratch) {
    int64_t K = w->shape[1];
    if (w->dtype == QJ_DTYPE_F32) return dot((const float *)w->data + n * K, x, K);
    qj_tensor_row_f32(w, n, scratch);
    return dot(scratch, x, K);
}

void qj_matvec(const qj_tensor *w, const float *x, float *y, float *row_scratch) {
    int64_t N = w->shape[0], K = w->shape[1];
    if (N * K < (1 << 16) || omp_in_parallel()) {
        for (int64_t n = 0; n < N; n++) y[n] = row_dot(w, n, x, row_scratch);
        return;
    }
    #pragma omp parallel
    {
        float *scratch = w->dtype == QJ_DTYPE_F32 ? NULL : malloc((size_t)K * sizeof(float));
        /* On allocation failure fall back to the shared scratch one thread at a time. */
        #pragma omp for schedule(static)
        for (int64_t n = 0; n < N; n++) {
            if (scratch || w->dtype == QJ_DTYPE_F32) y[n] = row_dot(w, n, x, scratch);
            else {
                #pragma omp critical
                y[n] = row_dot(w, n, x, row_scratch);
            }
        }
        free(scratch);
    }
}

static void rmsnorm(float *o, const float *x, const qj_tensor *w, int64_t n, float eps) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float inv = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (int64_t i = 0; i < n; i++) o[i] = qj_load_f32(w->data, w->dtype, (size_t)i) * (x[i] * inv);
}

static void add_bias(float *v, const qj_tensor *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) v[i] += qj_load_f32(b->data, b->dtype, (size_t)i);
}

static void rope(float *v, int n_heads, int hd, const float *cs, const float *sn, qj_rope_style style) {
    int h2 = hd / 2;
    for (int h = 0; h < n_heads; h++) {
        float *p = v + (size_t)h * (size_t)hd;
        for (int i = 0; i < h2; i++) {
            int a = style == QJ_ROPE_INTERLEAVED ? 2 * i : i;
            int b = style == QJ_ROPE_INTERLEAVED ? 2 * i + 1 : i + h2;
            float x0 = p[a], x1 = p[b];
            p[a] = x0 * cs[i] - x1 * sn[i];
            p[b] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

qj_status qj_forward(qj_state *s, int token, int pos, const float **logits) {
    const qj_model *m = s->m;
    const qj_config *c = &m->cfg;
    if (token < 0 || token >= c->vocab_size)
        return qj_fail(QJ_ERR_INVALID, "token id %d out of range (vocab %d)", token, c->vocab_size);
    if (pos < 0 || pos >= s->max_seq)
        return qj_fail(QJ_ERR_INVALID, "position %d out of range (context %d)", pos, s->max_seq);
    const int dim = c->dim, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    const int group = c->n_heads / c->n_kv_heads;
    const float *cs = s->rope_cos + (size_t)pos * (size_t)(hd / 2), *sn = s->rope_sin + (size_t)pos * (size_t)(hd / 2);
    const float scale = 1.0f / sqrtf((float)hd);

    qj_tensor_row_f32(&m->tok_embedding, token, s->x);
    for (int l = 0; l < c->n_layers; l++) {
        const qj_layer *L = &m->layers[l];
        float *kc = s->kcache + (size_t)l * (size_t)s->max_seq * (size_t)kvd;
        float *vc = s->vcache + (size_t)l * (size_t)s->max_seq * (size_t)kvd;
        float *k = kc + (size_t)pos * (size_t)kvd, *v = vc + (size_t)pos * (size_t)kvd;

        rmsnorm(s->xb, s->x, &L->attn_norm, dim, c->rms_eps);
        linear(m, &L->wq, s->xb, s->q, s->row);
        linear(m, &L->wk, s->xb, k, s->row);
        linear(m, &L->wv, s->xb, v, s->row);
        if (c->qkv_bias) {
            add_bias(s->q, &L->bq, qd);
            add_bias(k, &L->bk, kvd);
            add_bias(v, &L->bv, kvd);
        }
        rope(s->q, c->n_heads, hd, cs, sn, c->rope_style);
        rope(k, c->n_kv_heads, hd, cs, sn, c->rope_style);

        for (int h = 0; h < c->n_heads; h++) {
            const float *qh = s->q + (size_t)h * (size_t)hd;
            float *att = s->att + (size_t)h * (size_t)s->max_seq;
            size_t koff = (size_t)(h / group) * (size_t)hd;
            float mx = -INFINITY;
            for (int t = 0; t <= pos; t++) {
                att[t] = dot(qh, kc + (size_t)t * (size_t)kvd + koff, hd) * scale;
                mx = att[t] > mx ? att[t] : mx;
            }
            float sum = 0.0f;
            for (int t = 0; t <= pos; t++) {
                att[t] = expf(att[t] - mx);
                sum += att[t];
            }
            float *o = s->xb + (size_t)h * (size_t)hd;
            memset(o, 0, (size_t)hd * sizeof(float));
            for (int t = 0; t <= pos; t++) {
                float a = att[t] / sum;
                const float *vt = vc + (size_t)t * (size_t)kvd + koff;
                for (int i = 0; i < hd; i++) o[i] += a * vt[i];
            }
        }
        linear(m, &L->wo, s->xb, s->xb2, s->row);
        for (int i = 0; i < dim; i++) s->x[i] += s->xb2[i];

        rmsnorm(s->xb, s->x, &L->ffn_norm, dim, c->rms_eps);
        linear(m, &L->w_gate, s->xb, s->hb, s->row);
        linear(m, &L->w_up, s->xb, s->hb2, s->row);
        for (int i = 0; i < c->hidden_dim; i++) {
            float g = s->hb[i];
            s->hb[i] = g / (1.0f + expf(-g)) * s->hb2[i];
        }
        linear(m, &L->w_down, s->hb, s->xb2, s->row);
        for (int i = 0; i < dim; i++) s->x[i] += s->xb2[i];
    }
    rmsnorm(s->xb, s->x, &m->final_norm, dim, c->rms_eps);
    linear(m, &m->lm_head, s->xb, s->logits, s->row);
    *logits = s->logits;
    return QJ_OK;
}
