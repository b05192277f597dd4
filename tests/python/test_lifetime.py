"""Ownership from Python: libhmt keeps what each handle needs (contexts,
streams and adapters their model, streams their adapter, kNN processors
their datastore, samplers their processors), so the Python objects keep no
parent alive and any order of close() and collection is safe; close() is
idempotent and a closed object refuses every use; NumPy views keep their
owner alive; many create/free cycles do not grow the process."""
import gc
import os
import random
import tempfile
import unittest
import weakref

from hmt_testutil import data, hmt, read_manifest, rss_kb


def hmt_case():
    return next(c for c in read_manifest("hmt-manifest.txt") if c["case"] == "hmt-full-a")


def closed_error(test, fn):
    with test.assertRaises(hmt.HmtError) as cm:
        fn()
    test.assertEqual(cm.exception.code, hmt.Status.E_MISUSE)


class TestOwnership(unittest.TestCase):
    def test_context_does_not_keep_the_python_model(self):
        m = hmt.Model(data("llama-f32.gguf"))
        ctx = hmt.Context(m, n_threads=1)
        self.assertIs(ctx.model, m)
        ref = weakref.ref(m)
        del m
        gc.collect()
        self.assertIsNone(ref())  # collected (its close() dropped its reference) ...
        ctx.eval_tokens([1, 2, 3])  # ... and the C context still has the model
        self.assertEqual(len(ctx.logits()), 320)
        lent = ctx.model  # the context's model, lent while the context is open
        self.assertEqual((lent.n_vocab, lent.arch), (320, "llama"))
        self.assertEqual(lent.tokenize("hi", add_bos=False), [t for t in lent.tokenize("hi")][1:])
        ctx.close()
        ctx.close()
        self.assertTrue(lent.closed)
        closed_error(self, lambda: lent.n_vocab)

    def test_model_closed_before_its_context(self):
        m = hmt.Model(data("llama-f32.gguf"))
        ctx = hmt.Context(m, n_threads=1)
        m.close()
        closed_error(self, lambda: m.n_vocab)  # the Python object is closed ...
        ctx.eval_tokens([1, 2, 3])             # ... the C model lives on
        self.assertEqual(ctx.n_past, 3)
        self.assertEqual(len(ctx.logits()), 320)
        self.assertEqual(ctx.model.n_vocab, 320)
        self.assertIsNot(ctx.model, m)
        ctx.close()

    def test_stream_does_not_keep_model_and_adapter(self):
        c = hmt_case()
        m = hmt.Model(data(c["model"]))
        a = hmt.Adapter(m, data(c["adapter"]))
        st = hmt.Stream(m, a, n_threads=1)
        self.assertIs(st.adapter, a)
        self.assertIs(a.model, m)
        refs = weakref.ref(m), weakref.ref(a)
        del m, a
        gc.collect()
        self.assertTrue(all(r() is None for r in refs))
        self.assertIsNone(st.adapter)
        self.assertEqual(st.model.n_vocab, 320)  # hmt_stream_model
        r = st.feed(list(range(3, 40)))
        self.assertEqual(len(st.logits(r[-1])), 320)
        self.assertEqual(st.get("segment_length"), int(c["L"]))
        st.close()
        closed_error(self, lambda: st.n_fed)

    def test_adapter_outlives_its_model_object(self):
        c = hmt_case()
        m = hmt.Model(data(c["model"]))
        a = hmt.Adapter(m, data(c["adapter"]))
        m.close()
        self.assertIsNone(a.model)
        self.assertEqual(a.segment_length, int(c["L"]))
        a.close()

    def test_threadpool_shared_and_closed_first(self):
        m = hmt.Model(data("llama-f32.gguf"))
        alone = hmt.Context(m, n_threads=2)
        alone.eval_tokens([1, 2, 3])
        want = list(alone.logits())
        tp = hmt.ThreadPool(2)
        self.assertEqual(tp.n_threads, 2)
        a, b = hmt.Context(m), hmt.Context(m)
        a.attach_threadpool(tp)
        b.attach_threadpool(tp)
        tp.close()  # the contexts hold it
        closed_error(self, lambda: tp.n_threads)
        for ctx in (a, b):
            ctx.eval_tokens([1, 2, 3])
            self.assertEqual(list(ctx.logits()), want)  # same threads, same splits
            self.assertEqual(ctx.get(hmt.Param.N_THREADS), 2)
        a.attach_threadpool(None)  # back to the process's shared pool
        a.eval_tokens([4])
        for o in (alone, a, b, m):
            o.close()
        with self.assertRaises(hmt.HmtError) as cm:
            hmt.ThreadPool(0)
        self.assertEqual(cm.exception.code, hmt.Status.E_INVAL)

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


