"""The built-in sampling processors (MinPProc, TypicalProc, PenaltiesProc,
LogitBiasProc) through Python: against the NumPy statement of their
definitions (tests/reference/sampler_ref.py) when NumPy is there, and their
behaviour and argument errors either way."""
import math
import os
import random
import sys
import unittest

from hmt_testutil import ROOT, data, hmt

sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))


class Spy:
    """A last processor that records the logits it is given."""

    def __init__(self):
        self.seen = None
        self.proc = hmt.PyProc(self.apply, name="spy")

    def apply(self, logits, key):
        self.seen = [float(x) for x in logits]


def chain(*procs):
    spy = Spy()
    s = hmt.Sampler(procs=list(procs) + [spy.proc])
    return s, spy


class TestBehaviour(unittest.TestCase):
    Z = [0.5, 2.0, -1.0, 1.5, 0.0, 3.0]

    def test_min_p(self):
        s, spy = chain(hmt.MinPProc(min_p=0.5))
        s.apply(self.Z)
        kept = [i for i, v in enumerate(spy.seen) if v != -math.inf]
        # p_i >= 0.5 p_max  <=>  z_i >= 3 + ln 0.5 = 2.31
        self.assertEqual(kept, [5])
        for i in kept:
            self.assertEqual(spy.seen[i], self.Z[i])
        s2, spy2 = chain(hmt.MinPProc(min_p=0.5, min_keep=3))
        s2.apply(self.Z)
        self.assertEqual([i for i, v in enumerate(spy2.seen) if v != -math.inf], [1, 3, 5])

    def test_typical_keeps_mass(self):
        s, spy = chain(hmt.TypicalProc(typical_p=0.6))
        s.apply(self.Z)
        m = max(self.Z)
        tot = sum(math.exp(z - m) for z in self.Z)
        kept = sum(math.exp(z - m) / tot for z, v in zip(self.Z, spy.seen) if v != -math.inf)
        self.assertGreater(kept, 0.6)
        self.assertLess(sum(v != -math.inf for v in spy.seen), len(self.Z))

    def test_penalties_follow_accept_and_reset(self):
        s, spy = chain(hmt.PenaltiesProc(penalty_last_n=3, repeat_penalty=2.0,
                                         frequency_penalty=0.25, presence_penalty=0.5))
        for t in (1, 1, 2, 5):  # window of 3: 1, 2, 5
            s.accept(t)
        s.apply(self.Z)
        want = list(self.Z)
        want[1] = 2.0 / 2 - 0.25 - 0.5
        want[2] = -1.0 * 2 - 0.25 - 0.5
        want[5] = 3.0 / 2 - 0.25 - 0.5
        for a, b in zip(spy.seen, want):
            self.assertAlmostEqual(a, b, places=6)
        s.reset()
        s.apply(self.Z)
        self.assertEqual(spy.seen, [float(z) for z in self.Z])

    def test_logit_bias(self):
        s, spy = chain(hmt.LogitBiasProc({0: 1.0, 4: -math.inf}))
        s.apply(self.Z)
        self.assertEqual(spy.seen[0], 1.5)
        self.assertEqual(spy.seen[4], -math.inf)
        s2, spy2 = chain(hmt.LogitBiasProc([(2, 1.0), (2, 0.5)]))
        s2.apply(self.Z)
        self.assertEqual(spy2.seen[2], 0.5)
        s3, spy3 = chain(hmt.LogitBiasProc([]))
        s3.apply(self.Z)
        self.assertEqual(spy3.seen, [float(z) for z in self.Z])

    def test_sample_never_draws_removed(self):
        s = hmt.Sampler(temperature=1.0, top_k=0, top_p=1.0, seed=3,
                        procs=[hmt.MinPProc(min_p=0.3)])
        drawn = {s.sample(self.Z) for _ in range(300)}
        # kept: z >= 3 + ln 0.3 = 1.80, tokens 1 (z 2.0) and 5 (z 3.0); 3 (z 1.5) is not
        self.assertEqual(drawn, {1, 5})


