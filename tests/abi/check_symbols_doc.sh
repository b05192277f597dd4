#!/bin/sh
# docs/symbols-in-versions is the record of the public symbols: every exported
# function with the version node it appeared in, every enumerator with its
# (frozen) value. This check fails when
#   - an exported function is missing from the list, or listed but not
#     exported, or exported in another version node than listed;
#   - an enumerator of the public headers is not listed, a listed one is gone,
#     or its value differs from the listed one (values are fixed forever).
#   sh tests/abi/check_symbols_doc.sh --missing   prints lines to add
set -eu
B=${B:-build}
CC=${CC:-cc}
DOC=docs/symbols-in-versions
ABI=$(sed -n 's/^#define HMT_ABI_VERSION *\([0-9]*\).*/\1/p' include/hmt/version.h)
SO=$(ls "$B"/libhmt.so."$ABI".*.* | head -n 1) # this ABI's, not a stale older build's
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# what the library and the headers have
nm -D --defined-only "$SO" | awk '$2 ~ /^[TDBRVWi]$/ {print $3}' | sed 's/@@*/ /' | sort > "$tmp/exported"
# the experimental header promises nothing (docs/ABI.md): its values are not recorded
for h in include/hmt/*.h; do
    [ "$(basename "$h")" = experimental.h ] || echo "#include <hmt/$(basename "$h")>"
done > "$tmp/all.c"
$CC -E -Iinclude "$tmp/all.c" | grep -o 'HMT_[A-Z0-9_]* *=' | tr -d ' =' | sort -u > "$tmp/enums"

# what the document lists (comments and blank lines ignored)
grep -v '^[[:space:]]*#' "$DOC" | awk 'NF' > "$tmp/doc"
awk '$2 == "function" {print $1, $3}' "$tmp/doc" | sort > "$tmp/doc_functions"
awk '$2 == "enum" {print $1}' "$tmp/doc" | sort > "$tmp/doc_enums"
bad=$(awk '$2 != "function" && $2 != "enum" {print $1}' "$tmp/doc")
[ -z "$bad" ] || { echo "check_symbols_doc: FAIL (lines of unknown kind in $DOC: $bad)"; exit 1; }

if [ "${1:-}" = "--missing" ]; then
    cut -d' ' -f1 "$tmp/doc_functions" > "$tmp/df"
    awk '{print $1}' "$tmp/exported" | comm -23 - "$tmp/df" | while read -r s; do
        node=$(awk -v s="$s" '$1 == s {print $2}' "$tmp/exported")
        printf '%-40s function  %s\n' "$s" "$node"
    done
    comm -23 "$tmp/enums" "$tmp/doc_enums" > "$tmp/new_enums"
    if [ -s "$tmp/new_enums" ]; then
        { cat "$tmp/all.c"; echo '#include <stdio.h>'; echo 'int main(void) {'
          sed 's/.*/printf("%-40s enum      NODE      %lld\\n", "&", (long long)(&));/' "$tmp/new_enums"
          echo 'return 0; }'; } > "$tmp/p.c"
        node=$(sed -n 's/^\(HMT_[0-9.]*\) *{.*/\1/p' lib/libhmt.map | tail -n 1)
        $CC -std=c99 -Iinclude "$tmp/p.c" -o "$tmp/p" && "$tmp/p" | sed "s/NODE   /$node/"
    fi
    exit 0
fi

fail=0
if ! diff -u "$tmp/doc_functions" "$tmp/exported" > "$tmp/d1"; then
    sed 's/^/  /' "$tmp/d1"
    echo "check_symbols_doc: FAIL (exported functions and their version nodes (+) differ from $DOC (-))"
    fail=1
fi
if ! diff -u "$tmp/doc_enums" "$tmp/enums" > "$tmp/d2"; then
    sed 's/^/  /' "$tmp/d2"
    echo "check_symbols_doc: FAIL (enumerators of include/hmt/*.h (+) differ from $DOC (-))"
    fail=1
fi
# listed values = compiled values, for the enumerators that exist
{ cat "$tmp/all.c"; echo '#include <stdio.h>'; echo 'int main(void) {'; echo 'int bad = 0;'
  awk '$2 == "enum" {print $1, $4}' "$tmp/doc" | while read -r name value; do
      grep -qx "$name" "$tmp/enums" || continue
      printf 'if ((long long)(%s) != %sLL) { printf("  %s = %%lld, listed as %s\\n", (long long)(%s)); bad = 1; }\n' \
          "$name" "$value" "$name" "$value" "$name"
  done
  echo 'return bad; }'; } > "$tmp/v.c"
if ! $CC -std=c99 -Iinclude "$tmp/v.c" -o "$tmp/v" 2> "$tmp/cc.log"; then
    head -n 20 "$tmp/cc.log"
    echo "check_symbols_doc: FAIL (cannot compile the value check: a malformed value in $DOC?)"
    exit 1
fi
if ! "$tmp/v"; then
    echo "check_symbols_doc: FAIL (an enumerator's value changed: values are fixed forever, docs/ABI.md)"
    fail=1
fi
[ "$fail" -eq 0 ] || { echo "  (sh tests/abi/check_symbols_doc.sh --missing prints the lines to add)"; exit 1; }
echo "check_symbols_doc: OK ($(wc -l < "$tmp/doc_functions") functions, $(wc -l < "$tmp/doc_enums") enumerators as documented)"
