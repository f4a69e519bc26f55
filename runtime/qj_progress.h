/* qj_progress.h — a one-line progress display with rate and ETA on a
 * terminal (stderr); silent when stderr is not a TTY. Thread-safe updates. */
#ifndef QJ_PROGRESS_H
#define QJ_PROGRESS_H

#include <stddef.h>

typedef struct qj_progress {
    const char *what;  /* e.g. "eval" */
    const char *unit;  /* e.g. "tok" */
    size_t total, done;
    double t0, last;
    int enabled;
} qj_progress;

double qj_now(void); /* monotonic seconds */
void qj_progress_begin(qj_progress *p, const char *what, const char *unit, size_t total);
void qj_progress_add(qj_progress *p, size_t n);
void qj_progress_end(qj_progress *p);

#endif
