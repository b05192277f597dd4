#!/usr/bin/env python3
"""Long-range retrieval benchmark for HMT streams (docs/RETRIEVAL.md).

usage: hmt_retrieval.py -m MODEL [-a ADAPTER] [--task copy|rare|passkey|kv]
                        [--modes all|full,rmt,...] [--distances 0,1,2,4,...]
                        [--trials N] [--seed S] [--length M] [--start-segment S]
                        [--offset O] [-L N] [-c W] [--filler heldout|sentences|FILE]
                        [--causal] [--csv FILE] [-t THREADS] [-q]

A fact is planted in a synthetic document and asked for d segments later; the
answer's log-probability and whether greedy decoding gives it exactly are
scored in every stream mode, against a control document whose planted fact
differs (so "gain" = what the model took from the planted fact).

Tasks (the answer is scored given the cue, teacher-forced):
  copy     needle = M tokens of natural text (a span of models/heldout, away
           from the stretch used as filler); probe = the same tokens; the
           first 2 are the cue, the other M-2 the answer (copying across
           distance)
  rare     the same with M random word tokens, cue 1 token (a rare sequence;
           the shipped Brown model hardly copies these)
  passkey  needle = " The pass key is 12345. Remember it."; probe =
           " The pass key is" (cue) + " 12345" (answer)
  kv       needle = 4 pairs of random words "key value"; probe = one key (cue)
           and its value (answer); the control has other values

Distance d >= 1: the probe starts d*L tokens after the needle (the same offset
in its segment, d segments later); d = 0: right after the needle. One stream
per mode, trial and document serves every distance: the filler is fed once
and snapshots (save/restore) branch off the probes.

Exit status: 0 success, 1 runtime failure, 2 usage error.
"""
import argparse
import csv
import glob
import math
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(HERE, "..", "python"))
import hmt  # noqa: E402
from atomic_write import atomic_write  # noqa: E402

try:
    import numpy as np
except ImportError:  # the binding works without NumPy; so does this tool
    np = None

ADAPTER_MODES = ("full", "rmt")  # the modes that cannot run without an adapter
SENTENCES = ("The grass is green. The sky is blue. The sun is yellow. "
             "Here we go. There and back again. ")
CSV_FIELDS = ("task", "mode", "settings", "distance", "distance_tokens", "trial",
              "answer_tokens", "logprob", "logprob_control", "gain", "greedy_exact",
              "greedy_tokens", "control_exact", "control_tokens")


class UsageError(Exception):
    pass


def log_softmax_at(logits, token):
    """log softmax(logits)[token] and whether token is the argmax, in double."""
    if np is not None:
        x = np.asarray(logits, dtype=np.float64)
        m = x.max()
        lse = m + math.log(np.exp(x - m).sum())
        return float(x[token] - lse), int(x.argmax()) == token
    xs = [float(v) for v in logits]
    m = max(xs)
    lse = m + math.log(sum(math.exp(v - m) for v in xs))
    best = max(range(len(xs)), key=xs.__getitem__)
    return xs[token] - lse, best == token


def word_pool(model):
    """Token ids that are whole lower-case words with a leading space (' ing'
    is not one): the material of needles. Falls back to every printable
    multi-character token for vocabularies without such words."""
    words, printable = [], []
    specials = {model.bos, model.eos, model.eot}
    for t in range(model.n_vocab):
        if t in specials:
            continue
        s = model.detokenize([t])
        if len(s) >= 4 and s[0] == " " and s[1:].isalpha() and s[1:].islower():
            words.append(t)
        elif len(s) >= 2 and s.isprintable() and "\ufffd" not in s:
            printable.append(t)
    pool = words if len(words) >= 64 else words + printable
    if len(pool) < 16:
        raise RuntimeError("the vocabulary has fewer than 16 printable tokens to plant")
    return pool


def filler_tokens(model, filler):
    """Tokens of the filler text: 'sentences', 'heldout' or a file's text."""
    if filler == "sentences":
        text = SENTENCES * 64
    else:
        paths = sorted(glob.glob(os.path.join(HERE, "..", "models", "heldout", "*.txt"))) \
            if filler == "heldout" else [filler]
        if not paths:
            raise RuntimeError("models/heldout/*.txt not found (use --filler sentences or a file)")
        text = ""
        for p in paths:
            with open(p, encoding="utf-8", errors="replace") as f:
                text += " ".join(f.read().split()) + " "
    ids = model.tokenize(text, add_bos=False)
    if len(ids) < 64:
        raise RuntimeError(f"the filler has only {len(ids)} tokens (64 needed)")
    return ids


