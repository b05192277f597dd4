#!/bin/sh
# tools/convert_hmt_pytorch.py end to end (tests/tools/check_convert_hmt.py):
# checkpoints in every HMT-pytorch key layout -> GGUF model + adapter, loaded
# by the freshly built libhmt and compared with the NumPy HMT oracle; corrupt
# and hostile checkpoints must fail cleanly. Needs NumPy, not torch. Run by
# `make test` with B and PYTHON set.
set -eu
B=${B:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
SANITIZE=${SANITIZE:-}
if [ -n "$SANITIZE" ]; then
    echo "check_convert_hmt: skipped (sanitizer build: an ASan libhmt.so cannot be loaded by a plain python)"
    exit 0
fi
if ! "$PYTHON" -c 'import numpy' 2>/dev/null; then
    echo "check_convert_hmt: skipped ($PYTHON has no NumPy)"
    exit 0
fi
case $B in /*) absB=$B ;; *) absB=$(pwd)/$B ;; esac
HMT_LIB_PATH="$absB/libhmt.so" PYTHONDONTWRITEBYTECODE=1 "$PYTHON" tests/tools/check_convert_hmt.py \
    > "$absB/check_convert_hmt.log" 2>&1 || {
    cat "$absB/check_convert_hmt.log"; echo "check_convert_hmt: FAIL"; exit 1; }
tail -n 1 "$absB/check_convert_hmt.log"
