"""Half-precision KV caches through Python (kv_type): the key takes the
enum and its names, results stay close to an F32 cache, and a state keeps
its cache's type."""
import unittest

from hmt_testutil import data, hmt, maxdiff


class TestKvType(unittest.TestCase):
    def setUp(self):
        self.model = hmt.Model(data("llama-f32.gguf"))

    def tearDown(self):
        self.model.close()

    def test_half_caches(self):
        toks = [1, 5, 9, 13, 2, 7]
        with hmt.Context(self.model, n_ctx=16) as ref:
            ref.eval(tokens=toks)
            want, state32 = ref.logits(copy=True), ref.save()
        for kv in ("f16", hmt.KvType.BF16):
            with hmt.Context(self.model, n_ctx=16, kv_type=kv) as ctx:
                self.assertEqual(ctx.get("kv_type"), hmt.KvType(kv) if not isinstance(kv, str)
                                 else hmt.KvType[kv.upper()])
                ctx.eval(tokens=toks)
                d = maxdiff(ctx.logits(copy=True), want)
                self.assertTrue(0 < d < 0.05, d)
                state = ctx.save()
                self.assertLess(len(state), len(state32))
                with self.assertRaises(hmt.HmtError) as e:
                    ctx.restore(state32)
                self.assertEqual(e.exception.code, hmt.Status.E_INVAL)
                self.assertIn("KV cache is F32", str(e.exception))
                ctx.restore(state)
                self.assertEqual(ctx.n_past, len(toks))
        with self.assertRaises(hmt.HmtError):
            hmt.Context(self.model, kv_type=3)


if __name__ == "__main__":
    unittest.main()
