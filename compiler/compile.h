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
} qj_compile_stats;

/* progress: 1 = show a progress line on a terminal. stats may be NULL. */
qj_status qj_compile_model(const qj_model *src, const qj_plan *plan, int progress, qj_model **out,
                           qj_compile_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
