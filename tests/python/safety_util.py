"""Running a snippet of Python in a child process, so that a segfault fails a
test instead of killing the runner (issue 12: use after close, Ctrl-C)."""
import os
import subprocess
import sys
import textwrap

from hmt_testutil import ROOT, TESTDATA

PRELUDE = """
import os, sys, time
sys.path.insert(0, {python!r})
import hmt
ROOT = {root!r}
TESTDATA = {testdata!r}
def data(name):
    return os.path.join(TESTDATA, name)
"""

# glibc hands blocks of 1 KiB and more out as their own mappings and unmaps
# them on free, so reading freed library memory faults at once instead of
# returning stale bytes (the crashes of the issue, made deterministic).
STRICT_MALLOC = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1024", "MALLOC_PERTURB_": "165"}


def child_env(extra=None):
    env = dict(os.environ)
    env.update(extra or {})
    return env


def snippet(code):
    prelude = PRELUDE.format(python=os.path.join(ROOT, "python"), root=ROOT, testdata=TESTDATA)
    return prelude + textwrap.dedent(code)


def run_child(code, env=None, timeout=120):
    """(returncode, stdout, stderr) of code run by this interpreter; a
    negative returncode is the signal that killed it."""
    p = subprocess.run([sys.executable, "-c", snippet(code)], capture_output=True, text=True,
                       env=child_env(env), timeout=timeout)
    return p.returncode, p.stdout, p.stderr


# A background job (CI, `make test &`) inherits SIGINT ignored, and Python
# then installs no handler: give the child the one an interactive run has.
INTERACTIVE = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"


def start_child(code, env=None):
    return subprocess.Popen([sys.executable, "-u", "-c", INTERACTIVE + snippet(code)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env(env))
