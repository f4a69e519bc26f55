/* sampler.h — next-token sampling: greedy, temperature, top-p; seeded. */
#ifndef QJ_SAMPLER_H
#define QJ_SAMPLER_H

#include <stdint.h>

typedef struct qj_sampler {
    int vocab_size;
    float temperature; /* 0: greedy */
    float top_p;       /* 0 or 1: plain sampling from the whole distribution */
    uint64_t rng;
    float *probs;      /* (vocab_size) scratch */
    int *order;        /* (vocab_size) scratch */
} qj_sampler;

/* Allocates scratch; on allocation failure sampling falls back to greedy. */
void qj_sampler_init(qj_sampler *s, int vocab_size, float temperature, float top_p, uint64_t seed);
void qj_sampler_free(qj_sampler *s);
int qj_sampler_sample(qj_sampler *s, const float *logits);

#endif
