/* qj_layout.h — the packed weight layout, shared by the C quantizer and the
 * CUDA kernels (this header is included verbatim by NVRTC-compiled sources, so
 * it uses no libc beyond <stdint.h>-style fixed-width types).
 *
 * A quantized linear weight W (N rows = output features, K columns = input
 * features, row-major like PyTorch's nn.Linear.weight) with B bits and group
 * size G is stored as three arrays:
 *
 *   uint32_t q[N][QJ_ROW_WORDS(K,B)];   // codes, row-major, see "blocks" below
 *   half     scale[N][QJ_NGROUPS(K,G)]; // fp16 or bf16 (manifest says which)
 *   half     zero[N][QJ_NGROUPS(K,G)];  // asymmetric only: the group minimum
 *
 * Blocks: each row is cut into blocks of 32 consecutive K-values. A block
 * takes exactly B uint32 words (32*B bits). Value j (0..31) of a block holds
 * bits [j*B, j*B+B) of the block's 32*B-bit little-endian bit string: bit t of
 * the string is bit (t % 32) of word (t / 32). For B = 4 and 8 no value
 * crosses a word; for B = 3, 5, 6, 7 some do. The last block of a row is
 * padded with code 0 when K is not a multiple of 32 (ragged K).
 *
 * Groups: group g covers K-values [g*G, min((g+1)*G, K)). G is a multiple of
 * 32 (32..512) or equals K rounded up to 32 (per-channel), so a group is a
 * whole number of blocks; the last group may be short (ragged).
 *
 * Dequantization of code c in group g of row n:
 *   asymmetric: w = c * scale[n][g] + zero[n][g]
 *   symmetric:  w = (c - 2^(B-1)) * scale[n][g]
 */
#ifndef QJ_LAYOUT_H
#define QJ_LAYOUT_H

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#if defined(__CUDACC_RTC__)
/* NVRTC ships no <stdint.h>; a repeated identical typedef is legal C++. */
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#else
#include <stdint.h> /* nvcc: the host compiler's header */
#endif
#define QJ_HD __host__ __device__ __forceinline__
#else
#include <stdint.h>
#define QJ_HD static inline
#endif

#define QJ_BLOCK 32                       /* K-values per packed block */
#define QJ_MIN_BITS 2
#define QJ_MAX_BITS 8
#define QJ_NBLOCKS(K) (((K) + QJ_BLOCK - 1) / QJ_BLOCK)
#define QJ_ROW_WORDS(K, B) (QJ_NBLOCKS(K) * (B))           /* uint32 words per row */
#define QJ_NGROUPS(K, G) (((K) + (G) - 1) / (G))
#define QJ_SYM_OFFSET(B) (1 << ((B) - 1))                  /* implicit zero code */

/* Code of value k (0-based within the row) from a packed row of B-bit codes. */
QJ_HD uint32_t qj_unpack_code(const uint32_t *row, uint32_t k, uint32_t B) {
    uint32_t block = k / QJ_BLOCK, j = k % QJ_BLOCK;
    const uint32_t *w = row + block * B;
    uint32_t bit = j * B, word = bit / 32, shift = bit % 32;
    uint64_t both = (uint64_t)w[word];
    if (shift + B > 32) both |= (uint64_t)w[word + 1] << 32;
    return (uint32_t)(both >> shift) & ((1u << B) - 1u);
}

/* Store code c (< 2^B) for value k; the word(s) must start zeroed. */
QJ_HD void qj_pack_code(uint32_t *row, uint32_t k, uint32_t B, uint32_t c) {
    uint32_t block = k / QJ_BLOCK, j = k % QJ_BLOCK;
    uint32_t *w = row + block * B;
    uint32_t bit = j * B, word = bit / 32, shift = bit % 32;
    w[word] |= c << shift;
    if (shift + B > 32) w[word + 1] |= c >> (32 - shift);
}

