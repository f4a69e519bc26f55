/* plan_internal.h — JSON helpers shared by plan.c and plan_space.c (not
 * installed; not part of the public API). */
#ifndef QJ_PLAN_INTERNAL_H
#define QJ_PLAN_INTERNAL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "qj_status.h"

/* Fail with "<where>: <path>: <message>" (path may be NULL or ""). */
qj_status qj_plan_json_fail(qj_status s, const char *where, const char *path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* Parse JSON text; malformed text fails naming line, column and byte. */
qj_status qj_plan_json_load(const char *text, const char *where, cJSON **out);
/* "string", "number", "object", ... */
const char *qj_plan_json_type(const cJSON *v);
/* A short JSON rendering of v (truncated with "..."), for messages. */
const char *qj_plan_json_show(const cJSON *v, char *buf, size_t n);
/* 0: *out set; -1: v is not a number; -2: a number but not an int. */
int qj_plan_json_int(const cJSON *v, int *out);
/* The first member of obj whose key repeats an earlier one, or NULL. */
const cJSON *qj_plan_json_dup(const cJSON *obj);
/* Match key against "<prefix><digits>." (prefix includes its dot, e.g.
 * "bitwidth."): 1 and *idx set; 0: key does not start with the prefix;
 * -1: it does but the rest is not a layer index followed by '.'. */
int qj_plan_layer_key(const char *key, const char *prefix, int *idx);
/* "2,3,4,5,6,8" */
const char *qj_plan_int_list(const int *v, int n, char *buf, size_t cap);
/* Last path component. */
const char *qj_plan_basename(const char *path);

struct qj_plan;
/* Bit widths 2..8 of a quantized tensor. */
int qj_plan_bits_ok(int bits);
/* Group sizes 32, 64, 128, 256, 512, or 0 = per-channel. */
int qj_plan_group_ok(int group);
/* Set p->desc: the uniform setting ("int4-g128") or "mixed", then
 * " (origin)" when origin is not NULL. */
void qj_plan_describe(struct qj_plan *p, const char *origin);

#endif
