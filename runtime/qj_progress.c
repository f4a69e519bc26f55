/* qj_progress.c — terminal progress line (rate, ETA), quiet when not a TTY. */
#include "qj_progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

double qj_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void qj_progress_begin(qj_progress *p, const char *what, const char *unit, size_t total) {
    p->what = what;
    p->unit = unit;
    p->total = total;
    p->done = 0;
    p->t0 = p->last = qj_now();
    p->enabled = isatty(2) && !getenv("QJ_NO_PROGRESS");
}

static void draw(qj_progress *p, double now) {
    double el = now - p->t0, rate = el > 0 ? (double)p->done / el : 0.0;
    double eta = rate > 0 ? (double)(p->total - p->done) / rate : 0.0;
    fprintf(stderr, "\r%s: %zu/%zu %s  %.1f %s/s  ETA %.0fs   ", p->what, p->done, p->total, p->unit, rate, p->unit,
            eta);
    fflush(stderr);
}

void qj_progress_add(qj_progress *p, size_t n) {
    #pragma omp critical(qj_progress)
    {
        p->done += n;
        if (p->enabled) {
            double now = qj_now();
            if (now - p->last > 0.2 || p->done == p->total) {
                p->last = now;
                draw(p, now);
            }
        }
    }
}

void qj_progress_end(qj_progress *p) {
    if (p->enabled) {
        draw(p, qj_now());
        fputc('\n', stderr);
    }
}
