/* cublas_dl.c — cuBLAS through dlopen: the few entry points the kernel bench
 * needs (create, destroy, set stream, GemmEx), declared here ABI-compatible
 * with cublas_api.h, so qjit builds without the cuBLAS headers or library. */
#include "cublas_dl.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Types and constants from the CUDA 13 toolkit headers; enums are ints in the ABI. */
typedef int cublasStatus_t;       /* cublas_api.h: cublasStatus_t */
typedef void *cublasHandle_t;     /* cublas_api.h: struct cublasContext * */
#define CUBLAS_STATUS_SUCCESS 0   /* cublas_api.h: cublasStatus_t */
#define CUBLAS_OP_N 0             /* cublas_api.h: cublasOperation_t */
#define CUBLAS_OP_T 1             /* cublas_api.h: cublasOperation_t */
#define CUBLAS_GEMM_DEFAULT (-1)  /* cublas_api.h: cublasGemmAlgo_t */
#define CUBLAS_COMPUTE_32F 68     /* cublas_api.h: cublasComputeType_t */
#define CUDA_R_32F 0              /* library_types.h: cudaDataType_t */
#define CUDA_R_16BF 14            /* library_types.h: cudaDataType_t */
#define QJ_MAJOR_VERSION 0        /* library_types.h: libraryPropertyType MAJOR_VERSION */
#define QJ_MINOR_VERSION 1        /* ... MINOR_VERSION */
#define QJ_PATCH_LEVEL 2          /* ... PATCH_LEVEL */

static struct {
    void *lib;
    const char *file; /* the name that loaded */
    cublasStatus_t (*Create)(cublasHandle_t *);
    cublasStatus_t (*Destroy)(cublasHandle_t);
    cublasStatus_t (*SetStream)(cublasHandle_t, void *);
    cublasStatus_t (*GemmEx)(cublasHandle_t, int, int, int, int, int, const void *, const void *, int, int,
                             const void *, int, int, const void *, void *, int, int, int, int);
    cublasStatus_t (*GetProperty)(int, int *);    /* optional */
    const char *(*GetStatusString)(cublasStatus_t); /* optional (cuBLAS >= 11.4) */
} cb;
static pthread_mutex_t cb_lock = PTHREAD_MUTEX_INITIALIZER;
static char cb_file[4096];

struct qj_cublas {
    cublasHandle_t h;
    qj_custream st;
    char name[4200];
};

/* Resolve every entry point from lib into cb; on a missing one, name it. */
static qj_status resolve(void *lib, const char *file) {
#define SYM(field, name)                                                                                        \
    if (!(*(void **)&cb.field = dlsym(lib, name)))                                                              \
        return qj_fail(QJ_ERR_UNSUPPORTED, "cuBLAS library %s lacks %s: not cuBLAS, or older than 11", file, name);
    SYM(Create, "cublasCreate_v2");
    SYM(Destroy, "cublasDestroy_v2");
    SYM(SetStream, "cublasSetStream_v2");
    SYM(GemmEx, "cublasGemmEx");
#undef SYM
    *(void **)&cb.GetProperty = dlsym(lib, "cublasGetProperty");
    *(void **)&cb.GetStatusString = dlsym(lib, "cublasGetStatusString");
    return QJ_OK;
}

