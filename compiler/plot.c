/* plot.c — small PNG charts (see plot.h). */
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef QJ_HAVE_PNG
#define QJ_HAVE_PNG 0
#endif
#if QJ_HAVE_PNG
#include <png.h>
#endif

int qj_plot_available(void) { return QJ_HAVE_PNG; }

/* 5x7 glyphs, one byte a row (bit 4 = left column) */
static const struct {
    char c;
    unsigned char r[7];
} font[] = {
    {'A', {14, 17, 17, 31, 17, 17, 17}}, {'B', {30, 17, 17, 30, 17, 17, 30}}, {'C', {14, 17, 16, 16, 16, 17, 14}},
    {'D', {30, 17, 17, 17, 17, 17, 30}}, {'E', {31, 16, 16, 30, 16, 16, 31}}, {'F', {31, 16, 16, 30, 16, 16, 16}},
    {'G', {14, 17, 16, 23, 17, 17, 15}}, {'H', {17, 17, 17, 31, 17, 17, 17}}, {'I', {14, 4, 4, 4, 4, 4, 14}},
    {'J', {7, 2, 2, 2, 2, 18, 12}},      {'K', {17, 18, 20, 24, 20, 18, 17}}, {'L', {16, 16, 16, 16, 16, 16, 31}},
    {'M', {17, 27, 21, 21, 17, 17, 17}}, {'N', {17, 17, 25, 21, 19, 17, 17}}, {'O', {14, 17, 17, 17, 17, 17, 14}},
    {'P', {30, 17, 17, 30, 16, 16, 16}}, {'Q', {14, 17, 17, 17, 21, 18, 13}}, {'R', {30, 17, 17, 30, 20, 18, 17}},
    {'S', {15, 16, 16, 14, 1, 1, 30}},   {'T', {31, 4, 4, 4, 4, 4, 4}},       {'U', {17, 17, 17, 17, 17, 17, 14}},
    {'V', {17, 17, 17, 17, 17, 10, 4}},  {'W', {17, 17, 17, 21, 21, 21, 10}}, {'X', {17, 17, 10, 4, 10, 17, 17}},
    {'Y', {17, 17, 10, 4, 4, 4, 4}},     {'Z', {31, 1, 2, 4, 8, 16, 31}},     {'0', {14, 17, 19, 21, 25, 17, 14}},
    {'1', {4, 12, 4, 4, 4, 4, 14}},      {'2', {14, 17, 1, 2, 4, 8, 31}},     {'3', {31, 2, 4, 2, 1, 17, 14}},
    {'4', {2, 6, 10, 18, 31, 2, 2}},     {'5', {31, 16, 30, 1, 1, 17, 14}},   {'6', {6, 8, 16, 30, 17, 17, 14}},
    {'7', {31, 1, 2, 4, 8, 8, 8}},       {'8', {14, 17, 17, 14, 17, 17, 14}}, {'9', {14, 17, 17, 15, 1, 2, 12}},
    {'.', {0, 0, 0, 0, 0, 12, 12}},      {'-', {0, 0, 0, 31, 0, 0, 0}},       {'+', {0, 4, 4, 31, 4, 4, 0}},
    {'(', {2, 4, 8, 8, 8, 4, 2}},        {')', {8, 4, 2, 2, 2, 4, 8}},        {'/', {0, 1, 2, 4, 8, 16, 0}},
    {':', {0, 12, 12, 0, 12, 12, 0}},    {',', {0, 0, 0, 0, 12, 4, 8}},       {'=', {0, 0, 31, 0, 31, 0, 0}},
    {'%', {24, 25, 2, 4, 8, 19, 3}},     {'_', {0, 0, 0, 0, 0, 0, 31}},
};

typedef struct canvas {
    int w, h;
    unsigned char *px; /* RGB */
} canvas;

