"""Every file the repository's programs write is written atomically
(docs/ROBUSTNESS.md, "Files"): the Python tools through tools/atomic_write.py
(tools/gguf_write.py's writers, hence convert_hf.py, convert_hmt_pytorch.py,
the test-data generators; hmt_train.py's checkpoints; prepare_brown.py),
and the C programs hmt-perplexity (--csv) and ditto-bench (--dump) with the
same few lines each. Checked here:

- a write that fails midway (an exception in the body; a tensor generator
  raising; a real EFBIG from RLIMIT_FSIZE in a subprocess) leaves the old
  target byte-identical and no temporary in the folder;
- two concurrent writers never mix: a reader sees one whole version or the
  other, never a blend or a short file;
- the new file's mode is 0666 less the umask; a symbolic link is followed;
- hmt-perplexity --csv: a successful run leaves no temporary; a run that
  fails after the CSV was opened (text too short for --reference-protocol,
  the CSV's write failing with EFBIG)
  and a refused run (no such model) leave an existing CSV untouched;
  ditto-bench --dump: the same for a success and an EFBIG failure.

Environment: B (build folder, for bin/hmt-perplexity), PYTHON.
Prints one line per group and ends with "N passed, M failed".
"""
import os
import resource
import signal
import subprocess
import sys
import tempfile
import shutil
import time

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
for sub in ("tools", "tests/reference", "tests/tools"):
    sys.path.insert(0, os.path.join(ROOT, sub))

import atomic_write as aw  # noqa: E402
import gguf_write as gw  # noqa: E402

B = os.environ.get("B") or "build"
B = B if os.path.isabs(B) else os.path.join(ROOT, B)
PYTHON = os.environ.get("PYTHON") or sys.executable
passed, failed = 0, 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"  FAIL: {what}")
    return ok


def leftovers(folder, keep):
    """Entries of folder other than those in keep (temporaries)."""
    return sorted(set(os.listdir(folder)) - set(keep))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def put(path, data):
    with open(path, "wb") as f:
        f.write(data)


class Boom(Exception):
    pass


def limit_fsize(n):
    """preexec_fn: writes past n bytes fail with EFBIG (SIGXFSZ ignored, so
    the write returns the error instead of killing the process)."""
    def pre():
        resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return pre


# ---------------------------------------------------------------------------
def check_helper(d):
    old = b"old content\n" * 100
    target = os.path.join(d, "t.bin")
    put(target, old)
    # the body raises after writing half
    try:
        with aw.atomic_write(target) as f:
            f.write(b"x" * 5000)
            raise Boom()
    except Boom:
        pass
    check(read(target) == old, "exception in the body: old target changed")
    check(leftovers(d, ["t.bin"]) == [], f"exception in the body: left {leftovers(d, ['t.bin'])}")
    # a write that fails (monkeypatched file object)
    try:
        with aw.atomic_write(target) as f:
            f.write(b"y" * 100)

            def bad_write(_b):
                raise OSError(28, "No space left on device")
            real = f.write
            f.write = bad_write
            try:
                f.write(b"z")
            finally:
                f.write = real
    except OSError:
        pass
    check(read(target) == old and leftovers(d, ["t.bin"]) == [], "failing write: old target changed or temporary left")
    # success: the content, no temporary, mode 0666 & ~umask (umask 027 here)
    old_mask = os.umask(0o027)
    try:
        os.chmod(target, 0o600)
        aw.write_bytes(target, b"new")
    finally:
        os.umask(old_mask)
    mode = os.stat(target).st_mode & 0o777
    check(read(target) == b"new" and leftovers(d, ["t.bin"]) == [], "success: content or leftovers")
    check(mode == 0o640, f"new file mode {oct(mode)}, want 0o640 (0666 less umask 027)")
    # text mode
    aw.write_text(target, "h\u00e9\n")
    check(read(target) == "h\u00e9\n".encode("utf-8"), "text mode writes UTF-8")
    # a symbolic link is followed: the file it names is replaced, the link stays
    real = os.path.join(d, "real.bin")
    put(real, b"r")
    link = os.path.join(d, "link.bin")
    os.symlink("real.bin", link)
    aw.write_bytes(link, b"through the link")
    check(os.path.islink(link) and read(real) == b"through the link",
          "symbolic link: not followed")
    check(leftovers(d, ["t.bin", "real.bin", "link.bin"]) == [], "symbolic link: temporary left")
    print("atomic_write: failing body and failing write leave the old file and no temporary; "
          "mode, text, symbolic link")


