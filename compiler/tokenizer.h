/* tokenizer.h — text <-> token ids for llama-family models.
 *
 * Two input formats, told apart by content (qj_tokenizer_load):
 *   - llama2.c tokenizer.bin: int32 max_token_length, then per token until EOF
 *     float32 score, int32 len, len bytes (little endian). Encoding follows
 *     Karpathy's run.c exactly: optional BOS, a dummy-prefix " " token for
 *     non-empty text, one token per UTF-8 codepoint (byte fallback to id
 *     byte+3 when the codepoint is not in the vocab), then repeatedly merge the
 *     adjacent pair whose concatenation is in the vocab with the highest score
 *     (ties: leftmost). BOS = 1, EOS = 2.
 *   - Hugging Face tokenizer.json (content starts with '{'): BPE models of the
 *     Llama-2 / Mistral kind (SentencePiece-style "▁" metaspace, byte_fallback).
 *     Merges apply lowest rank first (ties: leftmost). Normalizers Prepend and
 *     Replace (literal pattern), the Metaspace pre-tokenizer, or none; anything
 *     else (WordPiece, Unigram, ByteLevel, NFKC, regex splits, ...) is rejected
 *     with an error naming the file and the JSON field.
 * Both run in O(n log n) (priority queue over candidate pairs, linked list of
 * symbols, lazy invalidation) and give the same ids as the naive algorithms.
 *
 * Text is plain text: special-token strings such as "<s>" inside it are never
 * parsed as special tokens (as in llama2.c and SentencePiece). Text must be
 * valid UTF-8; otherwise encoding fails with "text: invalid UTF-8 at byte
 * offset N (...)".
 *
 * Ownership: qj_tokenizer_load / _load_mem return a tokenizer the caller owns
 * and releases with qj_tokenizer_free (NULL is a no-op); *out is written only
 * on success, and _load_mem copies what it needs (the caller's buffer may be
 * freed right after). qj_tokenizer_encode returns a malloc'd id array the
 * caller frees with free(). Strings returned by qj_tokenizer_piece are
 * borrowed from the tokenizer and live until qj_tokenizer_free. A tokenizer
 * is immutable after loading: concurrent encode/piece calls from several
 * threads are safe.
 */
#ifndef QJ_TOKENIZER_H
#define QJ_TOKENIZER_H

#include <stddef.h>

#include "qj_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qj_tokenizer qj_tokenizer;

/* Load a tokenizer file; the format is detected from its first bytes. */
qj_status qj_tokenizer_load(const char *path, qj_tokenizer **out);

/* Same from memory (e.g. tokenizer bytes embedded in a package).
 * name_for_errors prefixes error messages (NULL: "tokenizer"). */
qj_status qj_tokenizer_load_mem(const void *data, size_t len, const char *name_for_errors,
                                qj_tokenizer **out);

void qj_tokenizer_free(qj_tokenizer *t);

/* Number of ids (llama2.c: tokens in the file; HF: vocab plus added tokens). */
int qj_tokenizer_vocab_size(const qj_tokenizer *t);
/* BOS / EOS ids, or -1 when the tokenizer has none. */
int qj_tokenizer_bos(const qj_tokenizer *t);
int qj_tokenizer_eos(const qj_tokenizer *t);

/* Encode len bytes of text (NUL bytes are ordinary characters). With add_bos,
 * ids start with BOS. On success *ids is malloc'd (free() it; it may be NULL
 * when *n_ids is 0), on failure *ids = NULL and *n_ids = 0. */
qj_status qj_tokenizer_encode(const qj_tokenizer *t, const char *text, size_t len, int add_bos,
                              int **ids, size_t *n_ids);

/* Bytes that token id contributes to decoded text, given the previous id
 * (-1 for none): raw byte tokens "<0xAB>" give the byte, HF's "▁" gives ' ',
 * and a leading space is dropped right after BOS (llama2.c semantics). The
 * result is not NUL-terminated in general (a byte token may be 0x00): use *len.
 * Returns NULL (and *len = 0) for an id out of range. */
const char *qj_tokenizer_piece(const qj_tokenizer *t, int prev_id, int id, size_t *len);

/* Write an equivalent Hugging Face tokenizer.json (BPE, byte_fallback, the
 * Llama-2 normalizer Prepend "▁" + Replace " " -> "▁", added tokens <unk>,
 * <s>, </s>) atomically. For a llama2.c vocab, merges are every split of a
 * token into two vocab tokens, ranked by the merged token's score (highest
 * first; equal scores: longer merged token first, then longer left part), so
 * lowest-rank-first BPE reproduces the llama2.c ids. */
qj_status qj_tokenizer_save_hf_json(const qj_tokenizer *t, const char *path);

/* Check that len bytes are valid UTF-8 (no overlongs, surrogates or values
 * past U+10FFFF). On failure: "<name>: invalid UTF-8 at byte offset N (why)". */
qj_status qj_utf8_validate(const char *s, size_t len, const char *name);

#ifdef __cplusplus
}
#endif
#endif
