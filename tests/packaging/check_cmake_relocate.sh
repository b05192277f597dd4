#!/bin/sh
# The installed CMake package is relocatable and follows LIBDIR: installed
# with Debian's multiarch layout (PREFIX=/usr LIBDIR=/usr/lib/<triplet>) into
# a staging tree, then the whole prefix moved elsewhere, find_package(hmt)
# still finds it there, and a program built through hmt::hmt loads the moved
# library. (check_downstream.sh covers the default layout in place.)
set -eu
B=${B:-build}
CC=${CC:-cc}
CXX=${CXX:-c++}
MAKE=${MAKE:-make}
SANITIZE=${SANITIZE:-}
if ! command -v cmake >/dev/null 2>&1; then
    echo "check_cmake_relocate: skipped (cmake not installed)"
    exit 0
fi
triplet=$($CC -print-multiarch 2>/dev/null || true)
[ -n "$triplet" ] || triplet=x86_64-linux-gnu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$MAKE" --no-print-directory -s B="$B" SANITIZE="$SANITIZE" DESTDIR="$tmp/stage" PREFIX=/usr \
    LIBDIR="/usr/lib/$triplet" install >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; echo "check_cmake_relocate: FAIL (make install)"; exit 1; }
[ -f "$tmp/stage/usr/lib/$triplet/cmake/hmt/hmtConfig.cmake" ] ||
    { echo "check_cmake_relocate: FAIL (no hmtConfig.cmake under LIBDIR/cmake/hmt)"; exit 1; }
mv "$tmp/stage/usr" "$tmp/moved"
cmake -S tests/abi/downstream -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$tmp/moved" \
    -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
    -DCMAKE_C_FLAGS="$SANITIZE" -DCMAKE_CXX_FLAGS="$SANITIZE" >"$tmp/cmake.log" 2>&1 &&
    cmake --build "$tmp/cmake" --target hello >>"$tmp/cmake.log" 2>&1 ||
    { cat "$tmp/cmake.log"; echo "check_cmake_relocate: FAIL (CMake against the moved prefix)"; exit 1; }
grep -q "^hmt_DIR:PATH=$tmp/moved/lib/$triplet/cmake/hmt$" "$tmp/cmake/CMakeCache.txt" ||
    { grep hmt_DIR "$tmp/cmake/CMakeCache.txt"; echo "check_cmake_relocate: FAIL (hmt_DIR is not the moved package)"; exit 1; }
"$tmp/cmake/hello" models/demo-random-f16.gguf >"$tmp/out" 2>&1 || { cat "$tmp/out"; echo "check_cmake_relocate: FAIL (hello)"; exit 1; }
soname=libhmt.so.$(awk '/^#define HMT_ABI_VERSION / {print $3}' include/hmt/version.h)
loaded=$(ldd "$tmp/cmake/hello" | sed -n "s/.*$soname => \(.*\) (.*/\1/p")
[ "$(readlink -f "$loaded")" = "$(readlink -f "$tmp/moved/lib/$triplet/$soname")" ] ||
    { echo "check_cmake_relocate: FAIL (hello loads $loaded, not the moved library)"; exit 1; }
echo "check_cmake_relocate: OK (multiarch LIBDIR lib/$triplet, prefix moved after install)"
