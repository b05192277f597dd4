"""tools/hmt_retrieval.py on a tiny case (2 trials, distances 0, 1, 2) of
models/brown-f16.gguf + brown-hmt.gguf:

- the CSV has the documented header, one row per mode, distance and trial,
  log-probabilities <= 0, gain = logprob - logprob_control;
- segments mode, distance 0 (needle and probe in the last segment): the
  answer's log-prob equals a direct hmt.Context eval of that segment's tokens
  from position 0 (log-softmax in NumPy here); distance >= 1: the needle is in
  an earlier segment, so planted and control documents score the same;
- the same seed gives the same numbers (a second run, one mode only);
- an unknown mode is skipped with a message, the others still run; without an
  adapter only the modes that need none run; a bad --distances is a usage error.

Environment: HMT_LIB_PATH (the library under test), PYTHON.
"""
import csv
import math
import os
import random
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(1, os.path.join(ROOT, "python"))
import hmt  # noqa: E402
import hmt_retrieval as R  # noqa: E402

PY = os.environ.get("PYTHON") or sys.executable
MODEL = os.path.join(ROOT, "models", "brown-f16.gguf")
ADAPTER = os.path.join(ROOT, "models", "brown-hmt.gguf")
TOOL = os.path.join(ROOT, "tools", "hmt_retrieval.py")
BASE = ["-m", MODEL, "--distances", "0,1,2", "--trials", "2", "--seed", "5", "-q"]
fails = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        fails.append(what)


def run(args, tmp):
    out = os.path.join(tmp, "r.csv")
    if os.path.exists(out):
        os.unlink(out)
    r = subprocess.run([PY, TOOL] + args + ["--csv", out], capture_output=True, text=True)
    rows = list(csv.DictReader(open(out))) if os.path.exists(out) else []
    return r, rows


with tempfile.TemporaryDirectory() as tmp:
    r, rows = run(BASE + ["-a", ADAPTER], tmp)
    check(r.returncode == 0, f"runs with an adapter (rc {r.returncode}: {r.stderr[-300:]})")
    header = open(os.path.join(tmp, "r.csv")).readline().strip().split(",")
    check(tuple(header) == R.CSV_FIELDS, f"CSV header {header}")
    modes = sorted({x["mode"] for x in rows})
    check({"full", "rmt", "segments", "window"} <= set(modes), f"every mode ran: {modes}")
    check(len(rows) == len(modes) * 3 * 2, f"{len(rows)} rows = modes x 3 distances x 2 trials")
    check(all(float(x["logprob"]) <= 0 and float(x["logprob_control"]) <= 0 for x in rows),
          "log-probabilities <= 0")
    check(all(abs(float(x["logprob"]) - float(x["logprob_control"]) - float(x["gain"])) < 2e-6
              for x in rows), "gain = logprob - logprob_control")
    check(all(0 <= int(x["greedy_tokens"]) <= int(x["answer_tokens"]) for x in rows),
          "greedy_tokens within 0..answer_tokens")
    for x in rows:
        if x["mode"] == "segments":
            check(x["gain"] == "0.000000" if x["distance"] != "0" else float(x["gain"]) != 0,
                  f"segments, distance {x['distance']}, trial {x['trial']}: gain {x['gain']}"
                  + (" (needle out of reach)" if x["distance"] != "0" else " (needle in reach)"))
    text = r.stdout

    # segments, distance 0: the document's last segment evaluated directly
    args = R.parser().parse_args(BASE + ["-a", ADAPTER])
    with hmt.Model(MODEL) as model, hmt.Context(model, n_ctx=256, n_threads=1) as ctx:
        L = 32
        pool, fill, bos = R.word_pool(model), R.filler_tokens(model, "heldout"), [model.bos]
        for trial in range(2):
            rng = random.Random(f"{args.seed}:{args.task}:{trial}")
            start, gap, needle, control, cue, answer, plan = R.trial_documents(
                args, model, pool, fill, bos, L, rng)
            doc = start + needle + cue + answer
            seg = doc[(len(doc) - 1) // L * L:]
            check(len(seg) == len(needle) + len(cue) + len(answer),
                  f"trial {trial}: needle and probe share the last segment")
            ctx.kv_clear()
            ctx.eval_tokens(seg, all_logits=True)
            lp = 0.0
            for i, t in enumerate(answer):
                row = len(seg) - len(answer) + i - 1
                x = np.asarray(ctx.logits(row), dtype=np.float64)
                lp += x[t] - (x.max() + math.log(np.exp(x - x.max()).sum()))
            got = [float(x["logprob"]) for x in rows if x["mode"] == "segments"
                   and x["distance"] == "0" and x["trial"] == str(trial)]
            check(len(got) == 1 and abs(got[0] - lp) < 1e-4,
                  f"trial {trial}: segments d=0 logprob {got} = direct eval {lp:.6f}")

    r2, rows2 = run(BASE + ["-a", ADAPTER, "--modes", "segments,bogus,7"], tmp)
    check(r2.returncode == 0, f"unknown modes are skipped (rc {r2.returncode})")
    check("mode bogus skipped" in r2.stderr and "mode 7 skipped" in r2.stderr,
          f"and named: {r2.stderr.strip()[:300]}")
    same = [(x["distance"], x["trial"], x["logprob"], x["logprob_control"])
            for x in rows if x["mode"] == "segments"]
    check(same == [(x["distance"], x["trial"], x["logprob"], x["logprob_control"]) for x in rows2],
          "the same seed gives the same numbers")

    r3, rows3 = run(BASE + ["-L", "32"], tmp)
    # the adapter-free modes: segments, window and (since it exists) sinks
    check(r3.returncode == 0 and sorted({x["mode"] for x in rows3}) == ["segments", "sinks", "window"],
          f"without an adapter: the adapter-free modes only ({sorted({x['mode'] for x in rows3})})")
    r4, _ = run(BASE + ["-a", ADAPTER, "--distances", "1,x"], tmp)
    check(r4.returncode == 2 and "distances" in r4.stderr, f"bad --distances: rc {r4.returncode}")
    r5, _ = run(["-m", MODEL, "--modes", "full"], tmp)
    check(r5.returncode == 2 and "needs an adapter" in r5.stderr,
          f"full without an adapter: rc {r5.returncode}, {r5.stderr.strip()[-200:]}")
    check("gain" in text.splitlines()[0], "summary table printed")

print(f"check_retrieval: {'FAIL' if fails else 'OK'} ({len(fails)} failed)")
sys.exit(1 if fails else 0)