static void put(canvas *c, int x, int y, uint32_t rgb) {
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    unsigned char *p = c->px + ((size_t)y * c->w + x) * 3;
    p[0] = (unsigned char)(rgb >> 16);
    p[1] = (unsigned char)(rgb >> 8);
    p[2] = (unsigned char)rgb;
}
static void rect(canvas *c, int x0, int y0, int x1, int y1, uint32_t rgb) {
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) put(c, x, y, rgb);
}
static void line(canvas *c, int x0, int y0, int x1, int y1, uint32_t rgb) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;
    for (int guard = 0; guard < 100000; guard++) {
        put(c, x0, y0, rgb);
        if (x0 == x1 && y0 == y1) break;
        const int e2 = 2 * e;
        if (e2 >= dy) e += dy, x0 += sx;
        if (e2 <= dx) e += dx, y0 += sy;
    }
}
/* text at (x, y) = its top left, scale s; returns the width drawn */
static int text(canvas *c, int x, int y, const char *s, int sc, uint32_t rgb) {
    int x0 = x;
    for (; s && *s; s++, x += 6 * sc) {
        char ch = *s >= 'a' && *s <= 'z' ? (char)(*s - 32) : *s;
        for (size_t g = 0; g < sizeof font / sizeof font[0]; g++) {
            if (font[g].c != ch) continue;
            for (int r = 0; r < 7; r++)
                for (int b = 0; b < 5; b++)
                    if (font[g].r[r] & (16 >> b)) rect(c, x + b * sc, y + r * sc, x + b * sc + sc - 1, y + r * sc + sc - 1, rgb);
            break;
        }
    }
    return x - x0;
}
static int text_width(const char *s, int sc) { return s ? (int)strlen(s) * 6 * sc : 0; }

typedef struct frame {
    int l, r, t, b;       /* plot area in pixels */
    double x0, x1, y0, y1; /* data range (log10 where the axis is log) */
} frame;

static int usable(const qj_plot *p, double x, double y) {
    return isfinite(x) && isfinite(y) && (!p->logx || x > 0) && (!p->logy || y > 0);
}
static double ax(const qj_plot *p, double x) { return p->logx ? log10(x) : x; }
static double ay(const qj_plot *p, double y) { return p->logy ? log10(y) : y; }

static int layout(const qj_plot *p, int w, int h, frame *f) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    int any = 0;
    for (int s = 0; s < p->n_series; s++) {
        const qj_plot_series *se = &p->series[s];
        for (int i = 0; i < se->n; i++) {
            if (!usable(p, se->x[i], se->y[i])) continue;
            any = 1;
            x0 = fmin(x0, ax(p, se->x[i]));
            x1 = fmax(x1, ax(p, se->x[i]));
            y0 = fmin(y0, ay(p, se->y[i]));
            y1 = fmax(y1, ay(p, se->y[i]));
            if (se->mark == QJ_MARK_BAR && !p->logy) y0 = fmin(y0, 0.0);
        }
    }
    if (!any) return 0;
    if (x1 - x0 < 1e-300) x0 -= 0.5, x1 += 0.5;
    if (y1 - y0 < 1e-300) y0 -= 0.5, y1 += 0.5;
    const double mx = 0.05 * (x1 - x0), my = 0.05 * (y1 - y0);
    f->x0 = x0 - mx;
    f->x1 = x1 + mx;
    f->y0 = y0 - my;
    f->y1 = y1 + my;
    f->l = 80;
    f->r = w - 20;
    f->t = 40;
    f->b = h - 50;
    return 1;
}
static int px_of(const frame *f, double v) { return f->l + (int)lround((v - f->x0) / (f->x1 - f->x0) * (f->r - f->l)); }
static int py_of(const frame *f, double v) { return f->b - (int)lround((v - f->y0) / (f->y1 - f->y0) * (f->b - f->t)); }

int qj_plot_map(const qj_plot *p, int width, int height, double dx, double dy, int *px, int *py) {
    frame f;
    if (!layout(p, width, height, &f)) return 0;
    *px = px_of(&f, ax(p, dx));
    *py = py_of(&f, ay(p, dy));
    return 1;
}

static void ticks(canvas *c, const qj_plot *p, const frame *f) {
    for (int i = 0; i <= 4; i++) {
        char buf[32];
        const double vx = f->x0 + (f->x1 - f->x0) * i / 4, vy = f->y0 + (f->y1 - f->y0) * i / 4;
        const int x = px_of(f, vx), y = py_of(f, vy);
        line(c, x, f->b, x, f->b + 4, 0x000000);
        snprintf(buf, sizeof buf, "%.4g", p->logx ? pow(10, vx) : vx);
        text(c, x - text_width(buf, 1) / 2, f->b + 8, buf, 1, 0x000000);
        line(c, f->l - 4, y, f->l, y, 0x000000);
        snprintf(buf, sizeof buf, "%.4g", p->logy ? pow(10, vy) : vy);
        text(c, f->l - 6 - text_width(buf, 1), y - 3, buf, 1, 0x000000);
        for (int g = f->l + 1; g < f->r; g += 3) put(c, g, y, 0xDDDDDD); /* light grid */
        for (int g = f->t + 1; g < f->b; g += 3) put(c, x, g, 0xDDDDDD);
    }
}