# ---------------------------------------------------------------------------
def check_gguf_writer(d):
    """tools/gguf_write.py: a deferred tensor whose producer raises midway
    (after the header and a first tensor are written)."""
    target = os.path.join(d, "m.gguf")
    w = gw.GGUFWriter()
    w.add("general.architecture", "llama")
    w.add_tensor("a", np.arange(64, dtype=np.float32))
    w.write(target)
    old = read(target)
    check(old == w.tobytes(), "GGUFWriter.write != tobytes")

    def make():
        raise Boom("producer failed")
    s = gw.StreamingGGUFWriter()
    s.add("general.architecture", "llama")
    s.add_tensor("big", np.ones((256, 256), np.float32))
    s.add_tensor_deferred("late", (4, 4), gw.F32, make)
    try:
        s.write(target)
        check(False, "the failing producer did not raise")
    except Boom:
        pass
    check(read(target) == old, "StreamingGGUFWriter: a failure midway changed the old file")
    check(leftovers(d, ["m.gguf"]) == [], f"StreamingGGUFWriter: left {leftovers(d, ['m.gguf'])}")
    print("gguf_write: a tensor producer failing midway leaves the old file and no temporary")


# ---------------------------------------------------------------------------
_WRITER = r"""
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import gguf_write as gw
path, value, n = sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
w = gw.GGUFWriter()
w.add("general.architecture", "llama")
for i in range(16):                  # 16 tensors of 64 KiB: 1 MiB in 16 writes
    w.add_tensor(f"t{i}", np.full(16384, value, np.float32))
for _ in range(n):
    w.write(path)
"""


def _version(value):
    import numpy as np
    w = gw.GGUFWriter()
    w.add("general.architecture", "llama")
    for i in range(16):
        w.add_tensor(f"t{i}", np.full(16384, value, np.float32))
    return w.tobytes()


def check_concurrent(d):
    """Two processes rewrite one GGUF 15 times each through
    tools/gguf_write.py (1 MiB of 1.0 or of 2.0) while this one reads it:
    every read is one whole version."""
    target = os.path.join(d, "c.gguf")
    versions = {_version(1.0), _version(2.0)}
    put(target, _version(1.0))
    procs = [subprocess.Popen([PYTHON, "-c", _WRITER, os.path.join(ROOT, "tools"), target, v, "15"])
             for v in ("1", "2")]
    reads, bad = 0, []
    while True:
        done = all(p.poll() is not None for p in procs)
        data = read(target)
        reads += 1
        if data not in versions:
            bad.append(len(data))
        if done:
            break
    rcs = [p.wait() for p in procs]
    check(rcs == [0, 0], f"concurrent writers exited {rcs}")
    check(not bad, f"concurrent writers: {len(bad)} of {reads} reads were not one whole version "
                   f"(sizes {bad[:5]}, want {len(_version(1.0))})")
    check(leftovers(d, ["c.gguf"]) == [], f"concurrent writers: left {leftovers(d, ['c.gguf'])}")
    print(f"concurrent writers (gguf_write): {reads} reads, each one whole version")


# ---------------------------------------------------------------------------
def check_convert_hf(d):
    """tools/convert_hf.py in a subprocess whose file-size limit makes the
    output's write fail with EFBIG midway."""
    import gen_model
    import hf_dir
    g = os.path.join(d, "src.gguf")
    gen_model.make_model(g, arch="qwen2", n_vocab=400, n_embd=64, n_layer=2, n_head=4, n_head_kv=2,
                         n_ff=128, tied=False, seed=3)
    mdir = os.path.join(d, "hf")
    hf_dir.gguf_to_hf(g, mdir, dtype="F32")
    out_dir = os.path.join(d, "out")
    os.makedirs(out_dir)
    out = os.path.join(out_dir, "m.gguf")
    old = b"an older conversion\n" * 50
    put(out, old)
    conv = [PYTHON, os.path.join(ROOT, "tools", "convert_hf.py"), mdir, "-o", out, "--outtype", "f32"]
    r = subprocess.run(conv, capture_output=True, text=True, preexec_fn=limit_fsize(60000))
    check(r.returncode == 1 and "File too large" in r.stderr and "Traceback" not in r.stderr,
          f"convert_hf under a 60 kB file-size limit: rc {r.returncode}, stderr {r.stderr.strip()[-300:]!r}")
    check(read(out) == old, "convert_hf: a failed write changed the old output")
    check(leftovers(out_dir, ["m.gguf"]) == [], f"convert_hf: left {leftovers(out_dir, ['m.gguf'])}")
    r = subprocess.run(conv, capture_output=True, text=True)
    check(r.returncode == 0 and read(out)[:4] == b"GGUF" and leftovers(out_dir, ["m.gguf"]) == [],
          f"convert_hf without the limit: rc {r.returncode} {r.stderr.strip()[-300:]!r}")
    print("convert_hf: EFBIG midway leaves the old output and no temporary; a clean run replaces it")


