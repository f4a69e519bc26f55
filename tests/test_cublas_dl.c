// ctest-labels: unit
/* test_cublas_dl.c — loading cuBLAS with dlopen, which needs no GPU: a
 * QJ_CUBLAS path that does not exist and a library that is not cuBLAS give
 * errors naming the path or the missing symbol; without QJ_CUBLAS the load
 * either succeeds or says what it tried and how to point at the library; once
 * loaded the library stays for the process. Timing needs a device and is done
 * by `qjit bench --kernels`. */
#include <stdlib.h>
#include <string.h>

#include "cublas_dl.h"
#include "qj_test.h"

int main(void) {
    const char *which = "unchanged";

    /* an explicit path is the only one tried, and the message names it */
    setenv("QJ_CUBLAS", "/nonexistent/dir/libcublas.so.99", 1);
    QJ_CHECK_FAILS(qj_cublas_load(&which), "QJ_CUBLAS=/nonexistent/dir/libcublas.so.99");
    QJ_CHECK(qj_cublas_load(NULL) == QJ_ERR_UNSUPPORTED);
    QJ_CHECK(!strcmp(which, "unchanged"));

    /* a library that loads but is not cuBLAS names the missing entry point */
    setenv("QJ_CUBLAS", "libm.so.6", 1);
    QJ_CHECK_FAILS(qj_cublas_load(&which), "libm.so.6 lacks cublasCreate_v2");

    /* opening needs a device */
    qj_cublas *b = (qj_cublas *)&which;
    QJ_CHECK_FAILS(qj_cublas_open(NULL, NULL, &b), "no CUDA device open");
    QJ_CHECK(b == NULL);
    qj_cublas_close(NULL);
    QJ_CHECK(qj_cublas_name(NULL) != NULL);

    /* the default names: present or a clear "not found" */
    unsetenv("QJ_CUBLAS");
    qj_status s = qj_cublas_load(&which);
    if (s == QJ_OK) {
        printf("loaded %s\n", which);
        QJ_CHECK(which && strstr(which, "libcublas.so") != NULL);
        /* loaded for the process: QJ_CUBLAS no longer matters */
        setenv("QJ_CUBLAS", "/nonexistent/dir/libcublas.so.99", 1);
        const char *again = NULL;
        QJ_CHECK_OK(qj_cublas_load(&again));
        QJ_CHECK(again && !strcmp(again, which));
    } else {
        printf("no cuBLAS here: %s\n", qj_last_error());
        QJ_CHECK(s == QJ_ERR_UNSUPPORTED);
        QJ_CHECK(strstr(qj_last_error(), "tried libcublas.so.13, libcublas.so.12, libcublas.so") != NULL);
        QJ_CHECK(strstr(qj_last_error(), "set QJ_CUBLAS=") != NULL);
    }
    return qj_test_finish();
}
