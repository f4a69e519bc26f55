/* qj_test_cuda.h — the opening every GPU test shares: skip (exit code 77, a SKIP line) where no CUDA device is
 * present, else open device 0 and name the architecture its kernels are compiled for. */
#ifndef QJ_TEST_CUDA_H
#define QJ_TEST_CUDA_H

#include <stdio.h>

#include "cuda_codegen.h"
#include "qj_cuda.h"
#include "qj_test.h"

/* 0: *cu is open and arch (n bytes) names its target; else the test's exit code (77: no device; the failed
 * check's count otherwise). */
static inline int qj_test_cuda_open(qj_cuda **cu, char *arch, size_t n) {
    *cu = NULL;
    if (!qj_cuda_available()) {
        printf("SKIP: no CUDA device (%s)\n", qj_last_error());
        return 77;
    }
    QJ_CHECK_OK(qj_cuda_open(0, cu));
    if (!*cu) return qj_test_finish();
    const qj_cuda_info *I = qj_cuda_get_info(*cu);
    qj_cuda_arch_string(I->cc_major, I->cc_minor, 0, arch, n);
    return 0;
}

#endif
