/* hf_model.h — Hugging Face model directories: config.json + safetensors.
 *
 * Reading (qj_load_hf): LlamaForCausalLM, MistralForCausalLM and
 * Qwen2ForCausalLM checkpoints, single-file (model.safetensors) or sharded
 * (model.safetensors.index.json + the shards it names). Every tensor keeps the
 * dtype it has in the file (F32, F16, BF16; mixed is fine). rope_style is
 * QJ_ROPE_HALF. On success the model owns the memory maps of every shard; on
 * failure nothing is left to free and the message names the file and the field
 * or tensor at fault.
 *
 * Writing (qj_save_hf): config.json + model.safetensors, or
 * model-0000k-of-0000n.safetensors + model.safetensors.index.json, every tensor
 * converted to one dtype. A QJ_ROPE_INTERLEAVED model (llama2.c) has the rows of
 * wq/wk (and bq/bk) permuted within each head, row 2i -> i and 2i+1 -> i +
 * head_dim/2, so the Hugging Face (half-rotation) forward computes the same
 * function. A tied model is written with tie_word_embeddings true and no lm_head.
 * A tokenizer the model carries (tokenizer_blob) is written beside the weights:
 * tokenizer.json (kind "hf-json") or tokenizer.bin (kind "llama2c").
 * The directory is built under a temporary name beside dir and renamed into
 * place at the end; dir must not exist; after a failure nothing is left behind.
 * The model is borrowed for the duration of the call.
 */
#ifndef QJ_HF_MODEL_H
#define QJ_HF_MODEL_H

#include <stdint.h>

#include "qj_model.h"
#include "qj_status.h"
#include "qj_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Load the Hugging Face model in directory dir. */
qj_status qj_load_hf(const char *dir, qj_model **out);

/* Parse a config.json text (path is used in messages only). Fills every field
 * of *cfg (rope_style QJ_ROPE_HALF); *torch_dtype (optional) gets the declared
 * torch_dtype, or QJ_DTYPE_COUNT when absent or not a dense dtype. */
qj_status qj_hf_config_parse(const char *json, const char *path, qj_config *cfg, qj_dtype *torch_dtype);
/* Read and parse dir/config.json or any config file path. */
qj_status qj_hf_config_read(const char *path, qj_config *cfg, qj_dtype *torch_dtype);
/* Write cfg as a Hugging Face config.json (atomically). torch_dtype: the dtype
 * the weights are stored in. The rope_style is not written: the caller must
 * write weights in Hugging Face (half) order, as qj_save_hf does. */
qj_status qj_hf_config_write(const char *path, const qj_config *cfg, qj_dtype torch_dtype);

/* What qj_save_hf wrote. */
typedef struct qj_hf_save_info {
    int n_tensors;        /* tensors written */
    int n_files;          /* safetensors files written */
    uint64_t data_bytes;  /* bytes of tensor data */
    uint64_t total_bytes; /* bytes of every file written, config and index included */
    int rope_permuted;    /* 1: wq/wk rows were permuted from interleaved to half order */
    int tied;             /* 1: no lm_head written (tie_word_embeddings) */
    char tokenizer_file[32]; /* "tokenizer.json" / "tokenizer.bin" when the model carried one, else "" */
} qj_hf_save_info;

/* Write m to a new directory dir. dtype: QJ_DTYPE_F32, F16 or BF16. n_shards:
 * <= 1 for one model.safetensors, else that many shards (at most the number of
 * tensors). */
qj_status qj_save_hf(const qj_model *m, const char *dir, qj_dtype dtype, int n_shards);
/* The same, reporting what was written in *info (may be NULL). */
qj_status qj_save_hf_ex(const qj_model *m, const char *dir, qj_dtype dtype, int n_shards,
                        qj_hf_save_info *info);

/* Testing only: make the next qj_save_hf fail after writing `after_files` files
 * into its temporary directory (0 = right after creating it; -1 = off). */
void qj_hf_save_inject_failure(int after_files);

#ifdef __cplusplus
}
#endif
#endif
