#!/usr/bin/env python3
"""Score a text with an HMT stream and print the recall weights per segment.

    HMT_LIB_PATH=build/libhmt.so.1 python3 python/examples/hmt_score.py \
        models/demo-random-f16.gguf models/demo-random-hmt.gguf "Some long text ..."
"""
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import hmt  # noqa: E402


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    model_path, adapter_path = argv[1], argv[2]
    text = argv[3] if len(argv) > 3 else "The history of memory in language models " * 20
    with hmt.Model(model_path) as model, hmt.Adapter(model, adapter_path) as adapter, \
            hmt.Stream(model, adapter, mode="full") as stream:
        ids = model.tokenize(text)

        def on_recall(segment, weights, segments):
            pairs = ", ".join(f"{s}:{float(w):.3f}" for s, w in zip(segments, weights))
            print(f"segment {segment:3d} recalls [{pairs}]")

        stream.set_recall_callback(on_recall)
        nll, n = 0.0, 0

        def score(ready):
            nonlocal nll, n
            for i in ready:
                if i + 1 >= len(ids):
                    continue
                logits = stream.logits(i)
                m = max(logits)
                lse = m + math.log(sum(math.exp(x - m) for x in logits))
                nll += lse - logits[ids[i + 1]]
                n += 1

        for start in range(0, len(ids), 64):  # any chunking gives the same result
            score(stream.feed(ids[start:start + 64]))
        score(stream.flush())
        print(f"{len(ids)} tokens, {stream.n_segments} segments (L = {adapter.segment_length}), "
              f"perplexity {math.exp(nll / max(1, n)):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
