/* hf_model.c — Hugging Face model directories: config.json parsing and
 * writing, the safetensors model loader (single file or sharded), and the
 * converter that writes any dense qj_model as such a directory. */
#include "hf_model.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qj_io.h"
#include "safetensors.h"

/* ---- names ------------------------------------------------------------- */

static const struct {
    qj_arch arch;
    const char *architecture; /* config.json "architectures" */
    const char *model_type;
} arch_names[] = {
    {QJ_ARCH_LLAMA, "LlamaForCausalLM", "llama"},
    {QJ_ARCH_MISTRAL, "MistralForCausalLM", "mistral"},
    {QJ_ARCH_QWEN2, "Qwen2ForCausalLM", "qwen2"},
};
#define N_ARCH (sizeof arch_names / sizeof arch_names[0])

/* The tensors of one block: Hugging Face suffix after "model.layers.{i}.",
 * the qj_layer field, whether it exists only with qkv_bias, and the rows'
 * RoPE heads (1: n_heads, 2: n_kv_heads) for the interleaved -> half permutation. */
static const struct {
    const char *suffix;
    size_t field;
    int bias;
    int rope;
} layer_slots[] = {
    {"input_layernorm.weight", offsetof(qj_layer, attn_norm), 0, 0},
    {"self_attn.q_proj.weight", offsetof(qj_layer, wq), 0, 1},
    {"self_attn.q_proj.bias", offsetof(qj_layer, bq), 1, 1},
    {"self_attn.k_proj.weight", offsetof(qj_layer, wk), 0, 2},
    {"self_attn.k_proj.bias", offsetof(qj_layer, bk), 1, 2},
    {"self_attn.v_proj.weight", offsetof(qj_layer, wv), 0, 0},
    {"self_attn.v_proj.bias", offsetof(qj_layer, bv), 1, 0},
    {"self_attn.o_proj.weight", offsetof(qj_layer, wo), 0, 0},
    {"post_attention_layernorm.weight", offsetof(qj_layer, ffn_norm), 0, 0},
    {"mlp.gate_proj.weight", offsetof(qj_layer, w_gate), 0, 0},
    {"mlp.up_proj.weight", offsetof(qj_layer, w_up), 0, 0},
    {"mlp.down_proj.weight", offsetof(qj_layer, w_down), 0, 0},
};
#define N_LAYER_SLOTS (sizeof layer_slots / sizeof layer_slots[0])

static qj_tensor *layer_slot(qj_layer *L, size_t k) { return (qj_tensor *)((char *)L + layer_slots[k].field); }
static const qj_tensor *layer_slot_c(const qj_layer *L, size_t k) {
    return (const qj_tensor *)((const char *)L + layer_slots[k].field);
}

static qj_status join_path(char *buf, size_t cap, const char *dir, const char *name) {
    if ((size_t)snprintf(buf, cap, "%s/%s", dir, name) >= cap)
        return qj_fail(QJ_ERR_INVALID, "%s/%s: path too long", dir, name);
    return QJ_OK;
}

/* ---- config.json ------------------------------------------------------- */

static const char *json_type(const cJSON *j) {
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsObject(j)) return "an object";
    return "invalid";
}

/* An integer value j of field (>= min: 1 for sizes, 0 for token ids). */
static qj_status json_int(const cJSON *j, const char *path, const char *field, int min, int *out) {
    if (!cJSON_IsNumber(j))
        return qj_fail(QJ_ERR_FORMAT, "%s: field \"%s\" must be an integer, got %s", path, field, json_type(j));
    double d = j->valuedouble;
    if (floor(d) != d || d < -2147483648.0 || d > 2147483647.0)
        return qj_fail(QJ_ERR_FORMAT, "%s: field \"%s\" must be an integer, got %g", path, field, d);
    if (d < min)
        return qj_fail(QJ_ERR_FORMAT, "%s: field \"%s\" must be %s, got %d", path, field,
                       min == 1 ? "positive" : "non-negative", (int)d);
    *out = (int)d;
    return QJ_OK;
}

/* Integer field. Absent or null: def, or an error when required. */
static qj_status cfg_int(const cJSON *root, const char *path, const char *field, int required, int def, int min,
                         int *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, field);
    if (!j || cJSON_IsNull(j)) {
        if (required) return qj_fail(QJ_ERR_FORMAT, "%s: missing field \"%s\"", path, field);
        *out = def;
        return QJ_OK;
    }
    return json_int(j, path, field, min, out);
}

static qj_status cfg_pos_float(const cJSON *root, const char *path, const char *field, float def, float *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, field);
    if (!j || cJSON_IsNull(j)) {
        *out = def;
        return QJ_OK;
    }
    if (!cJSON_IsNumber(j))
        return qj_fail(QJ_ERR_FORMAT, "%s: field \"%s\" must be a number, got %s", path, field, json_type(j));
    if (!(j->valuedouble > 0) || !isfinite((float)j->valuedouble))
        return qj_fail(QJ_ERR_FORMAT, "%s: field \"%s\" must be a positive number, got %g", path, field,
                       j->valuedouble);
    *out = (float)j->valuedouble;
    return QJ_OK;
}

