#!/bin/sh
# hmt_train.py's recall-training options (docs/TRAINING.md, "Training the
# recall"): segment-aligned curriculum documents, the recall-score
# regulariser, --recall-scale and --recall-only, on the demo model
# (tests/tools/check_train_options.py). Run by `make test` with B and
# PYTHON set; from the top of the tree.
set -eu
PYTHON=${PYTHON:-/usr/bin/python3}
if ! "$PYTHON" -c 'import torch, numpy, sentencepiece' 2>/dev/null; then
    echo "check_train_options: skipped (no torch / numpy / sentencepiece for $PYTHON)"
    exit 0
fi
PYTHONDONTWRITEBYTECODE=1 "$PYTHON" tests/tools/check_train_options.py
