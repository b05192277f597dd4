#!/bin/sh
# The short programs of examples/ (built by `make`, in $B/examples), run on
# the shipped Brown model: each succeeds, and what each shows is checked
# against an independent path: hmt-score's perplexity equals hmt-perplexity's
# full-mode figure on the same document; snapshot's two continuations equal
# the first bit for bit; serve_streams' users generating together get the
# tokens each gets alone; failures exit 1 with the library's message.
set -eu
B=${B:-build}
M=models/brown-f16.gguf A=models/brown-hmt.gguf DOC=models/heldout/ca10.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "check_examples: FAIL: $*"; exit 1; }

"$B/examples/simple" $M "The jury said" 12 > "$tmp/simple" || fail "simple exited $?"
grep -q "^The jury said..." "$tmp/simple" || fail "simple: no continuation: $(cat "$tmp/simple")"

"$B/examples/processors" $M "The jury said" > "$tmp/processors" || fail "processors exited $?"
[ "$(wc -c < "$tmp/processors")" -gt 40 ] || fail "processors: no continuation: $(cat "$tmp/processors")"

"$B/examples/hmt-score" $M $A $DOC > "$tmp/score" || fail "hmt-score exited $?"
got=$(sed -n 's/.*perplexity \([0-9.]*\)$/\1/p' "$tmp/score")
"$B/bin/hmt-perplexity" -m $M -a $A -f $DOC --mode full -t 2 -q > "$tmp/ppl"
want=$(awk '$1 == "full" { print $(NF - 1) }' "$tmp/ppl")
[ -n "$got" ] && [ "$got" = "$want" ] || fail "hmt-score perplexity '$got', hmt-perplexity '$want'"
grep -q "recalls" "$tmp/score" || fail "hmt-score printed no recall"

"$B/examples/snapshot" $M $A "$tmp/s.hmts" > "$tmp/snap" || fail "snapshot exited $?: $(cat "$tmp/snap")"
[ "$(grep -c "the same logits" "$tmp/snap")" -eq 2 ] || fail "snapshot: $(cat "$tmp/snap")"

"$B/examples/prompt_cache" $M "$tmp/p.hmtc" "The jury said" 12 > "$tmp/cache" || fail "prompt_cache exited $?: $(cat "$tmp/cache")"
grep -q "the same logits at every step" "$tmp/cache" || fail "prompt_cache: $(cat "$tmp/cache")"
st=0
"$B/examples/prompt_cache" $M "$tmp/no/such/dir/p.hmtc" > /dev/null 2> "$tmp/err" || st=$?
[ $st -eq 1 ] && grep -q "no/such/dir" "$tmp/err" || fail "prompt_cache into a missing folder: exit $st, $(cat "$tmp/err")"

# several users at once: the same tokens as each generating alone
"$B/examples/serve_streams" $M $A 16 > "$tmp/serve" || fail "serve_streams exited $?: $(cat "$tmp/serve")"
grep -q "the same tokens as each user generating alone" "$tmp/serve" || fail "serve_streams: $(cat "$tmp/serve")"
[ "$(grep -c '^user ' "$tmp/serve")" -eq 3 ] || fail "serve_streams: $(cat "$tmp/serve")"
st=0
"$B/examples/serve_streams" $M /nonexistent-adapter.gguf > /dev/null 2> "$tmp/err" || st=$?
[ $st -eq 1 ] && grep -q "nonexistent-adapter.gguf" "$tmp/err" || fail "serve_streams without its adapter: exit $st, $(cat "$tmp/err")"

for ex in simple processors; do
    st=0
    "$B/examples/$ex" /nonexistent.gguf > /dev/null 2> "$tmp/err" || st=$?
    [ $st -eq 1 ] && grep -q "nonexistent.gguf" "$tmp/err" || fail "$ex on a missing file: exit $st, $(cat "$tmp/err")"
    st=0
    "$B/examples/$ex" > /dev/null 2>&1 || st=$?
    [ $st -eq 2 ] || fail "$ex without arguments: exit $st"
done
echo "check_examples: OK (6 examples; hmt-score = hmt-perplexity: $got)"