def digits(model, rng, n=5):
    return model.tokenize(" " + "".join(str(rng.randrange(10)) for _ in range(n)), add_bos=False)


def span_outside(rng, src, length, used, n_used):
    """A random span of src that does not overlap src[used : used + n_used]
    (modulo its length): when src is the filler, the needle must not be
    repeated by the filler itself (n_used = 0 when src is another text)."""
    for _ in range(1000):
        a = rng.randrange(len(src) - length)
        if n_used == 0 or ((a - used) % len(src) >= n_used and (used - a) % len(src) >= length):
            return src[a:a + length]
    raise RuntimeError("the filler is too short for the documents asked for")


def make_task(task, model, pool, rng, length, src, used, n_used):
    """(needle, control needle, cue, answer) as token lists; copy's spans come
    from src avoiding src[used : used + n_used] (see span_outside)."""
    if task == "copy":
        s = span_outside(rng, src, length, used, n_used)
        c = span_outside(rng, src, length, used, n_used)
        return s, c, s[:2], s[2:]
    if task == "rare":
        s = rng.sample(pool, length)
        c = rng.sample([t for t in pool if t not in s], length)
        return s, c, s[:1], s[1:]
    if task == "passkey":
        key, other = digits(model, rng), digits(model, rng)
        while other == key or len(other) != len(key):  # same positions in both documents
            other = digits(model, rng)
        intro = model.tokenize(" The pass key is", add_bos=False)
        tail = model.tokenize(". Remember it.", add_bos=False)
        return intro + key + tail, intro + other + tail, intro, key
    if task == "kv":
        words = rng.sample(pool, 12)
        keys, vals, others = words[0:4], words[4:8], words[8:12]
        q = rng.randrange(4)
        needle = [t for kv in zip(keys, vals) for t in kv]
        control = [t for kv in zip(keys, others) for t in kv]
        return needle, control, [keys[q]], [vals[q]]
    raise UsageError(f"unknown task '{task}' (copy, rare, passkey or kv)")


def build_document(start, needle, gap, cue, answer):
    """Tokens of one document and the index of its first answer token."""
    doc = start + needle + gap + cue + answer
    return doc, len(doc) - len(answer)


def parse_modes(spec, have_adapter):
    known = [m.name.lower() for m in hmt.Mode]
    names = known if spec == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise UsageError("--modes lists no mode")
    out = []
    for n in names:
        if n in ADAPTER_MODES and not have_adapter:
            if spec != "all":
                print(f"hmt_retrieval: mode {n} skipped: it needs an adapter (-a)", file=sys.stderr)
            continue
        out.append(n)
    return out


def open_stream(model, adapter, mode, args):
    """A stream of the mode, or None (with the reason on stderr) when this
    libhmt or this model/adapter cannot run it: an unknown mode is skipped,
    not fatal, so the list can name modes another build adds."""
    keys = {"all_logits": 1, "n_threads": args.threads}
    keys["mode"] = int(mode) if mode.isdigit() else mode
    if args.L:
        keys["segment_length"] = args.L
    if args.window and mode == "window":
        keys["window"] = args.window
    try:
        s = hmt.Stream(model, adapter, **keys)
        if args.causal and mode == "full":
            s.lookahead = False  # recall from the previous segment's summary (docs/HMT.md)
        return s
    except hmt.HmtError as e:
        print(f"hmt_retrieval: mode {mode} skipped: {e.message or e}", file=sys.stderr)
        return None


def settings_of(stream, mode):
    def g(key):  # a key a mode added later may not answer: leave it out
        try:
            return stream.get(key)
        except hmt.HmtError:
            return "?"
    if mode == "window":
        return f"W={g('window')}"
    if mode == "segments":
        return f"L={g('segment_length')}"
    if mode == "rmt":
        return f"L={g('segment_length')} k={g('sensory_length')}"
    if mode == "full":
        rule = "" if stream.lookahead else " causal"
        return (f"L={g('segment_length')} k={g('sensory_length')} "
                f"j={g('summary_length')} N={g('cache_size')}{rule}")
    return f"L={g('segment_length')}"


