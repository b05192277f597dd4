"""Samplers with processors (Python processors, DITTO; 0.1's chains) and
kNN-LM datastores through Python: results, ownership, and exceptions inside
Python processors."""
import math
import os
import tempfile
import unittest

from hmt_testutil import data, hmt


def log_softmax(xs):
    m = max(xs)
    s = math.log(sum(math.exp(x - m) for x in xs))
    return [x - m - s for x in xs]


class TestSamplerProcessors(unittest.TestCase):
    LOGITS = [0.5, 2.0, -1.0, 1.5, 0.0, 3.0]

    def test_no_processor_is_log_softmax(self):
        with hmt.Sampler() as s:
            self.assertEqual(len(s), 0)
            out = s.apply(self.LOGITS)
            for a, b in zip(out, log_softmax(self.LOGITS)):
                self.assertAlmostEqual(float(a), b, places=5)

    def test_chain_is_gone(self):
        with self.assertRaises(AttributeError) as cm:
            hmt.Chain
        self.assertIn("Sampler", str(cm.exception))

    def test_python_processor(self):
        seen = {"accept": [], "reset": 0, "keys": []}

        def forbid_best(logits, key):
            seen["keys"].append(None if key is None else list(key))
            logits[5] = float("-inf")

        p = hmt.PyProc(forbid_best, accept=seen["accept"].append,
                       reset=lambda: seen.__setitem__("reset", seen["reset"] + 1), name="forbid",
                       prepare=lambda keys: seen.setdefault("prepared", []).append(
                           [list(k) for k in keys]))
        with hmt.Sampler(temperature=0, procs=[p]) as s:
            self.assertEqual(s.n_procs, 1)
            p.close()  # drops our reference: the sampler keeps its own
            self.assertTrue(p.closed)
            out = s.apply(self.LOGITS, key=[1.0, 2.0])
            self.assertEqual(float(out[5]), float("-inf"))
            self.assertAlmostEqual(sum(math.exp(float(x)) for x in out), 1.0, places=5)
            self.assertEqual(seen["keys"], [[1.0, 2.0]])
            self.assertEqual(s.sample(self.LOGITS), 1)  # sample accepts its token
            self.assertEqual(seen["keys"][-1], None)     # sample passes no key
            self.assertEqual(seen["accept"], [1])
            s.accept(3)
            self.assertEqual(seen["accept"], [1, 3])
            s.reset()
            self.assertEqual(seen["reset"], 1)
            s.prepare([[1.0, 2.0], [3.0, 4.0]])
            s.prepare([5.0, 6.0, 7.0], n_key=1)
            self.assertEqual(seen["prepared"], [[[1.0, 2.0], [3.0, 4.0]], [[5.0], [6.0], [7.0]]])
            with self.assertRaises(hmt.HmtError):
                s.prepare([1.0, 2.0, 3.0], n_key=2)

    def test_exception_in_processor(self):
        def bad(logits, key):
            raise ValueError("bad processor")
        def bad_accept(token):
            raise KeyError(token)
        with hmt.Sampler(procs=[hmt.PyProc(bad)]) as s:
            for _ in range(3):
                with self.assertRaises(ValueError) as cm:
                    s.apply(self.LOGITS)
                self.assertIsInstance(cm.exception.__cause__, hmt.HmtError)
                with self.assertRaises(ValueError):
                    s.sample(self.LOGITS)
        with hmt.Sampler(temperature=0, procs=[hmt.PyProc(lambda z, k: None,
                                                          accept=bad_accept)]) as s:
            with self.assertRaises(KeyError) as cm:
                s.sample(self.LOGITS)  # the draw completed; accept raised
            self.assertEqual(cm.exception.args, (5,))
            s.apply(self.LOGITS)       # nothing left over from it

    def test_status_from_processor(self):
        with hmt.Sampler(procs=[hmt.PyProc(lambda logits, key: hmt.Status.E_MISUSE,
                                           name="refuser")]) as s:
            with self.assertRaises(hmt.HmtError) as cm:
                s.apply(self.LOGITS)
            self.assertEqual(cm.exception.code, hmt.Status.E_MISUSE)
            self.assertIn("refuser", cm.exception.message)

    def test_ditto(self):
        with hmt.Model(data("llama-f32.gguf")) as m:
            d = hmt.DittoProc(m, ditto_lambda=0.5)
            d.set_delimiters([m.tokenize(".", add_bos=False)[-1]])
            with hmt.Sampler(procs=[d]) as s:
                d.set_delimiters([5])  # ours as well as the sampler's
                logits = [0.0] * m.n_vocab
                out = s.apply(logits)
                self.assertEqual(len(out), m.n_vocab)
            d.close()
            with self.assertRaises(hmt.HmtError):
                hmt.DittoProc(m, ditto_lambda=2.0)

    def test_ditto_penalises_a_repeat(self):
        # a sentence "1 2 ." accepted twice: the third repeat of 1 after "."
        # is penalised relative to the plain distribution
        with hmt.Model(data("llama-f32.gguf")) as m, \
                hmt.DittoProc(m, ditto_lambda=0.5, ditto_min_sentence=2) as d, \
                hmt.Sampler(procs=[d]) as s, hmt.Sampler() as plain:
            d.set_delimiters([9])
            for t in [1, 2, 9, 1, 2, 9]:
                s.accept(t)
            logits = [0.0] * m.n_vocab
            lp, ref = s.apply(logits), plain.apply(logits)
            self.assertLess(float(lp[1]), float(ref[1]) - 0.1)
            s.reset()
            self.assertAlmostEqual(float(s.apply(logits)[1]), float(ref[1]), places=6)

    def test_proc_free_standing(self):
        p = hmt.PyProc(lambda logits, key: None)
        p.close()
        p.close()
        self.assertTrue(p.closed)


