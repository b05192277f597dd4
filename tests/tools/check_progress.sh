#!/bin/sh
# The progress line of hmt-perplexity, hmt-datastore and hmt_train.py
# (tests/tools/check_progress.py): nothing on a pipe, the line's format when
# forced (HMT_PROGRESS=1) or on a pseudo-terminal, -q. Run by `make test`
# with B and PYTHON set; from the top of the tree.
set -eu
B=${B:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
B="$B" PYTHON="$PYTHON" PYTHONDONTWRITEBYTECODE=1 "$PYTHON" tests/tools/check_progress.py
