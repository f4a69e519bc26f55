/* qj_test.h — a tiny assert header for qjit's test executables.
 * QJ_CHECK records a failure and continues; QJ_REQUIRE returns from main's
 * current test function. A test executable ends with `return qj_test_finish();`,
 * which prints "N passed, N failed" and returns non-zero on any failure. */
#ifndef QJ_TEST_H
#define QJ_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int qj_test_pass, qj_test_fail;

#define QJ_CHECK(cond)                                                                 \
    do {                                                                               \
        if (cond) qj_test_pass++;                                                      \
        else {                                                                         \
            qj_test_fail++;                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
        }                                                                              \
    } while (0)

#define QJ_CHECK_MSG(cond, ...)                                                        \
    do {                                                                               \
        if (cond) qj_test_pass++;                                                      \
        else {                                                                         \
            qj_test_fail++;                                                            \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
        }                                                                              \
    } while (0)

/* A qjit call that must succeed; prints qj_last_error() otherwise. */
#define QJ_CHECK_OK(expr)                                                              \
    do {                                                                               \
        qj_status qj_s_ = (expr);                                                      \
        QJ_CHECK_MSG(qj_s_ == QJ_OK, "%s", qj_last_error());                           \
    } while (0)

/* A qjit call that must fail with a message containing `needle`. */
#define QJ_CHECK_FAILS(expr, needle)                                                   \
    do {                                                                               \
        qj_status qj_s_ = (expr);                                                      \
        QJ_CHECK_MSG(qj_s_ != QJ_OK && strstr(qj_last_error(), (needle)) != NULL,      \
                     "status %d, message \"%s\", wanted \"%s\"", (int)qj_s_,           \
                     qj_last_error(), (needle));                                       \
    } while (0)

#define QJ_CHECK_NEAR(a, b, tol)                                                       \
    do {                                                                               \
        double qj_a_ = (double)(a), qj_b_ = (double)(b);                               \
        QJ_CHECK_MSG(fabs(qj_a_ - qj_b_) <= (tol), "%.9g vs %.9g (tol %.3g)", qj_a_,   \
                     qj_b_, (double)(tol));                                            \
    } while (0)

/* Random inputs: an xorshift state, and floats uniform in [-1, 1). */
static inline uint64_t *qj_test_rng(void) {
    static uint64_t state = 88172645463325252ull;
    return &state;
}
static inline float qj_test_frand(void) {
    uint64_t *r = qj_test_rng();
    *r ^= *r << 13;
    *r ^= *r >> 7;
    *r ^= *r << 17;
    return (float)(*r >> 40) / 16777216.0f * 2.0f - 1.0f;
}
/* Fresh inputs every run: seed from the clock, or argv[1] to repeat a run; printed. */
static inline void qj_test_seed_fresh(int argc, char **argv) {
    *qj_test_rng() = (uint64_t)time(NULL) * 2654435761u | 1;
    if (argc > 1) *qj_test_rng() = strtoull(argv[1], NULL, 10);
    printf("seed %llu\n", (unsigned long long)*qj_test_rng());
}

static inline int qj_test_finish(void) {
    printf("%d passed, %d failed\n", qj_test_pass, qj_test_fail);
    return qj_test_fail ? 1 : 0;
}

/* Path of a file in ../shared (QJ_SHARED), or NULL when not present. */
static inline const char *qj_test_shared(const char *rel) {
    static char buf[8][4096];
    static int k;
    const char *root = getenv("QJ_SHARED");
    if (!root) return NULL;
    char *b = buf[k++ % 8];
    snprintf(b, 4096, "%s/%s", root, rel);
    FILE *f = fopen(b, "rb");
    if (!f) return NULL;
    fclose(f);
    return b;
}

/* A scratch path under the build tree's tests/tmp. */
static inline const char *qj_test_tmp(const char *name) {
    static char buf[8][4096];
    static int k;
    const char *root = getenv("QJ_TEST_TMP");
    char *b = buf[k++ % 8];
    snprintf(b, 4096, "%s/%s", root ? root : "/tmp", name);
    return b;
}

#endif
