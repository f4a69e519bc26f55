/* nvrtc.c — NVRTC through dlopen, embedded templates as include sources, and
 * the on-disk cache of compiled kernels. */
#include "nvrtc.h"

#include <errno.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qj_io.h"
#include "qj_progress.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

/* ---- embedded templates ---- */

struct qj_embedded_template {
    const char *name;
    const char *text;
};
extern const struct qj_embedded_template qj_embedded_templates[];

static char *disk_templates[64]; /* QJ_TEMPLATE_DIR copies, loaded once, kept for the process */
static pthread_mutex_t tmpl_lock = PTHREAD_MUTEX_INITIALIZER;

const char *const *qj_template_names(void) {
    static const char *names[64];
    int n = 0;
    for (int i = 0; qj_embedded_templates[i].name && n < 63; i++) names[n++] = qj_embedded_templates[i].name;
    names[n] = NULL;
    return names;
}

const char *qj_template_source(const char *name) {
    int idx = -1;
    for (int i = 0; qj_embedded_templates[i].name; i++)
        if (!strcmp(qj_embedded_templates[i].name, name)) idx = i;
    const char *dir = getenv("QJ_TEMPLATE_DIR");
    if (dir && *dir && idx >= 0 && idx < 64) {
        pthread_mutex_lock(&tmpl_lock);
        if (!disk_templates[idx]) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, name);
            char *text = NULL;
            if (qj_read_file(path, &text, NULL) == QJ_OK) disk_templates[idx] = text;
        }
        pthread_mutex_unlock(&tmpl_lock);
        if (disk_templates[idx]) return disk_templates[idx];
    }
    return idx >= 0 ? qj_embedded_templates[idx].text : NULL;
}

/* ---- NVRTC ---- */

typedef int nvrtcResult;
typedef struct _nvrtcProgram *nvrtcProgram;

static struct {
    void *lib;
    nvrtcResult (*Version)(int *, int *);
    nvrtcResult (*CreateProgram)(nvrtcProgram *, const char *, const char *, int, const char *const *,
                                 const char *const *);
    nvrtcResult (*DestroyProgram)(nvrtcProgram *);
    nvrtcResult (*CompileProgram)(nvrtcProgram, int, const char *const *);
    nvrtcResult (*GetProgramLogSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetProgramLog)(nvrtcProgram, char *);
    nvrtcResult (*GetCUBINSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetCUBIN)(nvrtcProgram, char *);
    nvrtcResult (*GetPTXSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetPTX)(nvrtcProgram, char *);
    const char *(*GetErrorString)(nvrtcResult);
    int major, minor;
} nv;
static pthread_once_t nv_once = PTHREAD_ONCE_INIT;
static char nv_error[512];

static void load_nvrtc(void) {
    const char *env = getenv("QJ_NVRTC_PATH");
    const char *names[] = {env, "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so",
                           "/usr/local/cuda/lib64/libnvrtc.so.13", "/usr/local/cuda/lib64/libnvrtc.so.12",
                           "/usr/local/cuda/lib64/libnvrtc.so"};
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !nv.lib; i++)
        if (names[i] && *names[i]) nv.lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!nv.lib) {
        snprintf(nv_error, sizeof nv_error,
                 "NVRTC not found (libnvrtc.so.13/.12; set QJ_NVRTC_PATH): CUDA kernels cannot be compiled here");
        return;
    }
#define SYM(field, name)                                                              \
    if (!(*(void **)&nv.field = dlsym(nv.lib, name))) {                               \
        snprintf(nv_error, sizeof nv_error, "libnvrtc lacks %s: NVRTC too old", name); \
        return;                                                                       \
    }
    SYM(Version, "nvrtcVersion");
    SYM(CreateProgram, "nvrtcCreateProgram");
    SYM(DestroyProgram, "nvrtcDestroyProgram");
    SYM(CompileProgram, "nvrtcCompileProgram");
    SYM(GetProgramLogSize, "nvrtcGetProgramLogSize");
    SYM(GetProgramLog, "nvrtcGetProgramLog");
    SYM(GetCUBINSize, "nvrtcGetCUBINSize");
    SYM(GetCUBIN, "nvrtcGetCUBIN");
    SYM(GetPTXSize, "nvrtcGetPTXSize");
    SYM(GetPTX, "nvrtcGetPTX");
    SYM(GetErrorString, "nvrtcGetErrorString");
