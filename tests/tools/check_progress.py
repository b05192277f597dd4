"""The progress line of the long-running tools (tools/progress.c, used by
hmt-perplexity and hmt-datastore; tools/progress.py, used by hmt_train.py):

- piped stderr (not a terminal): nothing of it is printed;
- HMT_PROGRESS=1 forces it on a pipe: every redraw starts with '\\r' and reads
  "LABEL: P% (done/total), R tok/s, T elapsed[, ETA T]", done never falls,
  the last one is 100% without ETA and ends with '\\n', at most ~4 redraws a
  second; -q still silences it; stdout carries none of it;
- on a pseudo-terminal it is drawn without HMT_PROGRESS;
- the trainer's line (a tiny `hmt_train.py base` run, when torch and
  sentencepiece are there) likewise, and its log lines on stdout are intact.

Environment: B (build folder), PYTHON. Run by tests/tools/check_progress.sh.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
B = os.environ.get("B", "build")
MODEL = os.path.join(ROOT, "models", "demo-random-f16.gguf")
ADAPTER = os.path.join(ROOT, "models", "demo-random-hmt.gguf")
TEXT = os.path.join(ROOT, "LICENSE")
TIME = r"(\d+ s|\d+m\d\ds|\d+h\d\dm)"
LINE = re.compile(r"^(?P<label>.+?): +(?P<pct>\d+\.\d)% \((?P<done>\d+)/(?P<total>\d+)\), "
                  r"\d+\.\d (tok|key)/s, " + TIME + r" elapsed(?P<eta>, ETA " + TIME + r")? *$")
failures = []


def fail(msg):
    failures.append(msg)
    print("check_progress: FAIL " + msg)


def env(**kw):
    e = {k: v for k, v in os.environ.items() if k != "HMT_PROGRESS"}
    e.update(kw)
    return e


def run_pipe(args, **kw):
    t = time.monotonic()
    p = subprocess.run(args, capture_output=True, env=env(**kw), cwd=ROOT)
    return p, time.monotonic() - t


def run_pty(args, **kw):
    """stderr on a pseudo-terminal, stdout on a pipe."""
    m, s = os.openpty()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=s, env=env(**kw), cwd=ROOT)
    os.close(s)
    err = b""
    while True:
        try:
            d = os.read(m, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not d:
            break
        err += d
    os.close(m)
    out = p.stdout.read()
    p.wait()
    return p.returncode, out, err.replace(b"\r\n", b"\n")  # the terminal's newline mapping


def check_lines(name, err, elapsed, label):
    """err: stderr text holding progress redraws (and maybe other lines)."""
    draws, blanks = [], 0
    for chunk in err.split("\r")[1:]:
        text = chunk.split("\n")[0]
        if not text.strip():
            blanks += 1  # the trainer blanks the line before a log line, then redraws
            continue
        m = LINE.match(text)
        if not m:
            fail(f"{name}: progress text {text!r} does not read as the progress line")
            return
        draws.append((m, chunk))
    if not draws:
        fail(f"{name}: no progress line in {err!r}")
        return
    if any(m.group("label") != label for m, _ in draws):
        fail(f"{name}: label {draws[0][0].group('label')!r}, want {label!r}")
    done = [int(m.group("done")) for m, _ in draws]
    if done != sorted(done):
        fail(f"{name}: progress went backwards: {done}")
    last, chunk = draws[-1]
    if not (last.group("done") == last.group("total") and last.group("pct") == "100.0"
            and last.group("eta") is None):
        fail(f"{name}: the last line is {chunk!r}, not the finished state")
    if "\n" not in chunk:
        fail(f"{name}: the last line does not end with a newline: {chunk!r}")
    # at most 4 redraws a second, plus the first, the last and one after
    # each blanking
    if len(draws) > 2 + blanks + 4 * (elapsed + 0.5):
        fail(f"{name}: {len(draws)} redraws in {elapsed:.2f} s")
    print(f"check_progress: {name}: {len(draws)} redraw(s), last {chunk.strip()!r}")


def check_c_tool(name, args, label):
    p, _ = run_pipe(args)
    if p.returncode != 0:
        fail(f"{name}: exit {p.returncode}: {p.stderr.decode()[-300:]}")
        return
    if b"\r" in p.stderr or b"% (" in p.stderr:
        fail(f"{name}: progress printed to a pipe: {p.stderr!r}")
    p, el = run_pipe(args, HMT_PROGRESS="1")
    if b"\r" in p.stdout:
        fail(f"{name}: progress on stdout")
    check_lines(name + " HMT_PROGRESS=1", p.stderr.decode(), el, label)
    p, _ = run_pipe(args + ["-q"], HMT_PROGRESS="1")
    if b"\r" in p.stderr:
        fail(f"{name} -q: progress printed: {p.stderr!r}")
    t = time.monotonic()
    rc, out, err = run_pty(args)
    if rc != 0:
        fail(f"{name} on a terminal: exit {rc}")
    check_lines(name + " on a terminal", err.decode(), time.monotonic() - t, label)


def check_python_progress():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import io
    from progress import Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    s = Tty()
    p = Progress("train", stream=s)
    p.update(0, 10, 0)
    p.update(1, 10, 100)  # within 0.25 s of the first: skipped
    p.clear()
    p.update(5, 10, 500, elapsed=2.0, eta=90.0)
    p.update(10, 10, 1000, elapsed=4.0)
    p.end()
    text = s.getvalue()
    want_last = r"\rtrain: 100\.0% \(10/10\), 250\.0 tok/s, 4 s elapsed *\n$"
    if ", ETA 1m30s" not in text or not re.search(want_last, text) or "(1/10)" in text:
        fail(f"tools/progress.py: {text!r}")
    check_lines("tools/progress.py", text, 0.0, "train")
    for quiet, stream in ((True, Tty()), (False, io.StringIO())):
        q = Progress("train", quiet=quiet, stream=stream)
        q.update(10, 10, 5)
        q.end()
        if stream.getvalue():
            fail(f"tools/progress.py: drew with quiet={quiet}, isatty={stream.isatty()}")


def check_trainer():
    try:
        import sentencepiece  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        print("check_progress: trainer skipped (needs torch and sentencepiece)")
        return
    d = tempfile.mkdtemp(prefix="hmt-progress-")
    try:
        with open(os.path.join(d, "train.txt"), "w") as f:
            for doc in ("API.md", "HMT.md"):
                f.write(open(os.path.join(ROOT, "docs", doc)).read() + "\n\n")
        py = os.environ.get("PYTHON", sys.executable)
        tr = [py, os.path.join(ROOT, "tools", "hmt_train.py")]
        subprocess.run(tr + ["tokenizer", "--dir", d, "--vocab", "600"], check=True,
                       capture_output=True, cwd=ROOT)
        args = tr + ["base", "--dir", d, "--n-embd", "32", "--n-layer", "1", "--n-head", "2",
                     "--n-ff", "64", "--n-ctx", "32", "--seq", "32", "--batch", "2", "--steps", "40",
                     "--minutes", "1", "--log-every", "20", "--save-every", "1000", "--threads", "1",
                     "--bf16", "0"]
        t = time.monotonic()
        rc, out, err = run_pty(args)
        el = time.monotonic() - t
        if rc != 0:
            fail(f"hmt_train.py base on a terminal: exit {rc}: {err.decode()[-300:]}")
            return
        check_lines("hmt_train.py base on a terminal", err.decode(), el, "base")
        logs = [ln for ln in out.decode().splitlines() if ln.startswith("step ")]
        if len(logs) != 2 or "\r" in out.decode():
            fail(f"hmt_train.py base: stdout log lines {logs!r}")
        os.remove(os.path.join(d, "base.pt"))
        p, _ = run_pipe(args)
        if p.returncode != 0 or p.stderr:
            fail(f"hmt_train.py base, piped: exit {p.returncode}, stderr {p.stderr!r}")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    ppl = os.path.join(B, "bin", "hmt-perplexity")
    ds = os.path.join(B, "bin", "hmt-datastore")
    check_c_tool("hmt-perplexity", [ppl, "-m", MODEL, "-a", ADAPTER, "-f", TEXT, "-t", "1",
                                    "--mode", "segments"], "segments")
    with tempfile.TemporaryDirectory() as d:
        check_c_tool("hmt-datastore", [ds, "-m", MODEL, "-f", TEXT, "-t", "1", "-b", "128",
                                       "-o", os.path.join(d, "ds.hmtk")], "hmt-datastore")
    check_python_progress()
    check_trainer()
    if failures:
        sys.exit(1)
    print("check_progress: OK")


if __name__ == "__main__":
    main()
