"""Model, tokenizer, Params and Sampler through Python, checked against the
test-data manifest (the same numbers the C suite checks)."""
import os
import tempfile
import unittest

from hmt_testutil import all_finite, data, hmt, read_manifest


class TestModel(unittest.TestCase):
    def test_shapes_match_manifest(self):
        for row in read_manifest():
            with self.subTest(model=row["name"]), hmt.Model(data(row["file"])) as m:
                self.assertEqual(m.arch, row["arch"])
                for key in ("n_vocab", "n_embd", "n_layer", "n_head", "n_head_kv", "n_ff",
                            "n_ctx_train", "n_params"):
                    self.assertEqual(getattr(m, key), int(row[key]), key)
                self.assertEqual(m.token_bos, int(row["bos"]))
                self.assertEqual(m.token_eos, int(row["eos"]))
                self.assertEqual(m.meta("general.architecture"), row["arch"])
                self.assertIn(row["name"], repr(m))

    def test_meta(self):
        with hmt.Model(data("llama-f32.gguf")) as m:
            self.assertEqual(m.meta("llama.block_count"), "2")
            toks = m.meta("tokenizer.ggml.tokens")
            self.assertTrue(toks.startswith("[array of 320"), toks)
            self.assertIsNone(m.meta("no.such.key", None))
            with self.assertRaises(hmt.HmtError) as cm:
                m.meta("no.such.key")
            self.assertEqual(cm.exception.code, hmt.Status.E_INVAL)
            self.assertEqual(cm.exception.name, "hmt_model_meta_str")
            self.assertIn("no.such.key", cm.exception.message)

    def test_tokenize_round_trip(self):
        for name in ("llama-f32.gguf", "qwen2-f32.gguf"):
            with self.subTest(model=name), hmt.Model(data(name)) as m:
                text = "Hello world, héllo wörld! 日本語 \u00ff"
                ids = m.tokenize(text, add_bos=False)
                self.assertTrue(ids and all(0 <= t < m.n_vocab for t in ids))
                self.assertEqual(m.detokenize(ids).lstrip(" "), text)
                # one at a time concatenates to the same bytes
                self.assertEqual(b"".join(m.detokenize_bytes([t]) for t in ids),
                                 m.detokenize_bytes(ids))
                with_bos = m.tokenize(text)
                if m.bos is not None and name.startswith("llama"):
                    self.assertEqual(with_bos, [m.bos] + ids)
                self.assertEqual(m.tokenize(text.encode()), with_bos)
                self.assertEqual(m.tokenize("", add_bos=False), [])
                long = "abc " * 3000  # exercises the E_BUFFER retry
                self.assertEqual(m.detokenize(m.tokenize(long, add_bos=False)).lstrip(" "), long)

    def test_special_tokens(self):
        with hmt.Model(data("llama-f32.gguf")) as m:
            self.assertEqual(m.tokenize("<s>", add_bos=False, special=True), [m.bos])
            self.assertNotEqual(m.tokenize("<s>", add_bos=False), [m.bos])
            self.assertEqual(m.detokenize([m.bos], special=True), "<s>")
            self.assertEqual(m.detokenize([m.bos]), "")

    def test_token_embedding(self):
        with hmt.Model(data("llama-f32.gguf")) as m:
            e = m.token_embedding(5)
            self.assertEqual(len(e), m.n_embd)
            self.assertTrue(all_finite(e))
            with self.assertRaises(hmt.HmtError) as cm:
                m.token_embedding(m.n_vocab)
            self.assertEqual(cm.exception.code, hmt.Status.E_TOKEN)


