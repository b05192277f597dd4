#!/usr/bin/env python3
"""Plots of HMT streams (docs/RETRIEVAL.md); needs matplotlib (Debian's
python3-matplotlib), which nothing else in libhmt needs.

usage: hmt_plot.py nll CSV -o PNG [--title T]
       hmt_plot.py recall -m MODEL -a ADAPTER -f TEXT [--max-tokens N] [--csv FILE]
                          -o PNG [--title T]
       hmt_plot.py retrieval CSV -o PNG [--title T]

  nll        per-segment NLL by mode from `hmt-perplexity --csv` (rows of
             several documents are averaged per segment index, token-weighted),
             and each mode's difference to segments mode when that is there
  recall     runs TEXT through a full-mode stream and draws its recall
             weights: segment n (row) x the segment whose memory is cached
             (column); --csv also writes them as segment,memory_segment,weight
  retrieval  answer log-prob gain over the control and greedy token accuracy
             by distance and mode, from `hmt_retrieval.py --csv`

Exit status: 0 success, 1 runtime failure, 2 usage error.
"""
import argparse
import csv
import io
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from atomic_write import atomic_write  # noqa: E402

MODE_ORDER = ("full", "rmt", "segments", "window")


def pyplot():
    try:
        import matplotlib
    except ImportError:
        sys.exit("hmt_plot: matplotlib is not installed "
                 "(Debian: apt-get install python3-matplotlib)")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, path):
    """PNG through a temporary file (tools/atomic_write.py)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    with atomic_write(path, "wb") as f:
        f.write(buf.getvalue())


def color(m):
    """One colour per mode in every plot (modes not listed get later ones)."""
    return f"C{MODE_ORDER.index(m)}" if m in MODE_ORDER else f"C{4 + sum(map(ord, m)) % 6}"


def mode_key(m):
    return (MODE_ORDER.index(m) if m in MODE_ORDER else len(MODE_ORDER), m)


def read_csv(path, need):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: no rows")
    missing = [k for k in need if k not in rows[0]]
    if missing:
        raise ValueError(f"{path}: no column {', '.join(missing)} (is it the right CSV?)")
    return rows


def plot_nll(args, plt):
    rows = read_csv(args.csv, ("mode", "segment", "tokens", "mean_nll"))
    acc = {}  # mode -> segment -> [nll * tokens, tokens]
    for r in rows:
        if r["mode"].startswith("ref-"):
            continue
        a = acc.setdefault(r["mode"], {}).setdefault(int(r["segment"]), [0.0, 0])
        a[0] += float(r["mean_nll"]) * int(r["tokens"])
        a[1] += int(r["tokens"])
    mean = {m: {s: v[0] / v[1] for s, v in acc[m].items()} for m in acc}
    base = mean.get("segments")
    fig, axes = plt.subplots(2 if base else 1, 1, figsize=(8, 6.5 if base else 4.5), sharex=True,
                             squeeze=False)
    for mode in sorted(mean, key=mode_key):
        segs = sorted(mean[mode])
        axes[0][0].plot(segs, [mean[mode][s] for s in segs], label=mode, lw=1.1,
                            color=color(mode))
        if base and mode != "segments":
            segs = [s for s in segs if s in base]
            axes[1][0].plot(segs, [mean[mode][s] - base[s] for s in segs], label=mode, lw=1.1,
                            color=color(mode))
    axes[0][0].set_ylabel("mean NLL (nats / token)")
    axes[0][0].set_title(args.title or "Per-segment NLL by stream mode")
    axes[0][0].legend()
    if base:  # the text's own difficulty cancels in the difference
        axes[1][0].axhline(0, color="k", lw=0.6)
        axes[1][0].set_ylabel("NLL minus segments mode")
        axes[1][0].legend()
    axes[-1][0].set_xlabel("segment (or block of L tokens for window)")
    for row in axes:
        row[0].grid(alpha=0.3)
    fig.tight_layout()
    save(fig, args.output)


def recall_weights(model_path, adapter_path, text_path, max_tokens):
    """[(segment, [(memory segment, weight)])] of a full-mode stream over the text."""
    sys.path.insert(1, os.path.join(HERE, "..", "python"))
    import hmt
    got = []
    with hmt.Model(model_path) as model, hmt.Adapter(model, adapter_path) as adapter, \
            hmt.Stream(model, adapter, mode="full") as stream:
        with open(text_path, encoding="utf-8", errors="replace") as f:
            ids = model.tokenize(f.read())
        if max_tokens:
            ids = ids[:max_tokens]
        stream.set_recall_callback(
            lambda seg, w, segs: got.append((seg, [(int(s), float(x)) for s, x in zip(segs, w)])))
        stream.feed(ids)
        stream.flush()
    if not got:
        raise ValueError(f"{text_path}: too short for a recall (needs more than one segment)")
    return got


def plot_recall(args, plt):
    got = recall_weights(args.model, args.adapter, args.file, args.max_tokens)
    if args.csv_out:
        with atomic_write(args.csv_out, "w") as f:
            f.write("segment,memory_segment,weight\n")
            for seg, pairs in got:
                for s, w in pairs:
                    f.write(f"{seg},{s},{w:.9g}\n")
    n = max(seg for seg, _ in got) + 1
    grid = [[math.nan] * n for _ in range(n)]
    for seg, pairs in got:
        for s, w in pairs:
            grid[seg][s] = w
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(grid, origin="lower", cmap="viridis", vmin=0, vmax=1, interpolation="nearest",
                   aspect="auto")
    fig.colorbar(im, ax=ax, label="recall weight")
    ax.set_xlabel("segment whose memory is cached")
    ax.set_ylabel("segment recalling (n)")
    ax.set_title(args.title or f"Recall weights, {os.path.basename(args.file)}")
    fig.tight_layout()
    save(fig, args.output)


def plot_retrieval(args, plt):
    rows = read_csv(args.csv, ("mode", "distance", "gain", "greedy_tokens", "control_tokens",
                               "answer_tokens", "trial"))
    by = {}
    for r in rows:
        by.setdefault(r["mode"], {}).setdefault(int(r["distance"]), []).append(r)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    for mode in sorted(by, key=mode_key):
        ds = sorted(by[mode])
        gain, gerr, acc, aerr = [], [], [], []
        for d in ds:
            rs = by[mode][d]
            m, e = mean_se([float(r["gain"]) for r in rs])
            gain.append(m)
            gerr.append(e)
            m, e = mean_se([(int(r["greedy_tokens"]) - int(r["control_tokens"]))
                            / int(r["answer_tokens"]) for r in rs])
            acc.append(m)
            aerr.append(e)
        a1.errorbar(ds, gain, yerr=gerr, label=mode, marker="o", ms=3, capsize=2, lw=1.2,
                     color=color(mode))
        a2.errorbar(ds, acc, yerr=aerr, label=mode, marker="o", ms=3, capsize=2, lw=1.2,
                     color=color(mode))
    ticks = sorted({d for v in by.values() for d in v})
    for ax in (a1, a2):
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(d) for d in ticks], fontsize=8)
        ax.set_xlabel("distance (segments; 0 = right after the needle)")
        ax.axhline(0, color="k", lw=0.6)
        ax.grid(alpha=0.3)
    a1.set_ylabel("answer log-prob, planted - control (nats)")
    a1.set_title("log-prob gain (mean ± s.e. over trials)")
    a2.set_ylabel("greedy token accuracy, planted - control")
    a2.set_title("answer tokens that are the argmax (teacher-forced)")
    a1.legend()
    n_trials = len({r["trial"] for r in rows})
    fig.suptitle(args.title or f"Retrieval by distance: task {rows[0].get('task', '?')}, "
                 f"{n_trials} trials")
    fig.tight_layout()
    save(fig, args.output)


def mean_se(xs):
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, 0.0
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs))


def parser():
    p = argparse.ArgumentParser(prog="hmt_plot.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2])
    sub = p.add_subparsers(dest="what", required=True)
    for name in ("nll", "retrieval"):
        s = sub.add_parser(name)
        s.add_argument("csv")
    s = sub.add_parser("recall")
    s.add_argument("-m", "--model", required=True)
    s.add_argument("-a", "--adapter", required=True)
    s.add_argument("-f", "--file", required=True)
    s.add_argument("--max-tokens", type=int, default=0)
    s.add_argument("--csv", dest="csv_out")
    for s in sub.choices.values():
        s.add_argument("-o", "--output", required=True)
        s.add_argument("--title")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    plt = pyplot()
    try:
        {"nll": plot_nll, "recall": plot_recall, "retrieval": plot_retrieval}[args.what](args, plt)
    except (OSError, ValueError, KeyError) as e:
        print(f"hmt_plot: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # the library's HmtError, without importing hmt for the other plots
        if type(e).__name__ != "HmtError":
            raise
        print(f"hmt_plot: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