# ---------------------------------------------------------------------------
def check_perplexity(d):
    prog = os.path.join(B, "bin", "hmt-perplexity")
    model = os.path.join(ROOT, "models", "demo-random-f16.gguf")
    text = os.path.join(ROOT, "models", "heldout", "ca10.txt")
    if not (os.access(prog, os.X_OK) and os.path.isfile(model) and os.path.isfile(text)):
        print(f"hmt-perplexity --csv: skipped (needs {prog}, {model}, {text})")
        return
    cdir = os.path.join(d, "csv")
    os.makedirs(cdir)
    csv = os.path.join(cdir, "out.csv")
    old = b"an older CSV\n"

    def run(*extra, model=model, pre=None):
        put(csv, old)
        return subprocess.run([prog, "-m", model, "-f", text, "--csv", csv, "-t", "2", "-q",
                               "--max-tokens", "300", *extra],
                              capture_output=True, text=True, timeout=120, preexec_fn=pre)

    r = run("-L", "32")
    body = read(csv)
    lines = body.count(b"\n")
    check(r.returncode == 0 and body.startswith(b"mode,segment,") and lines == 11,
          f"--csv success: rc {r.returncode}, {body[:60]!r} ({lines} lines) {r.stderr.strip()!r}")
    check(leftovers(cdir, ["out.csv"]) == [], f"--csv success: left {leftovers(cdir, ['out.csv'])}")
    cases = [("no such model", dict(model=os.path.join(d, "nonexistent.gguf")), (), 1, "nonexistent"),
             # refused after the CSV was opened: the text is too short for the protocol
             ("refused after opening", {}, ("-L", "32", "--reference-protocol", "--ref-length", "1000"),
              1, "reference protocol"),
             # the CSV's own write fails: 11 rows do not fit in 200 bytes
             ("write fails (EFBIG)", dict(pre=limit_fsize(200)), ("-L", "32"), 1, "File too large")]
    for what, kw, extra, want_rc, want_msg in cases:
        r = run(*extra, **kw)
        check(r.returncode == want_rc and want_msg in r.stderr,
              f"--csv {what}: rc {r.returncode} (want {want_rc}), stderr {r.stderr.strip()!r}")
        check(read(csv) == old, f"--csv {what}: the old CSV changed to {read(csv)[:60]!r}")
        check(leftovers(cdir, ["out.csv"]) == [], f"--csv {what}: left {leftovers(cdir, ['out.csv'])}")
    print("hmt-perplexity --csv: success leaves no temporary; a refused or failing run leaves the old CSV")


def check_ditto_bench(d):
    prog = os.path.join(B, "bin", "ditto-bench")
    model = os.path.join(ROOT, "models", "demo-random-f16.gguf")
    text = os.path.join(ROOT, "models", "heldout", "ca10.txt")
    if not (os.access(prog, os.X_OK) and os.path.isfile(model) and os.path.isfile(text)):
        print(f"ditto-bench --dump: skipped (needs {prog}, {model}, {text})")
        return
    dump = os.path.join(d, "dump.txt")
    old = b"an older dump\n"

    def run(pre=None):
        put(dump, old)
        return subprocess.run([prog, "-m", model, "-f", text, "--prompts", "2", "--gen", "4",
                               "--prompt-len", "16", "--lambda", "0.5", "-t", "2", "--dump", dump],
                              capture_output=True, text=True, timeout=120, preexec_fn=pre)

    r = run()
    check(r.returncode == 0 and read(dump).startswith(b"== ") and leftovers(d, ["dump.txt"]) == [],
          f"--dump success: rc {r.returncode}, {read(dump)[:40]!r}, left {leftovers(d, ['dump.txt'])}")
    r = run(limit_fsize(40))
    check(r.returncode == 1 and "File too large" in r.stderr and read(dump) == old and
          leftovers(d, ["dump.txt"]) == [],
          f"--dump write fails (EFBIG): rc {r.returncode}, {r.stderr.strip()[-200:]!r}, "
          f"{read(dump)[:40]!r}, left {leftovers(d, ['dump.txt'])}")
    print("ditto-bench --dump: success leaves no temporary; a failing write leaves the old dump")


def main():
    t0 = time.time()
    d = tempfile.mkdtemp(prefix="hmt-atomic-")
    try:
        for fn in (check_helper, check_gguf_writer, check_concurrent, check_convert_hf, check_perplexity,
                   check_ditto_bench):
            sub = os.path.join(d, fn.__name__)
            os.makedirs(sub)
            try:
                fn(sub)
            except Exception as e:  # a crash of one group is a failure, not the end
                check(False, f"{fn.__name__} crashed: {type(e).__name__}: {e}")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"check_atomic_write: {passed} passed, {failed} failed ({time.time() - t0:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
