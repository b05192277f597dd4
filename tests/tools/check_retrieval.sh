#!/bin/sh
# tools/hmt_retrieval.py (docs/RETRIEVAL.md) on a tiny case of the shipped
# Brown model: output format, determinism, modes skipped gracefully, and
# answers that must equal a direct context eval (tests/tools/check_retrieval.py).
# Run by `make test` with B, PYTHON and SANITIZE set; from the top of the tree.
set -eu
B=${B:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
SANITIZE=${SANITIZE:-}
if [ -n "$SANITIZE" ]; then
    echo "check_retrieval: skipped (sanitizer build: an ASan libhmt.so cannot be loaded by a plain python)"
    exit 0
fi
if ! "$PYTHON" -c 'import numpy' 2>/dev/null; then
    echo "check_retrieval: skipped (no NumPy for $PYTHON)"
    exit 0
fi
case $B in /*) absB=$B ;; *) absB=$(pwd)/$B ;; esac
so=libhmt.so.$(sed -n 's/^#define HMT_ABI_VERSION *\([0-9][0-9]*\).*/\1/p' include/hmt/version.h)
HMT_LIB_PATH="$absB/$so" PYTHON="$PYTHON" PYTHONDONTWRITEBYTECODE=1 "$PYTHON" tests/tools/check_retrieval.py
