#!/bin/sh
# Public headers compile standalone as C99 and as C++ with strict warnings.
set -eu
CC=${CC:-cc}
CXX=${CXX:-c++}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for h in include/hmt/*.h; do
    name=$(basename "$h")
    printf '#include <hmt/%s>\nint main(void) { return hmt_version_number() == 0; }\n' "$name" > "$tmp/t.c"
    cp "$tmp/t.c" "$tmp/t.cpp"
    $CC -std=c99 -Wall -Wextra -pedantic -Werror -Iinclude -fsyntax-only "$tmp/t.c"
    $CXX -std=c++11 -Wall -Wextra -pedantic -Werror -Iinclude -fsyntax-only "$tmp/t.cpp"
done
echo "check_header: OK (C99 and C++11)"
