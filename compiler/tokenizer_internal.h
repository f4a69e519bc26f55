/* tokenizer_internal.h — the tokenizer struct and helpers shared by
 * tokenizer.c (llama2.c format, vocab hash, BPE engine, decoding) and
 * tokenizer_hf.c (Hugging Face tokenizer.json reader and writer).
 * Not installed; include tokenizer.h from outside the tokenizer. */
#ifndef QJ_TOKENIZER_INTERNAL_H
#define QJ_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

enum { TOK_KIND_LLAMA2C = 1, TOK_KIND_HF = 2 };

/* The merge engine works on segments (runs of symbols no merge can leave, see
 * xtab below) one at a time, so its queue stays small and cache-resident. A
 * boundary is looked for once a segment has this many symbols. */
#define TOK_SEGMENT 128

/* flags[id] bits */
/* TOK_MODEL: listed in an HF model.vocab; TOK_ADDED: in added_tokens;
 * TOK_LEAD_SPACE: the decoded piece starts with ' ' (dropped after BOS). */
enum { TOK_ADDED = 1, TOK_SPECIAL = 2, TOK_LEAD_SPACE = 4, TOK_MODEL = 8 };

/* HF normalizer steps, applied in order. */
enum { TOK_NORM_PREPEND = 1, TOK_NORM_REPLACE = 2 };
typedef struct tok_norm {
    int op;
    char *a; /* prepend: the prefix; replace: the literal pattern (non-empty) */
    char *b; /* replace: the content */
} tok_norm;

/* One merge rule of an HF BPE model: pair (a, b) -> id, at rank. */
typedef struct tok_pair_slot {
    uint64_t key; /* (uint64)a << 32 | b; TOK_PAIR_EMPTY when unused */
    int32_t rank;
    int32_t id;
} tok_pair_slot;
#define TOK_PAIR_EMPTY UINT64_MAX

struct qj_tokenizer {
    int kind;          /* TOK_KIND_* */
    int n_vocab;       /* ids are 0 .. n_vocab-1 */
    char *pool;        /* (off[n_vocab]) raw piece bytes of every id, back to back */
    uint32_t *off;     /* (n_vocab+1) piece of id i is pool[off[i] .. off[i+1]) */
    float *score;      /* (n_vocab) llama2.c merge scores; NULL for HF */
    int max_token_length; /* llama2.c header value; HF: longest piece */
    size_t max_piece;  /* longest raw piece in bytes */
    char *dpool;       /* decoded pieces, same layout as pool */
    uint32_t *doff;    /* (n_vocab+1) */
    uint8_t *flags;    /* (n_vocab) TOK_* bits */
    int32_t *htab;     /* (hmask+1) open addressing: piece string -> lowest id, -1 empty */
    size_t hmask;
    int bos_id, eos_id, unk_id, space_id; /* -1 when absent */
    /* Every pair of adjacent codepoints found inside some piece, as
     * TOK_CROSS_KEY(c1, c2); 0 marks an empty slot. Where the text has two
     * adjacent codepoints (each its own vocab token) outside this set, no merge
     * can ever span them, so the merge engine works on the two sides
     * separately: a speed-up that changes no result. */
    uint64_t *xtab; /* (xmask+1) */
    size_t xmask;
    size_t segment_min; /* look for a segment boundary after this many symbols
                           (TOK_SEGMENT; tests set SIZE_MAX to compare) */

    /* Hugging Face BPE only */
    tok_pair_slot *ptab; /* (pmask+1) merge rules */
    size_t pmask;
    int n_merges;
    int32_t byte_id[256]; /* id of "<0xAB>" for byte 0xAB, -1 when absent */
    int byte_fallback, fuse_unk, ignore_merges;
    tok_norm *norm; /* (n_norm) normalizer steps */
    int n_norm;
    int metaspace;        /* a Metaspace pre-tokenizer is present */
    char ms_rep[8];       /* its replacement character (UTF-8, NUL-terminated) */
    int ms_prepend;       /* 0 never, 1 always, 2 first */
    int ms_split;         /* split into words before each replacement char */
    char space_marker[8]; /* what stands for ' ' in pieces ("▁"), "" when none */
};

/* Allocate an empty tokenizer (all ids -1, nothing else set). NULL on OOM. */
qj_tokenizer *tok_alloc(void);
/* Build htab over the pieces, dpool/doff and flags' TOK_LEAD_SPACE from the
 * pieces and space_marker. Call once pool/off/n_vocab are set. */
qj_status tok_finish(qj_tokenizer *t, const char *name);
#define TOK_CROSS_KEY(c1, c2) ((uint64_t)1 << 63 | (uint64_t)(c1) << 21 | (uint64_t)(c2))
/* Whether the codepoint pair c1 c2 occurs inside some piece. */
int tok_cross(const qj_tokenizer *t, uint32_t c1, uint32_t c2);
/* Lowest id whose raw piece is s[0..len), or -1. */
int tok_lookup(const qj_tokenizer *t, const char *s, size_t len);
/* Bytes of a raw piece. */
static inline const char *tok_raw(const qj_tokenizer *t, int id, size_t *len) {
    *len = t->off[id + 1] - t->off[id];
    return t->pool + t->off[id];
}
/* Parse "<0xAB>" exactly; returns the byte or -1. */
int tok_byte_piece(const char *s, size_t len);

/* Merge-rule table for HF models. */
qj_status tok_pairs_init(qj_tokenizer *t, size_t n_rules);
/* Insert (a, b) -> id at rank; an existing rule for (a, b) is kept. */
void tok_pairs_put(qj_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t id);
const tok_pair_slot *tok_pairs_get(const qj_tokenizer *t, int32_t a, int32_t b);

/* tokenizer_hf.c */
qj_status tok_load_hf(const char *data, size_t len, const char *name, qj_tokenizer **out);
qj_status tok_save_hf(const qj_tokenizer *t, const char *path);

#endif
