#!/bin/sh
# The ABI of the freshly built libhmt.so against the committed baseline
# tests/abi/libhmt-<ABI>.abi (libabigail: abidw wrote it, abidiff compares).
#
#   sh tests/abi/check_abi.sh            check (run by make test)
#   sh tests/abi/check_abi.sh --update   rewrite the baseline from $B's library
#                                        (make abi-baseline); commit the result
#
# Only the exported hmt_* interface counts: types defined outside
# include/hmt/ (the library's internals) are dropped, and a suppression keeps
# any other symbol out. abidiff's exit status is a bit field: 8 = an
# incompatible change (a removed function, a changed type layout), 4 = a
# change (an added function, a changed enumerator, ...), 1/2 = tool error.
# Both 4 and 8 fail: an incompatible change needs a new SONAME, a compatible
# one a deliberate baseline update (docs/ABI.md).
set -eu
B=${B:-build}
HDRS=include/hmt
ABI=$(sed -n 's/^#define HMT_ABI_VERSION *\([0-9]*\).*/\1/p' "$HDRS/version.h")
BASE=tests/abi/libhmt-$ABI.abi
if ! command -v abidiff >/dev/null 2>&1 || ! command -v abidw >/dev/null 2>&1; then
    echo "check_abi: skipped (abidiff/abidw not installed: apt-get install abigail-tools)"
    exit 0
fi
SO=$(ls "$B"/libhmt.so."$ABI".*.* 2>/dev/null | head -n 1 || true)
if [ -z "$SO" ]; then
    echo "check_abi: FAIL (no $B/libhmt.so.$ABI.*.*: build first)"
    exit 1
fi
if ! readelf -S "$SO" | grep -q '\.debug_info'; then
    echo "check_abi: skipped ($SO has no DWARF: build with -g)"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/hmt.suppr" <<'SUPPR'
[suppress_function]
  symbol_name_not_regexp = ^hmt_
[suppress_variable]
  symbol_name_not_regexp = ^hmt_
SUPPR

if [ "${1:-}" = "--update" ]; then
    abidw --headers-dir "$HDRS" --drop-private-types --no-corpus-path --no-comp-dir-path \
        --no-show-locs --type-id-style hash --out-file "$tmp/new.abi" "$SO"
    if [ -f "$BASE" ] && cmp -s "$tmp/new.abi" "$BASE"; then
        echo "check_abi: $BASE unchanged"
    else
        cp "$tmp/new.abi" "$BASE"
        echo "check_abi: wrote $BASE from $SO; review 'git diff $BASE' and commit it"
        echo "           (and record new symbols in docs/symbols-in-versions)"
    fi
    exit 0
fi

if [ ! -f "$BASE" ]; then
    echo "check_abi: FAIL (no baseline $BASE for ABI $ABI; a new SONAME starts a new one:"
    echo "           make abi-baseline B=$B, then commit $BASE)"
    exit 1
fi
rc=0
abidiff --suppressions "$tmp/hmt.suppr" --headers-dir2 "$HDRS" --drop-private-types \
    "$BASE" "$SO" > "$tmp/report" 2>&1 || rc=$?
if [ "$rc" -eq 0 ]; then
    n=$(grep -c "<elf-symbol name='hmt_" "$BASE" || true)
    echo "check_abi: OK ($SO matches $BASE, $n hmt_* symbols)"
    exit 0
fi
sed 's/^/  /' "$tmp/report"
if [ $((rc & 3)) -ne 0 ]; then
    echo "check_abi: FAIL (abidiff error, status $rc)"
elif [ $((rc & 8)) -ne 0 ]; then
    echo "check_abi: FAIL (INCOMPATIBLE change to ABI $ABI: a released symbol was removed or"
    echo "           changed. Restore it, or deliberately break the ABI: bump HMT_ABI_VERSION"
    echo "           (new SONAME libhmt.so.N+1) and start tests/abi/libhmt-<N+1>.abi; docs/ABI.md)"
else
    echo "check_abi: FAIL (the ABI changed compatibly, see above: a new function, or an enum or"
    echo "           type change. A changed enumerator VALUE is a break: revert it. If the change"
    echo "           is intended, record it on purpose: make abi-baseline B=$B, then commit"
    echo "           $BASE together with docs/symbols-in-versions; docs/ABI.md)"
fi
exit 1