class TestKnn(unittest.TestCase):
    def test_build_load_search_interpolate(self):
        with hmt.Model(data("llama-f32.gguf")) as m, hmt.Context(m, n_ctx=64, n_threads=1) as ctx, \
                tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "store.knn")
            toks = m.tokenize("the cat sat on the mat and the dog sat on the log " * 3)
            calls = []
            with hmt.KnnBuilder(m, path) as b:
                b.add_ctx(ctx, toks, progress=lambda done, total: calls.append((done, total)))
                n = b.count
                self.assertEqual(n, len(toks) - 1)
                b.finish()
            self.assertTrue(calls)
            with hmt.Knn(m, path, n_threads=1) as knn:
                self.assertEqual((knn.count, knn.dim, knn.n_vocab), (n, m.n_embd, m.n_vocab))
                self.assertEqual(knn.key_dtype, hmt.KnnDtype.F32)
                self.assertGreater(knn.bytes_per_key, 4 * m.n_embd)
                key, value = knn.copy_entry(3)
                self.assertEqual(value, toks[4])
                self.assertEqual(knn.get(3)[1], value)  # the 0.1 name
                dist, idx = knn.search(list(key), 4)
                self.assertEqual(int(idx[0][0]), 3)
                self.assertEqual(float(dist[0][0]), 0.0)
                d3, i3, v3 = knn.search([list(key), list(key)], n + 2, values=True)
                self.assertEqual(list(i3[0]), list(i3[1]))
                self.assertEqual(int(i3[0][0]), 3)
                for r in range(2):
                    self.assertEqual([int(x) for x in v3[r][:n]],
                                     [knn.copy_entry(int(i))[1] for i in i3[r][:n]])
                    self.assertEqual([int(x) for x in v3[r][n:]], [-1, -1])
                    self.assertEqual([int(x) for x in i3[r][n:]], [-1, -1])
                # the key a context computes is the stored key
                ctx.kv_clear()
                ctx.eval(tokens=toks[:4], outputs=hmt.OUT_FFN_INPUT | hmt.OUT_LOGITS)
                k3 = ctx.ffn_input(3, copy=True)
                self.assertLess(max(abs(float(a) - float(b)) for a, b in zip(k3, key)), 1e-5)
                logits = ctx.logits(3, copy=True)
                lp, lam = knn.interpolate(k3, logits, knn_k=8, knn_lambda=0.25)
                self.assertEqual(len(lam), 1)
                self.assertAlmostEqual(float(lam[0]), 0.25, places=6)
                row = lp[0]
                self.assertAlmostEqual(sum(math.exp(float(x)) for x in row), 1.0, places=4)
                # the processor in a sampler gives the same distribution
                with hmt.KnnProc(knn, knn_k=8, knn_lambda=0.25) as kp, \
                        hmt.Sampler(temperature=0, procs=[kp]) as s:
                    out = s.apply(logits, key=k3)
                    self.assertLess(max(abs(float(a) - float(b)) for a, b in zip(out, row)), 1e-5)
                    with self.assertRaises(hmt.HmtError) as cm:
                        s.apply(logits)  # no key
                    self.assertEqual(cm.exception.code, hmt.Status.E_MISUSE)
                    with self.assertRaises(hmt.HmtError) as cm:
                        s.sample(logits)  # sample() has no key either
                    self.assertEqual(cm.exception.code, hmt.Status.E_MISUSE)
                    # sample_ctx reads the row's logits and its kept key itself
                    best = max(range(len(row)), key=lambda i: float(row[i]))
                    self.assertEqual(s.sample_ctx(ctx, 3), best)
                    # prepared keys give the same distribution
                    s.prepare([k3])
                    out2 = s.apply(logits, key=k3)
                    self.assertEqual([float(x) for x in out2], [float(x) for x in out])
                with self.assertRaises(hmt.HmtError) as cm:
                    hmt.KnnProc(knn, knn_k=8, temperature=0.5)  # a sampler key
                self.assertEqual(cm.exception.code, hmt.Status.E_INVAL)
                self.assertIn("temperature", cm.exception.message)
                # from given neighbours: lambda 1, one neighbour -> all mass on its value
                lp1, lam1 = hmt.knn_interpolate_neighbors([0.0], [value], logits, knn_lambda=1.0)
                self.assertAlmostEqual(float(lp1[value]), 0.0, places=5)
                self.assertEqual(float(lam1), 1.0)
            with self.assertRaises(hmt.HmtError) as cm:
                hmt.Knn(m, os.path.join(d, "missing.knn"))
            self.assertEqual(cm.exception.code, hmt.Status.E_IO)

    def test_builder_errors_and_progress_abort(self):
        with hmt.Model(data("llama-f32.gguf")) as m, hmt.Context(m, n_ctx=16, n_batch=4,
                                                                n_threads=1) as ctx, \
                tempfile.TemporaryDirectory() as d:
            with hmt.KnnBuilder(m, os.path.join(d, "a.knn")) as b:
                with self.assertRaises(hmt.HmtError) as cm:
                    b.add([0.0] * m.n_embd, [m.n_vocab])
                self.assertEqual(cm.exception.code, hmt.Status.E_TOKEN)
                def stop(done, total):
                    raise RuntimeError("stop")
                with self.assertRaises(RuntimeError) as cm:
                    b.add_ctx(ctx, list(range(3, 40)), progress=stop)
                self.assertEqual(cm.exception.__cause__.code, hmt.Status.E_ABORTED)
                with self.assertRaises(hmt.HmtError) as cm:
                    b.add_ctx(ctx, list(range(3, 40)), progress=lambda done, total: True)
                self.assertEqual(cm.exception.code, hmt.Status.E_ABORTED)
                if b.count:
                    b.finish()
                with self.assertRaises(hmt.HmtError) as cm:
                    b.finish()  # finished twice, or nothing added
                self.assertEqual(cm.exception.code, hmt.Status.E_MISUSE)


if __name__ == "__main__":
    unittest.main()
