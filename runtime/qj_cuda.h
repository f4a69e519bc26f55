/* qj_cuda.h — the CUDA Driver API, loaded at run time with dlopen, so one
 * qjit binary runs on machines with and without an NVIDIA driver.
 *
 * Ownership: qj_cuda_open() loads libcuda once per process and creates (or
 * retains) the primary context of the chosen device; the returned qj_cuda is
 * process-wide and lives until qj_cuda_close(). Device buffers from
 * qj_cuda_alloc are freed with qj_cuda_free (0 is a no-op).
 */
#ifndef QJ_CUDA_H
#define QJ_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "qj_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef unsigned long long qj_dptr; /* CUdeviceptr */
typedef struct qj_cuda qj_cuda;
typedef void *qj_cufunc;   /* CUfunction */
typedef void *qj_cumodule; /* CUmodule */
typedef void *qj_custream; /* CUstream */
typedef void *qj_cuevent;  /* CUevent */
typedef void *qj_cugraph;  /* CUgraphExec */

typedef struct qj_cuda_info {
    char name[256];
    int ordinal;
    int cc_major, cc_minor; /* compute capability */
    int sm_count;
    int l2_bytes;
    int max_smem_optin;     /* per block, after cuFuncSetAttribute */
    size_t total_mem;
    int driver_version;     /* e.g. 13000 */
} qj_cuda_info;

/* Open device `ordinal`. Errors: QJ_ERR_DEVICE with a clear message when
 * libcuda cannot be loaded ("no NVIDIA driver"), no device exists, or the
 * device's compute capability is below 7.0 (unsupported architecture). */
qj_status qj_cuda_open(int ordinal, qj_cuda **out);
void qj_cuda_close(qj_cuda *c);
const qj_cuda_info *qj_cuda_get_info(const qj_cuda *c);
/* 1 when a driver and at least one device are present (no error recorded). */
int qj_cuda_available(void);

qj_status qj_cuda_alloc(qj_cuda *c, size_t bytes, qj_dptr *out); /* OOM names the size and free memory */
void qj_cuda_free(qj_cuda *c, qj_dptr p);
qj_status qj_cuda_upload(qj_cuda *c, qj_dptr dst, const void *src, size_t bytes);
qj_status qj_cuda_download(qj_cuda *c, void *dst, qj_dptr src, size_t bytes);
qj_status qj_cuda_upload_async(qj_cuda *c, qj_dptr dst, const void *src, size_t bytes, qj_custream s);
qj_status qj_cuda_memset8(qj_cuda *c, qj_dptr dst, unsigned char v, size_t bytes);
/* rows rows of words 32-bit zeros, pitch_words apart, in s's order */
qj_status qj_cuda_zero_rows_async(qj_cuda *c, qj_dptr dst, size_t pitch_words, size_t words, size_t rows, qj_custream s);
qj_status qj_cuda_copy(qj_cuda *c, qj_dptr dst, qj_dptr src, size_t bytes, qj_custream s);
qj_status qj_cuda_sync(qj_cuda *c);

/* Load a cubin or PTX image; get a kernel by name. */
qj_status qj_cuda_module_load(qj_cuda *c, const void *image, qj_cumodule *out);
void qj_cuda_module_unload(qj_cuda *c, qj_cumodule m);
qj_status qj_cuda_function(qj_cuda *c, qj_cumodule m, const char *name, qj_cufunc *out);
/* 1 and *ptr, *bytes when module m has a global variable called name, else 0 */
int qj_cuda_module_global(qj_cuda *c, qj_cumodule m, const char *name, qj_dptr *ptr, size_t *bytes);
/* Allow up to `bytes` of dynamic shared memory for f. */
qj_status qj_cuda_func_smem(qj_cuda *c, qj_cufunc f, int bytes);

qj_status qj_cuda_launch(qj_cuda *c, qj_cufunc f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                         unsigned bz, unsigned smem, qj_custream s, void **args);
/* Launches of c from now on allow programmatic dependent launch (sm_90+,
 * cuLaunchKernelEx): a kernel may start while the previous one in its stream
 * finishes, so every kernel launched must wait (griddepcontrol.wait,
 * templates/qj_pdl.cuh) before it reads what earlier kernels wrote or writes
 * what they read. Returns whether it is on (off where the chip or driver
 * lacks it). */
int qj_cuda_set_pdl(qj_cuda *c, int on);

qj_status qj_cuda_stream_create(qj_cuda *c, qj_custream *out);
void qj_cuda_stream_destroy(qj_cuda *c, qj_custream s);
qj_status qj_cuda_stream_sync(qj_cuda *c, qj_custream s);
qj_status qj_cuda_event_create(qj_cuda *c, qj_cuevent *out);
void qj_cuda_event_destroy(qj_cuda *c, qj_cuevent e);
qj_status qj_cuda_event_record(qj_cuda *c, qj_cuevent e, qj_custream s);
/* Milliseconds between two recorded events (synchronizes on `end`). */
qj_status qj_cuda_event_ms(qj_cuda *c, qj_cuevent start, qj_cuevent end, float *ms);

/* Graph capture of everything launched on s between begin and end. */
qj_status qj_cuda_capture_begin(qj_cuda *c, qj_custream s);
qj_status qj_cuda_capture_end(qj_cuda *c, qj_custream s, qj_cugraph *out);
qj_status qj_cuda_graph_launch(qj_cuda *c, qj_cugraph g, qj_custream s);
void qj_cuda_graph_destroy(qj_cuda *c, qj_cugraph g);

#ifdef __cplusplus
}
#endif
#endif