def score_probes(stream, start, needle, gap, cue, answer, plan):
    """Feed one document's prefix once; at each distance of plan (sorted
    (distance, gap length) pairs) branch off a snapshot, feed the probe,
    score the answer and restore. Returns {distance: (logprob, correct)}."""
    stream.feed(start + needle)
    fed, out = 0, {}
    for d, glen in plan:
        stream.feed(gap[fed:glen])
        fed = glen
        snap = stream.save()
        base = len(start) + len(needle) + glen + len(cue)  # index of answer[0]
        want = {base - 1 + i: t for i, t in enumerate(answer)}  # logits i predict i + 1
        got = {}
        for step in (lambda: stream.feed(cue + answer), stream.flush):
            for i in step():  # (a flush with nothing left to do repeats the last range)
                if i in want and i not in got:
                    got[i] = log_softmax_at(stream.logits(i), want[i])
        if len(got) != len(answer):
            raise RuntimeError(f"distance {d}: {len(got)} of {len(answer)} answer logits ready")
        out[d] = (sum(v for v, _ in got.values()), [ok for _, ok in got.values()])
        stream.restore(snap)
    return out


def trial_documents(args, model, pool, fill, bos, L, rng, src=None):
    """The parts of one trial's two documents (planted and control) and the
    plan: (distance, gap length) pairs, gap lengths increasing. Copy needles
    come from src (None: the filler itself, away from the stretch used)."""
    n_start = args.start_segment * L + args.offset - len(bos)
    if n_start < 0:
        raise UsageError("--start-segment 0 --offset 0 leaves no room for BOS")
    at = rng.randrange(len(fill))
    n_most = n_start + args.distances[-1] * L  # filler never longer than this
    needle, control, cue, answer = make_task(args.task, model, pool, rng, args.length,
                                             fill if src is None else src, at,
                                             n_most if src is None else 0)
    if len(needle) > L and args.distances[-1] > 0:
        raise UsageError(f"the needle ({len(needle)} tokens) is longer than L = {L}")
    plan = [(d, d * L - len(needle) if d else 0) for d in args.distances]
    stretch = [fill[(at + i) % len(fill)] for i in range(n_start + plan[-1][1])]
    return bos + stretch[:n_start], stretch[n_start:], needle, control, cue, answer, plan


def run(args, out=sys.stdout):
    with hmt.Model(args.model) as model:
        adapter = hmt.Adapter(model, args.adapter) if args.adapter else None
        modes = parse_modes(args.modes, adapter is not None)
        streams = []
        for mode in modes:
            s = open_stream(model, adapter, mode, args)
            if s is not None:
                streams.append((mode, s, s.save()))  # the empty stream, to start over
        if not streams:
            raise UsageError("no mode can run (give -a ADAPTER, or -L for segments)")
        L = args.L or (adapter.segment_length if adapter is not None else 0)
        if not L:
            raise UsageError("-L is needed without an adapter (distances count segments of L)")
        pool = word_pool(model)
        fill = filler_tokens(model, args.filler)
        src = None  # copy's needles: natural text that is not the filler
        if args.task == "copy" and args.filler != "heldout":
            src = filler_tokens(model, "heldout")
        bos = [model.bos] if model.bos is not None else []
        rows = []
        for trial in range(args.trials):
            rng = random.Random(f"{args.seed}:{args.task}:{trial}")
            start, gap, needle, control, cue, answer, plan = trial_documents(
                args, model, pool, fill, bos, L, rng, src)
            for mode, stream, empty in streams:
                got = score_probes(stream, start, needle, gap, cue, answer, plan)
                stream.restore(empty)
                ctl = score_probes(stream, start, control, gap, cue, answer, plan)
                stream.restore(empty)
                for d, glen in plan:
                    lp, ok = got[d]
                    lpc, okc = ctl[d]
                    rows.append({"task": args.task, "mode": mode,
                                 "settings": settings_of(stream, mode), "distance": d,
                                 "distance_tokens": len(needle) + glen if d else len(needle),
                                 "trial": trial, "answer_tokens": len(answer),
                                 "logprob": f"{lp:.6f}", "logprob_control": f"{lpc:.6f}",
                                 "gain": f"{lp - lpc:.6f}", "greedy_exact": int(all(ok)),
                                 "greedy_tokens": sum(ok), "control_exact": int(all(okc)),
                                 "control_tokens": sum(okc)})
            if not args.quiet:
                print(f"hmt_retrieval: trial {trial + 1}/{args.trials} done", file=sys.stderr)
        for _, s, _ in streams:
            s.close()
        if adapter is not None:
            adapter.close()
    if args.csv:
        with atomic_write(args.csv, "w") as f:
            write_csv(f, rows)
    print_summary(rows, out)
    return rows


