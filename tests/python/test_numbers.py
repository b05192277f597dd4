"""Issue 12 items 7-9 from Python: the sampler's rule for non-finite logits
(checked against NumPy's softmax), non-finite inputs refused at their
source, and Python numbers that do not fit their C argument refused instead
of wrapped (docs/PYTHON.md, "Types")."""
import math
import unittest

from hmt_testutil import data, hmt

INF, NAN = math.inf, math.nan

try:
    import numpy as np
except ImportError:
    np = None


class Fixture(unittest.TestCase):
    def setUp(self):
        self.model = hmt.Model(data("llama-f32.gguf"))
        self.ctx = hmt.Context(self.model, n_ctx=64, n_threads=1)

    def tearDown(self):
        self.ctx.close()
        self.model.close()

    def raises(self, code, fn, *args, **kwargs):
        with self.assertRaises(hmt.HmtError) as cm:
            fn(*args, **kwargs)
        self.assertEqual(cm.exception.code, code, cm.exception)
        return cm.exception


class TestSamplerRule(Fixture):
    """-inf bans a token; NaN, +inf and 'every token banned' are refused
    with E_INVAL, by sample and apply alike, with or without processors."""

    def test_refused(self):
        for t in (0.0, 0.8):
            with hmt.Sampler(temperature=t, top_k=0, top_p=1.0) as s, \
                    hmt.Sampler(temperature=t, top_k=0, top_p=1.0,
                                procs=[hmt.PyProc(lambda z, k: None)]) as sp:
                for bad in ([0, 0, INF, -INF], [0, NAN, 1], [-INF, -INF]):
                    with self.subTest(t=t, logits=bad):
                        self.raises(hmt.Status.E_INVAL, s.sample, bad)
                        self.raises(hmt.Status.E_INVAL, s.apply, bad)
                        self.raises(hmt.Status.E_INVAL, sp.sample, bad)

    def test_minus_inf_is_never_drawn_and_the_rest_is_softmax(self):
        z = [-INF, 0.0, -INF, 1.0, 0.5, -INF]
        n = 6000
        with hmt.Sampler(temperature=0.7, top_k=0, top_p=1.0, seed=3) as s:
            counts = [0] * len(z)
            for _ in range(n):
                counts[s.sample(z)] += 1
        self.assertEqual([counts[i] for i in (0, 2, 5)], [0, 0, 0])
        if np is not None:
            a = np.array(z) / 0.7
            p = np.exp(a - a.max())
            p /= p.sum()
        else:
            e = [0.0 if v == -INF else math.exp(v / 0.7) for v in z]
            p = [x / sum(e) for x in e]
        for i in (1, 3, 4):
            sd = math.sqrt(p[i] * (1 - p[i]) / n)
            self.assertAlmostEqual(counts[i] / n, float(p[i]), delta=5 * sd)


class TestNonFinite(Fixture):
    def test_embedding_row(self):
        d = self.model.n_embd
        e = [0.01] * (3 * d)
        e[2 * d + 9] = NAN
        err = self.raises(hmt.Status.E_INVAL, self.ctx.eval, embd=e)
        self.assertIn("row 2, column 9", err.message)
        self.assertEqual(self.ctx.n_past, 0)

    def test_float_params(self):
        with hmt.Params() as p:
            for key in ("temperature", "top_p", "knn_lambda", "ditto_lambda"):
                for v in (NAN, INF, -INF):
                    with self.subTest(key=key, v=v):
                        self.raises(hmt.Status.E_INVAL, p.set, key, v)