static qj_status cfg_bool(const cJSON *root, const char *path, const char *field, int def, int *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, field);
    if (!j || cJSON_IsNull(j)) {
        *out = def;
        return QJ_OK;
    }
    if (!cJSON_IsBool(j))
        return qj_fail(QJ_ERR_FORMAT, "%s: field \"%s\" must be true or false, got %s", path, field,
                       json_type(j));
    *out = cJSON_IsTrue(j) ? 1 : 0;
    return QJ_OK;
}

/* bos/eos: an integer, null (default) or a list of integers (the first is used). */
static qj_status cfg_token(const cJSON *root, const char *path, const char *field, int def, int *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, field);
    if (cJSON_IsArray(j)) j = cJSON_GetArrayItem(j, 0);
    if (!j || cJSON_IsNull(j)) {
        *out = def;
        return QJ_OK;
    }
    return json_int(j, path, field, 0, out);
}

qj_status qj_hf_config_parse(const char *json, const char *path, qj_config *cfg, qj_dtype *torch_dtype) {
    memset(cfg, 0, sizeof *cfg);
    if (torch_dtype) *torch_dtype = QJ_DTYPE_COUNT;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 0);
    if (!root) {
        size_t at = end && end >= json ? (size_t)(end - json) : 0;
        return qj_fail(QJ_ERR_FORMAT, "%s: not valid JSON (error near byte offset %zu)", path, at);
    }
    qj_status s = QJ_OK;
    if (!cJSON_IsObject(root)) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: not a JSON object", path);
        goto done;
    }
    /* architecture: "architectures" (preferred) or "model_type" */
    const cJSON *ja = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *jt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    int found = 0;
    if (ja && !cJSON_IsNull(ja)) {
        if (!cJSON_IsArray(ja)) {
            s = qj_fail(QJ_ERR_FORMAT, "%s: field \"architectures\" must be an array of strings, got %s", path,
                        json_type(ja));
            goto done;
        }
        const cJSON *e;
        cJSON_ArrayForEach(e, ja) {
            if (!cJSON_IsString(e)) {
                s = qj_fail(QJ_ERR_FORMAT, "%s: field \"architectures\" must be an array of strings", path);
                goto done;
            }
            for (size_t k = 0; k < N_ARCH && !found; k++)
                if (!strcmp(e->valuestring, arch_names[k].architecture)) {
                    cfg->arch = arch_names[k].arch;
                    found = 1;
                }
        }
        if (!found) {
            const cJSON *first = cJSON_GetArrayItem(ja, 0);
            s = qj_fail(QJ_ERR_UNSUPPORTED,
                        "%s: field \"architectures\": \"%s\" is not supported (LlamaForCausalLM, "
                        "MistralForCausalLM or Qwen2ForCausalLM)",
                        path, first ? first->valuestring : "");
            goto done;
        }
    } else if (cJSON_IsString(jt)) {
        for (size_t k = 0; k < N_ARCH && !found; k++)
            if (!strcmp(jt->valuestring, arch_names[k].model_type)) {
                cfg->arch = arch_names[k].arch;
                found = 1;
            }
        if (!found) {
            s = qj_fail(QJ_ERR_UNSUPPORTED,
                        "%s: field \"model_type\": \"%s\" is not supported (llama, mistral, qwen2)",
                        path, jt->valuestring);
            goto done;
        }
    } else {
        s = qj_fail(QJ_ERR_FORMAT, "%s: missing field \"architectures\"", path);
        goto done;
    }

    if ((s = cfg_int(root, path, "hidden_size", 1, 0, 1, &cfg->dim)) ||
        (s = cfg_int(root, path, "intermediate_size", 1, 0, 1, &cfg->hidden_dim)) ||
        (s = cfg_int(root, path, "num_hidden_layers", 1, 0, 1, &cfg->n_layers)) ||
        (s = cfg_int(root, path, "num_attention_heads", 1, 0, 1, &cfg->n_heads)) ||
        (s = cfg_int(root, path, "num_key_value_heads", 0, cfg->n_heads, 1, &cfg->n_kv_heads)) ||
        (s = cfg_int(root, path, "vocab_size", 1, 0, 1, &cfg->vocab_size)) ||
        (s = cfg_int(root, path, "max_position_embeddings", 1, 0, 1, &cfg->seq_len)) ||
        (s = cfg_pos_float(root, path, "rope_theta", 10000.0f, &cfg->rope_theta)) ||
        (s = cfg_pos_float(root, path, "rms_norm_eps", 1e-6f, &cfg->rms_eps)) ||
        (s = cfg_bool(root, path, "tie_word_embeddings", 0, &cfg->tied_embeddings)) ||
        (s = cfg_token(root, path, "bos_token_id", 1, &cfg->bos_id)) ||
        (s = cfg_token(root, path, "eos_token_id", 2, &cfg->eos_id)))
        goto done;
    const cJSON *jh = cJSON_GetObjectItemCaseSensitive(root, "head_dim");
    if ((!jh || cJSON_IsNull(jh)) && cfg->dim % cfg->n_heads) {
        s = qj_fail(QJ_ERR_FORMAT,
                    "%s: hidden_size %d is not a multiple of num_attention_heads %d and no head_dim is given",
                    path, cfg->dim, cfg->n_heads);
        goto done;
    }
    if ((s = cfg_int(root, path, "head_dim", 0, cfg->dim / cfg->n_heads, 1, &cfg->head_dim))) goto done;
    if (cfg->n_heads % cfg->n_kv_heads) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", path,
                    cfg->n_heads, cfg->n_kv_heads);
        goto done;
    }
    if (cfg->head_dim % 2) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: head_dim %d must be even for RoPE", path, cfg->head_dim);
        goto done;
    }
    if (cfg->n_layers > 4096) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: field \"num_hidden_layers\" %d is out of range (1..4096)", path,
                    cfg->n_layers);
        goto done;
    }
    /* what qjit's forward pass does not implement: refuse rather than compute something else */
    const cJSON *jact = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (jact && !cJSON_IsNull(jact) && (!cJSON_IsString(jact) || strcmp(jact->valuestring, "silu"))) {
        s = qj_fail(QJ_ERR_UNSUPPORTED, "%s: field \"hidden_act\": only \"silu\" is supported", path);
        goto done;
    }
    const cJSON *jrs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (jrs && !cJSON_IsNull(jrs)) {
        const cJSON *ty = cJSON_IsObject(jrs) ? cJSON_GetObjectItemCaseSensitive(jrs, "rope_type") : NULL;
        if (!cJSON_IsString(ty) && cJSON_IsObject(jrs)) ty = cJSON_GetObjectItemCaseSensitive(jrs, "type");
        if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "default")) {
            s = qj_fail(QJ_ERR_UNSUPPORTED, "%s: field \"rope_scaling\" (%s) is not supported", path,
                        cJSON_IsString(ty) ? ty->valuestring : "?");
            goto done;
        }
    }
    int attn_bias = 0, mlp_bias = 0;
    if ((s = cfg_bool(root, path, "attention_bias", 0, &attn_bias)) ||
        (s = cfg_bool(root, path, "mlp_bias", 0, &mlp_bias)))
        goto done;
    if ((attn_bias && cfg->arch != QJ_ARCH_QWEN2) || mlp_bias) {
        s = qj_fail(QJ_ERR_UNSUPPORTED, "%s: field \"%s\": biases there are not supported", path,
                    mlp_bias ? "mlp_bias" : "attention_bias");
        goto done;
    }
    cfg->qkv_bias = cfg->arch == QJ_ARCH_QWEN2;
    cfg->rope_style = QJ_ROPE_HALF;
    if (torch_dtype) {
        const cJSON *jd = cJSON_GetObjectItemCaseSensitive(root, "torch_dtype");
        if (!cJSON_IsString(jd)) jd = cJSON_GetObjectItemCaseSensitive(root, "dtype");
        qj_dtype dt;
        if (cJSON_IsString(jd) && qj_dtype_parse(jd->valuestring, &dt) == QJ_OK) *torch_dtype = dt;
        qj_clear_error();
    }
