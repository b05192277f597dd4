"""The recall pair (see check_retrieval_recall.sh): hmt_retrieval's copy
task, 8 trials, the needle 4 segments before the probe, modes full and rmt.
Passes when full's mean gain is >= 2 nats, exceeds rmt's by >= 1.5 nats, and
full is ahead in at least 7 of the 8 trials (measured: see
docs/RETRIEVAL.md; the shipped brown-hmt.gguf gives full = rmt = 0); and
with --causal full mode says so in its settings and loses over 1 nat."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(1, os.path.join(ROOT, "python"))
import hmt_retrieval as R  # noqa: E402

MODEL = os.environ.get("RECALL_MODEL", os.path.join(ROOT, "models", "brown-recall-f16.gguf"))
ADAPTER = os.environ.get("RECALL_ADAPTER", os.path.join(ROOT, "models", "brown-recall-hmt.gguf"))


def main():
    args = R.parser().parse_args(["-m", MODEL, "-a", ADAPTER, "--task", "copy", "--modes",
                                  "full,rmt", "--distances", "4", "--trials", "8", "--seed", "1",
                                  "-q", "-t", "2"])
    with open(os.devnull, "w") as null:
        rows = R.run(args, out=null)
    gain = {m: [float(r["gain"]) for r in rows if r["mode"] == m] for m in ("full", "rmt")}
    full, rmt = (sum(gain[m]) / len(gain[m]) for m in ("full", "rmt"))
    ahead = sum(f > r for f, r in zip(gain["full"], gain["rmt"]))
    ok = len(gain["full"]) == 8 and full >= 2.0 and full - rmt >= 1.5 and ahead >= 7
    print(f"check_retrieval_recall: d=4 copy gain full {full:.3f} rmt {rmt:.3f} nats, full "
          f"ahead in {ahead}/8 trials: {'ok' if ok else 'FAIL'}")
    # the causal rule's query does not see the answer: the retrieval is lost
    args.modes, args.causal = "full", True
    with open(os.devnull, "w") as null:
        rows = R.run(args, out=null)
    causal = sum(float(r["gain"]) for r in rows) / len(rows)
    ok_c = all(r["settings"].endswith(" causal") for r in rows) and causal < full - 1.0
    print(f"check_retrieval_recall: --causal gain {causal:.3f} nats (lookahead {full:.3f}): "
          f"{'ok' if ok_c else 'FAIL'}")
    return 0 if ok and ok_c else 1


if __name__ == "__main__":
    sys.exit(main())
