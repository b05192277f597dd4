#!/bin/sh
# A downstream project's view of libhmt: `make install` into a staged DESTDIR,
# then a C program and a C++ program (tests/abi/downstream/) built with strict
# warnings using only `pkg-config --cflags --libs hmt` against that install,
# run and checked; then the C program linked statically through
# `pkg-config --static --libs hmt` (libhmt.a + libxsmm + sleef) and run.
# The same programs are built through CMake (tests/abi/downstream/
# CMakeLists.txt: find_package(hmt 0.1 CONFIG REQUIRED), targets hmt::hmt and
# hmt::hmt_static) and run, unless cmake is missing. Also: the installed
# tools run from the staging tree (their RUNPATH finds the staged library),
# and `make uninstall` removes every file `make install` wrote.
# Everything happens in a temporary directory, removed on exit.
#
# Locating the staged hmt.pc: with pkgconf 1.8 (Debian 12's pkg-config),
# PKG_CONFIG_SYSROOT_DIR also prefixes the sysroot to the paths of the
# packages hmt.pc requires (sleef: -I<sysroot>/usr/include ...), so instead
# the staged hmt.pc is relocated the way a packager would: its prefix (and any
# absolute path under it) is rewritten to the staging directory.
set -eu
ABI=$(sed -n 's/^#define HMT_ABI_VERSION *\([0-9]*\).*/\1/p' include/hmt/version.h)
B=${B:-build}
CC=${CC:-cc}
CXX=${CXX:-c++}
MAKE=${MAKE:-make}
SANITIZE=${SANITIZE:-}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
if ! command -v "$PKG_CONFIG" >/dev/null 2>&1; then
    echo "check_downstream: skipped ($PKG_CONFIG not installed)"
    exit 0
fi
root=$(pwd)
case $B in /*) absB=$B ;; *) absB=$root/$B ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
stage=$tmp/stage
prefix=/usr/local
"$MAKE" --no-print-directory -s B="$B" SANITIZE="$SANITIZE" DESTDIR="$stage" PREFIX="$prefix" install >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; echo "check_downstream: FAIL (make install)"; exit 1; }
pcfile=$(find "$stage" -name hmt.pc | head -n 1)
[ -n "$pcfile" ] || { echo "check_downstream: FAIL (no hmt.pc installed)"; exit 1; }
libdir=$(dirname "$(dirname "$pcfile")")
mkdir -p "$tmp/pc"
sed -e "s|^\([a-z_]*\)=$prefix|\1=$stage$prefix|" "$pcfile" > "$tmp/pc/hmt.pc"
export PKG_CONFIG_PATH="$tmp/pc"
unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR 2>/dev/null || true

# The flags must point into the staging directory, never at the source tree
# or the build directory.
cflags=$("$PKG_CONFIG" --cflags hmt)
libs=$("$PKG_CONFIG" --libs hmt)
static_libs=$("$PKG_CONFIG" --static --libs hmt)
case "$cflags $libs" in
    *"$stage"*) ;;
    *) echo "check_downstream: FAIL (pkg-config flags do not point into the install: $cflags $libs)"; exit 1 ;;
esac
case "$cflags $libs $static_libs" in
    *"$absB"*|*"$root/include"*) echo "check_downstream: FAIL (flags point into the source tree)"; exit 1 ;;
esac
want=$(awk '/^#define HMT_VERSION_(MAJOR|MINOR|PATCH) / {v = v sep $3; sep = "."} END {print v}' include/hmt/version.h)
[ "$("$PKG_CONFIG" --modversion hmt)" = "$want" ] ||
    { echo "check_downstream: FAIL (pkg-config --modversion is not $want)"; exit 1; }

src=tests/abi/downstream
warn="-Wall -Wextra -pedantic -Werror"
# shellcheck disable=SC2086
$CC -std=c99 $warn $SANITIZE $cflags "$src/hello.c" -o "$tmp/hello" $libs
# shellcheck disable=SC2086
$CXX -std=c++11 $warn $SANITIZE $cflags "$src/hello.cpp" -o "$tmp/hello_cpp" $libs

models=""
for m in "$B/testdata/llama-f32.gguf" "$B/testdata/qwen2-f32.gguf" models/demo-random-f16.gguf; do
    [ -f "$m" ] && models="$models $m"
done
[ -n "$models" ] || { echo "check_downstream: FAIL (no model: run make testdata)"; exit 1; }
for m in $models; do
    LD_LIBRARY_PATH="$libdir" "$tmp/hello" "$m" >"$tmp/out" || { cat "$tmp/out"; echo "check_downstream: FAIL (C, $m)"; exit 1; }
    LD_LIBRARY_PATH="$libdir" "$tmp/hello_cpp" "$m" >>"$tmp/out" || { cat "$tmp/out"; echo "check_downstream: FAIL (C++, $m)"; exit 1; }
done
# the shared programs really use the staged library
LD_LIBRARY_PATH="$libdir" ldd "$tmp/hello" | grep -q "$libdir/libhmt.so.$ABI" ||
    { echo "check_downstream: FAIL (hello does not load the staged libhmt.so.$ABI)"; exit 1; }

# hmt::hmt_static links the libraries `pkg-config --static` gives (the same
# set; the order is that of libhmt.so's own link line).
cmakecfg=$(find "$stage" -name hmtConfig.cmake | head -n 1)
lset() { tr ' ;"' '\n\n\n' | grep '^-l' | grep -vx -- -lhmt | sort -u; }
if [ "$(sed -n 's/.*INTERFACE_LINK_LIBRARIES //p' "$cmakecfg" | lset)" != "$(echo "$static_libs" | lset)" ]; then
    echo "check_downstream: FAIL (hmt::hmt_static's libraries differ from pkg-config --static --libs hmt: $static_libs)"; exit 1
fi

# CMake: find_package(hmt CONFIG) through the staged, relocatable config.
# CMake links the imported library by its full path and records its folder in
# the build-tree RUNPATH, so the programs run without LD_LIBRARY_PATH.
if command -v cmake >/dev/null 2>&1; then
    cmake -S "$src" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$stage$prefix" \
        -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
        -DCMAKE_C_FLAGS="$SANITIZE" -DCMAKE_CXX_FLAGS="$SANITIZE" >"$tmp/cmake.log" 2>&1 &&
        cmake --build "$tmp/cmake" >>"$tmp/cmake.log" 2>&1 ||
        { cat "$tmp/cmake.log"; echo "check_downstream: FAIL (CMake build)"; exit 1; }
    grep -q "$stage" "$tmp/cmake/CMakeCache.txt" ||
        { echo "check_downstream: FAIL (CMake did not find the staged hmtConfig.cmake)"; exit 1; }
    for m in $models; do
        for p in hello hello_cpp hello_static; do
            "$tmp/cmake/$p" "$m" >>"$tmp/out" || { cat "$tmp/out"; echo "check_downstream: FAIL (CMake $p, $m)"; exit 1; }
        done
    done
    ldd "$tmp/cmake/hello" | grep -q "$libdir/libhmt.so.$ABI" ||
        { echo "check_downstream: FAIL (CMake's hello does not load the staged libhmt.so.$ABI)"; exit 1; }
    if readelf -d "$tmp/cmake/hello_static" | grep -q 'NEEDED.*libhmt'; then
        echo "check_downstream: FAIL (CMake's hello_static needs libhmt.so)"; exit 1
    fi
    via_cmake="; CMake shared and static"
else
    via_cmake="; CMake skipped (not installed)"
fi

# The installed tools find the installed library by their RUNPATH alone.
for t in hmt-generate hmt-perplexity hmt-datastore; do
    [ -x "$stage$prefix/bin/$t" ] || { echo "check_downstream: FAIL ($t not installed)"; exit 1; }
done
env -u LD_LIBRARY_PATH "$stage$prefix/bin/hmt-generate" -m models/demo-random-f16.gguf -p "The history of" -n 2 -t 1 \
    >"$tmp/tool.out" 2>&1 || { cat "$tmp/tool.out"; echo "check_downstream: FAIL (installed hmt-generate)"; exit 1; }
loaded=$(env -u LD_LIBRARY_PATH ldd "$stage$prefix/bin/hmt-generate" | sed -n "s/.*libhmt.so.$ABI => \(.*\) (.*/\1/p")
[ -n "$loaded" ] && [ "$(readlink -f "$loaded")" = "$(readlink -f "$libdir/libhmt.so.$ABI")" ] ||
    { echo "check_downstream: FAIL (installed hmt-generate does not load the installed libhmt.so.$ABI)"; exit 1; }