done:
    cJSON_Delete(root);
    return s;
}

qj_status qj_hf_config_read(const char *path, qj_config *cfg, qj_dtype *torch_dtype) {
    char *text;
    qj_status s = qj_read_file(path, &text, NULL);
    if (s) return s;
    s = qj_hf_config_parse(text, path, cfg, torch_dtype);
    free(text);
    return s;
}

/* A JSON number for a float: the shortest decimal that reads back as the same
 * float, so 1e-5f is written 1e-05 and not 9.99999974737875e-06. */
static cJSON *float_number(float v) {
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return cJSON_CreateNumber(strtod(buf, NULL));
}

static const char *torch_dtype_name(qj_dtype t) {
    switch (t) {
    case QJ_DTYPE_F16: return "float16";
    case QJ_DTYPE_BF16: return "bfloat16";
    default: return "float32";
    }
}

static char *config_json(const qj_config *c, qj_dtype torch_dtype) {
    size_t a = 0;
    while (a < N_ARCH && arch_names[a].arch != c->arch) a++;
    if (a == N_ARCH) a = 0;
    cJSON *r = cJSON_CreateObject();
    if (!r) return NULL;
    cJSON *archs = cJSON_AddArrayToObject(r, "architectures");
    if (archs) cJSON_AddItemToArray(archs, cJSON_CreateString(arch_names[a].architecture));
    cJSON_AddStringToObject(r, "model_type", arch_names[a].model_type);
    cJSON_AddNumberToObject(r, "hidden_size", c->dim);
    cJSON_AddNumberToObject(r, "intermediate_size", c->hidden_dim);
    cJSON_AddNumberToObject(r, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(r, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(r, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(r, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(r, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(r, "max_position_embeddings", c->seq_len);
    cJSON_AddItemToObject(r, "rope_theta", float_number(c->rope_theta));
    cJSON_AddNullToObject(r, "rope_scaling");
    cJSON_AddItemToObject(r, "rms_norm_eps", float_number(c->rms_eps));
    cJSON_AddStringToObject(r, "hidden_act", "silu");
    cJSON_AddBoolToObject(r, "tie_word_embeddings", c->tied_embeddings != 0);
    cJSON_AddNumberToObject(r, "bos_token_id", c->bos_id);
    cJSON_AddNumberToObject(r, "eos_token_id", c->eos_id);
    if (c->arch == QJ_ARCH_QWEN2) {
        cJSON_AddBoolToObject(r, "use_sliding_window", 0);
    } else {
        cJSON_AddBoolToObject(r, "attention_bias", 0);
        if (c->arch == QJ_ARCH_LLAMA) cJSON_AddBoolToObject(r, "mlp_bias", 0);
        else cJSON_AddNullToObject(r, "sliding_window");
    }
    cJSON_AddNumberToObject(r, "attention_dropout", 0.0);
    cJSON_AddNumberToObject(r, "initializer_range", 0.02);
    cJSON_AddBoolToObject(r, "use_cache", 1);
    cJSON_AddStringToObject(r, "torch_dtype", torch_dtype_name(torch_dtype));
    char *text = cJSON_Print(r);
    cJSON_Delete(r);
    return text;
}

qj_status qj_hf_config_write(const char *path, const qj_config *cfg, qj_dtype torch_dtype) {
    char *text = config_json(cfg, torch_dtype);
    if (!text) return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", path);
    size_t n = strlen(text);
    char *withnl = malloc(n + 2);
    if (!withnl) {
        cJSON_free(text);
        return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(withnl, text, n);
    withnl[n] = '\n';
    cJSON_free(text);
    qj_status s = qj_write_file_atomic(path, withnl, n + 1);
    free(withnl);
    return s;
}

/* ---- loading ----------------------------------------------------------- */

/* Put tensor t (read from file, named name) into its slot of m. */
static qj_status assign_tensor(qj_model *m, const char *file, const char *name, const qj_tensor *t,
                               int *have_lm_head) {
    const qj_config *c = &m->cfg;
    qj_tensor *slot = NULL;
    if (!strcmp(name, "model.embed_tokens.weight")) slot = &m->tok_embedding;
    else if (!strcmp(name, "model.norm.weight")) slot = &m->final_norm;
    else if (!strcmp(name, "lm_head.weight")) {
        *have_lm_head = 1;
        slot = &m->lm_head;
    } else if (!strncmp(name, "model.layers.", 13)) {
        const char *p = name + 13;
        long li = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 9) {
            li = li * 10 + (*p++ - '0');
            digits++;
        }
        if (digits && *p == '.') {
            const char *suffix = p + 1;
            if (!strcmp(suffix, "self_attn.rotary_emb.inv_freq")) return QJ_OK; /* a buffer, not a weight */
            for (size_t k = 0; k < N_LAYER_SLOTS; k++)
                if (!strcmp(suffix, layer_slots[k].suffix) && (!layer_slots[k].bias || c->qkv_bias)) {
                    if (li >= c->n_layers)
                        return qj_fail(QJ_ERR_FORMAT,
                                       "%s: tensor \"%s\" belongs to layer %ld, but num_hidden_layers is %d", file,
                                       name, li, c->n_layers);
                    slot = layer_slot(&m->layers[li], k);
                    break;
                }
        }
    }
    if (!slot)
        return qj_fail(QJ_ERR_FORMAT, "%s: unexpected tensor \"%s\" (not part of a %s model%s)", file, name,
                       qj_arch_name(c->arch), c->qkv_bias ? "" : " without q/k/v biases");
    if (slot->data)
        return qj_fail(QJ_ERR_FORMAT, "%s: tensor \"%s\" is given twice", file, name);
    *slot = *t;
    snprintf(slot->name, sizeof slot->name, "%s", name);
    return QJ_OK;
}

static qj_status open_shard(qj_model *m, const char *path, qj_st_file **out) {
    qj_status s = qj_st_open(path, out);
    if (s) return s;
    if ((s = qj_st_give_to_model(*out, m))) {
        qj_st_close(*out);
        *out = NULL;
    }
    return s;
}

static qj_status load_single(qj_model *m, const char *path, int *have_lm_head) {
    qj_st_file *f;
    qj_status s = open_shard(m, path, &f);
    if (s) return s;
    for (int i = 0; i < qj_st_count(f) && !s; i++)
        s = assign_tensor(m, path, qj_st_name(f, i), qj_st_tensor(f, i), have_lm_head);
    qj_st_close(f);
    return s;
}

static qj_status load_sharded(qj_model *m, const char *dir, const char *index_path, int *have_lm_head) {
    char *text = NULL;
    cJSON *root = NULL;
    char **shard_names = NULL;
    qj_st_file **shards = NULL;
    int n_shards = 0;
    qj_status s = qj_read_file(index_path, &text, NULL);
    if (s) return s;
    const char *end = NULL;
    root = cJSON_ParseWithOpts(text, &end, 0);
    if (!root) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: not valid JSON (error near byte offset %zu)", index_path,
                    end && end >= text ? (size_t)(end - text) : (size_t)0);
        goto done;
    }
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm)) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: %s \"weight_map\" object", index_path,
                    wm ? "field \"weight_map\" is not an object:" : "missing");
        goto done;
    }
    int n = cJSON_GetArraySize(wm);
    shard_names = calloc((size_t)n + 1, sizeof *shard_names);
    shards = calloc((size_t)n + 1, sizeof *shards);
    if (!shard_names || !shards) {
        s = qj_fail(QJ_ERR_NOMEM, "%s: out of memory", index_path);
        goto done;
    }
    /* map every shard once */
    const cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e) || !e->valuestring[0]) {
            s = qj_fail(QJ_ERR_FORMAT, "%s: weight_map.\"%s\" must be a shard file name", index_path, e->string);
            goto done;
        }
        const char *fn = e->valuestring;
        if (strchr(fn, '/') || !strcmp(fn, ".") || !strcmp(fn, "..")) {
            s = qj_fail(QJ_ERR_FORMAT, "%s: weight_map.\"%s\": shard \"%s\" is not a plain file name", index_path,
                        e->string, fn);
            goto done;
        }
        int k = 0;
        while (k < n_shards && strcmp(shard_names[k], fn)) k++;
        if (k < n_shards) continue;
        char path[4096];
        if ((s = join_path(path, sizeof path, dir, fn))) goto done;
        shard_names[n_shards] = (char *)fn; /* borrowed from root */
        if ((s = open_shard(m, path, &shards[n_shards]))) {
            s = qj_fail_context(s, "%s: shard \"%s\" named in weight_map", index_path, fn);
            goto done;
        }
        n_shards++;
    }
    /* the weight map is authoritative: each name must be in the shard it names */
    cJSON_ArrayForEach(e, wm) {
        int k = 0;
        while (strcmp(shard_names[k], e->valuestring)) k++;
        const qj_tensor *t = qj_st_find(shards[k], e->string);
        if (!t) {
            s = qj_fail(QJ_ERR_FORMAT, "%s: tensor \"%s\" is mapped to %s, which does not contain it", index_path,
                        e->string, e->valuestring);
            goto done;
        }
        char where[4096];
        if ((s = join_path(where, sizeof where, dir, e->valuestring))) goto done;
        if ((s = assign_tensor(m, where, e->string, t, have_lm_head))) goto done;
    }
