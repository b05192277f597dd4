"""The same results through Python as through C: every context golden
(<model>.<case>.golden, "HMTG") and every HMT stream golden
(hmt-*.hmt.golden, "HMTH") replayed through the Python classes, with the
tolerances the C suite uses (tests/check_model.c, tests/check_hmt.c)."""
import math
import unittest

from hmt_testutil import (TOL_LOGIT, TOL_VEC, TOL_WEIGHT, data, hmt, maxdiff, read_hmtg, read_hmth,
                          read_manifest, stream_params)

CASES = "ABCD"


def kl_div(p_logits, q_logits):
    """KL(softmax(p) || softmax(q)) in nats."""
    mp, mq = max(p_logits), max(q_logits)
    zp = math.log(sum(math.exp(v - mp) for v in p_logits))
    zq = math.log(sum(math.exp(v - mq) for v in q_logits))
    return sum(math.exp(a - mp - zp) * ((a - mp - zp) - (b - mq - zq))
               for a, b in zip(p_logits, q_logits))


class TestContextGoldens(unittest.TestCase):
    def replay(self, ctx, g, use_eval_tokens=False):
        got_l, got_h = [], []
        row = 0
        for c in g["chunks"]:
            toks = g["tokens"][row:row + c]
            pos = g["pos"][row:row + c]
            if toks[0] >= 0:
                ctx.eval(tokens=toks, pos=pos, outputs=hmt.OUT_LOGITS | hmt.OUT_HIDDEN)
            else:
                first = sum(1 for t in g["tokens"][:row] if t < 0)
                ctx.eval(embd=[list(e) for e in g["embd"][first:first + c]], pos=pos,
                         outputs=[hmt.OUT_LOGITS | hmt.OUT_HIDDEN] * c)
            for r in range(c):
                got_l.append(ctx.logits(r, copy=True))
                got_h.append(ctx.hidden(r, copy=True))
            self.assertEqual(ctx.n_past, row + c)
            row += c
        return got_l, got_h

    def test_every_model_and_case(self):
        for row in read_manifest():
            agree = rows = 0  # top-1 agreement over all cases (quantized weights)
            with hmt.Model(data(row["file"])) as m, hmt.Context(m, n_threads=2) as ctx:
                for case in CASES:
                    with self.subTest(model=row["name"], case=case):
                        g = read_hmtg(data(f"{row['name']}.{case}.golden"))
                        ctx.kv_clear()
                        logits, hidden = self.replay(ctx, g)
                        dl = max(maxdiff(a, b) for a, b in zip(logits, g["logits"]))
                        dh = max(maxdiff(a, b) for a, b in zip(hidden, g["hidden"]))
                        if row["wtype"] in ("f32", "f16", "bf16"):
                            self.assertLessEqual(dl, TOL_LOGIT)
                            self.assertLessEqual(dh, TOL_VEC)
                            continue
                        # Block-quantized weights (llama-q8): chunks of <= 4 rows take
                        # the decode path, which quantizes activations to 8 bits
                        # (docs/QUANTS.md); the goldens use exact activations. So the
                        # issue's KL bar instead of 1e-4 (tests/check_qmodel.c checks
                        # each path exactly against its own reference): mean KL <= 1e-3,
                        # max |dlogit| <= 0.3 (the activation quantization moves
                        # logits by <= 0.17 here), and top-1 agreement on 95% of the
                        # rows of all cases: random weights give near-flat
                        # distributions whose top two logits the 8-bit rounding can
                        # swap; the 99% top-1 bar is measured on real text
                        # (tests/reference/quant_accuracy_text.py).
                        kl = [kl_div(b, a) for a, b in zip(logits, g["logits"])]
                        self.assertLessEqual(sum(kl) / len(kl), 1e-3)
                        agree += sum(max(range(len(a)), key=a.__getitem__) ==
                                     max(range(len(b)), key=b.__getitem__)
                                     for a, b in zip(logits, g["logits"]))
                        rows += len(logits)
                        self.assertLessEqual(dl, 0.3)
                        self.assertLessEqual(dh, 0.1)
            if rows:
                self.assertGreaterEqual(agree * 100, 95 * rows, row["name"])

    def test_eval_tokens_last_row_matches(self):
        g = read_hmtg(data("llama-f32.A.golden"))
        with hmt.Model(data("llama-f32.gguf")) as m, hmt.Context(m, n_threads=1) as ctx:
            ctx.eval_tokens(g["tokens"])
            self.assertLessEqual(maxdiff(ctx.logits(), g["logits"][-1]), TOL_LOGIT)
            self.assertIsNone(ctx.logits(0))  # not requested
            ctx.kv_clear()
            ctx.eval_tokens(g["tokens"], all_logits=True)
            for i in range(len(g["tokens"])):
                self.assertLessEqual(maxdiff(ctx.logits(i), g["logits"][i]), TOL_LOGIT)
            # rewind to 4 and re-evaluate the rest: same as the batch
            ctx.kv_rewind(4)
            self.assertEqual(ctx.n_past, 4)
            ctx.eval(tokens=g["tokens"][4:], outputs=hmt.OUT_LOGITS)
            self.assertLessEqual(maxdiff(ctx.logits(-1), g["logits"][-1]), TOL_LOGIT)
            self.assertIsNone(ctx.hidden(-1))


