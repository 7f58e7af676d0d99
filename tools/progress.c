/*
 * progress.c — telling a person how far a long build has got.
 *
 * Two audiences.  On a terminal (stderr is a TTY) one line is redrawn in
 * place: a bar, the count, the rate and the time left, at most ten times a
 * second so that drawing never costs more than the work.  Anywhere else (a
 * log file, CI, a pipe) carriage returns would make a mess, so a plain line
 * is printed each time another tenth is done, or every 10 seconds when
 * tenths are slow, and a last line with the total.  --quiet prints
 * nothing.  Everything goes to stderr, so stdout carries only results.
 *
 * The rate and the time left are taken over the whole run so far, not a
 * window: HNSW inserts slow down gently as the index grows (the search per
 * insert is logarithmic), so the whole-run rate overestimates a little
 * and the estimate drifts up slightly; a window jumps about with the size
 * of the batches the caller reports, which reads worse.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <string.h>
#include <unistd.h>

/* 1234567 -> "1,234,567" */
static void commas(char *buf, size_t cap, uint64_t v) {
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    size_t o = 0;
    for (int i = 0; i < len && o + 1 < cap; i++) {
        buf[o++] = tmp[i];
        int left = len - i - 1;
        if (left > 0 && left % 3 == 0 && o + 1 < cap) buf[o++] = ',';
    }
    buf[o] = 0;
}

static void duration(char *buf, size_t cap, double s) {
    if (s < 0) s = 0;
    unsigned long t = (unsigned long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, cap, "%lu:%02lu", t / 60, t % 60);
}

void cli_progress_begin(cli_progress *p, const char *what, uint64_t total, int quiet) {
    memset(p, 0, sizeof *p);
    p->what = what;
    p->total = total;
    p->quiet = quiet;
    p->tty = isatty(STDERR_FILENO);
    p->start = p->last_draw = cli_now();
}

static void draw(cli_progress *p, double now, int final) {
    double el = now - p->start;
    double rate = el > 0 ? (double)p->done / el : 0;
    char done[32], total[32], left[32];
    commas(done, sizeof done, p->done);
    commas(total, sizeof total, p->total);
    unsigned pct = p->total ? (unsigned)(100.0 * (double)p->done / (double)p->total) : 100;
    if (p->tty) {
        enum { W = 28 };
        char bar[W + 1];
        size_t fill = p->total ? (size_t)((double)W * (double)p->done / (double)p->total) : W;
        for (size_t i = 0; i < W; i++) bar[i] = i < fill ? '#' : '.';
        bar[W] = 0;
        if (final)
            duration(left, sizeof left, el);
        else
            duration(left, sizeof left, rate > 0 ? (double)(p->total - p->done) / rate : 0);
        fprintf(stderr, "\r\033[K%s [%s] %s/%s %3u%%  %.0f/s  %s %s", p->what, bar, done, total,
                pct, rate, final ? "in" : "ETA", left);
        if (final) fputc('\n', stderr);
    } else if (final) {
        fprintf(stderr, "%s: %s done in %.1f s (%.0f/s)\n", p->what, total, el, rate);
    } else {
        duration(left, sizeof left, rate > 0 ? (double)(p->total - p->done) / rate : 0);
        fprintf(stderr, "%s: %s/%s (%u%%), %.0f/s, ETA %s\n", p->what, done, total, pct, rate,
                left);
    }
    fflush(stderr);
    p->drawn = 1;
    p->last_draw = now;
}

void cli_progress_update(cli_progress *p, uint64_t done) {
    p->done = done > p->total ? p->total : done;
    if (p->quiet || p->done == p->total) return;
    double now = cli_now();
    if (p->tty) {
        if (now - p->last_draw >= 0.1 || !p->drawn) draw(p, now, 0);
        return;
    }
    int step = p->total ? (int)(10 * p->done / p->total) : 10;
    if (step > p->last_step || now - p->last_draw >= 10.0) {
        p->last_step = step;
        draw(p, now, 0);
    }
}

void cli_progress_end(cli_progress *p) {
    if (p->quiet) return;
    draw(p, cli_now(), 1);
}
