/* qj_cuda.c — Driver API through dlopen("libcuda.so.1"): a function table,
 * error strings, and thin wrappers that turn CUresult into qj_status. */
#include "qj_cuda.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The few Driver API types we need, ABI-compatible with cuda.h (v2 entry points). */
typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
#define CUDA_SUCCESS 0
#define CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT 16
#define CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE 38
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR 75
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR 76
#define CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN 97
#define CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES 8
#define CU_STREAM_CAPTURE_MODE_THREAD_LOCAL 1
#define CU_STREAM_NON_BLOCKING 1

static struct {
    void *lib;
    CUresult (*Init)(unsigned);
    CUresult (*DriverGetVersion)(int *);
    CUresult (*DeviceGetCount)(int *);
    CUresult (*DeviceGet)(CUdevice *, int);
    CUresult (*DeviceGetName)(char *, int, CUdevice);
    CUresult (*DeviceGetAttribute)(int *, int, CUdevice);
    CUresult (*DeviceTotalMem)(size_t *, CUdevice);
    CUresult (*DevicePrimaryCtxRetain)(CUcontext *, CUdevice);
    CUresult (*DevicePrimaryCtxRelease)(CUdevice);
    CUresult (*CtxSetCurrent)(CUcontext);
    CUresult (*CtxSynchronize)(void);
    CUresult (*MemGetInfo)(size_t *, size_t *);
    CUresult (*MemAlloc)(qj_dptr *, size_t);
    CUresult (*MemFree)(qj_dptr);
    CUresult (*MemcpyHtoD)(qj_dptr, const void *, size_t);
    CUresult (*MemcpyDtoH)(void *, qj_dptr, size_t);
    CUresult (*MemcpyHtoDAsync)(qj_dptr, const void *, size_t, qj_custream);
    CUresult (*MemcpyDtoDAsync)(qj_dptr, qj_dptr, size_t, qj_custream);
    CUresult (*MemsetD8)(qj_dptr, unsigned char, size_t);
    CUresult (*MemsetD2D32Async)(qj_dptr, size_t, unsigned, size_t, size_t, qj_custream);
    CUresult (*ModuleLoadData)(qj_cumodule *, const void *);
    CUresult (*ModuleUnload)(qj_cumodule);
    CUresult (*ModuleGetFunction)(qj_cufunc *, qj_cumodule, const char *);
    CUresult (*FuncSetAttribute)(qj_cufunc, int, int);
    CUresult (*LaunchKernel)(qj_cufunc, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                             qj_custream, void **, void **);
    CUresult (*StreamCreate)(qj_custream *, unsigned);
    CUresult (*StreamDestroy)(qj_custream);
    CUresult (*StreamSynchronize)(qj_custream);
    CUresult (*EventCreate)(qj_cuevent *, unsigned);
    CUresult (*EventDestroy)(qj_cuevent);
    CUresult (*EventRecord)(qj_cuevent, qj_custream);
    CUresult (*EventSynchronize)(qj_cuevent);
    CUresult (*EventElapsedTime)(float *, qj_cuevent, qj_cuevent);
    CUresult (*StreamBeginCapture)(qj_custream, int);
    CUresult (*StreamEndCapture)(qj_custream, void **);
    CUresult (*GraphInstantiate)(qj_cugraph *, void *, unsigned long long);
    CUresult (*GraphLaunch)(qj_cugraph, qj_custream);
    CUresult (*GraphExecDestroy)(qj_cugraph);
    CUresult (*GraphDestroy)(void *);
    CUresult (*GetErrorString)(CUresult, const char **);
    CUresult (*LaunchKernelEx)(const void *, qj_cufunc, void **, void **); /* optional (CUDA 12+ drivers) */
    CUresult (*ModuleGetGlobal)(qj_dptr *, size_t *, qj_cumodule, const char *);
} cu;

/* cuLaunchKernelEx's configuration, laid out as cuda.h's CUlaunchConfig and
 * CUlaunchAttribute (CUDA 12+): one attribute. */
typedef struct {
    int id;
    char pad[4];
    union {
        char pad[64];
        int value;
        void *align;
    } v;
} qj_launch_attr;
typedef struct {
    unsigned gx, gy, gz, bx, by, bz, smem;
    qj_custream stream;
    qj_launch_attr *attrs;
    unsigned n_attrs;
} qj_launch_config;
#define QJ_CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION 6

struct qj_cuda {
    CUdevice dev;
    CUcontext ctx;
    qj_cuda_info info;
    int pdl; /* launches allow programmatic dependent launch */
};

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[512];