done:
    for (int k = 0; k < n_shards; k++) qj_st_close(shards[k]);
    free(shards);
    free(shard_names);
    cJSON_Delete(root);
    free(text);
    return s;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

qj_status qj_load_hf(const char *dir, qj_model **out) {
    *out = NULL;
    char path[4096];
    qj_config cfg;
    qj_status s = join_path(path, sizeof path, dir, "config.json");
    if (s) return s;
    if (!file_exists(path))
        return qj_fail(QJ_ERR_IO, "%s: no config.json (is this a Hugging Face model directory?)", dir);
    if ((s = qj_hf_config_read(path, &cfg, NULL))) return s;
    qj_model *m;
    if ((s = qj_model_alloc(&m, &cfg))) return qj_fail_context(s, "%s", path);
    m->source = QJ_SOURCE_HF;
    snprintf(m->origin, sizeof m->origin, "%s", dir);

    int have_lm_head = 0;
    char index_path[4096];
    if ((s = join_path(index_path, sizeof index_path, dir, "model.safetensors.index.json")) ||
        (s = join_path(path, sizeof path, dir, "model.safetensors")))
        goto fail;
    if (file_exists(index_path)) s = load_sharded(m, dir, index_path, &have_lm_head);
    else if (file_exists(path)) s = load_single(m, path, &have_lm_head);
    else {
        char bin[4096];
        int has_bin = join_path(bin, sizeof bin, dir, "pytorch_model.bin") == QJ_OK && file_exists(bin);
        s = qj_fail(QJ_ERR_IO, "%s: no model.safetensors or model.safetensors.index.json%s", dir,
                    has_bin ? " (pytorch_model.bin is not read: convert it to safetensors)" : "");
    }
    if (s) goto fail;

    /* tied output: lm_head absent, or tie_word_embeddings (then lm_head.weight, if any, is not used) */
    if (!have_lm_head || m->cfg.tied_embeddings) {
        m->cfg.tied_embeddings = 1;
        m->lm_head = m->tok_embedding;
    }
    /* missing tensors, by their Hugging Face names */
    const char *missing = NULL;
    char lname[QJ_NAME_MAX];
    if (!m->tok_embedding.data) missing = "model.embed_tokens.weight";
    else if (!m->final_norm.data) missing = "model.norm.weight";
    for (int i = 0; i < m->cfg.n_layers && !missing; i++)
        for (size_t k = 0; k < N_LAYER_SLOTS && !missing; k++)
            if ((!layer_slots[k].bias || m->cfg.qkv_bias) && !layer_slot(&m->layers[i], k)->data) {
                snprintf(lname, sizeof lname, "model.layers.%d.%s", i, layer_slots[k].suffix);
                missing = lname;
            }
    if (missing) {
        s = qj_fail(QJ_ERR_FORMAT, "%s: missing tensor \"%s\"", dir, missing);
        goto fail;
    }
    if ((s = qj_model_validate(m))) {
        s = qj_fail_context(s, "%s", dir);
        goto fail;
    }
    *out = m;
    return QJ_OK;
fail:
    qj_model_free(m);
    return s;
}

