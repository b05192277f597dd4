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
m=""
for f in "$@"; do
    case $f in *[[:space:]]*) fail "a path with spaces is not supported: '$f'" ;; esac
    m="$m -m $f"
done

# Run a benchmark into $tmp/out; its decode figures (one per file, in
# argument order) into $1 through the awk program $2.
run() {
    dest=$1 prog=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err" >&2; fail "$1 failed"; }
    awk "$prog" "$tmp/out" >"$dest"
    [ "$(wc -l <"$dest")" -eq "$n_files" ] || fail "$1 gave $(wc -l <"$dest") decode figures for $n_files files"
}
n_files=$#
HMT='BEGIN { FS = "|" } /^m[0-9]+ / { split($3, a, " "); print a[3] }' # decode/s column
LLAMA='BEGIN { FS = "\",\"" } NR > 1 { print $(NF - 1) }'             # avg_ts column of the CSV

# shellcheck disable=SC2086
run "$tmp/h1" "$HMT" "$HMT_BENCH" -t "$T" -p "$P" -n "$N" -r "$R" $m
# shellcheck disable=SC2086
run "$tmp/l" "$LLAMA" "$LLAMA_BENCH" $m -t "$T" -p 0 -n "$N" -d "$P" -r "$R" -o csv
# shellcheck disable=SC2086
run "$tmp/h2" "$HMT" "$HMT_BENCH" -t "$T" -p "$P" -n "$N" -r "$R" $m

echo "threads $T, decode $N tokens after $P, $R repeats; tok/s"
printf '%-40s %10s %10s %10s %8s\n' file hmt-before llama.cpp hmt-after hmt/llama
i=0
for f in "$@"; do
    i=$((i + 1))
    h1=$(sed -n "${i}p" "$tmp/h1") l=$(sed -n "${i}p" "$tmp/l") h2=$(sed -n "${i}p" "$tmp/h2")
    awk -v f="$(basename "$f")" -v a="$h1" -v l="$l" -v b="$h2" \
        'BEGIN { printf "%-40s %10.1f %10.1f %10.1f %8.2f\n", f, a, l, b, (a + b) / 2 / l }'
done
