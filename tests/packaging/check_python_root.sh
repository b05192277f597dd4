#!/bin/sh
# `pip install --no-build-isolation .` from the top of the source tree (the
# root pyproject.toml and setup.py) builds libhmt with make and installs the
# package with libhmt.so.N bundled: in a fresh venv, from outside the tree,
# `import hmt` maps that copy and loads a model.
set -eu
NAME=check_python_root
B=${B:-build}
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. tests/packaging/pyhost.sh

make_venv "$tmp/venv"
rm -rf "$B/pip"  # setuptools keeps its build folder: start from nothing
HMT_BUILD=$B "$tmp/venv/bin/python" -m pip install -q --no-build-isolation --no-deps . >"$tmp/pip.log" 2>&1 ||
    { cat "$tmp/pip.log"; echo "$NAME: FAIL (pip install .)"; exit 1; }
soname=$(header_soname)
so=$(find "$tmp/venv" -name "$soname")
[ -n "$so" ] || { echo "$NAME: FAIL (no $soname in the installed package)"; exit 1; }
cd "$tmp"
got=$(mapped_lib "$tmp/venv/bin/python") || got="(import hmt failed)"
[ "$got" = "$(readlink -f "$so") $(cd "$root" && header_version)" ] ||
    { echo "$NAME: FAIL (import hmt mapped/version: $got; want the bundled $so)"; exit 1; }
"$tmp/venv/bin/python" -c 'import sys, hmt
with hmt.Model(sys.argv[1]) as m:
    assert m.n_vocab > 0 and len(m.tokenize("The history of")) > 1' "$root/models/demo-random-f16.gguf" ||
    { echo "$NAME: FAIL (loading a model through the installed package)"; exit 1; }
cd "$root"
echo "$NAME: OK (pip install . from the tree root: libhmt built and bundled)"
