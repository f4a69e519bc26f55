/* cuda_codegen.c — kernel specs → CUDA source (prologue + template). */
#include "cuda_codegen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qj_layout.h"

/* The tensor-core kernel handles groups of 32 or 64, multiples of 128, and
 * one group per row; other multiples of 32 (96, 160, ...) stay on the GEMV. */
static int mma_group_ok(int group, int64_t K) { return group >= K || group == 32 || group == 64 || group % 128 == 0; }

static int env_int(const char *name, int lo, int hi, int def) {
    const char *e = getenv(name);
    if (!e || !*e) return def;
    int v = atoi(e);
    return v >= lo && v <= hi ? v : def;
}

/* Words of one warp's pipeline stage: the largest segment's. */
static int64_t mma_stage_words(const qj_gemv_spec *s) {
    int64_t best = 0;
    for (int i = 0; i < s->nseg; i++) {
        int64_t ge = s->seg[i].group >= s->K ? (s->K + 127) / 128 * 128 : s->seg[i].group;
        int64_t ch = ge < 128 ? ge : 128, nf = 128 / ch;
        int64_t w = 32 * (2 * s->seg[i].bits + 2 * nf) * s->rt;
        if (w > best) best = w;
    }
    return best;
}

/* the integer-MMA GEMV's activations in shared memory: the prep's words of every k-tile and batch row */
static size_t im_xsmem_bytes(int64_t K, int batch) {
    return (size_t)batch * (size_t)(QJ_IM_XI_WORDS(QJ_IM_KT(K)) + 4 * QJ_IM_XW_FLOAT4(QJ_IM_KT(K))) * 4;
}

/* the integer-MMA GEMV's block-wide ring slot (bx): a k-tile's activations of every batch row, then the weights of
 * each group of warps (warps / (n-tiles / jw) groups) */
static size_t im_bx_slot_bytes(int bits, int group, int mt, int warps, int jw, int batch) {
    const int groups = warps / (((batch + 1) / 2) / jw);
    return (size_t)batch * 544 + (size_t)groups * QJ_IM_SLOT_WORDS(bits, group, mt) * 4;
}
/* the wgmma kernels' B operand: 8 chunks of 16 values x 16 (batch <= 8: 8) rows of 4 digits, 16 bytes each */
#define QJ_IM_WG_BYTES(batch) (8 * 16 * ((batch) <= 8 ? 2 : 4) * 16)
/* m-tiles per block of an integer-MMA spec */
static int64_t im_block_mtiles(const qj_gemv_spec *s) {
    return s->bx ? (int64_t)s->mt * (s->warps / (((s->batch + 1) / 2) / s->jw)) : s->mt;
}

size_t qj_gemv_smem_bytes(const qj_gemv_spec *s) {
    if (s->im && s->bx)
        return (size_t)s->stages * im_bx_slot_bytes(s->bits, s->group, s->mt, s->warps, s->jw, s->batch) +
               (s->wg ? (size_t)QJ_IM_WG_BYTES(s->batch) : 0);
    if (s->im) return s->xsmem ? im_xsmem_bytes(s->K, s->batch) : 0;
    return s->mma ? (size_t)(s->splitk * s->stages * mma_stage_words(s) * 4) : 0;
}

static qj_status gemv_spec_one(const qj_tensor *w, int batch, qj_gemv_spec *out) {
    memset(out, 0, sizeof *out);
    if (w->ndim != 2) return qj_fail(QJ_ERR_INVALID, "%s: a linear weight must be 2-D", w->name);
    int maxb = w->dtype == QJ_DTYPE_Q ? 8 : QJ_MMA_MAX_BATCH; /* dense: any batch up to 64 */
    if (batch < 1 || batch > maxb) return qj_fail(QJ_ERR_INVALID, "batch %d out of range for the GEMV path (1..%d)", batch, maxb);
    out->N = w->shape[0];
    out->K = w->shape[1];
    out->batch = batch;
    switch (w->dtype) {
    case QJ_DTYPE_Q:
        out->bits = w->q.bits;
        out->group = w->q.group;
        out->symmetric = w->q.symmetric;
        out->scale_bf16 = w->q.scale_dtype == QJ_DTYPE_BF16;
        break;
    case QJ_DTYPE_BF16: out->bits = 16; out->scale_bf16 = 1; break;
    case QJ_DTYPE_F16: out->bits = 16; break;
    case QJ_DTYPE_F32: out->bits = 32; break;
    default: return qj_fail(QJ_ERR_INVALID, "%s: no GPU kernel for dtype %s", w->name, qj_dtype_name(w->dtype));
    }
    int64_t nb = QJ_NBLOCKS(out->K);
    if (out->bits <= 8 && batch <= QJ_DQ_MAX_BATCH && env_int("QJ_GEMV_DQ", 0, 1, 1)) {
        /* integer-dot GEMV: 4 warps split the 32-block tiles of K (fewer when
         * K has fewer tiles); measured on the H100, 7 warps for K = 14336's 14
         * tiles (no idle warp) ran slower than 4 */
        int64_t nt = (nb + 31) / 32;
        int best = nt < 4 ? (int)nt : 4;
        out->dq = 1;
        /* 8 rows per block reuse each activation load 8 times, but at least
         * ~1024 blocks keep the tail of the last wave short */
        int rows = 8;
        while (rows > 2 && out->N / rows < 1024) rows /= 2;
        out->rows = env_int("QJ_GEMV_ROWS", 1, 16, rows);
        out->warps = env_int("QJ_GEMV_WARPS", 1, 16, best);
    } else if (out->bits <= 8) {
        /* 8 rows per block reuse each activation load 8 times; fewer at large
         * batch to bound the accumulators (rows * batch <= 32) */
        out->rows = batch <= 4 ? 8 : 4;
        /* warps split K: one 32-value block per lane per step */
        out->warps = nb >= 128 ? 4 : nb > 64 ? 3 : nb > 32 ? 2 : 1;
        out->stage = 1;
        out->rows = env_int("QJ_GEMV_ROWS", 1, 16, out->rows);
        out->warps = env_int("QJ_GEMV_WARPS", 1, 16, out->warps);
        out->stage = env_int("QJ_GEMV_STAGE", 0, 1, out->stage);
    } else {
        /* dense: a warp's rows share its activation loads (at batch 16 one row a warp reads all of x, 256 KiB at
         * K = 4096, once per row: a 128256-row bf16 head took 8.2 ms against cuBLAS's 0.38 on the H100,
         * docs/PERFORMANCE.md 2026-12-07; QJ_GEMV_ROWS sets it, for that comparison) */
        out->rows = env_int("QJ_GEMV_ROWS", 1, 16, out->N >= 4096 && batch <= 8 ? 2 : 1);
        out->warps = 4;
    }
    out->nseg = 1;
    out->seg[0] = (qj_gemv_seg){out->bits, out->group, out->symmetric, out->scale_bf16, out->N, 0, 1};
    return QJ_OK;
}

/* The integer-MMA GEMV for n packed parts of one format stacked by rows.
 * Geometry: two m-tiles per block where there are many (each activation
 * load serves 32 rows), then enough warps splitting K for ~3072 warps in
 * all, each with at least two k-tiles; one k-tile per pipeline stage, two
 * stages in registers. At batch 1 the pipeline and split then follow the
 * layer's shape class and width, from a sweep of every setting on the H200
 * (docs/PERFORMANCE.md, 2026-12-01, back-to-back timing, us):
 *  - wide (>= 1024 m-tiles: gate|up): a 4-stage shared-memory ring for 4-
 *    and 5-bit (int4 18.6 against 21.0 on registers; int5 21.5 / 23.7), 8
 *    warps and a 44 KiB ring for 3-bit (17.4 / 20.9) and for 2-bit at group
 *    32 (H100: 19.4 / 22.2), 16 warps and two k-tiles per register stage for
 *    2-bit at group 64 (H100: 15.9 / 20.1), registers for other 2-bit, 6-
 *    and 8-bit (no ring setting was faster);
 *  - long K (>= 64 k-tiles: down): for 4-bit the ring with the block's
 *    activations in shared memory (xsmem; int4 10.7 against 12.6 with two
 *    k-tiles per register stage, 14.5 with one), else two k-tiles per
 *    register stage up to 5-bit (int3 12.0 / 16.0, int2 10.6 / 14.0);
 *  - short (q|k|v, o): 16 warps and two k-tiles per stage for 2- and
 *    3-bit, and for 4- and 5-bit where there are <= 256 m-tiles (int4 o 4.9
 *    / 5.8, int3 q|k|v 6.3 / 7.2).
 * Other batches up to 4 keep the ring for 4-bit only (measured before, at
 * batch 1). Above 4, wide layers (bx): groups of warps split the m-tiles
 * (four each, four groups: 256 rows a block), the warps of a group the batch
 * rows (four n-tiles each), and all share every k-tile's activations through
 * one block-wide ring of up to 4 stages in dynamic shared memory (at most 96
 * KiB, QJ_IM_RING overrides): at batch 16 a k-tile's activations are 8x a
 * 4-bit m-tile's weights, and blocks of 1-2 m-tiles re-read them from L2.
 * H200, int4 gate|up at batch 16, back-to-back: 48.2 us against 138.0 without
 * (and 65.3 with two m-tiles and all n-tiles a warp). Narrower layers (> 256
 * m-tiles or >= 64 k-tiles: q|k|v, down) would get too few blocks, so their
 * blocks also split K (ks, about 128 blocks; H100: down 38.6 -> 27.4 us,
 * q|k|v 17.7 -> 17.0, against 142.9 and 42.3 without the split); short ones
 * of <= 256 m-tiles (o) take two m-tiles and 16 warps a block splitting K
 * inside it (11.0 us against 12.9 split). Since 2026-12-06 the block-shared
 * kernels take digit-major n-tiles (dm, templates/qj_imv.cu QJ_IM_DM):
 * every lane folds its own outputs, ptxas needs <= 128 registers, and with
 * two m-tiles a warp (8 a block) two blocks share a multiprocessor, so the
 * k split aims at 256 blocks. H100, int4 at batch 16: gate|up 41.1 -> 37.1
 * us, down 26.1 -> 23.7, q|k|v 16.3 -> 15.0 (with four m-tiles a warp
 * 49.2: one block a multiprocessor at 128 registers). */