class TestErrors(unittest.TestCase):
    def code(self, fn, *a, **k):
        with self.assertRaises(hmt.HmtError) as cm:
            fn(*a, **k)
        return cm.exception

    def test_params(self):
        for cls, kw, name in [(hmt.MinPProc, dict(min_p=1.5), "min_p"),
                              (hmt.MinPProc, dict(min_p=float("nan")), "min_p"),
                              (hmt.TypicalProc, dict(typical_p=-0.5), "typical_p"),
                              (hmt.TypicalProc, dict(min_keep=-1), "min_keep"),
                              (hmt.PenaltiesProc, dict(penalty_last_n=-1), "penalty_last_n"),
                              (hmt.PenaltiesProc, dict(repeat_penalty=0.0), "repeat_penalty"),
                              (hmt.MinPProc, dict(typical_p=0.5), "typical_p"),
                              (hmt.PenaltiesProc, dict(min_p=0.5), "min_p")]:
            e = self.code(cls, **kw)
            self.assertEqual(e.code, hmt.Status.E_INVAL, (cls, kw))
            self.assertIn(name, e.message)

    def test_logit_bias(self):
        self.assertEqual(self.code(hmt.LogitBiasProc, {-1: 1.0}).code, hmt.Status.E_INVAL)
        e = self.code(hmt.LogitBiasProc, {1: float("nan")})
        self.assertEqual(e.code, hmt.Status.E_INVAL)
        self.assertIn("NaN", e.message)
        self.assertIn("+inf", self.code(hmt.LogitBiasProc, {1: math.inf}).message)
        self.assertEqual(self.code(hmt.LogitBiasProc, [(1, 2, 3)]).code, hmt.Status.E_INVAL)
        with hmt.Model(data("llama-f32.gguf")) as m:
            e = self.code(hmt.LogitBiasProc, {m.n_vocab: 1.0}, model=m)
            self.assertEqual(e.code, hmt.Status.E_INVAL)
            self.assertIn("outside", e.message)
        s, _ = chain(hmt.LogitBiasProc({10: 1.0}))
        e = self.code(s.apply, [0.0] * 10)
        self.assertIn("logit-bias", e.message)


@unittest.skipIf(not hmt.HAVE_NUMPY, "needs NumPy (the reference)")
class TestAgainstReference(unittest.TestCase):
    def setUp(self):
        import numpy as np
        import sampler_ref
        self.np, self.ref = np, sampler_ref
        self.rng = np.random.default_rng(99)

    def check(self, proc, fn, *args, hist=()):
        np = self.np
        s, spy = chain(proc)
        for t in hist:
            s.accept(t)
        z = (self.rng.standard_normal(80) * 2).astype(np.float32)
        z[[3, 40]] = -np.inf
        s.apply(z)
        want, _ = fn(z, *args)
        got = np.array(spy.seen)
        self.assertTrue(np.array_equal(np.isinf(got), np.isinf(want)))
        fin = np.isfinite(want)
        np.testing.assert_allclose(got[fin], want[fin], rtol=1e-6, atol=1e-6)
        return int(fin.sum())

    def test_min_p(self):
        self.assertLess(self.check(hmt.MinPProc(min_p=0.1), self.ref.min_p, 0.1, 0), 78)
        self.assertEqual(self.check(hmt.MinPProc(min_p=0.5, min_keep=9), self.ref.min_p, 0.5, 9), 9)

    def test_typical(self):
        self.assertLess(self.check(hmt.TypicalProc(typical_p=0.7), self.ref.typical, 0.7, 0), 78)

    def test_penalties(self):
        hist = [random.Random(5).randrange(90) for _ in range(40)]
        self.check(hmt.PenaltiesProc(penalty_last_n=16, repeat_penalty=1.3, frequency_penalty=0.1,
                                     presence_penalty=0.4),
                   lambda z: self.ref.penalties(z, hist[-16:], 1.3, 0.1, 0.4), hist=hist)

    def test_logit_bias(self):
        pairs = [(1, 0.5), (7, -3.0), (1, 2.0), (79, -self.np.inf)]
        self.check(hmt.LogitBiasProc(pairs), self.ref.logit_bias, pairs)


if __name__ == "__main__":
    unittest.main()
