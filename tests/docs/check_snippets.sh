#!/bin/sh
# Every ```c block of README.md and docs/*.md compiles with -std=c99 -Wall
# -Wextra -Werror against include/, so the documentation cannot rot. How a
# block is compiled (the convention for writing one):
#
#  - a block that defines main() is a whole program: compiled as it stands
#    (it includes its own headers) and linked against $B/libhmt.so;
#  - any other block is a fragment, given the standard headers it may use
#    (stdint, stddef, stdio, stdlib, string, math) and hmt.h, experimental.h:
#    compiled as top-level code (declarations, functions) if that
#    works, else as the body of a function `int snippet(void)`. A fragment
#    declares every variable it uses (write a function with parameters when it
#    needs inputs);
#  - a block right after the line `<!-- snippet: skip REASON -->` is not
#    compiled: for the rare block that cannot be (a copy of a declaration the
#    headers already make). Keep these rare.
#
# Errors point at the Markdown file and line (#line directives).
set -eu
B=${B:-build}
CC=${CC:-cc}
SANITIZE=${SANITIZE:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags="-std=c99 -Wall -Wextra -Werror -Iinclude"

# Split the blocks out: $tmp/N.c, with $tmp/N.where (file:line of the first
# code line) and $tmp/N.mark (the line before the fence).
awk -v dir="$tmp" '
    FNR == 1 { prev = "" }
    !inside && /^[ \t]*```c[ \t]*$/ {
        inside = 1; n++
        f = sprintf("%s/%04d", dir, n)
        print FILENAME ":" FNR + 1 > (f ".where"); close(f ".where")
        print prev > (f ".mark"); close(f ".mark")
        printf "" > (f ".c")
        next
    }
    inside && /^[ \t]*```[ \t]*$/ { inside = 0; close(f ".c"); next }
    inside { print > (f ".c"); next }
    { prev = $0 }
' README.md docs/*.md

prelude() {
    printf '#include <stdint.h>\n#include <stddef.h>\n#include <stdio.h>\n#include <stdlib.h>\n'
    printf '#include <string.h>\n#include <math.h>\n'
    printf '#include <hmt/hmt.h>\n#include <hmt/experimental.h>\n'
}

n=0 programs=0 toplevel=0 bodies=0 skipped=0 failed=0
for c in "$tmp"/*.c; do
    [ -e "$c" ] || break
    n=$((n + 1))
    base=${c%.c}
    where=$(cat "$base.where")
    file=${where%:*} line=${where##*:}
    case $(cat "$base.mark") in
        "<!-- snippet: skip "*) skipped=$((skipped + 1)); continue ;;
        "<!-- snippet:"*) echo "$where: unknown snippet marker: $(cat "$base.mark")"; failed=$((failed + 1)); continue ;;
    esac
    if grep -Eq '(^|[^A-Za-z0-9_])main[ \t]*\(' "$c"; then
        { printf '#line %s "%s"\n' "$line" "$file"; cat "$c"; } > "$base.prog.c"
        # shellcheck disable=SC2086
        if $CC $flags $SANITIZE "$base.prog.c" -o "$base.prog" -L"$B" -lhmt -lm 2> "$base.err"; then
            programs=$((programs + 1)); continue
        fi
    else
        { prelude; printf '#line %s "%s"\n' "$line" "$file"; cat "$c"; } > "$base.top.c"
        # shellcheck disable=SC2086
        if $CC $flags -fsyntax-only "$base.top.c" 2> "$base.top.err"; then
            toplevel=$((toplevel + 1)); continue
        fi
        { prelude; printf 'int snippet(void);\nint snippet(void) {\n'
          printf '#line %s "%s"\n' "$line" "$file"; cat "$c"; printf '\n    return 0;\n}\n'; } > "$base.body.c"
        # shellcheck disable=SC2086
        if $CC $flags -fsyntax-only "$base.body.c" 2> "$base.err"; then
            bodies=$((bodies + 1)); continue
        fi
        { echo "(as top-level code:)"; cat "$base.top.err"; echo "(as a function body:)"; cat "$base.err"; } > "$base.both"
        mv "$base.both" "$base.err"
    fi
    echo "$where: this C block does not compile:"
    sed 's/^/    /' "$base.err" | head -n 30
    failed=$((failed + 1))
done
[ "$n" -gt 0 ] || { echo "check_snippets: FAIL (no C blocks found)"; exit 1; }
[ "$failed" -eq 0 ] || { echo "check_snippets: FAIL ($failed of $n C blocks)"; exit 1; }
echo "check_snippets: OK ($n C blocks: $programs programs, $toplevel top-level, $bodies function bodies, $skipped skipped)"