/* Whether the spec functions deal wide layers' m-tiles (QJ_IM_DEAL) and sum K splits in clusters (QJ_IM_KSCL) unless
 * the environment says: off (H100, 2026-12-06: both correct; dealing within ±1% on int4 gate|up, clusters 19-34%
 * slower on every split layer) */
#define QJ_IM_DEAL_DEFAULT 0
#define QJ_IM_KSCL_DEFAULT 0
/* KiB of a launch's weights its blocks ask L2 to prefetch at their start, at batch 1 and above it (qj_gemv_spec.pft;
 * QJ_IM_PF overrides both). H100, 2026-12-07, decode of Llama-3-8B shapes at batch 1 (docs/PERFORMANCE.md): 8 MiB
 * +1.2% on the all-int4 plan (480.4-480.7 against 474.6-475.2 tokens/s), int4 +1.05%, int5 and int6 +0.6%, int3
 * even; 4, 6 and 12 MiB less, 16 MiB even, 32 MiB -1.7%. Above batch 1 none: not measured against none. */
#define QJ_IM_PF_DEFAULT_B1 8192
#define QJ_IM_PF_DEFAULT 0
/* ... except the wide 2-bit layers at groups 64-127 (16 warps, two k-tiles a register stage; im_spec's pf_off):
 * H100, 2026-12-07 (docs/PERFORMANCE.md), int2-g64 gate+up 15.79-15.81 us without against 16.33-16.41 with (two
 * rounds, one run), which put it under issue 3's 75% bar; int2-g32's gate+up even (19.12-19.18 either way). */
static int g_sms;
void qj_gemv_set_sms(int sms) { g_sms = sms > 0 ? sms : 0; }

void qj_gemv_spec_deal(qj_gemv_spec *s, int sms) {
    s->nb = 0;
    if (!s->im || !s->bx || !s->dm || s->ks > 1 || s->wg || s->mt > 2) return;
    /* wide digit-major layers: blocks of 8 m-tiles, two a multiprocessor. Where there are more than one a
     * multiprocessor but not whole waves of them (Llama-3-8B's gate|up: 224 blocks for 264 places on the H100, 40
     * multiprocessors idle for the last third), their m-tiles are dealt over whole waves instead (264 blocks of 6
     * or 7). QJ_IM_NB=0 keeps the blocks whole, =n deals over n blocks (taken where n is more than the whole
     * blocks and no more than the m-tiles); the spec functions call this only under QJ_IM_DEAL=1 (measured on the
     * H100: correct, not faster, docs/PERFORMANCE.md). */
    const int64_t mtn = QJ_IM_MTILES(s->N), bmt = im_block_mtiles(s), blocks = (mtn + bmt - 1) / bmt;
    const int64_t places = 2 * (int64_t)(sms > 0 ? sms : 0);
    int64_t nb = places > 0 && blocks % places != 0 && 2 * blocks > places ? (blocks + places - 1) / places * places : 0;
    nb = env_int("QJ_IM_NB", 0, 1 << 20, (int)nb);
    s->nb = nb > blocks && nb <= mtn ? (int)nb : 0;
}

/* qj_gemv_spec.pft: the most k-tiles of each m-tile (of each K split's share) whose weights and scales fit
 * $QJ_IM_PF KiB over the whole launch (QJ_IM_PF_DEFAULT_B1 at batch 1 unless pf_off, else QJ_IM_PF_DEFAULT), at most a
 * split's share; 0 where not one k-tile column fits. */
static int im_pft(const qj_gemv_spec *s, int pf_off) {
    const int64_t kib =
        env_int("QJ_IM_PF", 0, 1 << 20, s->batch == 1 && !pf_off ? QJ_IM_PF_DEFAULT_B1 : QJ_IM_PF_DEFAULT);
    const int64_t kt = QJ_IM_KT(s->K), mtn = QJ_IM_MTILES(s->N), ks = s->ks > 1 ? s->ks : 1, kpb = (kt + ks - 1) / ks;
    const int64_t tile = 256 * (int64_t)s->bits + (s->group <= 128 ? 64 * 128 / s->group : 64); /* bytes, scales with */
    const int64_t nf = kib * 1024 / (mtn * ks * tile);
    return (int)(nf > kpb ? kpb : nf);
}

