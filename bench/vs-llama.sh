#!/bin/sh
# Decode speed of libhmt (hmt-bench) and llama.cpp (llama-bench) on the
# same GGUF files, one after the other: hmt-bench, llama-bench, hmt-bench
# again (the host's bandwidth drifts; the two hmt-bench figures show how
# much). Both decode N tokens after a P-token prompt (llama-bench -d P).
# llama.cpp is not built here: point LLAMA_BENCH at a llama-bench binary
# (docs/QUANTS.md, "Nineteenth session", says how one was built).
#
#   LLAMA_BENCH=/path/to/llama-bench sh bench/vs-llama.sh [-t T] [-p P] [-n N] [-r R] FILE...
#
# llama-bench runs with its defaults otherwise (F16 KV cache, flash
# attention "auto"); libhmt with its own (F32 KV cache).
set -eu
T=2 P=256 N=32 R=3
while getopts t:p:n:r: o; do
    case $o in
    t) T=$OPTARG ;; p) P=$OPTARG ;; n) N=$OPTARG ;; r) R=$OPTARG ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: LLAMA_BENCH=... $0 [-t T] [-p P] [-n N] [-r R] FILE..." >&2; exit 2; }
: "${LLAMA_BENCH:?set LLAMA_BENCH to a llama-bench binary}"
HMT_BENCH=${HMT_BENCH:-build/bin/hmt-bench}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "vs-llama: $*" >&2; exit 1; }

# run DEST PROG COMMAND... -- FILE...: the command with "-m FILE" for each
# file, its output into $tmp/out, and its decode figures (one per file, in
# order) into DEST through the awk program PROG.
run() {
    dest=$1 prog=$2 files=0 i=0 n=$(($# - 2))
    shift 2
    while [ $i -lt $n ]; do # rotate the arguments once, each file behind a -m
        a=$1
        shift
        if [ $files = 1 ]; then set -- "$@" -m "$a"; elif [ "$a" = -- ]; then files=1; else set -- "$@" "$a"; fi
        i=$((i + 1))
    done
    "$@" >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err" >&2; fail "$1 failed"; }
    awk "$prog" "$tmp/out" >"$dest"
    [ "$(wc -l <"$dest")" -eq "$n_files" ] || fail "$1 gave $(wc -l <"$dest") decode figures for $n_files files"
}
n_files=$#
HMT='BEGIN { FS = "|" } /^m[0-9]+ / { split($3, a, " "); print a[3] }' # decode/s column
LLAMA='BEGIN { FS = "\",\"" } NR > 1 { print $(NF - 1) }'             # avg_ts column of the CSV

run "$tmp/h1" "$HMT" "$HMT_BENCH" -t "$T" -p "$P" -n "$N" -r "$R" -- "$@"
run "$tmp/l" "$LLAMA" "$LLAMA_BENCH" -t "$T" -p 0 -n "$N" -d "$P" -r "$R" -o csv -- "$@"
run "$tmp/h2" "$HMT" "$HMT_BENCH" -t "$T" -p "$P" -n "$N" -r "$R" -- "$@"

echo "threads $T, decode $N tokens after $P, $R repeats; tok/s"
printf '%-40s %10s %10s %10s %8s\n' file hmt-before llama.cpp hmt-after hmt/llama
for f in "$@"; do basename "$f"; done >"$tmp/names"
paste "$tmp/names" "$tmp/h1" "$tmp/l" "$tmp/h2" |
    awk -F'\t' '{ printf "%-40s %10.1f %10.1f %10.1f %8.2f\n", $1, $2, $3, $4, ($2 + $4) / 2 / $3 }'
