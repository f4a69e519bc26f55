/* gpu_linear.c — upload, bind and launch one linear (see gpu_linear.h). */
#include "gpu_linear.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

qj_status qj_glinear_upload(qj_cuda *cu, const qj_tensor *const *parts, qj_glinear *L) {
    const qj_gemv_spec *s = &L->spec;
    L->bytes = 0;
    for (int i = 0; i < s->nseg; i++) {
        void *w = NULL, *sc = NULL;
        size_t wl = 0, sl = 0;
        qj_status st = qj_gemv_host_arrays(s, parts, i, &w, &wl, &sc, &sl);
        if (!st) st = qj_cuda_alloc(cu, wl, &L->w[i]);
        if (!st) st = qj_cuda_upload(cu, L->w[i], w, wl);
        if (!st && sl) st = qj_cuda_alloc(cu, sl, &L->s[i]);
        if (!st && sl) st = qj_cuda_upload(cu, L->s[i], sc, sl);
        free(w);
        free(sc);
        if (st) return st;
        L->bytes += wl + sl;
    }
    return QJ_OK;
}

void qj_glinear_free(qj_cuda *cu, qj_glinear *L) {
    for (int i = 0; i < QJ_MAX_SEGS; i++) {
        if (L->w[i] && !(i == 0 && L->borrowed_w)) qj_cuda_free(cu, L->w[i]);
        if (L->s[i]) qj_cuda_free(cu, L->s[i]);
        L->w[i] = L->s[i] = 0;
    }
}

qj_status qj_glinear_bind(qj_cuda *cu, qj_cumodule mod, qj_glinear *L) {
    qj_status st = qj_cuda_function(cu, mod, L->name, &L->fn);
    if (st) return st;
    qj_gemv_launch_dims(&L->spec, &L->grid, &L->block);
    L->smem = (unsigned)qj_gemv_smem_bytes(&L->spec);
    /* opt in past the default 48 KiB (static + dynamic) */
    if (L->smem > 0 && (st = qj_cuda_func_smem(cu, L->fn, (int)L->smem))) return st;
    if (qj_gemv_prep_kind(&L->spec)) {
        char xn[176];
        snprintf(xn, sizeof xn, "%s_x", L->name);
        if ((st = qj_cuda_function(cu, mod, xn, &L->fx))) return st;
        qj_gemv_prep_dims(&L->spec, &L->xgrid, &L->xblock);
    }
    return QJ_OK;
}

static qj_status grow(qj_cuda *cu, qj_dptr *p, size_t *have, size_t need) {
    if (need <= *have) return QJ_OK;
    if (*p) qj_cuda_free(cu, *p);
    *p = 0;
    *have = 0;
    qj_status st = qj_cuda_alloc(cu, need, p);
    if (!st) *have = need;
    return st;
}

qj_status qj_gact_reserve(qj_cuda *cu, qj_gact *a, const qj_gemv_spec *s) {
    if (s->im) {
        size_t xi, xw;
        qj_gemv_im_act_bytes(s, &xi, &xw);
        qj_status st = grow(cu, &a->xi, &a->xi_bytes, xi);
        if (!st) st = grow(cu, &a->xw, &a->xw_bytes, xw);
        return st;
    }
    if (s->dq) {
        size_t xq, xc;
        qj_gemv_dq_act_bytes(s, &xq, &xc);
        qj_status st = grow(cu, &a->xq, &a->xq_bytes, xq);
        if (!st) st = grow(cu, &a->xc, &a->xc_bytes, xc);
        return st;
    }
    if (!s->mma) return QJ_OK;
    size_t xf, xs, xe;
    qj_gemv_act_bytes(s, &xf, &xs, &xe);
    qj_status st = grow(cu, &a->xf, &a->xf_bytes, xf);
    if (!st) st = grow(cu, &a->xsum, &a->xsum_bytes, xs);
    if (!st) st = grow(cu, &a->xscale, &a->xscale_bytes, xe);
    return st;
}

