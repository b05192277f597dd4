#!/bin/sh
# Which find_package(hmt <request>) the generated hmtConfigVersion.cmake
# accepts (cmake/hmtConfigVersion.cmake.in, docs/ABI.md): a release satisfies
# requests for itself and for earlier releases of the same ABI, never a
# request older than the release that started its ABI (0.1 must not take a
# 0.2 that changed the ABI), never a newer one. The template is filled in for
# made-up releases and evaluated with `cmake -P` the way find_package does.
set -eu
if ! command -v cmake >/dev/null 2>&1; then
    echo "check_cmake_version: skipped (cmake not installed)"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# expect VERSION ABI_SINCE REQUEST yes|no [EXACT]  (REQUEST may be min...max or min...<max)
expect() {
    sed -e "s|@VERSION@|$1|g" -e "s|@ABI_SINCE@|$2|g" -e 's|@ABI@|0|g' -e 's|@SIZEOF_VOID_P@|8|g' \
        cmake/hmtConfigVersion.cmake.in > "$tmp/v.cmake"
    req=$3
    case $req in
        *...*)
            min=${req%...*}; max=${req#*...}; side=INCLUDE
            case $max in "<"*) max=${max#<}; side=EXCLUDE ;; esac
            set_req="set(PACKAGE_FIND_VERSION_RANGE $req)
set(PACKAGE_FIND_VERSION_RANGE_MAX $side)
set(PACKAGE_FIND_VERSION_MIN $min)
set(PACKAGE_FIND_VERSION_MAX $max)
set(PACKAGE_FIND_VERSION $min)" ;;
        *) min=$req; set_req="set(PACKAGE_FIND_VERSION $req)" ;;
    esac
    count=$(echo "$min" | awk -F. '{print NF}')
    cat > "$tmp/find.cmake" <<EOS
$set_req
set(PACKAGE_FIND_VERSION_COUNT $count)
set(PACKAGE_FIND_VERSION_MIN_COUNT $count)
set(CMAKE_SIZEOF_VOID_P 8)
include("$tmp/v.cmake")
if(PACKAGE_VERSION_UNSUITABLE)
  message("no")
elseif(PACKAGE_VERSION_COMPATIBLE)
  message("yes \${PACKAGE_VERSION_EXACT}")
else()
  message("no")
endif()
EOS
    got=$(cmake -P "$tmp/find.cmake" 2>&1)
    case "$got" in
        "$4"*) [ "${5:-}" != EXACT ] || [ "$got" = "yes TRUE" ] || { echo "  $1 (ABI since $2), asked $3: not EXACT"; fails=$((fails + 1)); } ;;
        *) echo "  $1 (ABI since $2), asked $3: got '$got', want $4"; fails=$((fails + 1)) ;;
    esac
}

expect 0.1.0 0.1 0.1 yes
expect 0.1.0 0.1 0.1.0 yes EXACT
expect 0.1.0 0.1 0 yes
expect 0.1.0 0.1 0.2 no
expect 0.1.0 0.1 1.0 no
expect 0.1.3 0.1 0.1.2 yes
expect 0.1.3 0.1 0.1.4 no
expect 0.2.0 0.1 0.1 yes        # same ABI: 0.2 only added functions
expect 0.2.0 0.2 0.1 no         # 0.2 started a new ABI: a 0.1 host must not get it
expect 0.2.0 0.2 0.2 yes
expect 0.2.0 0.2 0 yes          # "any 0.y" from this ABI's first release on
expect 1.4.0 0.1 1.0 yes
expect 1.4.0 1.2 1.1 no
expect 0.2.0 0.1 0.1...0.3 yes
expect 0.2.0 0.1 '0.1...<0.2' no
expect 0.2.0 0.1 0.1...0.2 yes
# a 32-bit project cannot use this 64-bit library
sed -e 's|@VERSION@|0.1.0|g' -e 's|@ABI_SINCE@|0.1|g' -e 's|@ABI@|0|g' -e 's|@SIZEOF_VOID_P@|8|g' \
    cmake/hmtConfigVersion.cmake.in > "$tmp/v.cmake"
printf 'set(PACKAGE_FIND_VERSION 0.1)\nset(PACKAGE_FIND_VERSION_COUNT 2)\nset(CMAKE_SIZEOF_VOID_P 4)\ninclude(%s/v.cmake)\nif(NOT PACKAGE_VERSION_UNSUITABLE)\n message(FATAL_ERROR "32-bit accepted")\nendif()\n' "$tmp" > "$tmp/find32.cmake"
cmake -P "$tmp/find32.cmake" >/dev/null 2>&1 || { echo "  a 32-bit project was accepted"; fails=$((fails + 1)); }

[ "$fails" -eq 0 ] || { echo "check_cmake_version: FAIL ($fails)"; exit 1; }
echo "check_cmake_version: OK (ABI-based compatibility of hmtConfigVersion.cmake, 17 cases)"