#undef SYM
    nv.Version(&nv.major, &nv.minor);
}

int qj_nvrtc_available(int *major, int *minor) {
    pthread_once(&nv_once, load_nvrtc);
    if (major) *major = nv.major;
    if (minor) *minor = nv.minor;
    return nv_error[0] == '\0';
}

/* Valid architecture strings: sm_NN, sm_NNa, compute_NN, compute_NNa. */
static int arch_ok(const char *arch) {
    const char *p = !strncmp(arch, "sm_", 3) ? arch + 3 : !strncmp(arch, "compute_", 8) ? arch + 8 : NULL;
    if (!p || !(p[0] >= '0' && p[0] <= '9') || !(p[1] >= '0' && p[1] <= '9')) return 0;
    p += 2;
    if (*p >= '0' && *p <= '9') p++; /* sm_100 */
    if (*p == 'a' || *p == 'f') p++;
    return *p == '\0';
}

/* QJ_TRACE=FILE: kernels built with the block timing hooks of templates/qj_pdl.cuh (a diagnostic) */
static int trace_build(void) {
    const char *e = getenv("QJ_TRACE");
    return e && *e;
}

qj_status qj_nvrtc_compile(const char *source, const char *name, const char *arch, void **image, size_t *image_len,
                           char **log) {
    *image = NULL;
    *image_len = 0;
    if (log) *log = NULL;
    pthread_once(&nv_once, load_nvrtc);
    if (nv_error[0]) return qj_fail(QJ_ERR_UNSUPPORTED, "%s", nv_error);
    if (!arch_ok(arch))
        return qj_fail(QJ_ERR_INVALID, "unsupported target architecture \"%s\" (expected sm_XY, sm_XYa or compute_XY[a])",
                       arch);
    int cubin = !strncmp(arch, "sm_", 3);
    const char *const *tn = qj_template_names();
    int nh = 0;
    const char *hsrc[64], *hname[64];
    for (int i = 0; tn[i] && nh < 64; i++) {
        hname[nh] = tn[i];
        hsrc[nh] = qj_template_source(tn[i]);
        nh++;
    }
    nvrtcProgram prog;
    nvrtcResult r = nv.CreateProgram(&prog, source, name, nh, hsrc, hname);
    if (r) return qj_fail(QJ_ERR_COMPILE, "%s: nvrtcCreateProgram: %s", name, nv.GetErrorString(r));
    char archopt[64];
    snprintf(archopt, sizeof archopt, "--gpu-architecture=%s", arch);
    const char *opts[] = {archopt, "--std=c++17", "-default-device", "-lineinfo", "-DQJ_TRACE=1"};
    r = nv.CompileProgram(prog, (int)(sizeof opts / sizeof opts[0]) - !trace_build(), opts);
    size_t ls = 0;
    nv.GetProgramLogSize(prog, &ls);
    char *lg = malloc(ls + 1);
    if (lg) {
        lg[0] = '\0';
        if (ls) nv.GetProgramLog(prog, lg);
        lg[ls] = '\0';
    }
    if (r) {
        qj_status s = qj_fail(QJ_ERR_COMPILE, "%s: NVRTC compile failed (%s):\n%s", name, nv.GetErrorString(r),
                              lg ? lg : "(no log)");
        if (log) *log = lg;
        else free(lg);
        nv.DestroyProgram(&prog);
        return s;
    }
    size_t n = 0;
    r = cubin ? nv.GetCUBINSize(prog, &n) : nv.GetPTXSize(prog, &n);
    char *img = r ? NULL : malloc(n ? n : 1);
    if (!img) {
        free(lg);
        nv.DestroyProgram(&prog);
        return qj_fail(r ? QJ_ERR_COMPILE : QJ_ERR_NOMEM, "%s: cannot get the compiled image", name);
    }
    r = cubin ? nv.GetCUBIN(prog, img) : nv.GetPTX(prog, img);
    nv.DestroyProgram(&prog);
    if (r) {
        free(img);
        free(lg);
        return qj_fail(QJ_ERR_COMPILE, "%s: cannot get the compiled image: %s", name, nv.GetErrorString(r));
    }
    *image = img;
    *image_len = n;
    if (log) *log = lg;
    else free(lg);
    return QJ_OK;
}

