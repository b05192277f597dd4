#!/bin/sh
# The shared library exports exactly the documented hmt_* symbols, all in a
# version node, and nothing else (no libxsmm, no SLEEF, no internal hmti_*).
set -eu
B=${B:-build}
ABI=$(sed -n 's/^#define HMT_ABI_VERSION *\([0-9]*\).*/\1/p' include/hmt/version.h)
SO=$(ls "$B"/libhmt.so."$ABI".*.* | head -n 1) # this ABI's, not a stale older build's
# The documented list is every function the public headers declare.
expected=$(mktemp)
actual=$(mktemp)
trap 'rm -f "$expected" "$actual"' EXIT
cat include/hmt/*.h | tr '\n' ' ' | grep -o 'HMT_API[^;(]*(' |
    grep -o 'hmt_[a-z0-9_]*($' | tr -d '(' | sort -u > "$expected"
nm -D --defined-only "$SO" | awk '$2 ~ /^[TDBRVWi]$/ {print $3}' | sed 's/@.*//' | sort > "$actual"
if ! diff -u "$expected" "$actual"; then
    echo "check_exports: FAIL (exported symbols differ from the header's declarations)"
    exit 1
fi
unversioned=$(nm -D --defined-only "$SO" | awk '$2 ~ /^[TDBRVWi]$/ && $3 !~ /@@?HMT_([0-9]|EXPERIMENTAL)/ {print $3}')
if [ -n "$unversioned" ]; then
    echo "check_exports: FAIL (symbols outside a version node: $unversioned)"
    exit 1
fi
soname=$(objdump -p "$SO" | awk '/SONAME/ {print $2}')
case "$soname" in
    libhmt.so.[0-9]*) ;;
    *) echo "check_exports: FAIL (SONAME '$soname')"; exit 1 ;;
esac
echo "check_exports: OK ($(wc -l < "$expected") symbols, SONAME $soname)"
