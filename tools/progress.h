/* The progress line of the tools' long work (hmt-datastore, hmt-perplexity):
 *
 *   LABEL: 42.0% (4200/10000), 1234.5 tok/s, 3 s elapsed, ETA 5 s
 *
 * redrawn in place on stderr ('\r') at most 4 times a second, the last
 * state always drawn, and finished with a newline by progress_end. Drawn
 * only when stderr is a terminal and the tool was not given -q: piped or
 * redirected runs print nothing of it. The environment variable
 * HMT_PROGRESS=1 draws it on any stderr (for tests and logs that want it);
 * -q still wins. Compiled into the tools that use it (Makefile). */
#ifndef HMT_TOOLS_PROGRESS_H
#define HMT_TOOLS_PROGRESS_H

#include <stdint.h>

typedef struct {
    int on, drawn, width;
    double t0, last; /* CLOCK_MONOTONIC seconds: t0 the start (callers may time from it) */
    const char *label; /* printed first, e.g. the program or mode name */
    const char *unit;  /* of the rate: "tok" unless set after progress_start */
} progress;

void progress_start(progress *p, int quiet, const char *label);

/* CLOCK_MONOTONIC seconds: the clock of t0 and last, for the tools' timings. */
double progress_now(void);

/* done of total units (tokens, windows, keys); rate_units done so far give
 * the rate (tokens even when the units are windows). */
void progress_update(progress *p, int64_t done, int64_t total, int64_t rate_units);

/* Ends the line (a newline) if one was drawn. */
void progress_end(progress *p);

#endif
