/* qj_stories.h — what the forward-pass tests share on the real stories260K:
 * its first TinyStories ids and the plans they are run under (dense, and
 * mixed plans covering widths 2-8, groups 32-512 and per channel, symmetric
 * bf16 scales, a bf16 layer, per-tensor overrides and an int6 head). */
#ifndef QJ_STORIES_H
#define QJ_STORIES_H

#include <stdlib.h>

#include "qj_io.h"
#include "qj_test.h"
#include "tokenizer.h"

/* Plans 1.. are mixed; 0 is dense. */
static const char *const qj_stories_plans[] = {
    "fp32",
    "{\"bitwidth.0.\": 8, \"groupsize.0.\": 32, \"bitwidth.1.\": 3, \"groupsize.1.\": 64, \"bitwidth.2.\": 5,"
    " \"groupsize.2.\": 128, \"bitwidth.3.\": 2, \"groupsize.3.\": 32, \"bitwidth.4.\": 6, \"groupsize.4.\": 256}",
    "{\"bitwidth.0.\": 4, \"groupsize.0.\": 32, \"bitwidth.1.\": 7, \"groupsize.1.\": 0, \"bitwidth.2.\": 16,"
    " \"bitwidth.3.\": 4, \"groupsize.3.\": 64, \"bitwidth.4.\": 5, \"groupsize.4.\": 32, \"symmetric\": true,"
    " \"scale_dtype\": \"bf16\"}",
    "{\"bitwidth.0.\": 6, \"groupsize.0.\": 32, \"bitwidth.1.\": 4, \"groupsize.1.\": 128, \"bitwidth.2.\": 3,"
    " \"groupsize.2.\": 32, \"bitwidth.3.\": 8, \"groupsize.3.\": 512, \"bitwidth.4.\": 2, \"groupsize.4.\": 64,"
    " \"overrides\": {\"layers.*.down_proj\": \"int8-g32\", \"lm_head\": \"int6-g64\", \"embed\": \"bf16\"}}",
};
#define QJ_STORIES_NPLANS ((int)(sizeof qj_stories_plans / sizeof qj_stories_plans[0]))

/* The first n ids of TinyStories tokenized with tok512 (checked); 0 when the
 * tokenizer or the text is not in ../shared (the caller skips). */
static inline int qj_stories_ids(int *ids, int n) {
    const char *tokp = qj_test_shared("models/stories260K/tok512.bin"),
               *textp = qj_test_shared("data/tinystories/valid_prefix.txt");
    if (!tokp || !textp) return 0;
    qj_tokenizer *tok = NULL;
    char *text = NULL;
    size_t tlen = 0, nids = 0;
    int *all = NULL;
    QJ_CHECK_OK(qj_tokenizer_load(tokp, &tok));
    QJ_CHECK_OK(qj_read_file(textp, &text, &tlen));
    if (tok && text) QJ_CHECK_OK(qj_tokenizer_encode(tok, text, tlen < 20000 ? tlen : 20000, 0, &all, &nids));
    QJ_CHECK(nids >= (size_t)n);
    for (int i = 0; i < n; i++) ids[i] = all && (size_t)i < nids ? all[i] : 1;
    free(all);
    free(text);
    qj_tokenizer_free(tok);
    return 1;
}

#endif
