#!/bin/sh
# tools/hmt_plot.py (docs/RETRIEVAL.md): each plot writes a PNG from real
# outputs of the demo model (hmt-perplexity --csv, hmt_retrieval.py --csv, a
# full-mode stream's recall weights), the recall CSV is a distribution per
# segment over the cached memories, and a wrong CSV is refused. Skipped
# without matplotlib (optional: Debian's python3-matplotlib).
# Run by `make test` with B, PYTHON and SANITIZE set; from the top of the tree.
set -eu
B=${B:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
SANITIZE=${SANITIZE:-}
if [ -n "$SANITIZE" ]; then
    echo "check_plot: skipped (sanitizer build: an ASan libhmt.so cannot be loaded by a plain python)"
    exit 0
fi
if ! "$PYTHON" -c 'import matplotlib' 2>/dev/null; then
    echo "check_plot: skipped (no matplotlib for $PYTHON: apt-get install python3-matplotlib)"
    exit 0
fi
case $B in /*) absB=$B ;; *) absB=$(pwd)/$B ;; esac
so=libhmt.so.$(sed -n 's/^#define HMT_ABI_VERSION *\([0-9][0-9]*\).*/\1/p' include/hmt/version.h)
export HMT_LIB_PATH="$absB/$so" PYTHONDONTWRITEBYTECODE=1 MPLCONFIGDIR
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
MPLCONFIGDIR=$tmp/mpl
M=models/demo-random-f16.gguf
A=models/demo-random-hmt.gguf
TEXT=models/heldout/ca10.txt
fail=0
bad() { echo "check_plot: FAIL $*"; fail=1; }
png() {  # png FILE: a PNG signature and more than a header
    if [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" != "89504e470d0a1a0a" ]; then
        bad "$1 is not a PNG"
    elif [ "$(wc -c < "$1")" -lt 5000 ]; then
        bad "$1 has only $(wc -c < "$1") bytes"
    fi
}

"$B/bin/hmt-perplexity" -m $M -a $A -f $TEXT --max-tokens 400 --mode all -t 1 -q \
    --csv "$tmp/nll.csv" > /dev/null
"$PYTHON" tools/hmt_plot.py nll "$tmp/nll.csv" -o "$tmp/nll.png" && png "$tmp/nll.png" || bad "nll plot"

"$PYTHON" tools/hmt_plot.py recall -m $M -a $A -f $TEXT --max-tokens 1500 --csv "$tmp/recall.csv" \
    -o "$tmp/recall.png" && png "$tmp/recall.png" || bad "recall plot"
# each segment n >= 1 recalls over the last min(n, N) memories, weights summing to 1
"$PYTHON" - "$tmp/recall.csv" <<'PY' || bad "recall CSV"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
by = {}
for r in rows:
    by.setdefault(int(r["segment"]), []).append((int(r["memory_segment"]), float(r["weight"])))
N = 16  # demo-random-hmt.gguf's cache size
assert sorted(by) == list(range(1, max(by) + 1)) and max(by) >= N + 2, sorted(by)
for n, pairs in by.items():
    assert [s for s, _ in pairs] == list(range(max(0, n - N), n)), (n, pairs)
    assert abs(sum(w for _, w in pairs) - 1) < 1e-5 and min(w for _, w in pairs) >= 0, (n, pairs)
print(f"check_plot: recall CSV: {len(by)} segments, weights a distribution over the cache")
PY

"$PYTHON" tools/hmt_retrieval.py -m $M -a $A --distances 0,1,2 --trials 2 -q \
    --csv "$tmp/ret.csv" > /dev/null
"$PYTHON" tools/hmt_plot.py retrieval "$tmp/ret.csv" -o "$tmp/ret.png" && png "$tmp/ret.png" \
    || bad "retrieval plot"

# the wrong CSV for the plot: refused with a message, exit 1, no PNG
if "$PYTHON" tools/hmt_plot.py retrieval "$tmp/nll.csv" -o "$tmp/x.png" 2> "$tmp/err"; then
    bad "retrieval plot of a perplexity CSV succeeded"
elif ! grep -q "no column" "$tmp/err" || [ -e "$tmp/x.png" ]; then
    bad "wrong CSV: $(cat "$tmp/err")"
fi
[ "$fail" -eq 0 ] && echo "check_plot: OK"
exit "$fail"