static qj_status im_spec(const qj_tensor *const *parts, int n, int batch, qj_gemv_spec *out) {
    const qj_tensor *t = parts[0];
    memset(out, 0, sizeof *out);
    out->im = 1;
    out->bits = t->q.bits;
    out->group = t->q.group;
    out->symmetric = t->q.symmetric;
    out->scale_bf16 = t->q.scale_dtype == QJ_DTYPE_BF16;
    out->K = t->shape[1];
    out->batch = batch;
    for (int i = 0; i < n; i++) out->N += parts[i]->shape[0];
    const int64_t mtn = QJ_IM_MTILES(out->N), kt = QJ_IM_KT(out->K);
    const int b = out->bits;
    /* above batch 4, layers of <= 256 m-tiles (o, down): two m-tiles and 16 warps a block */
    const int small = batch > 4 && mtn <= 256;
    int mt = (mtn >= 1024 && batch <= 4) || small ? 2 : 1;
    out->mt = env_int("QJ_IM_MT", 1, 4, mt);
    int64_t blocks = (mtn + out->mt - 1) / out->mt, w = (3072 + blocks - 1) / blocks, wmax = (kt + 1) / 2;
    if (w > 8) w = 8;
    if (small) w = 16;
    int unroll = 1, stages = b == 4 ? 4 : 0, ring = QJ_IM_RING_BYTES, xsmem = 0, pf_off = 0;
    if (batch == 1) {
        stages = 0;
        /* 5- to 8-bit wide and long-K layers, and 4-bit long-K ones at groups < 128: the 44 KiB
         * ring with the activations in shared memory (docs/PERFORMANCE.md, 2026-12-03: int8
         * gate+up 36.5 -> 33.5 us, down 23.3 -> 17.7 us) */
        if (mtn >= 1024) {
            if (b >= 5) stages = 8, ring = 45056, xsmem = 1;
            else if (b == 4) stages = 4;
            else if (b == 3 || (b == 2 && out->group < 64)) w = 8, stages = 6, ring = 45056;
            else if (b == 2 && out->group < 128) w = 16, unroll = 2, pf_off = 1;
        } else if (kt >= 64) {
            if (b >= 5 || (b == 4 && out->group < 128)) stages = 8, ring = 45056, xsmem = 1;
            else if (b == 4) stages = 4, xsmem = 1;
            else unroll = 2;
        } else if (b <= 3 || (b <= 5 && mtn <= 256)) {
            /* (4- and 5-bit o_proj, 256 m-tiles: one k-tile a stage; H100, 4-bit 5.88 -> 5.07 us, 5-bit 5.99 -> 5.67) */
            w = 16, unroll = b >= 4 ? 1 : 2;
        }
    }
    if (w > wmax) w = wmax;
    if (w < 1) w = 1;
    out->warps = env_int("QJ_IM_WARPS", 1, 16, (int)w);
    out->unroll = env_int("QJ_IM_UNROLL", 1, 4, unroll);
    /* stages > 0: a per-warp cp.async ring in shared memory (templates/qj_imv.cu), as many stages as fit */
    out->stages = env_int("QJ_IM_STAGES", 0, 8, stages);
    if (out->stages) {
        /* the ring's budget (QJ_IM_RING bytes overrides), within the 48 KiB of static shared memory
         * a block may have beside the kernel's reduction buffer */
        const int64_t slot = (int64_t)QJ_IM_SLOT_WORDS(out->bits, out->group, out->mt) * 4;
        const int64_t red = out->warps > 1 ? (int64_t)out->warps * out->mt * 16 * batch * 4 : 0;
        int64_t rb = env_int("QJ_IM_RING", 4096, QJ_IM_SMEM_MAX, ring);
        if (rb > QJ_IM_SMEM_MAX - red) rb = QJ_IM_SMEM_MAX - red;
        const int64_t smax = rb / ((int64_t)out->warps * slot);
        out->unroll = 1;
        if (out->stages > smax) out->stages = (int)smax;
        if (out->stages < 2) out->stages = 0;
    }
    /* xsmem: ring kernels at batch <= 4 read the activations from dynamic shared memory (copied
     * once per block after griddepcontrol.wait) rather than through L1, up to 96 KiB of them */
    out->xsmem = out->stages && QJ_IM_XSTAGED(batch) && im_xsmem_bytes(out->K, batch) <= 96 * 1024 &&
                 env_int("QJ_IM_XSMEM", 0, 1, xsmem);
    /* block-shared above batch 4 for the layers of many m-tiles or k-tiles, above batch 8 for those of 32 k-tiles
     * too (o_proj, 256 m-tiles: its K split over blocks adding into y; H100, int4 batch 16: 11.07 -> 6.53 us,
     * QJ_IM_BX=1 alone 9.97; at batch 8 block-shared without the adds lost, 7.31 -> 10.50) */
    if (env_int("QJ_IM_BX", 0, 1, batch > 4 && (mtn > 256 || kt >= 64 || (batch > 8 && kt >= 32))) && !out->xsmem) {
        /* block-shared activations: geometry and depth of their own (the same knobs); where two
         * slots do not fit the budget the choice above stands */
        /* (at most) four n-tiles a warp, four groups of warps; four m-tiles a group (16 a block) with the digit
         * pairs, two (8 a block) with digit-major tiles */
        const int nj = (batch + 1) / 2, jd = nj % 4 == 0 ? 4 : nj;
        /* digit-major tiles (below): two m-tiles a warp, so that two blocks fit a multiprocessor */
        /* three digits by default (x within 2^-22 of its tile's largest |x|, rounded without bias: qj_imprep.cuh): a
         * quarter fewer mma and activation loads than four (QJ_IM_DM=4) */
        const int dm = batch > 4 ? env_int("QJ_IM_DM", 0, 4, 3) : 0, dmok = dm == 3 || dm == 4;
        const int bmt = env_int("QJ_IM_MT", 1, 4, dmok ? 2 : 4), bw = env_int("QJ_IM_WARPS", 1, 16, 4 * (nj / jd));
        int jw = env_int("QJ_IM_JW", 1, nj, jd);
        if (nj % jw || bw % (nj / jw) || nj <= 2) jw = nj; /* an even split, above batch 4 */
        const int64_t slot = (int64_t)im_bx_slot_bytes(out->bits, out->group, bmt, bw, jw, batch);
        const int64_t smax = env_int("QJ_IM_RING", 4096, 227 * 1024, 96 * 1024) / slot;
        int bs = env_int("QJ_IM_STAGES", 2, 8, 4);
        if (bs > smax) bs = (int)smax;
        if (bs >= 2) out->bx = 1, out->mt = bmt, out->warps = bw, out->jw = jw, out->unroll = 1, out->stages = bs;
        /* digit-major n-tiles (templates/qj_imv.cu QJ_IM_DM): where the octets of batch rows split evenly over
         * the warps sharing an m-tile, else the digit pairs */
        if (out->bx && dmok && ((batch + 7) / 8) % (nj / jw) == 0) out->dm = dm;
        if (out->bx) {
            /* layers of few m-blocks (q+k+v, o, down: 16-24 at batch 16) split their k-tiles over about 128
             * blocks, at least two tiles a split, so that each block reads the activations of its own k-tiles
             * only; wide ones (gate+up: 112) have blocks enough. A split count normalised so none is empty. */
            const int64_t mb = (mtn + im_block_mtiles(out) - 1) / im_block_mtiles(out);
            int64_t ks = (out->dm ? 256 : 128) / mb, kmax = kt / 2;
            if (ks > kmax) ks = kmax;
            ks = env_int("QJ_IM_KS", 1, 64, ks < 1 ? 1 : (int)ks);
            if (ks > kt) ks = kt;
            const int64_t kpb = (kt + ks - 1) / ks;
            out->ks = (int)((kt + kpb - 1) / kpb);
            /* the splits add into y (y += W x: the caller provides y's start), no workspace, count or last block;
             * QJ_IM_RED=0: the last block sums them (H100, int4 batch 16: q|k|v 13.47 -> 8.61 us, down 21.45 ->
             * 15.36; batch 8: 14.23 -> 9.11, 25.40 -> 17.89) */
            out->red = out->ks > 1 && env_int("QJ_IM_RED", 0, 1, 1);
            out->kscl = !out->red && out->ks > 1 && out->ks <= 8 && out->dm && env_int("QJ_IM_KSCL", 0, 1, QJ_IM_KSCL_DEFAULT);
            /* wide digit-major layers (no split, two blocks a multiprocessor): three slots (H100, int4 gate|up at
             * batch 16: 36.0 against 37.1-37.6 us with four); with three digits the split layers too (H100, batch
             * 16, int4 / int2 / int3: q|k|v 14.0 -> 13.7, 12.75 -> 12.35, 13.46 -> 12.88 us, down 22.0 -> 21.9,
             * 19.4 -> 18.6, 20.9 -> 20.0; with four digits they lost: down 29.2 against 23.7) */
            if (out->dm && (out->ks == 1 || out->dm == 3) && out->stages > 3 && !getenv("QJ_IM_STAGES")) out->stages = 3;
        }
    }
    if (out->bx && batch > 4 && env_int("QJ_IM_WG", 0, 1, 0)) {
        /* wgmma (templates/qj_imv.cu QJ_IM_WG): every n-tile a warp, whole warpgroups, QJ_IM_MT m-tiles a warp */
        const int nj = (batch + 1) / 2, wmt = env_int("QJ_IM_MT", 1, 4, 2);
        int ww = env_int("QJ_IM_WARPS", 4, 16, 4) / 4 * 4;
        const int64_t wslot = (int64_t)im_bx_slot_bytes(out->bits, out->group, wmt, ww, nj, batch);
        int64_t smax = (env_int("QJ_IM_RING", 4096, 227 * 1024, 96 * 1024) - QJ_IM_WG_BYTES(batch)) / wslot;
        int ws = env_int("QJ_IM_STAGES", 2, 8, 4);
        if (ws > smax) ws = (int)smax;
        if (ws >= 2) out->wg = 1, out->mt = wmt, out->warps = ww, out->jw = nj, out->stages = ws, out->ks = 1, out->dm = 0, out->kscl = 0, out->red = 0;
        out->wgswap = out->wg && env_int("QJ_IM_WGSWAP", 0, 1, 0); /* a check, named in the kernel */
    }
    qj_gemv_spec_deal(out, env_int("QJ_IM_DEAL", 0, 1, QJ_IM_DEAL_DEFAULT) ? g_sms : 0);
    out->cvt = env_int("QJ_IM_CVT", 0, 2, 2);
    /* (digit-major tiles load every digit before the unpack: the knob is the pair layout's) */
    out->xpre = !QJ_IM_XSTAGED(batch) && (out->dm || env_int("QJ_IM_XPRE", 0, 1, 1));
    out->swz = out->stages && QJ_IM_WA(out->bits) > 4 && env_int("QJ_IM_SWZ", 0, 1, 1);
    /* branch-free activation loads, except in ring kernels that read the activations through L1, where
     * branching around absent batch rows is faster (docs/PERFORMANCE.md, 2026-12-03: int4-g32 gate+up
     * 24.8 -> 20.0 us, int3 16.3 -> 15.6; register and shared-memory kernels the other way: int3 down
     * 11.2 -> 10.2) */
    out->xl = env_int("QJ_IM_XL", 0, 1, !(out->stages && !out->xsmem && !out->bx));
    out->pft = im_pft(out, pf_off);
    out->nseg = 1;
    out->seg[0] = (qj_gemv_seg){out->bits, out->group, out->symmetric, out->scale_bf16, out->N, 0, n};
    return QJ_OK;
}