/* All 32 codes of one block (B words at w) into out[0..32). */
QJ_HD void qj_unpack_block(const uint32_t *w, uint32_t B, uint32_t *out) {
    uint64_t window = w[0];
    uint32_t have = 32, next = 1, mask = (1u << B) - 1u;
    for (uint32_t j = 0; j < QJ_BLOCK; j++) {
        if (have < B) { /* refill: append the next word above the remaining bits */
            window |= (uint64_t)w[next++] << have;
            have += 32;
        }
        out[j] = (uint32_t)window & mask;
        window >>= B;
        have -= B;
    }
}

/* ---- The integer-dot GEMV's re-layout (templates/qj_dqv.cu) ----
 * A row keeps its NBLOCKS*B words (padded to a multiple of 4: QJ_DQ_ROW_WORDS)
 * but each block's codes are split into planes whose bytes hold 4 codes in
 * natural order after one shift and mask: "group" g of a block = its values
 * 4g..4g+3, and byte k of a group's word = value 4g+k.
 *   8-bit: plane "8": word g = values 4g..4g+3, one byte each (2 x 4 words).
 *   4-bit plane (bits 0-3 of B = 4, 5, 6, 7): word i (0..3), byte k: low
 *     nibble = value 8i+k, high nibble = value 8i+4+k; group g = word g/2
 *     shifted by 4*(g%2).
 *   2-bit plane (bits QJ_DQ_S2.. of B = 2, 3, 6, 7): word i (0..1), byte k,
 *     bits 2m..2m+1 = value 16i+4m+k; group g = word g/4 shifted by 2*(g%4).
 *   1-bit plane (bit QJ_DQ_S1 of B = 3, 5, 7): bit 8k+m = value 4m+k; group
 *     g = the word shifted by g.
 * Within a row, blocks come in tiles of 32 (the last may hold nb < 32); a
 * tile stores each plane of all its blocks together, lane-major:
 *   [nb x 4 words of the first plane (4-bit, or 8-bit words 0-3)]
 *   [nb x 4 words of 8-bit words 4-7 | nb x 2 words of the 2-bit plane]
 *   [nb x 1 word of the 1-bit plane]
 * so the 32 lanes of a warp read each plane with one coalesced load. */
#define QJ_DQ_P8(B) ((B) == 8)
#define QJ_DQ_P4(B) ((B) >= 4 && (B) != 8)
#define QJ_DQ_P2(B) ((B) == 2 || (B) == 3 || (B) == 6 || (B) == 7)
#define QJ_DQ_P1(B) ((B) == 3 || (B) == 5 || (B) == 7)
#define QJ_DQ_S2(B) (QJ_DQ_P4(B) ? 4 : 0)                       /* code bit of the 2-bit plane */
#define QJ_DQ_S1(B) (QJ_DQ_P4(B) * 4 + QJ_DQ_P2(B) * 2)        /* code bit of the 1-bit plane */
#define QJ_DQ_ROW_WORDS(K, B) ((QJ_ROW_WORDS(K, B) + 3) / 4 * 4)
/* Word offsets, within a tile of nb blocks, of block l's 8-bit or 4-bit
 * plane, its second 8-bit half, its 2-bit plane and its 1-bit plane. */
#define QJ_DQ_OFF4(B, nb, l) ((l) * 4)
#define QJ_DQ_OFF8H(B, nb, l) ((nb) * 4 + (l) * 4)
#define QJ_DQ_OFF2(B, nb, l) ((nb) * 4 * QJ_DQ_P4(B) + (l) * 2)
#define QJ_DQ_OFF1(B, nb, l) ((nb) * (4 * QJ_DQ_P4(B) + 2 * QJ_DQ_P2(B)) + (l))


