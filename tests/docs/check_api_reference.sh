#!/bin/sh
# docs/API_REFERENCE.md is generated from the public headers and must be current.
set -eu
${PYTHON:-python3} tools/gen_api_reference.py --check docs/API_REFERENCE.md