static int same_qformat(const qj_tensor *a, const qj_tensor *b) {
    return a->dtype == b->dtype && a->shape[1] == b->shape[1] &&
           (a->dtype != QJ_DTYPE_Q || (a->q.bits == b->q.bits && a->q.group == b->q.group &&
                                       a->q.symmetric == b->q.symmetric && a->q.scale_dtype == b->q.scale_dtype));
}

qj_status qj_gemv_spec_parts(const qj_tensor *const *parts, int n, int batch, int allow_mma, qj_gemv_spec *out) {
    memset(out, 0, sizeof *out);
    if (n < 1 || n > QJ_MAX_SEGS) return qj_fail(QJ_ERR_INVALID, "a launch covers 1..%d tensors, not %d", QJ_MAX_SEGS, n);
    int knob = env_int("QJ_GEMV_MMA", 0, 1, -1);
    int mma = allow_mma && knob != 0 && batch >= 1 && batch <= QJ_MMA_MAX_BATCH, same = 1;
    for (int i = 0; i < n; i++) {
        const qj_tensor *t = parts[i];
        if (t->ndim != 2) return qj_fail(QJ_ERR_INVALID, "%s: a linear weight must be 2-D", t->name);
        if (t->shape[1] != parts[0]->shape[1])
            return qj_fail(QJ_ERR_UNSUPPORTED, "%s and %s have different K: no fused launch", parts[0]->name, t->name);
        if (t->dtype != QJ_DTYPE_Q || !mma_group_ok(t->q.group, t->shape[1])) mma = 0;
        if (!same_qformat(parts[0], t)) same = 0;
    }
    /* Automatic choice: packed parts of one format at batch <= 16 take the
     * integer-MMA GEMV; mixed-format fusion and larger batches the f16
     * tensor-core kernel; dense weights the CUDA-core GEMV. */
    int packed = 1;
    for (int i = 0; i < n; i++) packed &= parts[i]->dtype == QJ_DTYPE_Q;
    if (allow_mma == 1 && knob != 1 && same && packed && batch <= QJ_IM_MAX_BATCH && env_int("QJ_GEMV_IM", 0, 1, 1))
        return im_spec(parts, n, batch, out);
    if (mma && allow_mma == 1 && knob != 1 && batch <= 8 && same) mma = 0;
    if (!mma) {
        for (int i = 1; i < n; i++)
            if (!same_qformat(parts[0], parts[i]))
                return qj_fail(QJ_ERR_UNSUPPORTED, "%s and %s differ in format: they fuse only on the tensor-core kernel",
                               parts[0]->name, parts[i]->name);
        if (batch > 8 && parts[0]->dtype == QJ_DTYPE_Q)
            return qj_fail(QJ_ERR_UNSUPPORTED, "%s: batch %d needs the tensor-core kernel (sm_80+, group 32, 64 or a multiple of 128)",
                           parts[0]->name, batch);
        qj_status st = gemv_spec_one(parts[0], batch, out);
        if (st) return st;
        for (int i = 1; i < n; i++) out->N += parts[i]->shape[0];
        out->seg[0].N = out->N;
        out->seg[0].nparts = n;
        return QJ_OK;
    }
    const qj_tensor *t0 = parts[0];
    out->K = t0->shape[1];
    out->batch = batch;
    out->mma = 1;
    for (int i = 0; i < n; i++) {
        const qj_tensor *t = parts[i];
        qj_gemv_seg *sg = out->nseg ? &out->seg[out->nseg - 1] : NULL;
        /* a part joins the previous segment when it has the same format and
         * the segment so far fills whole 16-row tiles */
        if (sg && same_qformat(parts[sg->first], t) && sg->N % 16 == 0) {
            sg->N += t->shape[0];
            sg->nparts++;
        } else {
            out->seg[out->nseg++] = (qj_gemv_seg){t->q.bits, t->q.group, t->q.symmetric, t->q.scale_dtype == QJ_DTYPE_BF16,
                                                  t->shape[0], i, 1};
        }
        out->N += t->shape[0];
    }
    out->bits = out->seg[0].bits;
    out->group = out->seg[0].group;
    out->symmetric = out->seg[0].symmetric;
    out->scale_bf16 = out->seg[0].scale_bf16;
    int64_t kt = (out->K + 127) / 128, nt = 0;
    int nj = (batch + 3) / 4;
    for (int i = 0; i < out->nseg; i++) nt += (out->seg[i].N + 15) / 16;
    /* about 2048 warps in flight: two row tiles per warp when there are many,
     * then warps per block split the k tiles */
    out->rt = env_int("QJ_MMA_RT", 1, 4, batch <= 8 && nt >= 1024 ? 2 : 1);
    int64_t blocks = 0;
    for (int i = 0; i < out->nseg; i++) blocks += ((out->seg[i].N + 15) / 16 + out->rt - 1) / out->rt;
    int64_t sk = (2048 + blocks - 1) / blocks;
    if (sk > 8) sk = 8;
    if (sk > kt) sk = kt;
    out->splitk = env_int("QJ_MMA_SPLITK", 1, 16, (int)sk);
    while (out->splitk > 1 && out->splitk * out->rt * nj > 160) out->splitk--; /* shared memory of the reduction */
    /* about 8 KiB per warp in flight */
    int64_t stage = mma_stage_words(out) * 4;
    int d = (int)(1 + (8192 + stage - 1) / stage);
    out->stages = env_int("QJ_MMA_STAGES", 2, 12, d < 2 ? 2 : d > 8 ? 8 : d);
    while (out->stages > 2 && qj_gemv_smem_bytes(out) > 160 * 1024) out->stages--;
    return QJ_OK;
}

qj_status qj_gemv_spec_for(const qj_tensor *w, int batch, qj_gemv_spec *out) {
    const qj_tensor *p[1] = {w};
    return qj_gemv_spec_parts(p, 1, batch, 1, out);
}

int qj_gemv_arch_has_mma(const char *arch) {
    const char *u = strchr(arch, '_');
    return u && atoi(u + 1) >= 80;
}

void qj_gemv_name(const qj_gemv_spec *s, const char *arch, char *buf, size_t n) {
    char a[16] = "";
    for (size_t i = 0, j = 0; arch[i] && j + 1 < sizeof a; i++)
        if (arch[i] != '_' && strncmp(arch + i, "compute", 7) != 0) a[j++] = arch[i];
    if (!strncmp(arch, "compute_", 8)) snprintf(a, sizeof a, "ptx%s", arch + 8);
    if (s->mma) {
        size_t o = (size_t)snprintf(buf, n, "qj_tc");
        for (int i = 0; i < s->nseg && o < n; i++) {
            const qj_gemv_seg *g = &s->seg[i];
            o += (size_t)snprintf(buf + o, n - o, "_b%d_g%d%s%s_n%lld", g->bits, g->group, g->symmetric ? "_sym" : "",
                                  g->scale_bf16 ? "_sbf16" : "", (long long)g->N);
        }
        if (o < n)
            snprintf(buf + o, n - o, "_k%lld_bt%d_r%ds%dp%d_%s", (long long)s->K, s->batch, s->rt, s->splitk, s->stages, a);
    } else if (s->im) {
        char bx[64] = ""; /* x: activations in shared memory; b<JW>[k<KS>]: block-shared [K split]; c0/c1: an earlier fold; l0: branching loads; p0: no activation prefetch */
        if (s->xsmem) snprintf(bx, sizeof bx, "x");
        else if (s->bx && s->wg) snprintf(bx, sizeof bx, "b%dg%d", s->jw, s->wgswap);
        else if (s->bx && s->ks > 1) snprintf(bx, sizeof bx, "b%dk%d", s->jw, s->ks);
        else if (s->bx) snprintf(bx, sizeof bx, "b%d", s->jw);
        if (s->dm) snprintf(bx + strlen(bx), sizeof bx - strlen(bx), "d%d", s->dm);
        if (s->nb) snprintf(bx + strlen(bx), sizeof bx - strlen(bx), "n%d", s->nb);
        if (s->kscl) snprintf(bx + strlen(bx), sizeof bx - strlen(bx), "cl");
        if (s->red) snprintf(bx + strlen(bx), sizeof bx - strlen(bx), "r");
        if (s->pft) snprintf(bx + strlen(bx), sizeof bx - strlen(bx), "f%d", s->pft);
        if (s->cvt != 2) snprintf(bx + strlen(bx), sizeof bx - strlen(bx), "c%d", s->cvt);
        if (!s->xl) snprintf(bx + strlen(bx), sizeof bx - strlen(bx), "l0");
        if (!s->xpre && !QJ_IM_XSTAGED(s->batch)) snprintf(bx + strlen(bx), sizeof bx - strlen(bx), "p0");
        if (!s->swz && s->stages && QJ_IM_WA(s->bits) > 4) snprintf(bx + strlen(bx), sizeof bx - strlen(bx), "z0");
        /* a tail: _tn<wdt>p<prep>e<eps bits> (RMSNorm), _tsp<prep> (SwiGLU) */
        if (s->tail == QJ_TAIL_NORM) {
            uint32_t eb;
            memcpy(&eb, &s->tail_eps, 4);
            snprintf(bx + strlen(bx), sizeof bx - strlen(bx), "_tn%dp%de%08x", s->tail_wdt, s->tail_prep, (unsigned)eb);
        } else if (s->tail == QJ_TAIL_SWIGLU)
            snprintf(bx + strlen(bx), sizeof bx - strlen(bx), "_tsp%d", s->tail_prep);
        snprintf(buf, n, "qj_imv%d_b%d_g%d%s%s_n%lld_k%lld_bt%d_m%dw%du%ds%d%s_%s", QJ_IM_LAYOUT_REV, s->bits, s->group,
                 s->symmetric ? "_sym" : "", s->scale_bf16 ? "_sbf16" : "", (long long)s->N, (long long)s->K, s->batch,
                 s->mt, s->warps, s->unroll, s->stages, bx, a);
    } else if (s->dq)
        snprintf(buf, n, "qj_dqv_b%d_g%d%s%s_n%lld_k%lld_bt%d_%s", s->bits, s->group, s->symmetric ? "_sym" : "",
                 s->scale_bf16 ? "_sbf16" : "", (long long)s->N, (long long)s->K, s->batch, a);
    else if (s->bits <= 8)
        snprintf(buf, n, "qj_dqmv_b%d_g%d%s%s_n%lld_k%lld_bt%d_%s", s->bits, s->group, s->symmetric ? "_sym" : "",
                 s->scale_bf16 ? "_sbf16" : "", (long long)s->N, (long long)s->K, s->batch, a);
    else
        snprintf(buf, n, "qj_mv_%s_n%lld_k%lld_bt%d_%s", s->bits == 32 ? "f32" : s->scale_bf16 ? "bf16" : "f16",
                 (long long)s->N, (long long)s->K, s->batch, a);
}

