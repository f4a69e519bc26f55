/* qj_status.c — status names and the thread-local last-error record. */
#include "qj_status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[2048];

const char *qj_status_str(qj_status s) {
    switch (s) {
    case QJ_OK: return "ok";
    case QJ_ERR_IO: return "io";
    case QJ_ERR_FORMAT: return "format";
    case QJ_ERR_INVALID: return "invalid";
    case QJ_ERR_UNSUPPORTED: return "unsupported";
    case QJ_ERR_NOMEM: return "out of memory";
    case QJ_ERR_DEVICE: return "device";
    case QJ_ERR_COMPILE: return "compile";
    case QJ_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}

const char *qj_last_error(void) { return last_error; }

void qj_clear_error(void) { last_error[0] = '\0'; }

qj_status qj_fail(qj_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

qj_status qj_fail_context(qj_status s, const char *fmt, ...) {
    char prefix[1024], old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof last_error - 3) n = sizeof last_error - 3;
    memcpy(last_error, prefix, n);
    last_error[n] = ':';
    last_error[n + 1] = ' ';
    size_t m = strlen(old);
    if (m > sizeof last_error - n - 3) m = sizeof last_error - n - 3;
    memcpy(last_error + n + 2, old, m);
    last_error[n + 2 + m] = '\0';
    return s;
}
