#!/bin/sh
# The programs in $B/bin (tools and benchmarks): each answers -h and
# --help with its usage on stdout and exit status 0, without doing any work;
# refusals say what was wrong (docs/ROBUSTNESS.md, "Messages").
# Run by `make test` with B set; from the top of the tree.
set -u
B=${B:-build}
MODEL=models/demo-random-f16.gguf
ADAPTER=models/demo-random-hmt.gguf
fail=0
n=0
err=$(mktemp)
trap 'rm -f "$err"' EXIT

bad() {
    echo "check_tool_messages: $*"
    fail=1
}

# expect STATUS PATTERN CMD...: exit status STATUS, stderr matching PATTERN
expect() {
    want=$1 pat=$2
    shift 2
    timeout 60 "$@" >/dev/null 2>"$err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        bad "'$*' exited $rc, want $want: $(head -c 300 "$err")"
    elif ! grep -q -- "$pat" "$err"; then
        bad "'$*' did not say '$pat': $(head -c 300 "$err")"
    fi
}

for p in "$B"/bin/*; do
    [ -f "$p" ] && [ -x "$p" ] || continue
    n=$((n + 1))
    for opt in -h --help; do
        out=$(timeout 20 "$p" "$opt" 2>"$err")
        rc=$?
        if [ "$rc" -ne 0 ]; then
            bad "$(basename "$p") $opt exited $rc (want 0): $(head -c 200 "$err")"
        elif ! printf '%s\n' "$out" | grep -q '^usage:'; then
            bad "$(basename "$p") $opt printed no 'usage:' line on stdout"
        fi
    done
done
[ "$n" -ge 9 ] || bad "only $n programs in $B/bin (make all first)"

expect 2 "n-predict must be a whole number" "$B/bin/hmt-generate" -m "$MODEL" -n -5
expect 2 "-t/--threads must be" "$B/bin/hmt-generate" -m "$MODEL" -t 1.5
expect 2 "-n takes a whole number" "$B/bin/hmt-soak" -n -5
expect 2 "-c takes a whole number" "$B/bin/hmt-soak" -c x
expect 2 "MAX_THREADS must be" "$B/bin/gemm-ceiling" x
expect 2 "-m MODEL is required" "$B/bin/hmt-bench" -t 2
expect 2 "the first argument is the mode" "$B/bin/knn-bench" serch -m "$MODEL"
expect 2 "--compute takes f32 or bf16" "$B/bin/hmt-perplexity" -m "$MODEL" -f - --compute f16
# the adapter given as the model, and the model as the adapter
expect 1 "is an HMT adapter.*(-a, hmt_adapter_load)" "$B/bin/hmt-generate" -m "$ADAPTER" -n 1
expect 1 "not an HMT adapter" "$B/bin/hmt-generate" -m "$MODEL" -a "$MODEL" -n 1
# --chat: a model without a chat template, options that need --chat
expect 1 "no tokenizer.chat_template" "$B/bin/hmt-generate" -m "$MODEL" --chat -p Hi -n 1
expect 1 "not one libhmt recognises" "$B/bin/hmt-generate" -m "$MODEL" --chat --chat-template "{{ x }}" -p Hi -n 1
expect 2 "need --chat" "$B/bin/hmt-generate" -m "$MODEL" --system "Be brief." -n 1

[ "$fail" -eq 0 ] || exit 1
echo "check_tool_messages: OK ($n programs answer -h/--help; 10 refusals say what was wrong)"