qj_status qj_gemv_source(const qj_gemv_spec *s, const char *arch, char **source) {
    *source = NULL;
    char name[160];
    qj_gemv_name(s, arch, name, sizeof name);
    char *buf = malloc(2048);
    if (!buf) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    if (s->mma) {
        int o = snprintf(buf, 2048,
                         "/* Generated by qjit (compiler/cuda_codegen.c) for kernel %s: do not edit. */\n"
                         "#define QJ_KERNEL %s\n#define QJ_K %lld\n#define QJ_BATCH %d\n#define QJ_RT %d\n"
                         "#define QJ_SPLITK %d\n#define QJ_STAGES %d\n#define QJ_NSEG %d\n",
                         name, name, (long long)s->K, s->batch, s->rt, s->splitk, s->stages, s->nseg);
        for (int i = 0; i < s->nseg; i++) {
            const qj_gemv_seg *g = &s->seg[i];
            o += snprintf(buf + o, (size_t)(2048 - o),
                          "#define QJ_SEG%d_BITS %d\n#define QJ_SEG%d_GROUP %d\n#define QJ_SEG%d_SYM %d\n"
                          "#define QJ_SEG%d_SBF16 %d\n#define QJ_SEG%d_N %lld\n",
                          i, g->bits, i, g->group, i, g->symmetric, i, g->scale_bf16, i, (long long)g->N);
        }
        snprintf(buf + o, (size_t)(2048 - o), "#include \"qj_mma.cu\"\n");
        *source = buf;
        return QJ_OK;
    }
    if (s->im) {
        char tail[192] = ""; /* (absent without a tail or digit-major tiles: those kernels' sources, so their cache keys,
                              * stay as they were) */
        if (s->dm) snprintf(tail, sizeof tail, "#define QJ_IM_DM %d\n", s->dm);
        if (s->nb) snprintf(tail + strlen(tail), sizeof tail - strlen(tail), "#define QJ_IM_NB %d\n", s->nb);
        if (s->kscl) snprintf(tail + strlen(tail), sizeof tail - strlen(tail), "#define QJ_IM_KSCL 1\n");
        if (s->red) snprintf(tail + strlen(tail), sizeof tail - strlen(tail), "#define QJ_IM_RED 1\n");
        if (s->pft) snprintf(tail + strlen(tail), sizeof tail - strlen(tail), "#define QJ_IM_PFT %d\n", s->pft);
        if (s->tail)
            snprintf(tail + strlen(tail), sizeof tail - strlen(tail), "#define QJ_IM_TAIL %d\n#define QJ_TAIL_PREP %d\n#define QJ_TAIL_WDT %d\n#define QJ_TAIL_EPS %.9gf\n",
                     s->tail, s->tail_prep, s->tail_wdt, (double)s->tail_eps);
        snprintf(buf, 2048,
                 "/* Generated by qjit (compiler/cuda_codegen.c) for kernel %s: do not edit. */\n"
                 "#define QJ_KERNEL %s\n#define QJ_BITS %d\n#define QJ_GROUP %d\n#define QJ_N %lld\n#define QJ_K %lld\n"
                 "#define QJ_SYM %d\n#define QJ_SCALE_BF16 %d\n#define QJ_BATCH %d\n#define QJ_MT %d\n"
                 "#define QJ_WARPS %d\n#define QJ_UNROLL %d\n#define QJ_IM_STAGES %d\n#define QJ_IM_XSMEM %d\n"
                 "#define QJ_IM_BX %d\n#define QJ_IM_JW %d\n#define QJ_IM_CVT %d\n#define QJ_IM_XL %d\n"
                 "#define QJ_IM_WG %d\n#define QJ_IM_WG_SWAP %d\n#define QJ_IM_KS %d\n#define QJ_IM_XPRE %d\n#define QJ_IM_SWZ %d\n%s#include \"qj_imv.cu\"\n",
                 name, name, s->bits, s->group, (long long)s->N, (long long)s->K, s->symmetric, s->scale_bf16,
                 s->batch, s->mt, s->warps, s->unroll, s->stages, s->xsmem, s->bx, s->bx ? s->jw : (s->batch + 1) / 2, s->cvt, s->xl,
                 s->wg, s->wgswap, s->ks > 1 ? s->ks : 1, s->xpre, s->swz, tail);
        *source = buf;
        return QJ_OK;
    }
    if (s->dq) {
        snprintf(buf, 2048,
                 "/* Generated by qjit (compiler/cuda_codegen.c) for kernel %s: do not edit. */\n"
                 "#define QJ_KERNEL %s\n#define QJ_BITS %d\n#define QJ_GROUP %d\n#define QJ_N %lld\n#define QJ_K %lld\n"
                 "#define QJ_SYM %d\n#define QJ_SCALE_BF16 %d\n#define QJ_BATCH %d\n#define QJ_ROWS %d\n"
                 "#define QJ_WARPS %d\n#include \"qj_dqv.cu\"\n",
                 name, name, s->bits, s->group, (long long)s->N, (long long)s->K, s->symmetric, s->scale_bf16,
                 s->batch, s->rows, s->warps);
        *source = buf;
        return QJ_OK;
    }
    snprintf(buf, 2048,
             "/* Generated by qjit (compiler/cuda_codegen.c) for kernel %s: do not edit. */\n"
             "#define QJ_KERNEL %s\n#define QJ_BITS %d\n#define QJ_GROUP %d\n#define QJ_N %lld\n#define QJ_K %lld\n"
             "#define QJ_SYM %d\n#define QJ_SCALE_BF16 %d\n#define QJ_BATCH %d\n#define QJ_ROWS %d\n"
             "#define QJ_WARPS %d\n#define QJ_STAGE %d\n#include \"qj_gemv.cu\"\n",
             name, name, s->bits, s->group ? s->group : 32, (long long)s->N, (long long)s->K, s->symmetric,
             s->scale_bf16, s->batch, s->rows, s->warps, s->stage);
    *source = buf;
    return QJ_OK;
}

qj_status qj_gemv_device_scales(const qj_tensor *t, void **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    if (t->dtype != QJ_DTYPE_Q) return QJ_OK;
    size_t n = t->scales_nbytes / 2;
    if (t->q.symmetric) {
        *buf = malloc(t->scales_nbytes);
        if (!*buf) return qj_fail(QJ_ERR_NOMEM, "out of memory");
        memcpy(*buf, t->scales, t->scales_nbytes);
        *len = t->scales_nbytes;
        return QJ_OK;
    }
    uint32_t *p = malloc(n * 4);
    if (!p) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    const uint16_t *sc = t->scales, *z = t->zeros;
    for (size_t i = 0; i < n; i++) p[i] = (uint32_t)sc[i] | (uint32_t)z[i] << 16;
    *buf = p;
    *len = n * 4;
    return QJ_OK;
}

