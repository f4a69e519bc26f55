/* package_write.h — writes a compiled model as a qjit package (see
 * runtime/qj_package.h for the layout, docs/FORMATS.md for the manifest).
 * The file is written atomically: a failure leaves no partial package. */
#ifndef QJ_PACKAGE_WRITE_H
#define QJ_PACKAGE_WRITE_H

#include "plan.h"
#include "qj_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* m: a compiled model (qj_compile_model); plan: recorded in the manifest (may
 * be NULL); the model's tokenizer blob, if any, is stored too. */
qj_status qj_package_write(const qj_model *m, const qj_plan *plan, const char *path);

/* The manifest's "model" object for a config (cJSON tree, caller deletes). */
cJSON *qj_config_to_cjson(const qj_config *c, const qj_model *m);

#ifdef __cplusplus
}
#endif
#endif
