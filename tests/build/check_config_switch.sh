#!/bin/sh
# A change of build configuration in one build folder rebuilds exactly what
# it affects (the command-line stamps in the Makefile; issue 11): build
# without FAISS, then with it, in the same folder; both link, the second
# really carries the FAISS backend and recompiles only the bridge; an
# unchanged configuration rebuilds nothing; a new OPT recompiles every object.
set -eu
B=${B:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
MAKE=${MAKE:-make}
if [ -n "${SANITIZE:-}" ]; then
    echo "check_config_switch: skipped under a sanitizer build (it tests the Makefile, not the code)"
    exit 0
fi
out="$B/config-switch"
rm -rf "$out"
log=$(mktemp)
trap 'rm -f "$log"; rm -rf "$out"' EXIT
build() { # build the library in $out with extra make arguments; log the commands
    "$MAKE" --no-print-directory -j2 B="$out" CC="${CC:-cc}" WERROR="${WERROR:-}" "$@" lib >"$log" 2>&1 ||
        { cat "$log"; echo "check_config_switch: FAIL (make $* lib)"; exit 1; }
}
compiled() { grep -c -- ' -c ' "$log" || true; }
available() {
    "$PYTHON" -c 'import ctypes, sys; print(ctypes.CDLL(sys.argv[1]).hmt_knn_faiss_available())' \
        "$out/libhmt.so.$(sed -n 's/^#define HMT_ABI_VERSION *\([0-9]*\).*/\1/p' include/hmt/version.h)"
}
fail() { echo "check_config_switch: FAIL ($1)"; cat "$log"; exit 1; }

build HAVE_FAISS=0
[ "$(available)" = 0 ] || fail "HAVE_FAISS=0 build reports the FAISS backend"
n_all=$(compiled)

if [ ! -f /usr/include/faiss/IndexIVFPQ.h ]; then
    echo "check_config_switch: FAISS half skipped (libfaiss-dev not installed)"
else
    build
    [ "$(available)" = 1 ] || fail "the FAISS build after a HAVE_FAISS=0 build lacks the backend"
    [ "$(compiled)" = 1 ] && grep -q -- '-c lib/hooks/knn_faiss.cc' "$log" ||
        fail "switching HAVE_FAISS on must compile lib/hooks/knn_faiss.cc and nothing else"
    build HAVE_FAISS=0
    [ "$(available)" = 0 ] || fail "switching back to HAVE_FAISS=0 kept the FAISS backend"
    [ "$(compiled)" = 0 ] || fail "switching back to HAVE_FAISS=0 recompiled objects it does not affect"
fi

build HAVE_FAISS=0
[ "$(compiled)" = 0 ] || fail "an unchanged configuration recompiled objects"
grep -q -- '-shared' "$log" && fail "an unchanged configuration relinked the library"
build HAVE_FAISS=0 OPT=-O1
[ "$(compiled)" = "$n_all" ] || fail "OPT=-O1 recompiled $(compiled) of $n_all objects"
echo "check_config_switch: OK ($n_all objects; FAISS on/off and OPT switches rebuild exactly what they affect)"