class TestProcessorLifetimes(unittest.TestCase):
    """Samplers hold their processors and kNN processors their datastore
    (libhmt reference counts): the Python objects can be closed in any
    order, and each refuses use after its own close()."""

    @classmethod
    def setUpClass(cls):
        cls.model = hmt.Model(data("llama-f32.gguf"))
        cls.tmp = tempfile.TemporaryDirectory()
        rnd = random.Random(5)
        d = cls.model.n_embd
        cls.keys = [[rnd.gauss(0, 1) for _ in range(d)] for _ in range(64)]
        cls.path = os.path.join(cls.tmp.name, "x.knn")
        with hmt.KnnBuilder(cls.model, cls.path) as b:
            b.add(cls.keys, [i % 300 for i in range(64)])
            b.finish()

    @classmethod
    def tearDownClass(cls):
        cls.model.close()
        cls.tmp.cleanup()

    def test_datastore_closed_under_a_live_processor(self):
        knn = hmt.Knn(self.model, self.path, n_threads=1)
        p = hmt.KnnProc(knn, knn_k=4, knn_lambda=0.5)
        s = hmt.Sampler(temperature=0, procs=[p])
        logits = [0.0] * self.model.n_vocab
        before = list(s.apply(logits, self.keys[3]))
        knn.close()                          # the processor holds its own reference
        closed_error(self, lambda: knn.count)
        after = list(s.apply(logits, self.keys[3]))
        self.assertEqual(before, after)
        self.assertEqual(s.n_procs, 1)
        p.close()                            # and the sampler holds the processor
        closed_error(self, lambda: s.add(p))
        self.assertEqual(list(s.apply(logits, self.keys[3])), before)
        s.close()

    def test_datastore_and_processor_collected_first(self):
        knn = hmt.Knn(self.model, self.path, n_threads=1)
        s = hmt.Sampler(temperature=0, procs=[hmt.KnnProc(knn, knn_k=4, knn_lambda=1.0)])
        refs = weakref.ref(knn),
        del knn
        gc.collect()
        self.assertIsNone(refs[0]())
        out = s.apply([0.0] * self.model.n_vocab, self.keys[10])
        self.assertEqual(max(range(len(out)), key=lambda i: float(out[i])), 10 % 300)
        del s
        gc.collect()

    def test_every_close_order(self):
        import itertools
        logits = [0.0] * self.model.n_vocab
        for order in itertools.permutations(range(4)):
            with self.subTest(order=order):
                knn = hmt.Knn(self.model, self.path, n_threads=1)
                kp = hmt.KnnProc(knn, knn_k=4)
                dp = hmt.DittoProc(self.model)
                s = hmt.Sampler(procs=[dp, kp])
                s.apply(logits, self.keys[0])
                objs = [knn, kp, dp, s]
                for i in order:
                    objs[i].close()
                    if not s.closed:
                        s.apply(logits, self.keys[1])
                        s.accept(5)
                for o in objs:
                    self.assertTrue(o.closed)

    def test_python_processor_outlives_its_object(self):
        calls = []
        s = hmt.Sampler(temperature=0)
        p = hmt.PyProc(lambda z, key: calls.append(1) or None, name="counter")
        s.add(p)
        ref = weakref.ref(p)
        del p
        gc.collect()
        self.assertIsNone(ref())
        s.apply([0.0, 1.0])  # the C processor and its Python callables live on
        self.assertEqual(calls, [1])
        from hmt import _api
        n = len(_api._PY_PROCS)
        s.close()            # the last reference: libhmt's free_data drops them
        self.assertEqual(len(_api._PY_PROCS), n - 1)

    def test_processor_in_one_sampler_only(self):
        p = hmt.DittoProc(self.model)
        with hmt.Sampler(procs=[p]) as a, hmt.Sampler() as b:
            with self.assertRaises(hmt.HmtError) as cm:
                b.add(p)
            self.assertEqual(cm.exception.code, hmt.Status.E_MISUSE)
            self.assertEqual((a.n_procs, b.n_procs), (1, 0))
            p.set_delimiters([5])  # still ours too, while open
        p.close()
        closed_error(self, lambda: p.set_delimiters([5]))


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
