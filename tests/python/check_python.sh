#!/bin/sh
# The Python package (python/hmt) against the freshly built library: the
# unittest suite in tests/python, once with NumPy (when importable) and once
# without. Run by `make test` with B, CC and PYTHON set.
set -eu
B=${B:-build}
CC=${CC:-cc}
PYTHON=${PYTHON:-/usr/bin/python3}
SANITIZE=${SANITIZE:-}
if [ -n "$SANITIZE" ]; then
    echo "check_python: skipped (sanitizer build: an ASan libhmt.so cannot be loaded by a plain python)"
    exit 0
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "check_python: skipped ($PYTHON not found)"
    exit 0
fi
root=$(pwd)
case $B in /*) absB=$B ;; *) absB=$root/$B ;; esac
# the SONAME libhmt.so.N, N = HMT_ABI_VERSION of the headers being tested
so=libhmt.so.$(sed -n 's/^#define HMT_ABI_VERSION *\([0-9][0-9]*\).*/\1/p' include/hmt/version.h)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# C reference outputs for the bit-identity test, linked like a user would
$CC -std=c99 -O2 -Wall -Wextra -Werror -Iinclude tests/python/c_dump.c -o "$tmp/c_dump" \
    -L"$absB" -lhmt -Wl,-rpath,"$absB"
export HMT_LIB_PATH="$absB/$so" HMT_TESTDATA="$absB/testdata" HMT_C_DUMP="$tmp/c_dump"
export PYTHONDONTWRITEBYTECODE=1
"$PYTHON" -m unittest discover -s tests/python -t tests/python -v 2> "$tmp/log" || {
    cat "$tmp/log"; echo "check_python: FAIL"; exit 1; }
tail -n 3 "$tmp/log"
if "$PYTHON" -c 'import numpy' 2>/dev/null; then
    HMT_NO_NUMPY=1 HMT_PY_QUICK=1 "$PYTHON" -m unittest discover -s tests/python -t tests/python \
        2> "$tmp/log2" || { cat "$tmp/log2"; echo "check_python: FAIL (without NumPy)"; exit 1; }
    echo "check_python: OK (with and without NumPy)"
else
    echo "check_python: OK (NumPy not installed: list/array.array results)"
fi
