/* plot.h — small charts as PNG files (libpng): points, lines and bars on
 * linear or log axes with ticks, a title, axis labels and a legend, drawn in a
 * built-in 5x7 font (letters print upper-case). Used for the search's Pareto
 * front, best-so-far curve and best plan.
 *
 * Ownership: the caller owns every array a series points at; qj_plot_png
 * only reads them. The file is written atomically (a temporary, then rename).
 */
#ifndef QJ_PLOT_H
#define QJ_PLOT_H

#include <stdint.h>

#include "qj_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { QJ_MARK_DOT = 0, QJ_MARK_SQUARE, QJ_MARK_LINE, QJ_MARK_BAR } qj_plot_mark;

#define QJ_PLOT_MAX_SERIES 8

typedef struct qj_plot_series {
    const double *x, *y; /* n points (non-finite ones are skipped) */
    int n;
    uint32_t rgb;        /* 0xRRGGBB */
    qj_plot_mark mark;
    const char *label;   /* legend text, or NULL */
} qj_plot_series;

typedef struct qj_plot {
    const char *title, *xlabel, *ylabel;
    int logx, logy;      /* log10 axes (values <= 0 are skipped) */
    qj_plot_series series[QJ_PLOT_MAX_SERIES];
    int n_series;
} qj_plot;

/* Draws p into a width x height RGB PNG at path. Errors: no series or no finite point,
 * a size out of 160..4096, the file cannot be written, no libpng in this build. */
qj_status qj_plot_png(const char *path, const qj_plot *p, int width, int height);

/* Where the data point (dx, dy) lands in the image qj_plot_png draws for p at this size
 * (pixel column, row from the top); 0 when p has no finite point. */
int qj_plot_map(const qj_plot *p, int width, int height, double dx, double dy, int *px, int *py);

int qj_plot_available(void);

#ifdef __cplusplus
}
#endif
#endif
