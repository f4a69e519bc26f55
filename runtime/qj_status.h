/* qj_status.h — status codes and the thread-local last-error record.
 *
 * Ownership: qj_last_error() returns a borrowed string owned by the calling
 * thread; it stays valid until the next qjit call on that thread that fails.
 * Every fallible qjit function returns a qj_status; on failure it has set the
 * last-error message (which names the file, field or tensor at fault).
 */
#ifndef QJ_STATUS_H
#define QJ_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum qj_status {
    QJ_OK = 0,
    QJ_ERR_IO,          /* open/read/write/rename failed */
    QJ_ERR_FORMAT,      /* input file is malformed (JSON, safetensors, checkpoint) */
    QJ_ERR_INVALID,     /* a value is out of range or inconsistent */
    QJ_ERR_UNSUPPORTED, /* well-formed but not something qjit handles */
    QJ_ERR_NOMEM,       /* allocation failed */
    QJ_ERR_DEVICE,      /* accelerator/driver failure */
    QJ_ERR_COMPILE,     /* kernel compilation failed */
    QJ_ERR_INTERNAL
} qj_status;

/* Short name of a status ("io", "format", ...). Never NULL. */
const char *qj_status_str(qj_status s);

/* Message of the last failure on this thread ("" when none). Never NULL. */
const char *qj_last_error(void);

/* Record a failure: formats the message, stores it thread-locally, returns s. */
qj_status qj_fail(qj_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prefix the current last-error message with "<prefix>: " and return s. */
qj_status qj_fail_context(qj_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

void qj_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