/* ---- The integer-MMA GEMV's re-layout (templates/qj_imv.cu) ----
 * Rows are cut into m-tiles of 16, K into k-tiles of 128 = 4 k-steps of 32
 * (the last of each padded with code 0). The tile (m-tile mt, k-tile kt) is
 * 64*B words: 32 lanes x 2B words. Lane (g = lane / 4, t = lane % 4) holds,
 * for k-step s (0..3), its A fragment of mma.sync.m16n8k32 (.u8): register r
 * (0..3), byte i = the code of
 *     row 16 mt + g + 8 (r & 1),  k = 128 kt + 32 s + 16 (r >> 1) + 4 t + i,
 * split into the planes of its width (as above: 3 = 2+1, 5 = 4+1, 6 = 4+2,
 * 7 = 4+2+1), per lane and tile:
 *   8-bit (B = 8): 16 words; word 4s + r = register r of step s;
 *   4-bit plane: 8 words; word 2s + j: low nibbles = register 2j, high
 *     nibbles = register 2j + 1 of step s;
 *   2-bit plane (code bits QJ_DQ_S2..): 4 words; bits 2m..2m+1 of byte i of
 *     word s = register m, byte i, of step s;
 *   1-bit plane (code bit QJ_DQ_S1): 2 words; bit m + 4 (s % 2) of byte i of
 *     word s / 2 = register m, byte i, of step s.
 * 3-bit (B = 3) packs whole codes instead of planes, in the same 4 + 2 words
 * (so at the offsets of the 2- and 1-bit planes), for a cheaper unpack
 * (registers 0, 1 and 3 one shift and one mask each, 2 in two of each):
 *   word s (the 2-bit plane's place), byte i: bits 0..2 = code of register 0,
 *     3..5 = register 1, 6..7 = bits 0..1 of register 2, of step s;
 *   word 4 + s / 2 (the 1-bit plane's place), byte i, bits 4 (s % 2) + 0..3:
 *     bit 0 = bit 2 of register 2's code, bits 1..3 = register 3's code.
 * A tile stores plane by plane, lane-major (each plane one coalesced load per
 * lane): [32 x QJ_IM_WA words][32 x 4 words of the 2-bit plane][32 x 2 words
 * of the 1-bit plane]. Tiles are stored m-tile-major: tile (mt, kt) starts at
 * word (mt * KT + kt) * 64 B. */
/* revision of this re-layout, in the kernels' names (a package's cubins of an earlier one are not
 * reused for weights laid out by this one): 2 = whole 3-bit codes */
#define QJ_IM_LAYOUT_REV 2
#define QJ_IM_KT(K) (((K) + 127) / 128)                            /* k-tiles */
#define QJ_IM_MTILES(N) (((N) + 15) / 16)                          /* m-tiles */
#define QJ_IM_WA(B) (QJ_DQ_P8(B) ? 16 : QJ_DQ_P4(B) ? 8 : 0)       /* words of the 8- or 4-bit plane */
#define QJ_IM_OFF2(B) (32 * QJ_IM_WA(B))                           /* the 2-bit plane in a tile */
#define QJ_IM_OFF1(B) (32 * QJ_IM_WA(B) + 128 * QJ_DQ_P2(B))       /* the 1-bit plane in a tile */
#define QJ_IM_TILE_WORDS(B) (64 * (B))
/* k-steps per scale fold of group G (a fold stays inside one group), and the
 * per-warp shared-memory ring of the kernel's cp.async pipeline: a stage
 * holds MT m-tiles' tile words and their scales (16 words per fold); at most
 * QJ_IM_RING_BYTES per block by default, so ring stages = that / (warps *
 * slot bytes); the compiler clamps the stages it asks for to that. */
#define QJ_IM_FOLD(G) ((G) % 128 == 0 ? 4 : (G) % 64 == 0 ? 2 : 1)
#define QJ_IM_SLOT_WORDS(B, G, MT) ((MT) * (QJ_IM_TILE_WORDS(B) + (4 / QJ_IM_FOLD(G)) * 16))
/* batches whose activations a warp holds per pipeline stage (one or two n-tiles) */
#define QJ_IM_XSTAGED(NB) ((NB) <= 4)
#define QJ_IM_RING_BYTES 28672 /* the compiler's default budget (QJ_IM_RING overrides) */
#define QJ_IM_SMEM_MAX 49152   /* static shared memory of one block: the ring + the reduction buffer */
#define QJ_IM_TAIL_SMEM 256    /* static shared memory a kernel's tail (QJ_IM_TAIL, qj_imv.cu) may use besides */