int qj_gemv_tail_fits(const qj_gemv_spec *s) {
    if (!s->im || s->batch != 1 || s->bx || s->wg || s->ks > 1) return 0;
    if (!s->stages) return 1;
    const int64_t ring = (int64_t)s->warps * s->stages * QJ_IM_SLOT_WORDS(s->bits, s->group, s->mt) * 4;
    const int64_t red = s->warps > 1 ? (int64_t)s->warps * s->mt * 16 * s->batch * 4 : 0;
    return ring + red + QJ_IM_TAIL_SMEM <= QJ_IM_SMEM_MAX;
}

void qj_gemv_launch_dims(const qj_gemv_spec *s, unsigned *grid, unsigned *block) {
    if (s->mma) {
        int64_t blocks = 0;
        for (int i = 0; i < s->nseg; i++) blocks += ((s->seg[i].N + 15) / 16 + s->rt - 1) / s->rt;
        *grid = (unsigned)blocks;
        *block = (unsigned)(s->splitk * 32);
        return;
    }
    if (s->im) {
        const int64_t mts = im_block_mtiles(s);
        *grid = s->nb ? (unsigned)s->nb : (unsigned)((QJ_IM_MTILES(s->N) + mts - 1) / mts * (s->ks > 1 ? s->ks : 1));
        *block = (unsigned)(s->warps * 32);
        return;
    }
    int64_t rows_per_block = s->bits <= 8 ? s->rows : (int64_t)s->warps * s->rows;
    *grid = (unsigned)((s->N + rows_per_block - 1) / rows_per_block);
    *block = (unsigned)(s->warps * 32);
}

/* ---- tensor-core kernels: activations and the weight re-layout ---- */

static int64_t mma_kt(const qj_gemv_spec *s) { return (s->K + 127) / 128; }

void qj_gemv_act_bytes(const qj_gemv_spec *s, size_t *xf, size_t *xsum, size_t *xscale) {
    int64_t kt = mma_kt(s), nj = (s->batch + 3) / 4, g8 = s->batch >= 4 ? 8 : 2 * s->batch;
    *xf = (size_t)(kt * nj * g8 * 256);
    *xsum = (size_t)(4 * nj * 4 * kt * 4);
    *xscale = (size_t)(4 * nj * kt * 4);
}

int qj_gemv_prep_kind(const qj_gemv_spec *s) { return s->mma ? 1 : s->dq ? QJ_PREP_DQ : s->im ? QJ_PREP_IM : 0; }

void qj_gemv_im_act_bytes(const qj_gemv_spec *s, size_t *xi, size_t *xw) {
    int64_t kt = QJ_IM_KT(s->K);
    *xi = (size_t)(s->batch * QJ_IM_XI_WORDS(kt) * 4);
    *xw = (size_t)(s->batch * QJ_IM_XW_FLOAT4(kt) * 16);
}

void qj_gemv_dq_act_bytes(const qj_gemv_spec *s, size_t *xq, size_t *xc) {
    int64_t nt = (QJ_NBLOCKS(s->K) + 31) / 32;
    *xq = (size_t)(s->batch * nt * 3 * 1024);
    *xc = (size_t)(s->batch * nt * 32 * 16);
}

void qj_gemv_prep_dims(const qj_gemv_spec *s, unsigned *grid, unsigned *block) {
    if (s->im) {
        *grid = (unsigned)((s->batch * QJ_IM_KT(s->K) + 3) / 4);
        *block = 128;
        return;
    }
    if (s->dq) {
        *grid = (unsigned)((s->batch * QJ_NBLOCKS(s->K) + 3) / 4);
        *block = 128;
        return;
    }
    int64_t warps = 4 * ((s->batch + 3) / 4) * mma_kt(s);
    *grid = (unsigned)((warps + 7) / 8);
    *block = 256;
}

/* The group the kernel sees: one per row when it spans K. */
static int64_t mma_ge(int group, int64_t K) { return group >= K ? (K + 127) / 128 * 128 : group; }

/* Codes of one part re-laid out into (row tile, k tile) tiles of 32 lanes x
 * 2*bits words (see templates/qj_mma.cu and docs/KERNELS.md). */
static qj_status mma_relayout_codes(const qj_tensor *t, int64_t kt_n, uint32_t *dst) {
    const int B = t->q.bits;
    const int64_t N = t->shape[0], K = t->shape[1], nt_n = (N + 15) / 16, rw = QJ_ROW_WORDS(K, B);
    const int p4 = B >= 4 && B != 8, p2 = B == 2 || B == 3 || B == 6 || B == 7, p1 = B == 3 || B == 5 || B == 7;
    const int o2 = p4 ? 4 : 0, o1 = p4 * 4 + p2 * 2, w2 = p4 ? 8 : 0, w1 = w2 + (p2 ? 4 : 0), tw = 2 * B, q4 = tw / 4;
    const uint32_t *src = t->data;
    int failed = 0;
    #pragma omp parallel for schedule(dynamic, 4)
    for (int64_t nt = 0; nt < nt_n; nt++) {
        uint8_t *codes = calloc((size_t)(16 * kt_n * 128), 1);
        if (!codes) { failed = 1; continue; }
        for (int rr = 0; rr < 16; rr++) {
            int64_t row = nt * 16 + rr;
            if (row >= N) break;
            uint32_t blk[32];
            for (int64_t b = 0; b < QJ_NBLOCKS(K); b++) {
                qj_unpack_block(src + row * rw + b * B, (uint32_t)B, blk);
                for (int j = 0; j < 32; j++) codes[(size_t)rr * (size_t)(kt_n * 128) + (size_t)(b * 32 + j)] = (uint8_t)blk[j];
            }
        }
        for (int64_t kt = 0; kt < kt_n; kt++) {
            uint32_t *tile = dst + (size_t)(nt * kt_n + kt) * (size_t)(64 * B);
            for (int lane = 0; lane < 32; lane++) {
                const int g = lane >> 2, tq = lane & 3;
                uint32_t w[16] = {0};
                for (int q = 0; q < 32; q++) {
                    const int m = q >> 2, r = q & 3, row = g + 8 * (r & 1);
                    const int64_t k = kt * 128 + 16 * m + 2 * tq + 8 * (r >> 1);
                    const uint8_t *cr = codes + (size_t)row * (size_t)(kt_n * 128);
                    const uint32_t lo = cr[k], hi = cr[k + 1];
                    if (B == 8) {
                        w[q >> 1] |= (lo | hi << 8) << (16 * (q & 1));
                        continue;
                    }
                    if (p4) w[q >> 2] |= ((lo & 15u) | (hi & 15u) << 16) << (4 * (q & 3));
                    if (p2) w[w2 + (q >> 3)] |= ((lo >> o2 & 3u) | (hi >> o2 & 3u) << 16) << (2 * (q & 7));
                    if (p1) w[w1 + (q >> 4)] |= ((lo >> o1 & 1u) | (hi >> o1 & 1u) << 16) << (q & 15);
                }
                for (int i = 0; i < tw; i++) {
                    size_t off = i < 4 * q4 ? (size_t)(i / 4) * 128 + (size_t)lane * 4 + (size_t)(i % 4)
                                            : (size_t)q4 * 128 + (size_t)lane * 2 + (size_t)(i - 4 * q4);
                    tile[off] = w[i];
                }
            }
        }
        free(codes);
    }
    return failed ? qj_fail(QJ_ERR_NOMEM, "out of memory") : QJ_OK;
}

/* Scales of one part as uint32 (scale | zero << 16) [row tile][group][g][2]. */
static void mma_relayout_scales(const qj_tensor *t, int64_t kt_n, uint32_t *dst) {
    const int64_t N = t->shape[0], K = t->shape[1], nt_n = (N + 15) / 16, ge = mma_ge(t->q.group, K);
    const int64_t ngt = (kt_n * 128 + ge - 1) / ge, ng = QJ_NGROUPS(K, t->q.group);
    const uint16_t *sc = t->scales, *z = t->zeros;
    for (int64_t nt = 0; nt < nt_n; nt++)
        for (int64_t grp = 0; grp < ngt; grp++)
            for (int g = 0; g < 8; g++)
                for (int h = 0; h < 2; h++) {
                    int64_t row = nt * 16 + g + 8 * h;
                    uint32_t v = 0;
                    if (row < N && grp < ng) {
                        v = sc[row * ng + grp];
                        if (!t->q.symmetric) v |= (uint32_t)z[row * ng + grp] << 16;
                    }
                    dst[((nt * ngt + grp) * 8 + g) * 2 + h] = v;
                }
}

/* Codes of one part in the integer-dot GEMV's plane layout (qj_layout.h):
 * N rows of QJ_DQ_ROW_WORDS(K, B) words, padding zero. */