/* ---- converting -------------------------------------------------------- */

static int inject_after = -1;

void qj_hf_save_inject_failure(int after_files) { inject_after = after_files; }

static qj_status maybe_inject(int files_written) {
    if (inject_after >= 0 && files_written >= inject_after) {
        inject_after = -1;
        return qj_fail(QJ_ERR_IO, "injected failure after %d files (test hook)", files_written);
    }
    return QJ_OK;
}

/* One tensor to write. */
typedef struct out_tensor {
    char name[QJ_NAME_MAX];
    const qj_tensor *src;
    int rope_heads; /* > 0: permute rows (interleaved -> half) in this many heads */
    int shard;
    uint64_t bytes; /* in the output dtype */
} out_tensor;

static void add_out(out_tensor *o, int *n, const char *name, const qj_tensor *src, int rope_heads) {
    snprintf(o[*n].name, sizeof o[*n].name, "%s", name);
    o[*n].src = src;
    o[*n].rope_heads = rope_heads;
    (*n)++;
}

/* Source row of output row r for the interleaved -> half permutation:
 * within a head of hd rows, output i <- 2i, output i + hd/2 <- 2i + 1. */
static int64_t src_row(int64_t r, int64_t hd) {
    int64_t h = r / hd, j = r % hd, half = hd / 2;
    return h * hd + (j < half ? 2 * j : 2 * (j - half) + 1);
}

