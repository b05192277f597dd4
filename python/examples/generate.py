#!/usr/bin/env python3
"""Generate text through an HMT stream with the DITTO repetition penalty and,
optionally, a kNN-LM datastore built on the fly from a reference text.

    HMT_LIB_PATH=build/libhmt.so.0 python3 python/examples/generate.py \
        models/demo-random-f16.gguf models/demo-random-hmt.gguf "The history of" [REFERENCE_TEXT]
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import hmt  # noqa: E402


def main(argv):
    if len(argv) < 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    model_path, adapter_path, prompt = argv[1:4]
    reference = argv[4] if len(argv) > 4 else None
    with hmt.Model(model_path) as model, hmt.Adapter(model, adapter_path) as adapter, \
            tempfile.TemporaryDirectory() as tmp:
        procs = [hmt.DittoProc(model, ditto_lambda=0.5)]
        knn = None
        if reference:
            path = os.path.join(tmp, "ref.knn")
            with hmt.Context(model, n_ctx=256) as ctx, hmt.KnnBuilder(model, path) as b:
                b.add_ctx(ctx, model.tokenize(reference))
                b.finish()
            knn = hmt.Knn(model, path)
            procs.append(hmt.KnnProc(knn, knn_k=16, knn_lambda=0.25))
        with hmt.Stream(model, adapter, keep_ffn_input=1) as stream, hmt.Chain(procs) as chain, \
                hmt.Sampler(temperature=0.8, seed=1) as sampler:
            ids = model.tokenize(prompt)
            for t in ids:
                chain.accept(t)
            stream.feed(ids)
            stream.flush()
            stream.lookahead = False  # generation: the causal recall rule
            out = []
            for _ in range(64):
                i = stream.n_ready - 1
                key = stream.ffn_input(i) if knn is not None else None
                t = chain.sample(sampler, stream.logits(i), key=key)
                if t == model.eos:
                    break
                out.append(t)
                stream.feed([t])
            print(prompt + model.detokenize(out))
        if knn is not None:
            knn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
