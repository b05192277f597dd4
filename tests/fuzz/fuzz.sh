#!/bin/sh
# Build and run every libFuzzer target in tests/fuzz for a bounded time
# (`make fuzz`, which first builds $FUZZ_B/libhmt.a with clang and the
# sanitizers). Inputs: the corpus grown in $FUZZ_B/corpus/<target> (new
# units go there), the seeds of make_seeds.py (or of the target itself), and
# the committed tests/fuzz/regressions/<target>/ inputs, which every run
# replays first. A crash, sanitizer report, leak, timeout or out-of-memory
# fails the target; its input stays in $FUZZ_B/artifacts/<target>/.
# Prints the executions per target and ends with "fuzz: N passed, N failed".
set -u
: "${FUZZ_CC:=clang-14}" "${FUZZ_B:=build-fuzz}" "${B:=build}" "${FUZZ_SECONDS:=30}"
: "${PYTHON:=/usr/bin/python3}" "${PRIV_LIBS:=}" "${FUZZ_SAN:=-fsanitize=address,undefined}"
: "${FUZZ_TARGETS:=gguf tokenizer snapshot adapter knn}"
# The GGUF seeds include whole models; mutate at most their first 256 kB.
# The other targets let libFuzzer size inputs from their seeds.
max_len() { [ "$1" = gguf ] && echo "-max_len=262144"; }

passed=0 failed=0 summary=""
for t in $FUZZ_TARGETS; do
    bin=$FUZZ_B/fuzz_$t corpus=$FUZZ_B/corpus/$t seeds=$FUZZ_B/seeds/$t
    art=$FUZZ_B/artifacts/$t log=$FUZZ_B/fuzz_$t.log
    regress=tests/fuzz/regressions/$t
    [ -d "$regress" ] || regress=""
    # -fsanitize-link-c++-runtime: the FAISS bridge in libhmt.a is C++.
    # shellcheck disable=SC2086
    $FUZZ_CC -g -O1 -fsanitize=fuzzer $FUZZ_SAN -fsanitize-link-c++-runtime -Iinclude -Ilib \
        tests/fuzz/fuzz_$t.c "$FUZZ_B/libhmt.a" $PRIV_LIBS -o "$bin" || exit 1
    rm -rf "$seeds"
    mkdir -p "$corpus" "$seeds" "$art"
    "$PYTHON" tests/fuzz/make_seeds.py "$t" "$seeds" "$B" || exit 1
    touch "$FUZZ_B/.fuzz-start"
    # shellcheck disable=SC2046,SC2086
    HMT_FUZZ_SEEDS=$seeds "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=60 $(max_len "$t") \
        -print_final_stats=1 -artifact_prefix="$art/" "$corpus" "$seeds" $regress > "$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    units=$(ls "$corpus" | wc -l)
    new=$(find "$art" -type f -newer "$FUZZ_B/.fuzz-start" | head -n 5)
    if [ "$rc" -ne 0 ] || [ -n "$new" ]; then
        failed=$((failed + 1))
        echo "fuzz $t: FAILED (exit $rc) after ${execs:-?} executions; input(s): ${new:-none}"
        grep -E -A 30 "^==[0-9]+==ERROR|runtime error|^SUMMARY|ALARM|out-of-memory|deadly signal" \
            "$log" | head -n 60
        summary="$summary
  $t: FAILED"
    else
        passed=$((passed + 1))
        echo "fuzz $t: OK, $execs executions in ${FUZZ_SECONDS} s ($rate/s), corpus $units units"
        summary="$summary
  $t: $execs executions, $rate/s, corpus $units"
    fi
done
echo "fuzz summary ($FUZZ_SECONDS s each):$summary"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
