# Shared by the Python packaging checks (sourced, not run): skips, a fresh
# offline venv, and which libhmt file a Python process really maps.
# Expects NAME (the check's name) and tmp (a temporary folder) to be set.
PYTHON=${PYTHON:-/usr/bin/python3}
SANITIZE=${SANITIZE:-}
if [ -n "$SANITIZE" ]; then
    echo "$NAME: skipped (sanitizer build: an ASan libhmt.so cannot be loaded by a plain python)"
    exit 0
fi
if ! "$PYTHON" -m pip --version >/dev/null 2>&1 || ! "$PYTHON" -c 'import venv, setuptools, wheel' 2>/dev/null; then
    echo "$NAME: skipped ($PYTHON lacks pip, venv, setuptools or wheel: apt-get install python3-pip python3-venv python3-setuptools python3-wheel)"
    exit 0
fi
export PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INDEX=1 PIP_NO_CACHE_DIR=1
unset HMT_LIB_PATH PYTHONPATH

# make_venv DIR: a venv that sees the system's site-packages (NumPy, and
# Debian's pip, setuptools and wheel, which then install into the venv).
make_venv() {
    "$PYTHON" -m venv --without-pip --system-site-packages "$1"
}

# mapped_lib PYTHON [ENV...]: the real path of the libhmt file `import hmt`
# maps in that interpreter, then hmt.__version__, on one line.
mapped_lib() {
    py=$1; shift
    env "$@" "$py" -c '
import os, hmt
maps = open("/proc/self/maps").read().split("\n")
libs = {l.split()[-1] for l in maps if "libhmt.so" in l}
print(" ".join(sorted(os.path.realpath(p) for p in libs)), hmt.__version__)'
}

# header_version: X.Y.Z from include/hmt/version.h
header_version() {
    awk '/^#define HMT_VERSION_(MAJOR|MINOR|PATCH) / {v = v sep $3; sep = "."} END {print v}' include/hmt/version.h
}

# header_soname: libhmt.so.N, N = HMT_ABI_VERSION of include/hmt/version.h
header_soname() {
    echo "libhmt.so.$(awk '/^#define HMT_ABI_VERSION / {print $3}' include/hmt/version.h)"
}
