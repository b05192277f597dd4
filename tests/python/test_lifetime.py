"""Ownership from Python: children keep parents alive, close() is idempotent,
objects are freed by the garbage collector in any order, NumPy views keep
their owner alive, and many create/free cycles do not grow the process."""
import gc
import os
import unittest
import weakref

from hmt_testutil import data, hmt, read_manifest, rss_kb


def hmt_case():
    return next(c for c in read_manifest("hmt-manifest.txt") if c["case"] == "hmt-full-a")


class TestOwnership(unittest.TestCase):
    def test_context_keeps_model_alive(self):
        m = hmt.Model(data("llama-f32.gguf"))
        ctx = hmt.Context(m, n_threads=1)
        ref = weakref.ref(m)
        del m
        gc.collect()
        self.assertIsNotNone(ref())
        self.assertIs(ctx.model, ref())
        ctx.eval_tokens([1, 2, 3])
        ctx.close()
        ctx.close()
        del ctx
        gc.collect()
        self.assertIsNone(ref())

    def test_model_closed_before_its_context(self):
        # libhmt reference-counts the model: freeing it first is safe
        m = hmt.Model(data("llama-f32.gguf"))
        ctx = hmt.Context(m, n_threads=1)
        m.close()
        ctx.eval_tokens([1, 2, 3])
        self.assertEqual(ctx.n_past, 3)
        self.assertEqual(len(ctx.logits()), 320)
        ctx.close()

    def test_stream_keeps_model_and_adapter_alive(self):
        c = hmt_case()
        m = hmt.Model(data(c["model"]))
        a = hmt.Adapter(m, data(c["adapter"]))
        st = hmt.Stream(m, a, n_threads=1)
        refs = weakref.ref(m), weakref.ref(a)
        del m, a
        gc.collect()
        self.assertTrue(all(r() is not None for r in refs))
        st.feed(list(range(3, 20)))
        del st
        gc.collect()
        self.assertTrue(all(r() is None for r in refs))

    def test_view_keeps_context_alive(self):
        if not hmt.HAVE_NUMPY:
            self.skipTest("NumPy not available")
        m = hmt.Model(data("llama-f32.gguf"))
        ctx = hmt.Context(m, n_threads=1)
        ctx.eval_tokens([1, 2, 3])
        view = ctx.logits()
        copy = ctx.logits(copy=True)
        self.assertFalse(view.flags.writeable)
        self.assertFalse(view.flags.owndata)
        self.assertTrue(copy.flags.writeable)
        ref = weakref.ref(ctx)
        del ctx, m
        gc.collect()
        self.assertIsNotNone(ref())
        self.assertEqual(view.tolist(), copy.tolist())
        del view
        gc.collect()
        self.assertIsNone(ref())

    def test_with_statement(self):
        with hmt.Model(data("llama-f32.gguf")) as m:
            with hmt.Context(m) as ctx:
                pass
            self.assertTrue(ctx.closed)
            self.assertFalse(m.closed)
        self.assertTrue(m.closed)


@unittest.skipIf(os.environ.get("HMT_PY_QUICK"), "HMT_PY_QUICK set")
class TestNoLeak(unittest.TestCase):
    CYCLES = 200
    BOUND_KB = 8 * 1024  # one leaked model + context + stream per cycle would be far more

    def cycle(self, c, i):
        m = hmt.Model(data(c["model"]))
        a = hmt.Adapter(m, data(c["adapter"]))
        ctx = hmt.Context(m, n_ctx=64, n_threads=1)
        st = hmt.Stream(m, a, n_threads=1)
        st.set_recall_callback(lambda *args: None)
        ctx.set_abort_callback(lambda: False)
        ctx.eval_tokens([1, 2, 3, 4], all_logits=True)
        st.feed(list(range(3, 23)))
        st.restore(st.save())
        ids = m.tokenize("hello world")
        m.detokenize(ids)
        s = hmt.Sampler(seed=i)
        s.sample(ctx.logits())
        try:
            ctx.eval_tokens([10 ** 6])
        except hmt.HmtError:
            pass
        if i % 2:
            for o in (s, st, ctx, a, m):  # explicit close, children first
                o.close()
        else:
            m.close()  # parent first, then let the garbage collector free the rest
            del s, st, ctx, a, m

    def test_create_free_cycles(self):
        c = hmt_case()
        for i in range(20):  # warm up allocator pools and thread stacks
            self.cycle(c, i)
        gc.collect()
        before = rss_kb()
        for i in range(self.CYCLES):
            self.cycle(c, i)
        gc.collect()
        grown = rss_kb() - before
        self.assertEqual(gc.garbage, [])
        self.assertLess(grown, self.BOUND_KB, f"RSS grew by {grown} kB over {self.CYCLES} cycles")


if __name__ == "__main__":
    unittest.main()
