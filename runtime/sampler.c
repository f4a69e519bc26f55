/* sampler.c — greedy / temperature / nucleus (top-p) sampling. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>

void qj_sampler_init(qj_sampler *s, int vocab_size, float temperature, float top_p, uint64_t seed) {
    s->vocab_size = vocab_size;
    s->temperature = temperature;
    s->top_p = top_p;
    s->rng = seed ? seed : 0x853c49e6748fea9bull;
    s->probs = malloc((size_t)vocab_size * sizeof *s->probs);
    s->order = malloc((size_t)vocab_size * sizeof *s->order);
}

void qj_sampler_free(qj_sampler *s) {
    free(s->probs);
    free(s->order);
    s->probs = NULL;
    s->order = NULL;
}

static float next_uniform(qj_sampler *s) { /* xorshift64*, 24 random bits */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (float)((s->rng * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

static const float *sort_keys;
static int by_prob_desc(const void *a, const void *b) {
    float x = sort_keys[*(const int *)a], y = sort_keys[*(const int *)b];
    return (x < y) - (x > y);
}

int qj_sampler_sample(qj_sampler *s, const float *logits) {
    int V = s->vocab_size, best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (s->temperature == 0.0f || !s->probs || !s->order) return best;
    float mx = logits[best], sum = 0.0f;
    for (int i = 0; i < V; i++) {
        s->probs[i] = expf((logits[i] - mx) / s->temperature);
        sum += s->probs[i];
    }
    for (int i = 0; i < V; i++) s->probs[i] /= sum;
    float r = next_uniform(s);
    if (s->top_p <= 0.0f || s->top_p >= 1.0f) {
        float cdf = 0.0f;
        for (int i = 0; i < V; i++) {
            cdf += s->probs[i];
            if (r < cdf) return i;
        }
        return V - 1;
    }
    /* nucleus: keep the smallest set of most likely tokens whose mass reaches top_p */
    int n = 0;
    float cutoff = (1.0f - s->top_p) / (float)(V - 1);
    for (int i = 0; i < V; i++)
        if (s->probs[i] >= cutoff) s->order[n++] = i;
    sort_keys = s->probs;
    qsort(s->order, (size_t)n, sizeof *s->order, by_prob_desc);
    float mass = 0.0f;
    int last = n - 1;
    for (int i = 0; i < n; i++) {
        mass += s->probs[s->order[i]];
        if (mass > s->top_p) { last = i; break; }
    }
    float cdf = 0.0f, target = r * mass;
    for (int i = 0; i <= last; i++) {
        cdf += s->probs[s->order[i]];
        if (target < cdf) return s->order[i];
    }
    return s->order[last];
}
