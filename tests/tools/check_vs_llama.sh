#!/bin/sh
# bench/vs-llama.sh (docs/QUANTS.md, "Nineteenth session"): it reads
# hmt-bench's real output and a llama-bench CSV (a stand-in here that
# prints llama-bench's header and one row per -m, as llama-bench -o csv
# does), pairs the figures file by file, and fails, saying why, when
# either benchmark fails or gives a figure too few; a path with a space
# reaches the benchmarks whole.
# Run by `make test` with B set; from the top of the tree.
set -eu
B=${B:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "check_vs_llama: FAIL $*"; fail=1; }

# Both stand-ins first check that each -m is followed by an existing file
# (n: how many), so a path split into words fails them.
cat >"$tmp/models-exist" <<'EOF'
n=0 after_m=0
for a in "$@"; do
    if [ $after_m = 1 ]; then
        [ -f "$a" ] || { echo "no file '$a'" >&2; exit 3; }
        n=$((n + 1))
    fi
    after_m=0
    [ "$a" = -m ] && after_m=1
done
EOF

# A llama-bench stand-in: avg_ts 10 × the file's position; FAKE_ROWS rows
# (default one per file); exit FAKE_RC after printing.
printf '#!/bin/sh\n. "%s"\n' "$tmp/models-exist" >"$tmp/llama-bench"
cat >>"$tmp/llama-bench" <<'EOF'
[ -n "${FAKE_ROWS:-}" ] && n=$FAKE_ROWS
echo 'build_commit,model_filename,n_threads,n_gen,n_depth,avg_ns,avg_ts,stddev_ts'
i=0
while [ $i -lt $n ]; do
    i=$((i + 1))
    echo "\"x\",\"m$i.gguf\",\"2\",\"2\",\"8\",\"1\",\"$((10 * i)).000000\",\"0.100000\""
done
exit "${FAKE_RC:-0}"
EOF
chmod +x "$tmp/llama-bench"

M1=$B/testdata/llama-f32.gguf M2=$B/testdata/llama-q8.gguf
# hmt-bench's real output for the two files, measured once (each run
# measures the host's ceilings: ~15 s), replayed by a stand-in; the
# options before the files, as vs-llama.sh gives them
"$B/bin/hmt-bench" -t 1 -p 8 -n 2 -r 1 -m "$M1" -m "$M2" >"$tmp/hmt.out"
printf '#!/bin/sh\n. "%s"\ncat "%s"\n' "$tmp/models-exist" "$tmp/hmt.out" >"$tmp/hmt-bench"
chmod +x "$tmp/hmt-bench"
run() { LLAMA_BENCH=$tmp/llama-bench HMT_BENCH=$tmp/hmt-bench sh bench/vs-llama.sh -t 1 -p 8 -n 2 -r 1 "$@"; }

if ! run "$M1" "$M2" >"$tmp/out" 2>"$tmp/err"; then
    bad "a good run failed: $(cat "$tmp/err")"
else
    # file, hmt before, llama.cpp, hmt after, ratio: the stand-in's figures
    # in order, hmt-bench's positive, the ratio their mean over llama.cpp's
    awk -v m1="$(basename "$M1")" -v m2="$(basename "$M2")" '
        NR > 2 { n++
                 want = n == 1 ? m1 : m2
                 if ($1 != want) { print "row " n " is " $1 ", not " want; bad = 1 }
                 if ($3 + 0 != 10 * n) { print "row " n " llama.cpp " $3; bad = 1 }
                 if (!($2 > 0 && $4 > 0)) { print "row " n " hmt " $2 " " $4; bad = 1 }
                 r = ($2 + $4) / 2 / $3
                 if (r - $5 > 0.006 || $5 - r > 0.006) { print "row " n " ratio " $5 " != " r; bad = 1 } }
        END { if (n != 2) { print n " rows"; bad = 1 } exit bad }' "$tmp/out" >"$tmp/why" ||
        bad "good run's table: $(cat "$tmp/why")"
fi

cp "$M2" "$tmp/a b.gguf"
if ! run "$M1" "$tmp/a b.gguf" >"$tmp/out" 2>"$tmp/err"; then
    bad "a path with a space: $(cat "$tmp/err")"
elif ! grep -q "^a b.gguf " "$tmp/out"; then
    bad "a path with a space: no row for it in $(cat "$tmp/out")"
fi

if FAKE_RC=1 run "$M1" "$M2" >"$tmp/out" 2>"$tmp/err"; then
    bad "a failing llama-bench was not reported"
elif ! grep -q "llama-bench failed" "$tmp/err"; then
    bad "a failing llama-bench: $(cat "$tmp/err")"
fi

if FAKE_ROWS=1 run "$M1" "$M2" >"$tmp/out" 2>"$tmp/err"; then
    bad "a figure too few was not reported"
elif ! grep -q "gave 1 decode figures for 2 files" "$tmp/err"; then
    bad "a figure too few: $(cat "$tmp/err")"
fi

if LLAMA_BENCH=$tmp/llama-bench HMT_BENCH=$B/bin/hmt-bench sh bench/vs-llama.sh -t 1 \
    "$tmp/no-such.gguf" >"$tmp/out" 2>"$tmp/err"; then
    bad "a missing model was not reported"
elif ! grep -q "hmt-bench failed" "$tmp/err"; then
    bad "a missing model: $(cat "$tmp/err")"
fi

if env -u LLAMA_BENCH sh bench/vs-llama.sh "$M1" >"$tmp/out" 2>"$tmp/err"; then
    bad "no LLAMA_BENCH was not reported"
fi

[ $fail = 0 ] && echo "check_vs_llama: OK"
exit $fail