static void load_driver(void) {
    const char *names[] = {"libcuda.so.1", "libcuda.so"};
    for (size_t i = 0; i < 2 && !cu.lib; i++) cu.lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!cu.lib) {
        snprintf(load_error, sizeof load_error,
                 "no NVIDIA driver: libcuda.so.1 could not be loaded (%s); use --device cpu", dlerror());
        return;
    }
#define SYM(field, name)                                                                       \
    if (!(*(void **)&cu.field = dlsym(cu.lib, name))) {                                        \
        snprintf(load_error, sizeof load_error, "libcuda.so.1 lacks %s: driver too old", name); \
        return;                                                                                \
    }
    SYM(Init, "cuInit");
    SYM(DriverGetVersion, "cuDriverGetVersion");
    SYM(DeviceGetCount, "cuDeviceGetCount");
    SYM(DeviceGet, "cuDeviceGet");
    SYM(DeviceGetName, "cuDeviceGetName");
    SYM(DeviceGetAttribute, "cuDeviceGetAttribute");
    SYM(DeviceTotalMem, "cuDeviceTotalMem_v2");
    SYM(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    SYM(DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
    SYM(CtxSetCurrent, "cuCtxSetCurrent");
    SYM(CtxSynchronize, "cuCtxSynchronize");
    SYM(MemGetInfo, "cuMemGetInfo_v2");
    SYM(MemAlloc, "cuMemAlloc_v2");
    SYM(MemFree, "cuMemFree_v2");
    SYM(MemcpyHtoD, "cuMemcpyHtoD_v2");
    SYM(MemcpyDtoH, "cuMemcpyDtoH_v2");
    SYM(MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
    SYM(MemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2");
    SYM(MemsetD8, "cuMemsetD8_v2");
    SYM(MemsetD2D32Async, "cuMemsetD2D32Async");
    SYM(ModuleLoadData, "cuModuleLoadData");
    SYM(ModuleUnload, "cuModuleUnload");
    SYM(ModuleGetFunction, "cuModuleGetFunction");
    SYM(ModuleGetGlobal, "cuModuleGetGlobal_v2");
    SYM(FuncSetAttribute, "cuFuncSetAttribute");
    SYM(LaunchKernel, "cuLaunchKernel");
    SYM(StreamCreate, "cuStreamCreate");
    SYM(StreamDestroy, "cuStreamDestroy_v2");
    SYM(StreamSynchronize, "cuStreamSynchronize");
    SYM(EventCreate, "cuEventCreate");
    SYM(EventDestroy, "cuEventDestroy_v2");
    SYM(EventRecord, "cuEventRecord");
    SYM(EventSynchronize, "cuEventSynchronize");
    SYM(EventElapsedTime, "cuEventElapsedTime");
    SYM(StreamBeginCapture, "cuStreamBeginCapture_v2");
    SYM(StreamEndCapture, "cuStreamEndCapture");
    SYM(GraphInstantiate, "cuGraphInstantiateWithFlags");
    SYM(GraphLaunch, "cuGraphLaunch");
    SYM(GraphExecDestroy, "cuGraphExecDestroy");
    SYM(GraphDestroy, "cuGraphDestroy");
    SYM(GetErrorString, "cuGetErrorString");
#undef SYM
    *(void **)&cu.LaunchKernelEx = dlsym(cu.lib, "cuLaunchKernelEx");
    CUresult r = cu.Init(0);
    if (r != CUDA_SUCCESS) {
        const char *msg = "unknown";
        cu.GetErrorString(r, &msg);
        snprintf(load_error, sizeof load_error, "cuInit failed: %s (error %d): no usable NVIDIA GPU", msg, r);
    }
}

static qj_status driver(void) {
    pthread_once(&load_once, load_driver);
    return load_error[0] ? qj_fail(QJ_ERR_DEVICE, "%s", load_error) : QJ_OK;
}

/* Turn a CUresult into a status naming the call. */
static qj_status check(CUresult r, const char *what) {
    if (r == CUDA_SUCCESS) return QJ_OK;
    const char *msg = "unknown error";
    if (cu.GetErrorString) cu.GetErrorString(r, &msg);
    return qj_fail(QJ_ERR_DEVICE, "%s failed: %s (CUDA error %d)", what, msg, r);
}

int qj_cuda_available(void) {
    if (driver()) return 0;
    int n = 0;
    if (cu.DeviceGetCount(&n) != CUDA_SUCCESS || n == 0) {
        qj_fail(QJ_ERR_DEVICE, "no CUDA device found");
        return 0;
    }
    return 1;
}

qj_status qj_cuda_open(int ordinal, qj_cuda **out) {
    *out = NULL;
    qj_status s = driver();
    if (s) return s;
    int n = 0;
    if ((s = check(cu.DeviceGetCount(&n), "cuDeviceGetCount"))) return s;
    if (n == 0) return qj_fail(QJ_ERR_DEVICE, "no CUDA device found; use --device cpu");
    if (ordinal < 0 || ordinal >= n)
        return qj_fail(QJ_ERR_DEVICE, "CUDA device %d does not exist (%d device%s)", ordinal, n, n == 1 ? "" : "s");
    qj_cuda *c = calloc(1, sizeof *c);
    if (!c) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    if ((s = check(cu.DeviceGet(&c->dev, ordinal), "cuDeviceGet"))) goto fail;
    qj_cuda_info *I = &c->info;
    I->ordinal = ordinal;
    cu.DeviceGetName(I->name, sizeof I->name, c->dev);
    cu.DeviceGetAttribute(&I->cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, c->dev);
    cu.DeviceGetAttribute(&I->cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, c->dev);
    cu.DeviceGetAttribute(&I->sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, c->dev);
    cu.DeviceGetAttribute(&I->l2_bytes, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, c->dev);
    cu.DeviceGetAttribute(&I->max_smem_optin, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, c->dev);
    cu.DeviceTotalMem(&I->total_mem, c->dev);
    cu.DriverGetVersion(&I->driver_version);
    if (I->cc_major < 7) {
        s = qj_fail(QJ_ERR_UNSUPPORTED,
                    "%s has compute capability %d.%d; qjit's kernels need 7.0 or newer (unsupported architecture)",
                    I->name, I->cc_major, I->cc_minor);
        goto fail;
    }
    if ((s = check(cu.DevicePrimaryCtxRetain(&c->ctx, c->dev), "cuDevicePrimaryCtxRetain"))) goto fail;
    if ((s = check(cu.CtxSetCurrent(c->ctx), "cuCtxSetCurrent"))) {
        cu.DevicePrimaryCtxRelease(c->dev);
        goto fail;
    }
    *out = c;
    return QJ_OK;
fail:
    free(c);
    return s;
}

void qj_cuda_close(qj_cuda *c) {
    if (!c) return;
    cu.CtxSynchronize();
    cu.DevicePrimaryCtxRelease(c->dev);
    free(c);
}

const qj_cuda_info *qj_cuda_get_info(const qj_cuda *c) { return &c->info; }

qj_status qj_cuda_alloc(qj_cuda *c, size_t bytes, qj_dptr *out) {
    (void)c;
    *out = 0;
    CUresult r = cu.MemAlloc(out, bytes ? bytes : 1);
    if (r == CUDA_SUCCESS) return QJ_OK;
    size_t fr = 0, total = 0;
    cu.MemGetInfo(&fr, &total);
    if (r == 2 /* CUDA_ERROR_OUT_OF_MEMORY */)
        return qj_fail(QJ_ERR_NOMEM, "out of GPU memory: allocating %.3f GiB with %.3f GiB free of %.3f GiB",
                       (double)bytes / 1073741824.0, (double)fr / 1073741824.0, (double)total / 1073741824.0);
    return check(r, "cuMemAlloc");
}

void qj_cuda_free(qj_cuda *c, qj_dptr p) {
    (void)c;
    if (p) cu.MemFree(p);
}

qj_status qj_cuda_upload(qj_cuda *c, qj_dptr dst, const void *src, size_t bytes) {
    (void)c;
    return bytes ? check(cu.MemcpyHtoD(dst, src, bytes), "cuMemcpyHtoD") : QJ_OK;
}
qj_status qj_cuda_download(qj_cuda *c, void *dst, qj_dptr src, size_t bytes) {
    (void)c;
    return bytes ? check(cu.MemcpyDtoH(dst, src, bytes), "cuMemcpyDtoH") : QJ_OK;
}
qj_status qj_cuda_upload_async(qj_cuda *c, qj_dptr dst, const void *src, size_t bytes, qj_custream s) {
    (void)c;
    return bytes ? check(cu.MemcpyHtoDAsync(dst, src, bytes, s), "cuMemcpyHtoDAsync") : QJ_OK;
}
qj_status qj_cuda_memset8(qj_cuda *c, qj_dptr dst, unsigned char v, size_t bytes) {
    (void)c;
    return bytes ? check(cu.MemsetD8(dst, v, bytes), "cuMemsetD8") : QJ_OK;
}
qj_status qj_cuda_zero_rows_async(qj_cuda *c, qj_dptr dst, size_t pitch_words, size_t words, size_t rows, qj_custream s) {
    (void)c;
    return words && rows ? check(cu.MemsetD2D32Async(dst, pitch_words * 4, 0u, words, rows, s), "cuMemsetD2D32Async") : QJ_OK;
}
qj_status qj_cuda_copy(qj_cuda *c, qj_dptr dst, qj_dptr src, size_t bytes, qj_custream s) {
    (void)c;
    return check(cu.MemcpyDtoDAsync(dst, src, bytes, s), "cuMemcpyDtoDAsync");
}
qj_status qj_cuda_sync(qj_cuda *c) {
    (void)c;
    return check(cu.CtxSynchronize(), "cuCtxSynchronize (a kernel failed)");
}

qj_status qj_cuda_module_load(qj_cuda *c, const void *image, qj_cumodule *out) {
    (void)c;
    return check(cu.ModuleLoadData(out, image), "cuModuleLoadData");
}
void qj_cuda_module_unload(qj_cuda *c, qj_cumodule m) {
    (void)c;
    if (m) cu.ModuleUnload(m);
}
qj_status qj_cuda_function(qj_cuda *c, qj_cumodule m, const char *name, qj_cufunc *out) {
    (void)c;
    CUresult r = cu.ModuleGetFunction(out, m, name);
    if (r) return qj_fail_context(check(r, "cuModuleGetFunction"), "kernel %s", name);
    return QJ_OK;
}
int qj_cuda_module_global(qj_cuda *c, qj_cumodule m, const char *name, qj_dptr *ptr, size_t *bytes) {
    (void)c;
    return cu.ModuleGetGlobal(ptr, bytes, m, name) == CUDA_SUCCESS;
}
qj_status qj_cuda_func_smem(qj_cuda *c, qj_cufunc f, int bytes) {
    (void)c;
    return check(cu.FuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes), "cuFuncSetAttribute");
}

qj_status qj_cuda_launch(qj_cuda *c, qj_cufunc f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                         unsigned bz, unsigned smem, qj_custream s, void **args) {
    if (c && c->pdl) {
        qj_launch_attr a;
        memset(&a, 0, sizeof a);
        a.id = QJ_CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
        a.v.value = 1;
        qj_launch_config cfg = {gx, gy, gz, bx, by, bz, smem, s, &a, 1};
        return check(cu.LaunchKernelEx(&cfg, f, args, NULL), "cuLaunchKernelEx");
    }
    return check(cu.LaunchKernel(f, gx, gy, gz, bx, by, bz, smem, s, args, NULL), "cuLaunchKernel");
}

int qj_cuda_set_pdl(qj_cuda *c, int on) {
    c->pdl = on && cu.LaunchKernelEx && c->info.cc_major >= 9;
    return c->pdl;
}

qj_status qj_cuda_stream_create(qj_cuda *c, qj_custream *out) {
    (void)c;
    return check(cu.StreamCreate(out, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
}
void qj_cuda_stream_destroy(qj_cuda *c, qj_custream s) {
    (void)c;
    if (s) cu.StreamDestroy(s);
}
qj_status qj_cuda_stream_sync(qj_cuda *c, qj_custream s) {
    (void)c;
    return check(cu.StreamSynchronize(s), "cuStreamSynchronize (a kernel failed)");
}
qj_status qj_cuda_event_create(qj_cuda *c, qj_cuevent *out) {
    (void)c;
    return check(cu.EventCreate(out, 0), "cuEventCreate");
}
void qj_cuda_event_destroy(qj_cuda *c, qj_cuevent e) {
    (void)c;
    if (e) cu.EventDestroy(e);
}
qj_status qj_cuda_event_record(qj_cuda *c, qj_cuevent e, qj_custream s) {
    (void)c;
    return check(cu.EventRecord(e, s), "cuEventRecord");
}
qj_status qj_cuda_event_ms(qj_cuda *c, qj_cuevent start, qj_cuevent end, float *ms) {
    (void)c;
    qj_status s = check(cu.EventSynchronize(end), "cuEventSynchronize");
    return s ? s : check(cu.EventElapsedTime(ms, start, end), "cuEventElapsedTime");
}

qj_status qj_cuda_capture_begin(qj_cuda *c, qj_custream s) {
    (void)c;
    return check(cu.StreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
}
qj_status qj_cuda_capture_end(qj_cuda *c, qj_custream s, qj_cugraph *out) {
    (void)c;
    void *graph = NULL;
    qj_status st = check(cu.StreamEndCapture(s, &graph), "cuStreamEndCapture");
    if (st) return st;
    st = check(cu.GraphInstantiate(out, graph, 0), "cuGraphInstantiate");
    cu.GraphDestroy(graph);
    return st;
}
qj_status qj_cuda_graph_launch(qj_cuda *c, qj_cugraph g, qj_custream s) {
    (void)c;
    return check(cu.GraphLaunch(g, s), "cuGraphLaunch");
}
void qj_cuda_graph_destroy(qj_cuda *c, qj_cugraph g) {
    (void)c;
    if (g) cu.GraphExecDestroy(g);
}