/* ---- cache ---- */

static qj_kcache_stats kstats;
static pthread_mutex_t kstats_lock = PTHREAD_MUTEX_INITIALIZER;
static char cache_dir[4096];
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void mkdirs(char *path) {
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    mkdir(path, 0755);
}

static void init_cache_dir(void) {
    const char *d = getenv("QJ_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (d && *d) snprintf(cache_dir, sizeof cache_dir, "%s", d);
    else if (x && *x) snprintf(cache_dir, sizeof cache_dir, "%s/qjit", x);
    else snprintf(cache_dir, sizeof cache_dir, "%s/.cache/qjit", h && *h ? h : "/tmp");
    mkdirs(cache_dir);
}

const char *qj_kcache_dir(void) {
    pthread_once(&cache_once, init_cache_dir);
    return cache_dir;
}

qj_kcache_stats qj_kcache_get_stats(void) {
    pthread_mutex_lock(&kstats_lock);
    qj_kcache_stats s = kstats;
    pthread_mutex_unlock(&kstats_lock);
    return s;
}

qj_status qj_kcache_compile(const char *source, const char *name, const char *arch, void **image, size_t *image_len,
                            int *hit) {
    *image = NULL;
    *image_len = 0;
    if (hit) *hit = 0;
    int maj = 0, min = 0;
    if (!qj_nvrtc_available(&maj, &min)) return qj_fail(QJ_ERR_UNSUPPORTED, "%s", nv_error);
    /* key: source (the prologue names the template), every template's text, arch, NVRTC version */
    XXH3_state_t *st = XXH3_createState();
    if (!st) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, source, strlen(source));
    const char *const *tn = qj_template_names();
    for (int i = 0; tn[i]; i++) {
        const char *t = qj_template_source(tn[i]);
        XXH3_64bits_update(st, tn[i], strlen(tn[i]) + 1);
        XXH3_64bits_update(st, t, strlen(t));
    }
    char extra[96];
    snprintf(extra, sizeof extra, "|%s|nvrtc %d.%d|opts v1%s", arch, maj, min, trace_build() ? "|trace" : "");
    XXH3_64bits_update(st, extra, strlen(extra));
    uint64_t key = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    char path[4200];
    snprintf(path, sizeof path, "%s/%016" PRIx64 "_%s.%s", qj_kcache_dir(), key, arch,
             !strncmp(arch, "sm_", 3) ? "cubin" : "ptx");
    char *data;
    size_t len;
    if (qj_read_file(path, &data, &len) == QJ_OK && len > 0) {
        *image = data;
        *image_len = len;
        if (hit) *hit = 1;
        pthread_mutex_lock(&kstats_lock);
        kstats.hits++;
        pthread_mutex_unlock(&kstats_lock);
        return QJ_OK;
    }
    double t0 = qj_now();
    qj_status s = qj_nvrtc_compile(source, name, arch, image, image_len, NULL);
    if (s) return s;
    pthread_mutex_lock(&kstats_lock);
    kstats.misses++;
    kstats.compile_seconds += qj_now() - t0;
    pthread_mutex_unlock(&kstats_lock);
    /* a cache that cannot be written is not an error: the kernel is compiled */
    if (qj_write_file_atomic(path, *image, *image_len)) qj_clear_error();
    return QJ_OK;
}