class TestParams(unittest.TestCase):
    def test_set_get_typed(self):
        with hmt.Params(n_ctx=64, temperature=0.5) as p:
            self.assertEqual(p["n_ctx"], 64)
            self.assertIsInstance(p.get(hmt.Param.N_CTX), int)
            self.assertAlmostEqual(p.get("temperature"), 0.5)
            p[hmt.Param.TOP_K] = 7
            self.assertEqual(p["top_k"], 7)
            p.set("mode", "rmt")
            self.assertEqual(p["mode"], hmt.Mode.RMT)
            p.set("compute_type", "bf16")
            self.assertEqual(p["compute_type"], hmt.ComputeType.BF16)
            p.set("ditto_renorm", "logit")
            p.set(hmt.Param.KNN_LAMBDA_MODE, "entropy_gap")
            self.assertEqual(p["knn_lambda_mode"], hmt.KnnLambdaMode.ENTROPY_GAP)
            q = p.copy()
            self.assertEqual(q.as_dict(), p.as_dict())
            q.close()

    def test_copy_keeps_which_keys_are_set(self):
        # a copy made for keyword arguments must not mark every key as set:
        # the objects refuse the keys they do not read, set ones only
        with hmt.Params(n_threads=1) as p, p.copy() as q, \
                hmt.Model(data("llama-f32.gguf")) as m:
            q.set("n_ctx", 16)
            with hmt.Context(m, q) as ctx:
                self.assertEqual(ctx.n_ctx, 16)
            self.assertEqual(p["n_ctx"], hmt.AUTO)  # the copy is its own object
            with hmt.Context(m, p, n_ctx=8) as ctx:
                self.assertEqual(ctx.n_ctx, 8)

    def test_experimental_keys(self):
        self.assertGreaterEqual(int(hmt.Param.RECALL_BF16), 1000)
        self.assertEqual(hmt.param_name(hmt.Param.KNN_SEED), "knn_seed")
        self.assertEqual(hmt.param_name(hmt.Param.WINDOW), "window")
        with hmt.Params(knn_seed=7, window=32, recall_bf16=1) as p:
            self.assertEqual((p["knn_seed"], p["window"], p["recall_bf16"]), (7, 32, 1))

    def test_bad_values(self):
        with hmt.Params() as p:
            for key, value in (("n_ctx", -5), ("n_ctx", 0), ("top_p", 2.0), (9999, 1),
                               ("recall_bf16", -2), ("compute_type", "f16")):
                with self.subTest(key=key), self.assertRaises(hmt.HmtError) as cm:
                    p.set(key, value)
                self.assertEqual(cm.exception.code, hmt.Status.E_INVAL)
            with self.assertRaises(hmt.HmtError):
                p.set("no_such_key", 1)
            with self.assertRaises(hmt.HmtError):
                p.set("n_ctx", 1.5)
            self.assertEqual(p["n_ctx"], hmt.AUTO)  # unchanged (the default)


class TestSampler(unittest.TestCase):
    def test_greedy_and_seeded(self):
        logits = [0.1, 2.0, -1.0, 1.9, 0.0]
        with hmt.Sampler(temperature=0) as s:
            self.assertEqual(s.sample(logits), 1)
        with hmt.Sampler(seed=42, temperature=1.0, top_k=0, top_p=1.0) as a, \
                hmt.Sampler(seed=42, temperature=1.0, top_k=0, top_p=1.0) as b:
            xs = [a.sample(logits) for _ in range(50)]
            self.assertEqual(xs, [b.sample(logits) for _ in range(50)])
            self.assertGreater(len(set(xs)), 1)
            a.reseed(42)
            b.reseed(42)
            self.assertEqual(a.sample(logits), b.sample(logits))
        with hmt.Sampler() as s, self.assertRaises(hmt.HmtError) as cm:
            s.sample([])
        self.assertEqual(cm.exception.code, hmt.Status.E_INVAL)


class TestLoadErrors(unittest.TestCase):
    def test_bad_path(self):
        with self.assertRaises(hmt.HmtError) as cm:
            hmt.Model("/nonexistent/model.gguf")
        e = cm.exception
        self.assertEqual(e.code, hmt.Status.E_IO)
        self.assertEqual(e.name, "hmt_model_load")
        self.assertIn("/nonexistent/model.gguf", e.message)
        self.assertIn("HMT_E_IO", str(e))
        self.assertEqual(hmt.last_error_msg(), e.message)

    def test_corrupt_file(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "bad.gguf")
            with open(data("llama-f32.gguf"), "rb") as f:
                head = f.read(200)
            with open(p, "wb") as f:
                f.write(head)  # truncated
            with self.assertRaises(hmt.HmtError) as cm:
                hmt.Model(p)
            self.assertEqual(cm.exception.code, hmt.Status.E_FORMAT)
            with open(p, "wb") as f:
                f.write(b"not a gguf file at all" * 10)
            with self.assertRaises(hmt.HmtError) as cm:
                hmt.Model(p)
            self.assertEqual(cm.exception.code, hmt.Status.E_FORMAT)

    def test_pathlike_and_bytes_paths(self):
        import pathlib
        with hmt.Model(pathlib.Path(data("llama-f32.gguf"))) as m:
            self.assertEqual(m.n_vocab, 320)
        with hmt.Model(os.fsencode(data("llama-f32.gguf"))) as m:
            self.assertEqual(m.n_vocab, 320)


if __name__ == "__main__":
    unittest.main()
