#!/bin/sh
# `make wheel` builds a wheel that bundles libhmt.so.N; installed offline into
# a fresh venv, the package loads its own copy (not the build tree's, not the
# system's) and the Python examples run from a folder outside the source tree.
set -eu
NAME=check_python_wheel
B=${B:-build}
MAKE=${MAKE:-make}
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. tests/packaging/pyhost.sh

"$MAKE" --no-print-directory -s B="$B" PYTHON="$PYTHON" wheel >"$tmp/make.log" 2>&1 ||
    { cat "$tmp/make.log"; echo "$NAME: FAIL (make wheel)"; exit 1; }
whl=$(ls "$B"/pkg/dist/hmt-"$(header_version)"-py3-none-*.whl)
case $whl in *-py3-none-any.whl) echo "$NAME: FAIL (a wheel with a library is tagged pure: $whl)"; exit 1 ;; esac

make_venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --no-deps "$root/$whl" >"$tmp/pip.log" 2>&1 ||
    { cat "$tmp/pip.log"; echo "$NAME: FAIL (pip install the wheel)"; exit 1; }
soname=$(header_soname)
so=$(find "$tmp/venv" -name "$soname")
[ -n "$so" ] || { echo "$NAME: FAIL (no $soname in the installed package)"; exit 1; }
# the bundled library must not point back at the build tree
if readelf -d "$so" | grep -E 'R(UN)?PATH' | grep -q "$root"; then
    echo "$NAME: FAIL (the bundled $soname has a path into the source tree)"; exit 1
fi

# run from outside the source tree, with copies of the examples (their
# sys.path tweak would otherwise import python/hmt from the checkout)
mkdir "$tmp/run"
cp python/examples/*.py "$tmp/run/"
cd "$tmp/run"
got=$(mapped_lib "$tmp/venv/bin/python") || got="(import hmt failed)"
[ "$got" = "$(readlink -f "$so") $(cd "$root" && header_version)" ] ||
    { echo "$NAME: FAIL (import hmt mapped/version: $got; want the bundled $so)"; exit 1; }
model=$root/models/demo-random-f16.gguf
adapter=$root/models/demo-random-hmt.gguf
"$tmp/venv/bin/python" hmt_score.py "$model" "$adapter" "The history of memory $(printf 'again %.0s' $(seq 40))" \
    >"$tmp/score.out" 2>&1 || { cat "$tmp/score.out"; echo "$NAME: FAIL (hmt_score.py)"; exit 1; }
grep -q perplexity "$tmp/score.out" || { cat "$tmp/score.out"; echo "$NAME: FAIL (hmt_score.py output)"; exit 1; }
"$tmp/venv/bin/python" generate.py "$model" "$adapter" "The history of" "The history of the world is long." \
    >"$tmp/gen.out" 2>&1 || { cat "$tmp/gen.out"; echo "$NAME: FAIL (generate.py)"; exit 1; }
grep -q "^The history of" "$tmp/gen.out" || { cat "$tmp/gen.out"; echo "$NAME: FAIL (generate.py output)"; exit 1; }
cd "$root"
echo "$NAME: OK ($(basename "$whl") in a fresh venv, bundled library, examples run outside the tree)"