qj_status qj_cublas_load(const char **which) {
    qj_status s = QJ_OK;
    pthread_mutex_lock(&cb_lock);
    if (!cb.lib) {
        const char *env = getenv("QJ_CUBLAS");
        const char *names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so"};
        void *lib = NULL;
        const char *file = NULL;
        if (env && *env) {
            if ((lib = dlopen(env, RTLD_NOW | RTLD_LOCAL))) file = env;
            else s = qj_fail(QJ_ERR_UNSUPPORTED, "cuBLAS not found: QJ_CUBLAS=%s does not load (%s)", env, dlerror());
        } else {
            for (size_t i = 0; i < sizeof names / sizeof names[0] && !lib; i++)
                if ((lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL))) file = names[i];
            if (!lib)
                s = qj_fail(QJ_ERR_UNSUPPORTED,
                            "cuBLAS not found (tried libcublas.so.13, libcublas.so.12, libcublas.so); "
                            "set QJ_CUBLAS=/path/libcublas.so.N");
        }
        if (lib && (s = resolve(lib, file))) {
            memset(&cb, 0, sizeof cb);
            dlclose(lib);
        } else if (lib) {
            snprintf(cb_file, sizeof cb_file, "%s", file);
            cb.file = cb_file;
            cb.lib = lib;
        }
    }
    if (!s && which) *which = cb.file;
    pthread_mutex_unlock(&cb_lock);
    return s;
}

/* Turn a cuBLAS status into a qj_status naming the call. */
static qj_status check(cublasStatus_t r, const char *what) {
    if (r == CUBLAS_STATUS_SUCCESS) return QJ_OK;
    const char *msg = cb.GetStatusString ? cb.GetStatusString(r) : NULL;
    return qj_fail(QJ_ERR_DEVICE, "%s failed: %s (cuBLAS status %d)", what, msg ? msg : "unknown error", r);
}

qj_status qj_cublas_open(qj_cuda *cu, qj_custream st, qj_cublas **out) {
    *out = NULL;
    if (!cu) return qj_fail(QJ_ERR_INVALID, "qj_cublas_open: no CUDA device open");
    const char *file = NULL;
    qj_status s = qj_cublas_load(&file);
    if (s) return s;
    qj_cublas *b = calloc(1, sizeof *b);
    if (!b) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    if ((s = check(cb.Create(&b->h), "cublasCreate"))) goto fail;
    if ((s = check(cb.SetStream(b->h, st), "cublasSetStream"))) goto fail;
    b->st = st;
    int v[3] = {0, 0, 0};
    if (cb.GetProperty && !cb.GetProperty(QJ_MAJOR_VERSION, &v[0]) && !cb.GetProperty(QJ_MINOR_VERSION, &v[1]) &&
        !cb.GetProperty(QJ_PATCH_LEVEL, &v[2]))
        snprintf(b->name, sizeof b->name, "cuBLAS %d.%d.%d (%s)", v[0], v[1], v[2], file);
    else
        snprintf(b->name, sizeof b->name, "cuBLAS (%s)", file);
    *out = b;
    return QJ_OK;
fail:
    if (b->h) cb.Destroy(b->h);
    free(b);
    return s;
}

void qj_cublas_close(qj_cublas *b) {
    if (!b) return;
    if (b->h) cb.Destroy(b->h);
    free(b);
}

const char *qj_cublas_name(const qj_cublas *b) { return b ? b->name : "cuBLAS (not open)"; }

qj_status qj_cublas_gemm_bf16(qj_cublas *b, int64_t N, int64_t K, int batch, qj_dptr W, qj_dptr X, qj_dptr Y) {
    if (N < 1 || K < 1 || batch < 1 || N > INT_MAX || K > INT_MAX)
        return qj_fail(QJ_ERR_INVALID, "cuBLAS GEMM: N %lld, K %lld, batch %d out of range", (long long)N, (long long)K,
                       batch);
    const float alpha = 1.0f, beta = 0.0f;
    /* Column-major view: W row-major (N, K) is a K x N matrix with ld K, so
     * C (N x batch, ld N) = op_T(W as K x N) * (X as K x batch, ld K), and C
     * column b is Y row b. */
    return check(cb.GemmEx(b->h, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, batch, (int)K, &alpha, (const void *)(uintptr_t)W,
                           CUDA_R_16BF, (int)K, (const void *)(uintptr_t)X, CUDA_R_16BF, (int)K, &beta,
                           (void *)(uintptr_t)Y, CUDA_R_32F, (int)N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx (bf16)");
}
