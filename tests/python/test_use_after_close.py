"""Issue 12 item 6: no use after close is a segfault. Each case runs in a
child process with a malloc that unmaps freed blocks (safety_util), so
reading freed library memory kills the child and fails the test."""
import unittest

from hmt_testutil import hmt
from safety_util import STRICT_MALLOC, run_child


class TestUseAfterClose(unittest.TestCase):
    def child_ok(self, code):
        rc, out, err = run_child(code, STRICT_MALLOC)
        self.assertEqual(rc, 0, f"child died (signal {-rc})" if rc < 0 else err[-2000:])
        self.assertIn("ok", out.split(), out + err[-2000:])
        return out

    def test_context_views_after_close(self):
        self.child_ok("""
            m = hmt.Model(data("llama-f32.gguf"))
            ctx = hmt.Context(m, n_threads=1)
            ctx.eval([1, 2, 3, 4], outputs=hmt.OUT_LOGITS | hmt.OUT_HIDDEN)
            v, h = ctx.logits(0), ctx.hidden(-1)
            saved = [list(v), list(h)]
            ctx.close()
            m.close()
            assert [list(v), list(h)] == saved       # the memory outlives close()
            try:
                ctx.logits()
                raise SystemExit("a closed context answered")
            except hmt.HmtError as e:
                assert e.code == hmt.Status.E_MISUSE
            del v, h                                  # now it is freed
            print("ok")
        """)

    def test_stream_view_after_close(self):
        self.child_ok("""
            m = hmt.Model(data("llama-f32.gguf"))
            a = hmt.Adapter(m, data("hmt-full-a.adapter.gguf"))
            st = hmt.Stream(m, a, n_threads=1)
            r = st.feed(list(range(3, 40)))
            v = st.logits(r[-1])
            saved = list(v)
            st.close()
            assert list(v) == saved
            print("ok")
        """)

    def test_views_survive_a_growing_eval(self):
        # a later eval that needs bigger output buffers must not free the
        # block an earlier view points into
        self.child_ok("""
            m = hmt.Model(data("llama-f32.gguf"))
            ctx = hmt.Context(m, n_threads=1)
            ctx.eval_tokens([1, 2, 3, 4], all_logits=True)
            v = ctx.logits(0)
            saved = list(v)
            ctx.eval_tokens(list(range(5, 90)), all_logits=True)
            assert list(v) == saved   # the outgrown block is retired, not freed or reused
            a = hmt.Adapter(m, data("hmt-full-a.adapter.gguf"))
            st = hmt.Stream(m, a, n_threads=1)
            r = st.feed(list(range(3, 12)))
            w = st.logits(r[0])
            st.feed(list(range(3, 200)))
            assert len(list(w)) == 320                # readable (stale or overwritten)
            print("ok")
        """)

    def test_datastore_closed_under_its_processor(self):
        self.child_ok("""
            import random, tempfile
            m = hmt.Model(data("llama-f32.gguf"))
            rnd = random.Random(5)
            d = m.n_embd
            keys = [[rnd.gauss(0, 1) for _ in range(d)] for _ in range(64)]
            path = os.path.join(tempfile.mkdtemp(), "x.knn")
            with hmt.KnnBuilder(m, path) as b:
                b.add(keys, [i % 300 for i in range(64)])
                b.finish()
            knn = hmt.Knn(m, path)
            proc = hmt.KnnProc(knn, knn_k=4)
            sampler = hmt.Sampler(procs=[proc])
            logits = [0.0] * m.n_vocab
            before = list(sampler.apply(logits, keys[3]))
            knn.close()                      # the processor holds its own reference
            proc.close()                     # and the sampler holds the processor
            m.close()
            os.remove(path)
            after = list(sampler.apply(logits, keys[3]))
            assert before == after
            sampler.prepare([keys[5], keys[6]])   # a batched search, still mapped
            try:
                knn.search(keys[3], 1)
                raise SystemExit("a closed datastore answered")
            except hmt.HmtError as e:
                assert e.code == hmt.Status.E_MISUSE
            sampler.close()                  # the last reference: all freed here
            print("ok")
        """)

    def test_callback_arrays_outlive_the_sampler(self):
        self.child_ok("""
            kept = []
            def apply(z, key):
                kept.append((z, key))
                z[0] = -1e9
            def prepare(keys):
                kept.append(keys)
            sampler = hmt.Sampler(procs=[hmt.PyProc(apply, prepare=prepare)])
            sampler.prepare([[2.0] * 300])
            out = sampler.apply([0.5] * 320, [1.0] * 300)
            assert out[0] < -1e8                 # the edit reached the sampler
            sampler.close()
            keys, (z, key) = kept
            assert float(z[0]) == -1e9 and float(z[1]) == 0.5 and float(key[7]) == 1.0
            assert float(keys[0][299]) == 2.0
            print("ok")
        """)

    def test_processor_and_sampler_closed_in_either_order(self):
        self.child_ok("""
            m = hmt.Model(data("llama-f32.gguf"))
            p = hmt.DittoProc(m)
            s = hmt.Sampler(procs=[p])
            p.set_delimiters([1, 2])            # fine while p is open
            s.close()                           # p keeps its own reference
            assert not p.closed
            p.set_delimiters([3])
            p.close()
            try:
                p.set_delimiters([1, 2])
                raise SystemExit("a closed processor answered")
            except hmt.HmtError as e:
                assert e.code == hmt.Status.E_MISUSE, e
            q = hmt.PyProc(lambda z, key: None, accept=lambda t: None)
            s = hmt.Sampler(procs=[q])
            q.close()                           # the sampler keeps it, callbacks too
            import gc; gc.collect()
            s.accept(3)
            s.sample([0.0, 1.0, 2.0])
            s.close()
            try:
                s.sample([0.0])
                raise SystemExit("a closed sampler answered")
            except hmt.HmtError as e:
                assert e.code == hmt.Status.E_MISUSE, e
            print("ok")
        """)

    def test_sampler_closed_from_its_processor(self):
        self.child_ok("""
            box = []
            def apply(z, key):
                box[0].close()                  # refused: the sampler is running
            s = hmt.Sampler(procs=[hmt.PyProc(apply)])
            box.append(s)
            try:
                s.apply([0.0, 1.0])
                raise SystemExit("closed under its own call")
            except hmt.HmtError as e:
                assert e.code == hmt.Status.E_MISUSE, e
            assert not s.closed
            box.clear()
            s.close()
            print("ok")
        """)


if __name__ == "__main__":
    unittest.main()