/* Register r (0..3) of k-step s (0..3) of a lane's A fragment, from its words
 * of a tile: wa = its 8-/4-bit plane words, w2 its 2-bit plane words, w1 its
 * 1-bit plane words (unused planes are not read). The kernel's unpack; the
 * host re-layout (compiler/cuda_codegen.c) is its inverse. */
QJ_HD uint32_t qj_im_shl(uint32_t v, int s) { return s >= 0 ? v << s : v >> -s; }
QJ_HD uint32_t qj_im_reg(const uint32_t *wa, const uint32_t *w2, const uint32_t *w1, int B, int s, int r) {
    if (QJ_DQ_P8(B)) return wa[4 * s + r];
    if (B == 3) {
        const uint32_t p = w2[s], q = w1[s >> 1];
        if (r == 0) return p & 0x07070707u;
        if (r == 1) return (p >> 3) & 0x07070707u;
        if (r == 3) return (q >> (4 * (s & 1) + 1)) & 0x07070707u;
        return ((p >> 6) & 0x03030303u) | (qj_im_shl(q, 2 - 4 * (s & 1)) & 0x04040404u);
    }
    uint32_t c = 0;
    if (QJ_DQ_P4(B)) c = (wa[2 * s + (r >> 1)] >> (4 * (r & 1))) & 0x0F0F0F0Fu;
    if (QJ_DQ_P2(B)) c |= qj_im_shl(w2[s], QJ_DQ_S2(B) - 2 * r) & (0x03030303u << QJ_DQ_S2(B));
    if (QJ_DQ_P1(B)) c |= qj_im_shl(w1[s >> 1], QJ_DQ_S1(B) - r - 4 * (s & 1)) & (0x01010101u << QJ_DQ_S1(B));
    return c;
}

/* Prepared activations of the integer-MMA GEMV, per batch row b and k-tile T
 * of 128 values: with E the exponent of the tile (|x| < 2^E, E from the
 * largest |x|) and u = 1 + 2^-12 (1 where E < -96), q_k = rint(x_k 2^(30-E) / u)
 * (|q| < 2^30) is written in four balanced base-256 digits d_p in [-128, 127]:
 * q = d0 + 2^8 d1 + 2^16 d2 + 2^24 d3. xi: uint32 [BATCH][KT][2 halves][16 slots][4 words]; half s / 2,
 * slot p*4 + t, word 2 (s%2) + h, byte i = d_p of value k = 128 T + 32 s +
 * 16 h + 4 t + i (the B fragment registers b0, b1 of k-step s of the lane
 * (g = 4 (b%2) + p, t) of n-tile b / 2): a lane's two 16-byte loads, one per
 * half, are 256 contiguous bytes across the 16 lanes of a batch row, so they
 * meet no shared-memory bank conflict. xw: float4 [BATCH][KT][2]: [0] = the digits'
 * weights u {2^(E-30), 2^(E-22), 2^(E-14), 2^(E-6)}, [1] = the sums of x over
 * the tile's four 32-value blocks. */
#define QJ_IM_XI_WORDS(KT) ((KT) * 128)   /* per batch row */
#define QJ_IM_XW_FLOAT4(KT) ((KT) * 2)    /* per batch row */

#if !defined(__CUDACC__) && !defined(__CUDACC_RTC__)
_Static_assert(QJ_ROW_WORDS(172, 3) == 6 * 3, "ragged K=172 takes 6 blocks");
_Static_assert(QJ_NGROUPS(172, 32) == 6, "ragged K=172 has 6 groups of 32");
_Static_assert(QJ_BLOCK * 8 / 32 == 8, "8-bit block is 8 words");
#endif

#endif