class TestStreamGoldens(unittest.TestCase):
    def run_case(self, case, chunk):
        g = read_hmth(data(case["golden"]))
        m = hmt.Model(data(case["model"]))
        a = None if case["adapter"] == "-" else hmt.Adapter(m, data(case["adapter"]))
        st = hmt.Stream(m, a, **stream_params(case))
        seen = {}
        st.set_recall_callback(lambda seg, w, s: seen.__setitem__(seg, (list(w), list(s))))
        logits = [None] * g["n_tokens"]
        toks = list(g["tokens"])
        i = 0
        while i < len(toks):
            r = st.feed(toks[i:i + chunk])
            for t in r:
                logits[t] = st.logits(t, copy=True)
            i += chunk
        for t in st.flush():
            logits[t] = st.logits(t, copy=True)
        self.assertEqual(st.n_fed, len(toks))
        self.assertEqual(st.n_ready, len(toks))
        dl = max(maxdiff(x, y) for x, y in zip(logits, g["logits"]))
        self.assertLessEqual(dl, TOL_LOGIT)
        if case["mode"] != "window":
            self.assertEqual(st.n_segments, g["n_segments"])
        if case["mode"] == "full":
            for s, ref in enumerate(g["segments"]):
                if s == 0:
                    continue  # P_0 = M_init: no recall
                w, segs = seen[s]
                self.assertEqual(segs, ref["cached"], f"segment {s}")
                self.assertLessEqual(maxdiff(w, ref["weights"]), TOL_WEIGHT)
            w, segs = st.recall()
            self.assertEqual(list(segs), g["segments"][-1]["cached"])
            self.assertLessEqual(maxdiff(w, g["segments"][-1]["weights"]), TOL_WEIGHT)
        st.close()
        if a is not None:
            a.close()
        m.close()

    def test_every_case(self):
        for case in read_manifest("hmt-manifest.txt"):
            for chunk in (1 << 20, 1, 5):
                with self.subTest(case=case["case"], chunk=chunk):
                    self.run_case(case, chunk)

    def test_adapter_and_stream_keys(self):
        case = next(c for c in read_manifest("hmt-manifest.txt") if c["case"] == "hmt-full-a")
        with hmt.Model(data(case["model"])) as m, hmt.Adapter(m, data(case["adapter"])) as a:
            self.assertEqual(a.segment_length, int(case["L"]))
            self.assertEqual(a.sensory_length, int(case["k"]))
            self.assertEqual(a.cache_size, int(case["N"]))
            self.assertEqual(a.recall_dim, int(case["d_h"]))
            self.assertEqual(a.summary_length, int(case["j"]))
            with hmt.Stream(m, a) as st:
                self.assertEqual(st.get("segment_length"), int(case["L"]))
                self.assertEqual(st.get(hmt.Param.MODE), hmt.Mode.FULL)
                self.assertTrue(st.lookahead)
                st.lookahead = False
                self.assertFalse(st.lookahead)
                self.assertIs(st.adapter, a)
                self.assertIs(st.model, m)

    def test_snapshot_bytes_and_file(self):
        import os
        import tempfile
        case = next(c for c in read_manifest("hmt-manifest.txt") if c["case"] == "hmt-full-a")
        g = read_hmth(data(case["golden"]))
        toks = list(g["tokens"])
        with hmt.Model(data(case["model"])) as m, hmt.Adapter(m, data(case["adapter"])) as a, \
                hmt.Stream(m, a, n_threads=1) as s1, hmt.Stream(m, a, n_threads=1) as s2, \
                tempfile.TemporaryDirectory() as d:
            s1.feed(toks[:21])
            snap = s1.save()
            self.assertIsInstance(snap, bytes)
            s2.restore(snap)
            self.assertEqual((s2.n_fed, s2.n_ready), (s1.n_fed, s1.n_ready))
            path = os.path.join(d, "snap.bin")
            s1.save_file(path)
            with open(path, "rb") as f:
                self.assertEqual(f.read(), snap)
            with hmt.Stream(m, a, n_threads=1) as s3:
                s3.restore_file(path)
                for t in toks[21:]:
                    r1, r2, r3 = s1.feed([t]), s2.feed([t]), s3.feed([t])
                    self.assertEqual(r1, r2)
                    self.assertEqual(r1, r3)
                    for i in r1:
                        b1 = bytes(memoryview(s1.logits(i, copy=True)).cast("B"))
                        self.assertEqual(b1, bytes(memoryview(s2.logits(i, copy=True)).cast("B")))
                        self.assertEqual(b1, bytes(memoryview(s3.logits(i, copy=True)).cast("B")))
            with self.assertRaises(hmt.HmtError) as cm:
                s2.restore(snap[:-1])
            self.assertEqual(cm.exception.code, hmt.Status.E_FORMAT)
            with self.assertRaises(hmt.HmtError) as cm:
                s2.restore_file(os.path.join(d, "missing.bin"))
            self.assertEqual(cm.exception.code, hmt.Status.E_IO)


if __name__ == "__main__":
    unittest.main()
