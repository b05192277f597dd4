"""The trainer's progress line, as tools/progress.c draws the C tools' one:

    LABEL: 42.0% (420/1000), 1234.5 tok/s, 3 s elapsed, ETA 5 s

redrawn in place on stderr ('\\r') at most 4 times a second, the last state
always drawn; drawn only when stderr is a terminal and the run is not quiet
(HMT_PROGRESS=1 draws it on any stream). clear() blanks the line before other
output is printed (the trainer's log lines go to stdout, on the same screen);
end() finishes it with a newline.
"""
import os
import sys
import time

MIN_INTERVAL = 0.25  # seconds between redraws


def fmt_time(s):
    t = max(0, int(s + 0.5))
    if t < 60:
        return f"{t} s"
    if t < 3600:
        return f"{t // 60}m{t % 60:02d}s"
    return f"{t // 3600}h{(t % 3600) // 60:02d}m"


class Progress:
    def __init__(self, label, quiet=False, stream=None, unit="tok"):
        self.stream = stream or sys.stderr
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.on = not quiet and (os.environ.get("HMT_PROGRESS") == "1" or tty)
        self.label, self.unit = label, unit
        self.t0 = self.last = time.monotonic()
        self.width = 0
        self.drawn = False

    def update(self, done, total, rate_units, elapsed=None, eta=None):
        """done of total (steps); rate_units (tokens) over the elapsed seconds
        (default: since the start) give the rate; eta (seconds) overrides the
        linear estimate (the trainer also stops at its time budget)."""
        if not self.on:
            return
        t = time.monotonic()
        last = done >= total
        if self.drawn and not last and t - self.last < MIN_INTERVAL:
            return
        self.last = t
        el = t - self.t0 if elapsed is None else elapsed
        pct = 100.0 * done / total if total > 0 else 100.0
        line = (f"{self.label}: {pct:5.1f}% ({done}/{total}), "
                f"{rate_units / el if el > 0 else 0.0:.1f} {self.unit}/s, {fmt_time(el)} elapsed")
        if not last and done > 0:
            line += f", ETA {fmt_time(el * (total - done) / done if eta is None else eta)}"
        self.stream.write("\r" + line + " " * max(0, self.width - len(line)))
        self.stream.flush()
        self.width = len(line)
        self.drawn = True

    def clear(self):
        """Blank the line (before other output); the next update redraws it."""
        if self.on and self.drawn:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0
            self.drawn = False

    def end(self):
        if self.on and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
        self.drawn = False
