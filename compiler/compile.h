/* compile.h — apply a plan to a model: quantize or convert every tensor,
 * producing the in-memory model a package stores and the runtime runs.
 *
 * Ownership: *out owns the buffers it created (quantized and converted
 * tensors) and BORROWS from src every tensor the plan keeps as it is, so src
 * must outlive *out. Free *out with qj_model_free before src.
 */
#ifndef QJ_COMPILE_H
#define QJ_COMPILE_H

#include "plan.h"
#include "qj_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qj_compile_stats {
    double seconds;
    int quantized_tensors;
    int converted_tensors;
    int kept_tensors;
    int cached_tensors; /* quantized tensors taken from a qj_quant_cache, not quantized again */
} qj_compile_stats;

/* progress: 1 = show a progress line on a terminal. stats may be NULL. */
qj_status qj_compile_model(const qj_model *src, const qj_plan *plan, int progress, qj_model **out,
                           qj_compile_stats *stats);

/* Quantized tensors kept across compiles of one source model (the search's trials): a
 * (source tensor, format) seen before is never quantized again. A model compiled through
 * the cache BORROWS its quantized tensors from it: free the model before the cache, and
 * before the next compile through it when the cache has a byte budget (entries the running
 * compile does not use may then be evicted, oldest first). */
typedef struct qj_quant_cache qj_quant_cache;
qj_status qj_quant_cache_new(uint64_t max_bytes, qj_quant_cache **out); /* max_bytes 0: no limit */
void qj_quant_cache_free(qj_quant_cache *c);
int qj_quant_cache_entries(const qj_quant_cache *c);
uint64_t qj_quant_cache_bytes(const qj_quant_cache *c);
qj_status qj_compile_model_cached(const qj_model *src, const qj_plan *plan, qj_quant_cache *cache, int progress,
                                  qj_model **out, qj_compile_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
