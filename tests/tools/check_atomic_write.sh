#!/bin/sh
# Atomic writes of the repository's programs (tests/tools/check_atomic_write.py):
# the Python tools (tools/atomic_write.py) and hmt-perplexity --csv. Run by
# `make test` with B and PYTHON set; from the top of the tree.
set -eu
B=${B:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
if ! "$PYTHON" -c 'import numpy' 2>/dev/null; then
    echo "check_atomic_write: skipped (no NumPy for $PYTHON)"
    exit 0
fi
B="$B" PYTHON="$PYTHON" PYTHONDONTWRITEBYTECODE=1 "$PYTHON" tests/tools/check_atomic_write.py