# The pages the installed headers cite are installed with them.
for ref in $(grep -oh 'docs/[A-Za-z_]*\.md' include/hmt/*.h | sort -u); do
    [ -f "$stage$prefix/share/doc/hmt/${ref#docs/}" ] ||
        { echo "check_downstream: FAIL ($ref, cited by the headers, is not installed)"; exit 1; }
done

# Static: a static-only install (no libhmt.so) so that -lhmt can only mean libhmt.a.
rm -f "$libdir"/libhmt.so*
# shellcheck disable=SC2086
$CC -std=c99 $warn $SANITIZE $("$PKG_CONFIG" --static --cflags hmt) "$src/hello.c" -o "$tmp/hello_static" $static_libs
if readelf -d "$tmp/hello_static" | grep -q 'NEEDED.*libhmt'; then
    echo "check_downstream: FAIL (the static program needs libhmt.so)"; exit 1
fi
for m in $models; do
    "$tmp/hello_static" "$m" >>"$tmp/out" || { cat "$tmp/out"; echo "check_downstream: FAIL (static, $m)"; exit 1; }
done

# make uninstall leaves no file behind (folders may stay).
"$MAKE" --no-print-directory -s B="$B" SANITIZE="$SANITIZE" DESTDIR="$stage" PREFIX="$prefix" uninstall >"$tmp/uninstall.log" 2>&1 ||
    { cat "$tmp/uninstall.log"; echo "check_downstream: FAIL (make uninstall)"; exit 1; }
left=$(find "$stage" ! -type d)
[ -z "$left" ] || { echo "$left"; echo "check_downstream: FAIL (make uninstall left files)"; exit 1; }

sed 's/^/  /' "$tmp/out" | head -n 3
echo "check_downstream: OK (C and C++ through pkg-config on the staged install, and static$via_cmake; installed tools; uninstall; $(echo $models | wc -w) models)"