/* Stream one tensor into the writer, converted to dtype (and permuted). */
static qj_status write_tensor(qj_st_writer *w, const out_tensor *o, qj_dtype dtype, int head_dim, float *fbuf,
                              uint8_t *obuf, size_t obuf_cap) {
    const qj_tensor *t = o->src;
    int64_t numel = qj_tensor_numel(t);
    int64_t rows = t->ndim >= 2 || o->rope_heads ? t->shape[0] : 1;
    if (rows <= 0) return QJ_OK;
    int64_t K = numel / rows;
    size_t es_in = qj_dtype_size(t->dtype), es_out = qj_dtype_size(dtype);
    size_t row_out = (size_t)K * es_out, used = 0;
    qj_status s;
    for (int64_t r = 0; r < rows; r++) {
        int64_t sr = o->rope_heads ? src_row(r, head_dim) : r;
        const uint8_t *src = (const uint8_t *)t->data + (size_t)sr * (size_t)K * es_in;
        if (row_out > obuf_cap) { /* a row larger than the buffer: convert in pieces */
            for (int64_t k0 = 0; k0 < K; k0 += (int64_t)(obuf_cap / es_out)) {
                int64_t nk = K - k0 < (int64_t)(obuf_cap / es_out) ? K - k0 : (int64_t)(obuf_cap / es_out);
                qj_convert_to_f32(fbuf, src + (size_t)k0 * es_in, t->dtype, (size_t)nk);
                qj_convert_from_f32(obuf, dtype, fbuf, (size_t)nk);
                if ((s = qj_st_writer_put(w, obuf, (size_t)nk * es_out))) return s;
            }
            continue;
        }
        if (used + row_out > obuf_cap) {
            if ((s = qj_st_writer_put(w, obuf, used))) return s;
            used = 0;
        }
        qj_convert_to_f32(fbuf, src, t->dtype, (size_t)K);
        qj_convert_from_f32(obuf + used, dtype, fbuf, (size_t)K);
        used += row_out;
    }
    return used ? qj_st_writer_put(w, obuf, used) : QJ_OK;
}

static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[4200];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < sizeof p) unlink(p);
            }
        closedir(d);
    }
    rmdir(dir);
}

static unsigned tmp_counter;

qj_status qj_save_hf(const qj_model *m, const char *dir, qj_dtype dtype, int n_shards) {
    return qj_save_hf_ex(m, dir, dtype, n_shards, NULL);
}