static void dq_relayout_codes(const qj_tensor *t, uint32_t *dst) {
    const int B = t->q.bits;
    const int64_t N = t->shape[0], K = t->shape[1], nb = QJ_NBLOCKS(K), rw = QJ_ROW_WORDS(K, B);
    const int64_t rwp = QJ_DQ_ROW_WORDS(K, B);
    const int s2 = QJ_DQ_S2(B), s1 = QJ_DQ_S1(B);
    const uint32_t *src = t->data;
    memset(dst, 0, (size_t)(N * rwp) * 4);
    #pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < N; row++) {
        uint32_t c[32];
        for (int64_t b = 0; b < nb; b++) {
            const int64_t tile = b / 32;
            const int l = (int)(b % 32), tn = (int)(nb - tile * 32 < 32 ? nb - tile * 32 : 32);
            uint32_t *p = dst + row * rwp + tile * 32 * B;
            qj_unpack_block(src + row * rw + b * B, (uint32_t)B, c);
            for (int j = 0; j < 32; j++) {
                const int g = j / 4, k = j % 4;
                if (QJ_DQ_P8(B)) {
                    p[g < 4 ? QJ_DQ_OFF4(B, tn, l) + g : QJ_DQ_OFF8H(B, tn, l) + g - 4] |= c[j] << (8 * k);
                    continue;
                }
                if (QJ_DQ_P4(B)) /* value j = 8i + 4h + k: word i, nibble h of byte k */
                    p[QJ_DQ_OFF4(B, tn, l) + j / 8] |= (c[j] & 15u) << (8 * k + 4 * ((j / 4) & 1));
                if (QJ_DQ_P2(B)) /* value j = 16i + 4m + k: word i, bits 2m of byte k */
                    p[QJ_DQ_OFF2(B, tn, l) + j / 16] |= (c[j] >> s2 & 3u) << (8 * k + 2 * ((j / 4) & 3));
                if (QJ_DQ_P1(B)) /* value j = 4m + k: bit 8k + m */
                    p[QJ_DQ_OFF1(B, tn, l)] |= (c[j] >> s1 & 1u) << (8 * k + j / 4);
            }
        }
    }
}

/* Row r of n parts stacked by rows: its part and row there. */
static const qj_tensor *stacked_row(const qj_tensor *const *p, int n, int64_t r, int64_t *local) {
    for (int i = 0; i < n; i++) {
        if (r < p[i]->shape[0]) {
            *local = r;
            return p[i];
        }
        r -= p[i]->shape[0];
    }
    return NULL;
}

/* Codes of n parts of one format stacked by rows, in the integer-MMA GEMV's
 * tiles (qj_layout.h: the inverse of qj_im_reg), and their scales as uint32
 * (scale | zero << 16) [m-tile][group][g][h]; padding rows, k values and
 * groups are zero. */
static qj_status im_relayout(const qj_gemv_spec *s, const qj_tensor *const *p, int n, uint32_t *dst, uint32_t *sdst) {
    const int B = s->bits, G = s->group;
    const int64_t N = s->N, K = s->K, kt_n = QJ_IM_KT(K), mt_n = QJ_IM_MTILES(N), nb = QJ_NBLOCKS(K);
    const int64_t ngt = (kt_n * 128 + G - 1) / G, ng = QJ_NGROUPS(K, G), rw = QJ_ROW_WORDS(K, B);
    const int wa = QJ_IM_WA(B), s2 = QJ_DQ_S2(B), s1 = QJ_DQ_S1(B);
    int failed = 0;
    #pragma omp parallel for schedule(dynamic, 4)
    for (int64_t mt = 0; mt < mt_n; mt++) {
        uint8_t *codes = calloc((size_t)(16 * kt_n * 128), 1);
        if (!codes) { failed = 1; continue; }
        for (int rr = 0; rr < 16; rr++) {
            int64_t lr = 0;
            const qj_tensor *t = mt * 16 + rr < N ? stacked_row(p, n, mt * 16 + rr, &lr) : NULL;
            const int g = rr & 7, h = rr >> 3; /* row 16 mt + g + 8 h */
            for (int64_t gi = 0; gi < ngt; gi++) {
                uint32_t v = 0;
                if (t && gi < ng) {
                    v = ((const uint16_t *)t->scales)[lr * ng + gi];
                    if (!s->symmetric) v |= (uint32_t)((const uint16_t *)t->zeros)[lr * ng + gi] << 16;
                }
                sdst[((mt * ngt + gi) * 8 + g) * 2 + h] = v;
            }
            if (!t) continue;
            uint32_t blk[32];
            for (int64_t b = 0; b < nb; b++) {
                qj_unpack_block((const uint32_t *)t->data + lr * rw + b * B, (uint32_t)B, blk);
                for (int j = 0; j < 32; j++) codes[(size_t)rr * (size_t)(kt_n * 128) + (size_t)(b * 32 + j)] = (uint8_t)blk[j];
            }
        }
        for (int64_t kt = 0; kt < kt_n; kt++) {
            uint32_t *tile = dst + (size_t)(mt * kt_n + kt) * QJ_IM_TILE_WORDS(B);
            for (int lane = 0; lane < 32; lane++) {
                const int g = lane >> 2, tq = lane & 3;
                uint32_t w8[16] = {0}, w2[4] = {0}, w1[2] = {0};
                for (int st = 0; st < 4; st++)
                    for (int r = 0; r < 4; r++)
                        for (int i = 0; i < 4; i++) {
                            const int row = g + 8 * (r & 1);
                            const int64_t k = kt * 128 + 32 * st + 16 * (r >> 1) + 4 * tq + i;
                            const uint32_t c = codes[(size_t)row * (size_t)(kt_n * 128) + (size_t)k];
                            if (QJ_DQ_P8(B)) {
                                w8[4 * st + r] |= c << (8 * i);
                                continue;
                            }
                            if (B == 3) { /* whole codes (qj_layout.h) */
                                if (r < 2) w2[st] |= c << (8 * i + 3 * r);
                                else if (r == 2) {
                                    w2[st] |= (c & 3u) << (8 * i + 6);
                                    w1[st >> 1] |= (c >> 2) << (8 * i + 4 * (st & 1));
                                } else w1[st >> 1] |= c << (8 * i + 4 * (st & 1) + 1);
                                continue;
                            }
                            if (QJ_DQ_P4(B)) w8[2 * st + (r >> 1)] |= (c & 15u) << (8 * i + 4 * (r & 1));
                            if (QJ_DQ_P2(B)) w2[st] |= (c >> s2 & 3u) << (8 * i + 2 * r);
                            if (QJ_DQ_P1(B)) w1[st >> 1] |= (c >> s1 & 1u) << (8 * i + r + 4 * (st & 1));
                        }
                for (int i = 0; i < wa; i++) tile[lane * wa + i] = w8[i];
                if (QJ_DQ_P2(B))
                    for (int i = 0; i < 4; i++) tile[QJ_IM_OFF2(B) + lane * 4 + i] = w2[i];
                if (QJ_DQ_P1(B))
                    for (int i = 0; i < 2; i++) tile[QJ_IM_OFF1(B) + lane * 2 + i] = w1[i];
            }
        }
        free(codes);
    }
    return failed ? qj_fail(QJ_ERR_NOMEM, "out of memory") : QJ_OK;
}

