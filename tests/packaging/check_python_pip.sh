#!/bin/sh
# `pip install --no-build-isolation ./python` works offline into a fresh venv
# (Debian's pip and setuptools) and gives a pure package at the header's
# version, which finds an installed libhmt (a staged `make install`) through
# HMT_LIB_PATH, and through the dynamic loader by its SONAME. pip builds in
# the folder it is given, so it runs on a copy of python/ (the checkout stays
# clean; the files are the same).
set -eu
NAME=check_python_pip
B=${B:-build}
MAKE=${MAKE:-make}
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. tests/packaging/pyhost.sh

mkdir -p "$tmp/src/python"
cp -r python/pyproject.toml python/setup.py python/hmt "$tmp/src/python/"
rm -rf "$tmp/src/python/hmt/__pycache__" "$tmp/src/python/hmt"/libhmt.so*
make_venv "$tmp/venv"
(cd "$tmp/src" && "$tmp/venv/bin/python" -m pip install -q --no-build-isolation --no-deps ./python) \
    >"$tmp/pip.log" 2>&1 || { cat "$tmp/pip.log"; echo "$NAME: FAIL (pip install ./python)"; exit 1; }
meta=$("$tmp/venv/bin/python" -c 'import importlib.metadata as m; print(m.version("hmt"))')
[ "$meta" = "$(header_version)" ] || { echo "$NAME: FAIL (installed distribution version $meta)"; exit 1; }
if find "$tmp/venv" -name 'libhmt.so*' | grep -q .; then
    echo "$NAME: FAIL (the source package installed a library)"; exit 1
fi

"$MAKE" --no-print-directory -s B="$B" DESTDIR="$tmp/stage" PREFIX=/usr/local install >"$tmp/make.log" 2>&1 ||
    { cat "$tmp/make.log"; echo "$NAME: FAIL (make install)"; exit 1; }
libdir=$tmp/stage/usr/local/lib
soname=$(header_soname)
want="$(readlink -f "$libdir/$soname") $(header_version)"
cd "$tmp"  # away from the checkout, whose build/ the package must not find
for how in "HMT_LIB_PATH=$libdir" "HMT_LIB_PATH=$libdir/$soname" "LD_LIBRARY_PATH=$libdir"; do
    got=$(mapped_lib "$tmp/venv/bin/python" "$how") || got="(import hmt failed)"
    [ "$got" = "$want" ] || { echo "$NAME: FAIL ($how: mapped/version $got; want $want)"; exit 1; }
done
# without any of them (and no system libhmt), the import fails with the list tried
if ! ldconfig -p 2>/dev/null | grep -qF "$soname "; then
    if "$tmp/venv/bin/python" -c 'import hmt' >"$tmp/none.log" 2>&1 ||
            ! grep -q "cannot load libhmt" "$tmp/none.log"; then
        cat "$tmp/none.log"; echo "$NAME: FAIL (no library anywhere, yet no clear ImportError)"; exit 1
    fi
fi
cd "$root"
echo "$NAME: OK (pip install ./python offline; staged libhmt found via HMT_LIB_PATH and by SONAME)"
