"""Context.save / restore / save_file / restore_file (C: hmt_ctx_save...,
docs/API.md "Context state"): a restored context gives the saved outputs
and continues bit-identically; bad states raise and change nothing."""
import os
import tempfile
import unittest

from hmt_testutil import data, hmt


def raw(v):
    """The bytes of a float vector (NumPy array or array.array)."""
    return bytes(memoryview(v).cast("B"))


class TestContextState(unittest.TestCase):
    def setUp(self):
        self.model = hmt.Model(data("llama-f32.gguf"))
        self.addCleanup(self.model.close)

    def ctx(self, **kw):
        c = hmt.Context(self.model, n_threads=1, **kw)
        self.addCleanup(c.close)
        return c

    def test_round_trip_bytes_and_file(self):
        a = self.ctx(n_ctx=64)
        a.eval(tokens=[5, 17, 3, 99, 42, 7],
               outputs=[hmt.OUT_LOGITS, 0, hmt.OUT_HIDDEN, 0, hmt.OUT_FFN_INPUT,
                        hmt.OUT_LOGITS | hmt.OUT_HIDDEN])
        state = a.save()
        self.assertIsInstance(state, bytes)
        self.assertEqual(state[:4], b"HMTC")
        last, first = raw(a.logits(-1, copy=True)), raw(a.logits(0, copy=True))
        a.eval_tokens([11, 12, 13], all_logits=True)
        x = [raw(a.logits(i, copy=True)) for i in range(3)]

        a.restore(state)
        self.assertEqual(a.n_past, 6)
        self.assertEqual(raw(a.logits(-1, copy=True)), last)
        self.assertEqual(raw(a.logits(0, copy=True)), first)
        self.assertIsNone(a.logits(1))
        self.assertIsNotNone(a.hidden(2))
        self.assertIsNotNone(a.ffn_input(4))
        a.eval_tokens([11, 12, 13], all_logits=True)
        self.assertEqual([raw(a.logits(i, copy=True)) for i in range(3)], x)

        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "ctx.state")
            a.restore(state)
            a.save_file(path)
            with open(path, "rb") as f:
                self.assertEqual(f.read(), state)
            b = self.ctx(n_ctx=32)  # a fresh context, another n_ctx
            b.restore_file(path)
            self.assertEqual(b.save(), state)
            b.eval_tokens([11, 12, 13], all_logits=True)
            self.assertEqual([raw(b.logits(i, copy=True)) for i in range(3)], x)
            for bad in (d, os.path.join(d, "missing")):
                with self.assertRaises(hmt.HmtError) as cm:
                    b.restore_file(bad)
                self.assertEqual(cm.exception.code, hmt.Status.E_IO)
            with self.assertRaises(hmt.HmtError) as cm:
                b.save_file(os.path.join(d, "no", "such", "dir"))
            self.assertEqual(cm.exception.code, hmt.Status.E_IO)

    def test_refusals_change_nothing(self):
        a = self.ctx(n_ctx=64)
        a.eval_tokens(list(range(1, 21)))
        state = a.save()
        t = self.ctx(n_ctx=19)
        t.eval_tokens([4, 5])
        before = t.save()

        def refused(data_, code, text):
            with self.assertRaises(hmt.HmtError) as cm:
                t.restore(data_)
            self.assertEqual(cm.exception.code, code)
            self.assertIn(text, cm.exception.message)
            self.assertEqual(t.save(), before)

        refused(state, hmt.Status.E_INVAL, "n_ctx of 19")
        refused(state[:-1], hmt.Status.E_FORMAT, "checksum")
        refused(b"", hmt.Status.E_FORMAT, "not a libhmt context state")
        flipped = bytearray(state)
        flipped[40] ^= 1
        refused(bytes(flipped), hmt.Status.E_FORMAT, "checksum")
        with hmt.Model(data("qwen2-f32.gguf")) as other, \
                hmt.Context(other, n_ctx=64, n_threads=1) as o:
            o.eval_tokens([1, 2, 3])
            refused(o.save(), hmt.Status.E_INVAL, "another model")

    def test_views_survive_a_restore(self):
        """A logits view taken before restore() stays readable (the block
        it points to is kept until the context is freed)."""
        a = self.ctx(n_ctx=64)
        a.eval_tokens([1, 2])
        small = a.save()
        a.eval_tokens(list(range(3, 40)), all_logits=True)
        big = a.save()
        v = a.logits(0)
        a.restore(small)
        a.restore(big)
        self.assertEqual(len(list(v)), self.model.n_vocab)


if __name__ == "__main__":
    unittest.main()