qj_status qj_gemv_host_arrays(const qj_gemv_spec *s, const qj_tensor *const *parts, int seg, void **w, size_t *wl,
                              void **sc, size_t *sl) {
    *w = *sc = NULL;
    *wl = *sl = 0;
    if (seg < 0 || seg >= s->nseg) return qj_fail(QJ_ERR_INVALID, "segment %d of %d", seg, s->nseg);
    const qj_gemv_seg *g = &s->seg[seg];
    const qj_tensor *const *p = parts + g->first;
    if (s->im) {
        const int64_t kt = QJ_IM_KT(s->K), mtn = QJ_IM_MTILES(s->N), ngt = (kt * 128 + s->group - 1) / s->group;
        size_t words = (size_t)(mtn * kt) * QJ_IM_TILE_WORDS(s->bits), swords = (size_t)(mtn * ngt * 16);
        *w = malloc(words * 4);
        *sc = malloc(swords * 4);
        if (!*w || !*sc) goto nomem;
        qj_status st = im_relayout(s, p, g->nparts, *w, *sc);
        if (st) { free(*w); free(*sc); *w = *sc = NULL; return st; }
        *wl = words * 4;
        *sl = swords * 4;
        return QJ_OK;
    }
    if (!s->mma) {
        size_t nb = 0, nsb = 0;
        for (int i = 0; i < g->nparts; i++) {
            nb += s->dq ? (size_t)(p[i]->shape[0] * QJ_DQ_ROW_WORDS(s->K, s->bits)) * 4 : p[i]->nbytes;
            nsb += p[i]->scales_nbytes + p[i]->zeros_nbytes;
        }
        *w = malloc(nb ? nb : 1);
        *sc = nsb ? malloc(nsb) : NULL;
        if (!*w || (nsb && !*sc)) goto nomem;
        size_t on = 0, os = 0;
        for (int i = 0; i < g->nparts; i++) {
            if (s->dq) {
                dq_relayout_codes(p[i], (uint32_t *)((char *)*w + on));
                on += (size_t)(p[i]->shape[0] * QJ_DQ_ROW_WORDS(s->K, s->bits)) * 4;
            } else {
                memcpy((char *)*w + on, p[i]->data, p[i]->nbytes);
                on += p[i]->nbytes;
            }
            void *ds = NULL;
            size_t dl = 0;
            qj_status st = qj_gemv_device_scales(p[i], &ds, &dl);
            if (st) { free(*w); free(*sc); *w = *sc = NULL; return st; }
            if (dl) memcpy((char *)*sc + os, ds, dl);
            free(ds);
            os += dl;
        }
        *wl = nb;
        *sl = os;
        return QJ_OK;
    }
    const int64_t kt = mma_kt(s), ge = mma_ge(g->group, s->K), ngt = (kt * 128 + ge - 1) / ge;
    size_t words = 0, swords = 0;
    for (int i = 0; i < g->nparts; i++) {
        int64_t nt = (p[i]->shape[0] + 15) / 16;
        words += (size_t)(nt * kt * 64 * g->bits);
        swords += (size_t)(nt * ngt * 16);
    }
    *w = malloc(words * 4);
    *sc = malloc(swords * 4);
    if (!*w || !*sc) goto nomem;
    size_t ow = 0, os = 0;
    for (int i = 0; i < g->nparts; i++) {
        int64_t nt = (p[i]->shape[0] + 15) / 16;
        qj_status st = mma_relayout_codes(p[i], kt, (uint32_t *)*w + ow);
        if (st) { free(*w); free(*sc); *w = *sc = NULL; return st; }
        mma_relayout_scales(p[i], kt, (uint32_t *)*sc + os);
        ow += (size_t)(nt * kt * 64 * g->bits);
        os += (size_t)(nt * ngt * 16);
    }
    *wl = words * 4;
    *sl = swords * 4;
    return QJ_OK;
nomem:
    free(*w);
    free(*sc);
    *w = *sc = NULL;
    return qj_fail(QJ_ERR_NOMEM, "out of memory re-laying out %s", parts[0]->name);
}

void qj_cuda_arch_string(int major, int minor, int ptx, char *buf, size_t n) {
    snprintf(buf, n, "%s_%d%d%s", ptx ? "compute" : "sm", major, minor, major == 9 && minor == 0 ? "a" : "");
}

int qj_ops_dtype_code(qj_dtype t) { return t == QJ_DTYPE_F32 ? 0 : t == QJ_DTYPE_F16 ? 1 : t == QJ_DTYPE_BF16 ? 2 : 3; }

static int pad32i(int n) { return (n + 31) / 32 * 32; }

void qj_ops_layout(const qj_config *c, int max_seq, qj_ops_strides *s) {
    const int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    s->x = c->dim;
    s->xb = pad32i(c->dim > qd ? c->dim : qd);
    s->qkv = qd + 2 * kvd;
    s->att = pad32i(qd);
    s->gu = 2 * c->hidden_dim;
    s->hb = pad32i(c->hidden_dim);
    s->cache = (int64_t)c->n_layers * max_seq * kvd;
}

int qj_ops_att_split(const qj_config *c, int max_seq, int batch) {
    const char *e = getenv("QJ_ATT_SPLIT");
    int v = e ? atoi(e) : 0;
    if (v >= 1 && v <= 32) return v;
    /* 1..8 a head: at batch 1 about 256 blocks (as packages built before this rule expect); above, about 512
     * and at least 2 a head. Llama-3-8B decode (32 heads), 256 tokens: at batch 1 on the H200, 4, 8 and 16 a
     * head ran 536.3, 547.1, 525.8 tokens/s; on the H100 with shares combined through global memory
     * (docs/PERFORMANCE.md, 2026-12-06), 2, 4 and 8 a head ran 724, 758 and 769 tokens/s at batch 2; 1,337,
     * 1,328 and 1,297 at batch 4; 2,269, 2,280 and 2,170 at batch 8; 3,676, 3,654 and 3,356 at batch 16 (1 a
     * head: 3,640). The rule is within 0.7% of the best of each. */
    const long heads = (long)c->n_heads * (batch < 1 ? 1 : batch), want = batch > 1 ? 512 : 256;
    v = (int)((want + heads - 1) / heads);
    const int lo = batch > 1 ? 2 : 1;
    v = v < lo ? lo : v > 8 ? 8 : v;
    /* a block's scores (its share of the positions, 4 bytes each) stay within 128 KiB of shared memory, up to
     * the 32 blocks a head the kernel takes (past a million positions the launch's shared memory asks too much,
     * and says so) */
    const int least0 = (max_seq + 32767) / 32768, least = least0 > 32 ? 32 : least0;
    return v < least ? least : v;
}

int qj_ops_att_cluster(int batch) {
    /* 0: attention's blocks of a head combine through global memory (the last to count), as before clusters */
    const char *e = getenv("QJ_ATT_CLUSTER");
    if (e && (!strcmp(e, "0") || !strcmp(e, "1"))) return e[0] == '1';
    return batch == 1;
}

qj_status qj_ops_source(const qj_model *m, int max_seq, int prep, int batch, char **out) {
    if (prep != QJ_PREP_DQ && prep != QJ_PREP_IM) return qj_fail(QJ_ERR_INVALID, "ops module: prep kind %d", prep);
    const qj_config *c = &m->cfg;
    qj_dtype nd = m->final_norm.dtype;
    for (int i = 0; i < c->n_layers; i++)
        if (m->layers[i].attn_norm.dtype != nd || m->layers[i].ffn_norm.dtype != nd ||
            (c->qkv_bias && (m->layers[i].bq.dtype != nd || m->layers[i].bk.dtype != nd || m->layers[i].bv.dtype != nd)))
            return qj_fail(QJ_ERR_UNSUPPORTED, "the GPU path needs every norm weight and bias in one dtype");
    const qj_tensor *e = &m->tok_embedding;
    qj_ops_strides L;
    qj_ops_layout(c, max_seq, &L);
    char *buf = malloc(2048);
    if (!buf) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    snprintf(buf, 2048,
             "/* Generated by qjit (compiler/cuda_codegen.c): the non-matmul kernels of this model. */\n"
             "#define QJ_DIM %d\n#define QJ_HIDDEN %d\n#define QJ_N_HEADS %d\n#define QJ_N_KV_HEADS %d\n"
             "#define QJ_HEAD_DIM %d\n#define QJ_MAX_SEQ %d\n#define QJ_EPS %.9gf\n#define QJ_ROPE_HALF %d\n"
             "#define QJ_QKV_BIAS %d\n#define QJ_NORM_DTYPE %d\n#define QJ_EMB_DTYPE %d\n#define QJ_EMB_BITS %d\n"
             "#define QJ_EMB_GROUP %d\n#define QJ_EMB_SYM %d\n#define QJ_EMB_SCALE_BF16 %d\n#define QJ_THREADS %d\n"
             "#define QJ_OPS_PREP %d\n#define QJ_OPS_S_X %d\n#define QJ_OPS_S_XB %d\n#define QJ_OPS_S_QKV %d\n"
             "#define QJ_OPS_S_ATT %d\n#define QJ_OPS_S_GU %d\n#define QJ_OPS_S_HB %d\n"
             "#define QJ_OPS_S_CACHE ((size_t)%lldull)\n#define QJ_ATT_SPLIT %d\n#define QJ_ATT_CLUSTER %d\n"
             "#include \"qj_ops.cu\"\n",
             c->dim, c->hidden_dim, c->n_heads, c->n_kv_heads, c->head_dim, max_seq, (double)c->rms_eps,
             c->rope_style == QJ_ROPE_HALF, c->qkv_bias, qj_ops_dtype_code(nd), qj_ops_dtype_code(e->dtype),
             e->dtype == QJ_DTYPE_Q ? e->q.bits : 4, e->dtype == QJ_DTYPE_Q ? e->q.group : 32,
             e->dtype == QJ_DTYPE_Q ? e->q.symmetric : 0, e->dtype == QJ_DTYPE_Q && e->q.scale_dtype == QJ_DTYPE_BF16,
             QJ_OPS_THREADS, prep, L.x, L.xb, L.qkv, L.att, L.gu, L.hb, (long long)L.cache, qj_ops_att_split(c, max_seq, batch),
             qj_ops_att_cluster(batch));
    *out = buf;
    return QJ_OK;
}