class TestIntegers(Fixture):
    """Integers that do not fit their C type raise HmtError instead of
    wrapping; non-integers raise TypeError."""

    def test_token_ids_do_not_wrap(self):
        for toks in ([1, 2 ** 32 + 5], [1, 2 ** 70], [2 ** 31]):
            with self.subTest(toks=toks):
                self.raises(hmt.Status.E_TOKEN, self.ctx.eval_tokens, toks)
                self.raises(hmt.Status.E_TOKEN, self.model.detokenize, toks)
        self.assertEqual(self.ctx.n_past, 0)
        with hmt.Sampler() as s:
            self.raises(hmt.Status.E_TOKEN, s.accept, 2 ** 32 + 1)

    def test_non_integers_are_refused(self):
        for toks in ([1.5], [1.0], [True], ["1"], "12"):
            with self.subTest(toks=toks), self.assertRaises(TypeError):
                self.model.detokenize(toks)
        with self.assertRaises(TypeError):
            self.ctx.eval_tokens([1, 2.0])
        with self.assertRaises(TypeError):
            self.ctx.set_int("n_threads", 2.9)
        with hmt.Sampler() as s, self.assertRaises(TypeError):
            s.accept(1.5)
        with self.assertRaises(TypeError):
            self.ctx.logits(0.0)
        with hmt.Sampler() as s:
            with self.assertRaises(TypeError):
                s.reseed(1.5)
            with self.assertRaises(TypeError):
                s.sample(["1.0", "2.0"])
            with self.assertRaises(TypeError):
                s.sample([True, False])

    def test_numpy_integers_are_integers(self):
        if np is None:
            self.skipTest("NumPy not available")
        self.ctx.eval_tokens(np.array([1, 2, 3], dtype=np.int64))
        self.ctx.eval_tokens([np.int16(4), np.uint8(5)])
        self.assertEqual(self.ctx.n_past, 5)
        self.assertEqual(self.model.detokenize(np.array([5], np.uint32)),
                         self.model.detokenize([5]))
        self.raises(hmt.Status.E_TOKEN, self.ctx.eval_tokens, np.array([2 ** 32 + 5]))
        self.raises(hmt.Status.E_TOKEN, self.ctx.eval_tokens, np.array([2 ** 32 - 1], np.uint32))
        with self.assertRaises(TypeError):
            self.ctx.eval_tokens(np.array([1.0, 2.0]))
        with self.assertRaises(TypeError):
            self.ctx.eval_tokens(np.array([True]))
        with hmt.Sampler() as s:
            s.reseed(np.uint64(2 ** 64 - 1))

    def test_positions_indices_counts_seeds(self):
        self.raises(hmt.Status.E_INVAL, self.ctx.eval, tokens=[1, 2], pos=[0, 2 ** 32])
        self.raises(hmt.Status.E_INVAL, self.ctx.eval, tokens=[1], outputs=[257])
        self.raises(hmt.Status.E_INVAL, self.ctx.eval, tokens=[1], outputs=-1)
        self.ctx.eval_tokens([1, 2, 3], all_logits=True)
        self.raises(hmt.Status.E_INVAL, self.ctx.logits, 2 ** 32 - 1)  # not row -1
        self.raises(hmt.Status.E_INVAL, self.ctx.kv_rewind, 2 ** 32)   # not 0
        self.assertEqual(self.ctx.n_past, 3)
        self.raises(hmt.Status.E_INVAL, self.ctx.set_int, "n_threads", 2 ** 64 + 1)
        with hmt.Sampler() as s:
            self.raises(hmt.Status.E_INVAL, s.reseed, -1)
            self.raises(hmt.Status.E_INVAL, s.reseed, 2 ** 64)
            s.reseed(2 ** 64 - 1)
        with hmt.Sampler() as s:
            self.raises(hmt.Status.E_INVAL, s.sample_ctx, self.ctx, 2 ** 32 - 1)  # not row -1
            with hmt.Stream(self.model, mode="segments", segment_length=8, n_threads=1) as st:
                st.feed([1, 2, 3])
                self.raises(hmt.Status.E_INVAL, s.sample_stream, st, 2 ** 64)
                self.raises(hmt.Status.E_INVAL, s.sample_stream, st, 5)  # not ready
                self.assertGreaterEqual(s.sample_stream(st), 0)        # the last ready one
        with hmt.Params() as p:
            self.raises(hmt.Status.E_INVAL, p.set, "n_ctx", 2 ** 70)
            self.raises(hmt.Status.E_INVAL, p.set, "n_ctx", 64.0)
            self.raises(hmt.Status.E_INVAL, p.set, "temperature", "0.5")
            self.raises(hmt.Status.E_INVAL, p.set, "temperature", True)
            p.set("all_logits", False)
            p.set("temperature", 1)
            self.assertEqual(p["all_logits"], 0)
            self.assertEqual(p["temperature"], 1.0)


if __name__ == "__main__":
    unittest.main()
