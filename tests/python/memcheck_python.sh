#!/bin/sh
# valgrind memcheck over the Python test suite (`make memcheck-python`): the
# unittest modules of tests/python, with NumPy, in one valgrind process, and
# the C program of the bit-identity test, each writing an XML report. tests/python/vg_libhmt.py then fails on any invalid
# access, uninitialised use, bad free or leak (definite, indirect, possible)
# with a frame in libhmt's own code; reports wholly inside CPython or NumPy
# are counted only. The examples the tests start run natively (`make
# memcheck` covers the C examples).
# Not run here, for time (valgrind is ~50x slower):
# - the RSS-growth cycle test (HMT_PY_QUICK=1): the leak check is its exact
#   version;
# - modules listed in HMT_MEMCHECK_SKIP, by default test_knn_faiss (FAISS
#   k-means training on 10,000 vectors: still running after 7 minutes under
#   valgrind, alone more than this pass takes; the C
#   suite runs the same bridge under ASan).
# HMT_MEMCHECK_TESTS="test_model test_errors" runs only those modules;
# HMT_MEMCHECK_KEEP=DIR keeps the XML reports there.
set -eu
B=${B:-build}
CC=${CC:-cc}
PYTHON=${PYTHON:-/usr/bin/python3}
if ! command -v valgrind >/dev/null 2>&1; then
    echo "memcheck-python: FAIL (valgrind not installed: make deps)"
    exit 1
fi
root=$(pwd)
case $B in /*) absB=$B ;; *) absB=$root/$B ;; esac
# the SONAME libhmt.so.N, N = HMT_ABI_VERSION of the headers being tested
so=libhmt.so.$(sed -n 's/^#define HMT_ABI_VERSION *\([0-9][0-9]*\).*/\1/p' include/hmt/version.h)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$CC -std=c99 -O1 -g -Wall -Wextra -Werror -Iinclude tests/python/c_dump.c -o "$tmp/c_dump" \
    -L"$absB" -lhmt -Wl,-rpath,"$absB"
VALGRIND="valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible \
  --errors-for-leak-kinds=definite,indirect,possible --num-callers=40 --xml=yes"
# The C side of the bit-identity test runs under valgrind too: valgrind's
# CPU has no AVX-512, so libhmt picks the AVX2 kernels on both sides.
printf '#!/bin/sh\nexec %s --xml-file=%s/vg-c_dump.%%p.xml %s/c_dump "$@"\n' \
    "$VALGRIND" "$tmp" "$tmp" > "$tmp/c_dump_vg"
chmod +x "$tmp/c_dump_vg"
export HMT_LIB_PATH="$absB/$so" HMT_TESTDATA="$absB/testdata" HMT_C_DUMP="$tmp/c_dump_vg"
# PYTHONMALLOC=malloc: CPython's own small-object allocator reads memory
# valgrind cannot follow; plain malloc makes its reports meaningful.
export PYTHONDONTWRITEBYTECODE=1 PYTHONMALLOC=malloc HMT_PY_QUICK=1
skip=" ${HMT_MEMCHECK_SKIP-test_knn_faiss} "
modules=${HMT_MEMCHECK_TESTS:-}
if [ -z "$modules" ]; then
    for f in tests/python/test_*.py; do
        m=$(basename "$f" .py)
        case $skip in *" $m "*) echo "memcheck-python: skipping $m (HMT_MEMCHECK_SKIP)" ;;
                      *) modules="$modules $m" ;; esac
    done
fi
start=$(date +%s)
# shellcheck disable=SC2086
PYTHONPATH=tests/python $VALGRIND --xml-file="$tmp/vg-python.xml" "$PYTHON" -m unittest $modules \
    2> "$tmp/log" || {
    cat "$tmp/log"; echo "memcheck-python: FAIL (the tests failed under valgrind)"; exit 1; }
tail -n 3 "$tmp/log"
[ -z "${HMT_MEMCHECK_KEEP:-}" ] || cp "$tmp"/vg-*.xml "$HMT_MEMCHECK_KEEP"/
"$PYTHON" tests/python/vg_libhmt.py "$absB/$so" "$tmp"/vg-*.xml || {
    echo "memcheck-python: FAIL"; exit 1; }
echo "memcheck-python: OK ($(($(date +%s) - start)) s: no invalid access, no leak in libhmt)"
