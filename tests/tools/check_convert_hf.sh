#!/bin/sh
# tools/convert_hf.py: small random Hugging Face model directories converted
# to GGUF, run through libhmt (python/hmt) and compared with an independent
# forward pass of the HF weights; tokenizers against the committed answers;
# bad inputs rejected clearly. Run by `make test` with B and PYTHON set.
set -eu
B=${B:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
SANITIZE=${SANITIZE:-}
if [ -n "$SANITIZE" ]; then
    echo "check_convert_hf: skipped (sanitizer build: an ASan libhmt.so cannot be loaded by a plain python)"
    exit 0
fi
if ! "$PYTHON" -c 'import numpy' 2>/dev/null; then
    echo "check_convert_hf: skipped (no NumPy for $PYTHON)"
    exit 0
fi
case $B in /*) absB=$B ;; *) absB=$(pwd)/$B ;; esac
HMT_LIB_PATH="$absB/libhmt.so" PYTHON="$PYTHON" PYTHONDONTWRITEBYTECODE=1 \
    "$PYTHON" tests/tools/check_convert_hf.py
