#!/bin/sh
# python/hmt/_version.py (read by setuptools for the package version, and by
# the package for hmt.__version__ and its ABI check) repeats the header's
# HMT_VERSION_* and HMT_ABI_VERSION: it must agree with include/hmt/version.h.
set -eu
def() { sed -n "s/^#define $1 *\([0-9]*\).*/\1/p" include/hmt/version.h; }
want_v="$(def HMT_VERSION_MAJOR).$(def HMT_VERSION_MINOR).$(def HMT_VERSION_PATCH)"
want_abi=$(def HMT_ABI_VERSION)
got_v=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' python/hmt/_version.py)
got_abi=$(sed -n 's/^ABI_VERSION = \([0-9]*\)$/\1/p' python/hmt/_version.py)
if [ "$got_v" != "$want_v" ] || [ "$got_abi" != "$want_abi" ]; then
    echo "check_python_version: FAIL (python/hmt/_version.py says $got_v ABI $got_abi, version.h $want_v ABI $want_abi: run make python-version)"
    exit 1
fi
echo "check_python_version: OK (python/hmt/_version.py = version.h: $want_v, ABI $want_abi)"
