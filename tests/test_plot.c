// ctest-labels: unit
/* test_plot.c — PNG charts: the file is a valid PNG of the asked size; a point
 * lands where qj_plot_map says, in its series' colour; the background, the axes
 * and the title are drawn; log axes map monotonically; bad sizes, empty or all-NaN
 * data and an unwritable path are refused with no file (or temporary) left behind.
 * Skips (77) without libpng. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plot.h"
#include "qj_test.h"

#if defined(__has_include)
#if __has_include(<png.h>)
#include <png.h>
#define HAVE_PNG_H 1
#endif
#endif
#ifndef HAVE_PNG_H
int main(void) {
    printf("SKIP: no libpng headers to read the plots back\n");
    return 77;
}
#else

static unsigned char *read_png(const char *path, int *w, int *h) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    unsigned char *volatile px = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        free(px);
        return NULL;
    }
    png_init_io(png, f);
    png_read_info(png, info);
    *w = (int)png_get_image_width(png, info);
    *h = (int)png_get_image_height(png, info);
    if (png_get_color_type(png, info) != PNG_COLOR_TYPE_RGB || png_get_bit_depth(png, info) != 8) longjmp(png_jmpbuf(png), 1);
    px = malloc((size_t)*w * *h * 3);
    for (int y = 0; y < *h; y++) png_read_row(png, px + (size_t)y * *w * 3, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    return px;
}
static uint32_t at(const unsigned char *px, int w, int x, int y) {
    const unsigned char *p = px + ((size_t)y * w + x) * 3;
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

int main(void) {
    if (!qj_plot_available()) {
        printf("SKIP: this qjit was built without libpng\n");
        return 77;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/plot_test.png", getenv("QJ_TEST_TMP") ? getenv("QJ_TEST_TMP") : "/tmp");
    unlink(path);
    const double x[4] = {1, 2, 3, NAN}, y[4] = {1, 3, 2, 5}, lx[3] = {1, 2, 3}, ly[3] = {2.5, 2.5, 2.5};
    qj_plot p;
    memset(&p, 0, sizeof p);
    p.title = "Perplexity vs size";
    p.xlabel = "model size (GB)";
    p.ylabel = "perplexity";
    p.series[0] = (qj_plot_series){x, y, 4, 0xE02020, QJ_MARK_DOT, "trials"};
    p.series[1] = (qj_plot_series){lx, ly, 3, 0x2040E0, QJ_MARK_LINE, "front"};
    p.n_series = 2;
    QJ_CHECK_OK(qj_plot_png(path, &p, 400, 300));
    int w = 0, h = 0, px, py;
    unsigned char *img = read_png(path, &w, &h);
    QJ_CHECK(img && w == 400 && h == 300);
    if (img) {
        QJ_CHECK(qj_plot_map(&p, 400, 300, 2, 3, &px, &py));
        QJ_CHECK_MSG(at(img, w, px, py) == 0xE02020, "point (2, 3) at %d,%d is %06x", px, py, at(img, w, px, py));
        QJ_CHECK(qj_plot_map(&p, 400, 300, 1.5, 2.5, &px, &py));
        QJ_CHECK_MSG(at(img, w, px, py) == 0x2040E0, "the line at %d,%d is %06x", px, py, at(img, w, px, py));
        QJ_CHECK(at(img, w, 2, 2) == 0xFFFFFF); /* background */
        int black_axis = 0, title = 0;
        for (int yy = 40; yy < 250; yy++) black_axis += at(img, w, 80, yy) == 0;
        for (int yy = 8; yy < 26; yy++)
            for (int xx = 0; xx < w; xx++) title += at(img, w, xx, yy) == 0;
        QJ_CHECK_MSG(black_axis > 200 && title > 100, "axis %d title %d", black_axis, title);
        /* the NaN point is skipped: nothing red where (3, 5) would map */
        int red = 0;
        for (int yy = 0; yy < h; yy++)
            for (int xx = 0; xx < w; xx++) red += at(img, w, xx, yy) == 0xE02020;
        QJ_CHECK_MSG(red == 3 * 25 + 8 * 9, "red pixels %d (3 dots and the legend swatch)", red);
    }
    free(img);
    /* log axis: monotonic, values <= 0 skipped */
    {
        qj_plot q = p;
        q.logy = 1;
        int a, b, c2, d;
        QJ_CHECK(qj_plot_map(&q, 400, 300, 1, 1, &a, &b) && qj_plot_map(&q, 400, 300, 1, 3, &c2, &d));
        QJ_CHECK(d < b);
        QJ_CHECK_OK(qj_plot_png(path, &q, 400, 300));
    }
    /* bad input: nothing written, no temporary left */
    unlink(path);
    QJ_CHECK_FAILS(qj_plot_png(path, &p, 100, 300), "plot size 100x300 out of range");
    qj_plot e = p;
    e.n_series = 0;
    QJ_CHECK_FAILS(qj_plot_png(path, &e, 400, 300), "0 series");
    const double nx[2] = {NAN, INFINITY}, ny[2] = {1, 2};
    e.series[0] = (qj_plot_series){nx, ny, 2, 0, QJ_MARK_DOT, NULL};
    e.n_series = 1;
    QJ_CHECK_FAILS(qj_plot_png(path, &e, 400, 300), "nothing to plot");
    QJ_CHECK(access(path, F_OK) != 0);
    QJ_CHECK_FAILS(qj_plot_png("/nonexistent-dir/x.png", &p, 400, 300), "/nonexistent-dir/x.png.tmp");
    return qj_test_finish();
}
#endif