qj_status qj_save_hf_ex(const qj_model *m, const char *dir_in, qj_dtype dtype, int n_shards,
                        qj_hf_save_info *info) {
    if (info) memset(info, 0, sizeof *info);
    if (!qj_st_dtype_name(dtype))
        return qj_fail(QJ_ERR_INVALID, "cannot write dtype %s (f32, f16 or bf16)", qj_dtype_name(dtype));
    char dir[4096];
    if (!dir_in || !dir_in[0]) return qj_fail(QJ_ERR_INVALID, "no output directory given");
    if (strlen(dir_in) >= sizeof dir - 64) return qj_fail(QJ_ERR_INVALID, "%s: path too long", dir_in);
    snprintf(dir, sizeof dir, "%s", dir_in);
    for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--) dir[n - 1] = '\0';

    const qj_config *c = &m->cfg;
    qj_status s = qj_model_validate(m);
    if (s) return qj_fail_context(s, "cannot convert %s", m->origin[0] ? m->origin : "model");
    int tied = c->tied_embeddings || m->lm_head.data == m->tok_embedding.data;
    int permute = c->rope_style == QJ_ROPE_INTERLEAVED;

    /* the output tensors, in file order */
    int cap = 3 + c->n_layers * (int)N_LAYER_SLOTS, n = 0;
    out_tensor *ot = calloc((size_t)cap, sizeof *ot);
    if (!ot) return qj_fail(QJ_ERR_NOMEM, "out of memory");
    add_out(ot, &n, "model.embed_tokens.weight", &m->tok_embedding, 0);
    for (int i = 0; i < c->n_layers; i++)
        for (size_t k = 0; k < N_LAYER_SLOTS; k++) {
            if (layer_slots[k].bias && !c->qkv_bias) continue;
            char name[QJ_NAME_MAX];
            snprintf(name, sizeof name, "model.layers.%d.%s", i, layer_slots[k].suffix);
            int rope = permute ? layer_slots[k].rope : 0;
            int heads = rope == 1 ? c->n_heads : rope == 2 ? c->n_kv_heads : 0;
            add_out(ot, &n, name, layer_slot_c(&m->layers[i], k), heads);
        }
    add_out(ot, &n, "model.norm.weight", &m->final_norm, 0);
    if (!tied) add_out(ot, &n, "lm_head.weight", &m->lm_head, 0);

    char tmp[4200] = "";
    float *fbuf = NULL;
    uint8_t *obuf = NULL;
    qj_st_entry *ent = NULL;
    qj_st_writer *w = NULL;
    cJSON *index = NULL;
    int files = 0;
    uint64_t data_bytes = 0, total_bytes = 0;
    int64_t max_k = 1;
    for (int i = 0; i < n; i++) {
        const qj_tensor *t = ot[i].src;
        if (t->dtype == QJ_DTYPE_Q || !qj_dtype_size(t->dtype)) {
            s = qj_fail(QJ_ERR_UNSUPPORTED, "tensor \"%s\" is quantized (%s): convert writes dense tensors only",
                        ot[i].name, qj_dtype_name(t->dtype));
            goto fail;
        }
        ot[i].bytes = (uint64_t)qj_tensor_numel(t) * qj_dtype_size(dtype);
        data_bytes += ot[i].bytes;
        int64_t rows = t->ndim >= 2 || ot[i].rope_heads ? t->shape[0] : 1;
        int64_t k = rows > 0 ? qj_tensor_numel(t) / rows : 0;
        if (k > max_k) max_k = k;
    }
    if (n_shards < 1) n_shards = 1;
    if (n_shards > n) {
        s = qj_fail(QJ_ERR_INVALID, "%d shards requested, but the model has only %d tensors", n_shards, n);
        goto fail;
    }
    /* shards: contiguous runs of tensors of about equal bytes, none empty */
    {
        int cur = 0;
        uint64_t cum = 0;
        for (int i = 0; i < n; i++) {
            ot[i].shard = cur;
            cum += ot[i].bytes;
            int rem = n - i - 1, need = n_shards - 1 - cur;
            if (cur < n_shards - 1 &&
                (rem == need || (double)cum >= (double)data_bytes * (cur + 1) / n_shards))
                cur++;
        }
    }

    /* the output directory must not exist; build it under a temporary name beside it */
    struct stat st;
    if (lstat(dir, &st) == 0) {
        s = qj_fail(QJ_ERR_INVALID, "%s already exists: convert writes a new directory (remove it or choose another)",
                    dir);
        goto fail;
    }
    if (errno != ENOENT) {
        s = qj_fail(QJ_ERR_IO, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", dir, (long)getpid(), tmp_counter++);
    if (mkdir(tmp, 0755) != 0) {
        s = qj_fail(QJ_ERR_IO, "%s: cannot create the output directory (as %s): %s", dir, tmp, strerror(errno));
        tmp[0] = '\0';
        goto fail;
    }
    if ((s = maybe_inject(files))) goto fail;

    size_t obuf_cap = 1u << 20;
    fbuf = malloc((size_t)(max_k < (int64_t)(obuf_cap / 2) ? max_k : (int64_t)(obuf_cap / 2)) * sizeof *fbuf + 16);
    obuf = malloc(obuf_cap);
    ent = calloc((size_t)n, sizeof *ent);
    if (n_shards > 1) index = cJSON_CreateObject();
    cJSON *wmap = NULL;
    if (index) {
        cJSON *meta = cJSON_AddObjectToObject(index, "metadata");
        if (meta) cJSON_AddNumberToObject(meta, "total_size", (double)data_bytes);
        wmap = cJSON_AddObjectToObject(index, "weight_map");
    }
    if (!fbuf || !obuf || !ent || (n_shards > 1 && !wmap)) {
        s = qj_fail(QJ_ERR_NOMEM, "out of memory");
        goto fail;
    }
    static const char *const meta_kv[] = {"format", "pt"};
    for (int sh = 0, first = 0; sh < n_shards; sh++) {
        char fname[64], path[4300];
        if (n_shards > 1) snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", sh + 1, n_shards);
        else snprintf(fname, sizeof fname, "model.safetensors");
        snprintf(path, sizeof path, "%s/%s", tmp, fname);
        int cnt = 0;
        while (first + cnt < n && ot[first + cnt].shard == sh) {
            const qj_tensor *t = ot[first + cnt].src;
            qj_st_entry *e = &ent[cnt];
            e->name = ot[first + cnt].name;
            e->dtype = dtype;
            e->ndim = t->ndim;
            for (int d = 0; d < t->ndim; d++) e->shape[d] = t->shape[d];
            if (wmap && !cJSON_AddStringToObject(wmap, e->name, fname)) {
                s = qj_fail(QJ_ERR_NOMEM, "out of memory");
                goto fail;
            }
            cnt++;
        }
        if ((s = qj_st_writer_open(&w, path, ent, cnt, meta_kv, 1))) goto fail;
        total_bytes += qj_st_writer_file_bytes(w);
        for (int k = 0; k < cnt; k++) {
            int i = qj_st_writer_next(w);
            if ((s = write_tensor(w, &ot[first + i], dtype, c->head_dim, fbuf, obuf, obuf_cap))) goto fail;
        }
        s = qj_st_writer_commit(w);
        w = NULL;
        if (s) goto fail;
        files++;
        first += cnt;
        if ((s = maybe_inject(files))) goto fail;
    }
    if (index) {
        char *text = cJSON_Print(index), path[4300];
        if (!text) {
            s = qj_fail(QJ_ERR_NOMEM, "out of memory");
            goto fail;
        }
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", tmp);
        size_t len = strlen(text);
        s = qj_write_file_atomic(path, text, len);
        cJSON_free(text);
        if (s) goto fail;
        total_bytes += len;
    }
    {
        qj_config out_cfg = *c;
        out_cfg.tied_embeddings = tied;
        out_cfg.rope_style = QJ_ROPE_HALF;
        char path[4300];
        snprintf(path, sizeof path, "%s/config.json", tmp);
        if ((s = qj_hf_config_write(path, &out_cfg, dtype))) goto fail;
        if (stat(path, &st) == 0) total_bytes += (uint64_t)st.st_size;
    }
    const char *tok_file = !m->tokenizer_blob ? NULL
                           : !strcmp(m->tokenizer_kind, "hf-json") ? "tokenizer.json"
                           : !strcmp(m->tokenizer_kind, "llama2c") ? "tokenizer.bin" : NULL;
    if (tok_file) {
        char path[4300];
        snprintf(path, sizeof path, "%s/%s", tmp, tok_file);
        if ((s = qj_write_file_atomic(path, m->tokenizer_blob, m->tokenizer_blob_len))) goto fail;
        total_bytes += m->tokenizer_blob_len;
    }
    /* make the directory's entries durable, then move it into place (never over an existing one) */
    int dfd = open(tmp, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_NOREPLACE) != 0) {
        int e = errno;
        if ((e == EINVAL || e == ENOSYS) && lstat(dir, &st) != 0 && rename(tmp, dir) == 0) e = 0;
        if (e) {
            s = qj_fail(QJ_ERR_IO, "%s: cannot move the finished directory into place: %s", dir,
                        e == EEXIST ? "it was created meanwhile" : strerror(e));
            goto fail;
        }
    }
    if (info) {
        info->n_tensors = n;
        info->n_files = files;
        info->data_bytes = data_bytes;
        info->total_bytes = total_bytes;
        info->rope_permuted = permute;
        info->tied = tied;
        if (tok_file) snprintf(info->tokenizer_file, sizeof info->tokenizer_file, "%s", tok_file);
    }
    cJSON_Delete(index);
    free(ent);
    free(obuf);
    free(fbuf);
    free(ot);
    return QJ_OK;
fail:
    qj_st_writer_abort(w);
    if (tmp[0]) remove_dir(tmp);
    cJSON_Delete(index);
    free(ent);
    free(obuf);
    free(fbuf);
    free(ot);
    return s;
}