void qj_gact_free(qj_cuda *cu, qj_gact *a) {
    if (a->xf) qj_cuda_free(cu, a->xf);
    if (a->xsum) qj_cuda_free(cu, a->xsum);
    if (a->xscale) qj_cuda_free(cu, a->xscale);
    if (a->xq) qj_cuda_free(cu, a->xq);
    if (a->xc) qj_cuda_free(cu, a->xc);
    if (a->xi) qj_cuda_free(cu, a->xi);
    if (a->xw) qj_cuda_free(cu, a->xw);
    memset(a, 0, sizeof *a);
}

qj_status qj_glinear_prep(qj_cuda *cu, qj_custream st, const qj_glinear *L, qj_dptr x, int x_stride, const qj_gact *a) {
    if (L->spec.im) {
        qj_dptr xi = a->xi, xw = a->xw;
        void *args[] = {&x, &x_stride, &xi, &xw};
        return qj_cuda_launch(cu, L->fx, L->xgrid, 1, 1, L->xblock, 1, 1, 0, st, args);
    }
    if (L->spec.dq) {
        qj_dptr xq = a->xq, xc = a->xc;
        void *args[] = {&x, &x_stride, &xq, &xc};
        return qj_cuda_launch(cu, L->fx, L->xgrid, 1, 1, L->xblock, 1, 1, 0, st, args);
    }
    if (!L->spec.mma) return QJ_OK;
    qj_dptr xf = a->xf, xs = a->xsum, xe = a->xscale;
    void *args[] = {&x, &x_stride, &xf, &xs, &xe};
    return qj_cuda_launch(cu, L->fx, L->xgrid, 1, 1, L->xblock, 1, 1, 0, st, args);
}

qj_status qj_glinear_run_tail(qj_cuda *cu, qj_custream st, const qj_glinear *L, const qj_gact *a, qj_dptr y, int y_stride,
                              const qj_gtail *tail) {
    if (!L->spec.im || !L->spec.tail != !tail)
        return qj_fail(QJ_ERR_INVALID, "kernel %s: %s", L->name, L->spec.tail ? "its tail's pointers are missing" : "has no tail");
    qj_dptr w = L->w[0], s = L->s[0], xi = a->xi, xw = a->xw;
    qj_gtail t = *tail; /* (the kernel's struct of six pointers) */
    void *args[] = {&w, &s, &xi, &xw, &y, &y_stride, &t};
    return qj_cuda_launch(cu, L->fn, L->grid, 1, 1, L->block, 1, 1, L->smem, st, args);
}

qj_status qj_glinear_run(qj_cuda *cu, qj_custream st, const qj_glinear *L, qj_dptr x, int x_stride, const qj_gact *a,
                         qj_dptr y, int y_stride) {
    if (L->spec.tail) return qj_glinear_run_tail(cu, st, L, a, y, y_stride, NULL); /* (refused: no tail's pointers) */
    if (L->spec.mma) {
        qj_dptr w0 = L->w[0], s0 = L->s[0], w1 = L->w[1], s1 = L->s[1], w2 = L->w[2], s2 = L->s[2];
        qj_dptr xf = a->xf, xs = a->xsum, xe = a->xscale;
        void *args[] = {&w0, &s0, &w1, &s1, &w2, &s2, &xf, &xs, &xe, &y, &y_stride};
        return qj_cuda_launch(cu, L->fn, L->grid, 1, 1, L->block, 1, 1, L->smem, st, args);
    }
    if (L->spec.im) {
        qj_dptr w = L->w[0], s = L->s[0], xi = a->xi, xw = a->xw;
        void *args[] = {&w, &s, &xi, &xw, &y, &y_stride};
        return qj_cuda_launch(cu, L->fn, L->grid, 1, 1, L->block, 1, 1, L->smem, st, args); /* QJ_IM_XSMEM: the activations */
    }
    if (L->spec.dq) {
        qj_dptr w = L->w[0], s = L->s[0], xq = a->xq, xc = a->xc;
        void *args[] = {&w, &s, &xq, &xc, &y, &y_stride};
        return qj_cuda_launch(cu, L->fn, L->grid, 1, 1, L->block, 1, 1, 0, st, args);
    }
    qj_dptr w = L->w[0], s = L->s[0], z = 0;
    void *args[] = {&w, &s, &z, &x, &y, &x_stride, &y_stride};
    return qj_cuda_launch(cu, L->fn, L->grid, 1, 1, L->block, 1, 1, 0, st, args);
}