static void draw(canvas *c, const qj_plot *p, const frame *f) {
    rect(c, 0, 0, c->w - 1, c->h - 1, 0xFFFFFF);
    ticks(c, p, f);
    line(c, f->l, f->t, f->l, f->b, 0x000000);
    line(c, f->l, f->b, f->r, f->b, 0x000000);
    line(c, f->r, f->t, f->r, f->b, 0x000000);
    line(c, f->l, f->t, f->r, f->t, 0x000000);
    text(c, (c->w - text_width(p->title, 2)) / 2, 10, p->title, 2, 0x000000);
    text(c, (f->l + f->r - text_width(p->xlabel, 1)) / 2, f->b + 24, p->xlabel, 1, 0x000000);
    text(c, 8, f->t - 14, p->ylabel, 1, 0x000000);
    int ly = f->t + 6;
    for (int s = 0; s < p->n_series; s++) {
        const qj_plot_series *se = &p->series[s];
        int lx = -1, lyp = -1;
        const int nbars = se->mark == QJ_MARK_BAR ? se->n : 0;
        for (int i = 0; i < se->n; i++) {
            if (!usable(p, se->x[i], se->y[i])) continue;
            const int x = px_of(f, ax(p, se->x[i])), y = py_of(f, ay(p, se->y[i]));
            switch (se->mark) {
            case QJ_MARK_DOT: rect(c, x - 2, y - 2, x + 2, y + 2, se->rgb); break;
            case QJ_MARK_SQUARE:
                rect(c, x - 4, y - 4, x + 4, y + 4, se->rgb);
                rect(c, x - 2, y - 2, x + 2, y + 2, 0xFFFFFF);
                break;
            case QJ_MARK_LINE:
                if (lx >= 0) line(c, lx, lyp, x, y, se->rgb);
                rect(c, x - 1, y - 1, x + 1, y + 1, se->rgb);
                lx = x, lyp = y;
                break;
            case QJ_MARK_BAR: {
                const int half = nbars > 0 ? (f->r - f->l) / (4 * nbars) + 1 : 3, base = py_of(f, p->logy ? f->y0 : 0.0);
                rect(c, x - half, y < base ? y : base, x + half, y < base ? base : y, se->rgb);
                break;
            }
            }
        }
        if (se->label) { /* legend, top right */
            const int tw = text_width(se->label, 1);
            rect(c, f->r - tw - 22, ly, f->r - tw - 14, ly + 7, se->rgb);
            text(c, f->r - tw - 8, ly, se->label, 1, 0x000000);
            ly += 12;
        }
    }
}

qj_status qj_plot_png(const char *path, const qj_plot *p, int width, int height) {
    if (width < 160 || width > 4096 || height < 160 || height > 4096)
        return qj_fail(QJ_ERR_INVALID, "%s: plot size %dx%d out of range (160..4096)", path, width, height);
    if (p->n_series < 1 || p->n_series > QJ_PLOT_MAX_SERIES)
        return qj_fail(QJ_ERR_INVALID, "%s: %d series (1..%d)", path, p->n_series, QJ_PLOT_MAX_SERIES);
    frame f;
    if (!layout(p, width, height, &f)) return qj_fail(QJ_ERR_INVALID, "%s: nothing to plot (no finite point)", path);
#if QJ_HAVE_PNG
    canvas c = {width, height, malloc((size_t)width * height * 3)};
    if (!c.px) return qj_fail(QJ_ERR_NOMEM, "%s: out of memory", path);
    draw(&c, p, &f);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        free(c.px);
        return qj_fail(QJ_ERR_IO, "%s: cannot create", tmp);
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    volatile int ok = png && info;
    if (ok && setjmp(png_jmpbuf(png))) ok = 0;
    else if (ok) {
        png_init_io(png, fp);
        png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_text tx;
        memset(&tx, 0, sizeof tx);
        tx.compression = PNG_TEXT_COMPRESSION_NONE;
        tx.key = (png_charp) "Title";
        tx.text = (png_charp)(p->title ? p->title : "");
        png_set_text(png, info, &tx, 1);
        png_write_info(png, info);
        for (int y = 0; y < height; y++) png_write_row(png, c.px + (size_t)y * width * 3);
        png_write_end(png, NULL);
    }
    png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
    free(c.px);
    if (fclose(fp) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return qj_fail(QJ_ERR_IO, "%s: writing the PNG failed", path);
    }
    return QJ_OK;
#else
    (void)draw;
    return qj_fail(QJ_ERR_UNSUPPORTED, "%s: this qjit was built without libpng", path);
#endif
}
