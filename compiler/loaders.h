/* loaders.h — model loaders: llama2.c checkpoints, synthetic models, and the
 * dispatcher that picks a loader from a path.
 *
 * Ownership: on success *out is a new qj_model the caller frees with
 * qj_model_free; on failure *out is NULL and nothing needs freeing.
 */
#ifndef QJ_LOADERS_H
#define QJ_LOADERS_H

#include <stdint.h>

#include "qj_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* llama2.c checkpoint: legacy header (7 int32) or version 1 ("ak42" magic,
 * 256-byte header), fp32 weights. Memory-mapped; RoPE interleaved. */
qj_status qj_load_llama2c(const char *path, qj_model **out);

/* Synthetic model: random weights of real shapes, deterministic from seed.
 * preset is one of qj_synthetic_presets() or a path to an HF config.json.
 * Weights are generated in dtype (f32, f16 or bf16). */
qj_status qj_load_synthetic(const char *preset, uint64_t seed, qj_dtype dtype, qj_model **out);
/* NULL-terminated list of preset names. */
const char *const *qj_synthetic_presets(void);
/* The config of a preset (no weights). */
qj_status qj_synthetic_config(const char *preset, qj_config *cfg);

/* Dispatch on what path is: a directory (Hugging Face), a qjit package
 * (by magic), otherwise a llama2.c checkpoint. */
qj_status qj_load_model(const char *path, qj_model **out);

/* Hugging Face style tensor name for a layer's weight, e.g.
 * "model.layers.3.mlp.down_proj.weight". */
void qj_hf_linear_name(char *buf, size_t n, int layer, qj_linear l);

#ifdef __cplusplus
}
#endif
#endif

#ifndef QJ_LOADERS_TOKENIZER_DECL
#define QJ_LOADERS_TOKENIZER_DECL
/* Find a tokenizer file for a model path (see load_any.c); 1 when found. */
int qj_find_tokenizer(const char *model_path, char *buf, size_t n);
/* Read a tokenizer file into the model (packages then carry it). The file is
 * parsed once to check it, and its vocabulary must fit the model's. */
qj_status qj_model_attach_tokenizer(qj_model *m, const char *path);
#endif
