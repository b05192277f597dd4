#!/bin/sh
# The recall adapter models/brown-recall-hmt.gguf (+ its backbone
# brown-recall-f16.gguf, docs/RETRIEVAL.md "An adapter whose recall pays
# off") loads, and on a small fixed trial of tools/hmt_retrieval.py's copy
# task full mode (recall) retrieves a fact 4 segments back that rmt (memory
# passing) has lost (tests/tools/check_retrieval_recall.py). Override
# RECALL_MODEL / RECALL_ADAPTER to check another pair (the shipped
# brown-hmt.gguf fails it: its full and rmt gains are equal).
# Run by `make test` with B, PYTHON and SANITIZE set; from the top of the tree.
set -eu
B=${B:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
SANITIZE=${SANITIZE:-}
if [ -n "$SANITIZE" ]; then
    echo "check_retrieval_recall: skipped (sanitizer build: an ASan libhmt.so cannot be loaded by a plain python)"
    exit 0
fi
case $B in /*) absB=$B ;; *) absB=$(pwd)/$B ;; esac
so=libhmt.so.$(sed -n 's/^#define HMT_ABI_VERSION *\([0-9][0-9]*\).*/\1/p' include/hmt/version.h)
HMT_LIB_PATH="$absB/$so" PYTHONDONTWRITEBYTECODE=1 "$PYTHON" tests/tools/check_retrieval_recall.py
