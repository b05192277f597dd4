#!/usr/bin/env python3
"""Generate text through an HMT stream with the DITTO repetition penalty and,
optionally, a kNN-LM datastore built on the fly from a reference text.

    HMT_LIB_PATH=build/libhmt.so.1 python3 python/examples/generate.py \
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
            tempfile.TemporaryDirectory() as tmp, \
            hmt.Sampler(temperature=0.8, seed=1) as sampler:
        # the sampler runs its processors, in order, before each draw; it holds
        # its own reference to each, so the Python objects may go at once
        with hmt.DittoProc(model, ditto_lambda=0.5) as ditto:
            sampler.add(ditto)
        if reference:
            path = os.path.join(tmp, "ref.knn")
            with hmt.Context(model, n_ctx=256) as ctx, hmt.KnnBuilder(model, path) as b:
                b.add_ctx(ctx, model.tokenize(reference))
                b.finish()
            with hmt.Knn(model, path) as knn, hmt.KnnProc(knn, knn_k=16, knn_lambda=0.25) as p:
                sampler.add(p)  # the processor keeps the datastore open
        # keep_ffn_input: the stream keeps each token's kNN-LM key, which
        # sample_stream hands to the kNN processor
        with hmt.Stream(model, adapter, keep_ffn_input=1 if reference else 0) as stream:
            ids = model.tokenize(prompt)
            for t in ids:
                sampler.accept(t)
            stream.feed(ids)
            stream.flush()
            stream.lookahead = False  # generation: the causal recall rule
            out = []
            for _ in range(64):
                t = sampler.sample_stream(stream, stream.n_ready - 1)
                if model.token_is_eog(t):  # eos, eot, eom, end-of-turn tokens
                    break
                out.append(t)
                stream.feed([t])
            print(prompt + model.detokenize(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
