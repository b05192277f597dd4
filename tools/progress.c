#define _POSIX_C_SOURCE 200809L /* clock_gettime, isatty */
/* The tools' progress line (rules in progress.h). */
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIN_INTERVAL 0.25 /* seconds between redraws: at most 4 a second */

double progress_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "7 s", "2m05s", "3h07m": short, and stable in width within each range. */
static void fmt_time(char *buf, size_t cap, double s) {
    long t = s < 0 ? 0 : (long)(s + 0.5);
    if (t < 60)
        snprintf(buf, cap, "%ld s", t);
    else if (t < 3600)
        snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, cap, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
}

void progress_start(progress *p, int quiet, const char *label) {
    const char *force = getenv("HMT_PROGRESS");
    memset(p, 0, sizeof *p);
    p->on = !quiet && ((force && !strcmp(force, "1")) || isatty(STDERR_FILENO));
    p->t0 = p->last = progress_now();
    p->label = label;
    p->unit = "tok";
}

void progress_update(progress *p, int64_t done, int64_t total, int64_t rate_units) {
    if (!p->on) return;
    double t = progress_now();
    int last = done >= total;
    if (p->drawn && !last && t - p->last < MIN_INTERVAL) return;
    p->last = t;
    double el = t - p->t0;
    char line[256], e[48], r[48];
    fmt_time(e, sizeof e, el);
    int n = snprintf(line, sizeof line, "%s: %5.1f%% (%lld/%lld), %.1f %s/s, %s elapsed",
                     p->label, total > 0 ? 100.0 * (double)done / (double)total : 100.0,
                     (long long)done, (long long)total,
                     el > 0 ? (double)rate_units / el : 0.0, p->unit, e);
    if (!last && done > 0 && n > 0 && (size_t)n < sizeof line) {
        fmt_time(r, sizeof r, el * (double)(total - done) / (double)done);
        n += snprintf(line + n, sizeof line - (size_t)n, ", ETA %s", r);
    }
    if (n < 0) return;
    if (n >= (int)sizeof line) n = (int)sizeof line - 1;
    /* blank what a longer previous line would leave behind */
    fprintf(stderr, "\r%s%*s", line, p->width > n ? p->width - n : 0, "");
    fflush(stderr);
    p->width = n;
    p->drawn = 1;
}

void progress_end(progress *p) {
    if (p->on && p->drawn) fputc('\n', stderr);
    p->drawn = 0;
}