def write_csv(f, rows):
    w = csv.DictWriter(f, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)


def print_summary(rows, out):
    """Per mode and distance: mean answer log-prob (nats), its gain over the
    control, the greedy exact-match rate of planted and control documents."""
    groups = {}
    for r in rows:
        groups.setdefault((r["mode"], r["settings"]), {}).setdefault(r["distance"], []).append(r)
    print(f"{'mode':9s} {'settings':24s} {'dist':>5s} {'tokens':>7s} {'logprob':>9s} "
          f"{'gain':>8s} {'exact':>6s} {'ctl_ex':>6s}", file=out)
    for (mode, settings), by_d in groups.items():
        for d, rs in sorted(by_d.items()):
            n = len(rs)
            mean = lambda k: sum(float(r[k]) for r in rs) / n  # noqa: E731
            print(f"{mode:9s} {settings:24s} {d:5d} {rs[0]['distance_tokens']:7d} "
                  f"{mean('logprob'):9.3f} {mean('gain'):8.3f} {mean('greedy_exact'):6.2f} "
                  f"{mean('control_exact'):6.2f}", file=out)


def int_list(s):
    try:
        v = sorted({int(x) for x in s.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{s}' is not a comma-separated list of whole numbers")
    if not v or v[0] < 0:
        raise argparse.ArgumentTypeError("distances are whole numbers >= 0")
    return v


def whole_at_least(lo):
    """An argparse type: a whole number >= lo."""
    def parse(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{s}' is not a whole number")
        if v < lo:
            raise argparse.ArgumentTypeError(f"{v} is not >= {lo}")
        return v
    return parse


positive, non_negative = whole_at_least(1), whole_at_least(0)


def parser():
    p = argparse.ArgumentParser(prog="hmt_retrieval.py", usage=__doc__.split("\n\n")[1][7:],
                                description="Long-range retrieval benchmark (docs/RETRIEVAL.md).")
    p.add_argument("-m", "--model", required=True)
    p.add_argument("-a", "--adapter")
    p.add_argument("--task", default="copy", choices=("copy", "rare", "passkey", "kv"))
    p.add_argument("--modes", default="all",
                   help="comma-separated stream modes, or all (every mode this libhmt has)")
    p.add_argument("--distances", type=int_list, default=int_list("0,1,2,3,4,6,8,16,32,64,128,256"),
                   help="segments between needle and probe "
                        "(default 0,1,2,3,4,6,8,16,32,64,128,256)")
    p.add_argument("--trials", type=positive, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--length", type=positive, default=16,
                   help="copy and rare: needle tokens (default 16)")
    p.add_argument("--start-segment", type=non_negative, default=2,
                   help="segment of the needle (default 2)")
    p.add_argument("--offset", type=non_negative, default=0,
                   help="needle's offset in its segment (default 0)")
    p.add_argument("-L", type=positive, default=0, help="segment length (default: the adapter's)")
    p.add_argument("-c", "--window", type=positive, default=0,
                   help="window of mode window (default: the model's training context)")
    p.add_argument("--filler", default="heldout",
                   help="heldout (models/heldout/*.txt), sentences, or a text file")
    p.add_argument("--causal", action="store_true",
                   help="full mode recalls by the causal (generation) rule: a segment's query "
                        "summarizes the previous segment, not its own first j tokens")
    p.add_argument("--csv", help="write one row per mode, distance and trial")
    p.add_argument("-t", "--threads", type=positive, default=1)
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    if args.task in ("copy", "rare") and args.length < 3:
        parser().error("--length must be >= 3 for copy and rare (the cue is 1 or 2 tokens)")
    try:
        run(args)
    except UsageError as e:
        print(f"hmt_retrieval: {e}", file=sys.stderr)
        return 2
    except (hmt.HmtError, RuntimeError, OSError) as e:
        print(f"hmt_retrieval: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
