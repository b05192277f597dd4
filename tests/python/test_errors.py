"""Errors arrive as HmtError with the right code, the failing function and the
library's message; callbacks work, and an exception inside a Python callback
never crashes the process."""
import sys
import unittest

from hmt_testutil import data, hmt, read_manifest

from hmt import _api, _capi


class Fixture(unittest.TestCase):
    def setUp(self):
        self.model = hmt.Model(data("llama-f32.gguf"))
        self.ctx = hmt.Context(self.model, n_ctx=32, n_threads=1)

    def tearDown(self):
        self.ctx.close()
        self.model.close()

    def code_of(self, fn, *args, **kwargs):
        with self.assertRaises(hmt.HmtError) as cm:
            fn(*args, **kwargs)
        return cm.exception


class TestErrors(Fixture):
    def test_bad_token(self):
        e = self.code_of(self.ctx.eval_tokens, [1, self.model.n_vocab])
        self.assertEqual(e.code, hmt.Status.E_TOKEN)
        self.assertEqual(e.name, "hmt_ctx_eval_tokens")
        self.assertIn(str(self.model.n_vocab), e.message)
        self.assertEqual(hmt.last_error_msg(), e.message)
        self.assertEqual(self.ctx.n_past, 0)
        e = self.code_of(self.ctx.eval, tokens=[-1])
        self.assertEqual(e.code, hmt.Status.E_TOKEN)
        e = self.code_of(self.model.detokenize, [self.model.n_vocab + 3])
        self.assertEqual(e.code, hmt.Status.E_TOKEN)

    def test_ctx_full_and_rewind(self):
        self.ctx.eval_tokens(list(range(3, 30)))
        e = self.code_of(self.ctx.eval_tokens, list(range(3, 10)))
        self.assertEqual(e.code, hmt.Status.E_CTX_FULL)
        self.assertEqual(self.ctx.n_past, 27)
        self.assertIsNotNone(self.ctx.logits())  # argument errors keep the outputs
        e = self.code_of(self.ctx.kv_rewind, 28)
        self.assertEqual(e.code, hmt.Status.E_INVAL)
        self.ctx.kv_rewind(10)
        self.assertEqual(self.ctx.n_past, 10)

    def test_invalid_arguments(self):
        self.assertEqual(self.code_of(self.ctx.eval).code, hmt.Status.E_INVAL)
        self.assertEqual(self.code_of(self.ctx.eval, tokens=[1], embd=[0.0] * 64).code,
                         hmt.Status.E_INVAL)
        self.assertEqual(self.code_of(self.ctx.eval, embd=[0.0] * 63).code, hmt.Status.E_INVAL)
        self.assertEqual(self.code_of(self.ctx.eval, tokens=[1, 2], pos=[0]).code,
                         hmt.Status.E_INVAL)
        self.assertEqual(self.code_of(self.ctx.eval, tokens=[1, 2], outputs=[1]).code,
                         hmt.Status.E_INVAL)
        self.assertEqual(self.code_of(self.ctx.eval, tokens=[1], outputs=[8]).code,
                         hmt.Status.E_INVAL)
        self.assertEqual(self.code_of(self.ctx.eval_tokens, []).code, hmt.Status.E_INVAL)
        self.assertEqual(self.code_of(self.ctx.set_int, "n_threads", -3).code, hmt.Status.E_INVAL)

    def test_buffer_through_the_raw_table(self):
        from ctypes import byref, c_float, c_int32, c_size_t
        lib = hmt.capi.lib
        buf = (c_float * 10)()
        e = self.code_of(lib.hmt_model_token_embedding, self.model._handle, 1, buf, 10)
        self.assertEqual(e.code, hmt.Status.E_BUFFER)
        self.assertIn("64", e.message)
        # snprintf-style functions answer a size query with E_BUFFER, not an exception
        n = c_size_t()
        out = (c_int32 * 1)()
        rc = lib.hmt_tokenize(self.model._handle, b"hello world", 11, hmt.TOKENIZE_ADD_BOS, out, 1,
                              byref(n))
        self.assertEqual(rc, hmt.Status.E_BUFFER)
        self.assertEqual(n.value, len(self.model.tokenize("hello world")))
        # NULL handles are E_INVAL from C
        e = self.code_of(lib.hmt_ctx_eval_tokens, None, out, 1, 0)
        self.assertEqual(e.code, hmt.Status.E_INVAL)

    def test_wrong_handle_type_is_refused_by_ctypes(self):
        import ctypes
        with self.assertRaises(ctypes.ArgumentError):
            hmt.capi.lib.hmt_model_n_vocab(self.ctx._handle)

    def test_closed_objects(self):
        m = hmt.Model(data("llama-f32.gguf"))
        m.close()
        m.close()  # idempotent
        self.assertTrue(m.closed)
        e = self.code_of(lambda: m.n_vocab)
        self.assertEqual(e.code, hmt.Status.E_MISUSE)
        e = self.code_of(hmt.Context, m)
        self.assertEqual(e.code, hmt.Status.E_MISUSE)
        self.assertIn("closed", repr(m))

    def test_stream_errors(self):
        with self.assertRaises(hmt.HmtError) as cm:
            hmt.Stream(self.model)  # full mode needs an adapter
        self.assertEqual(cm.exception.code, hmt.Status.E_INVAL)
        self.assertEqual(cm.exception.name, "hmt_stream_create")
        with self.assertRaises(hmt.HmtError) as cm:
            hmt.Adapter(self.model, "/nonexistent.gguf")
        self.assertEqual(cm.exception.code, hmt.Status.E_IO)
        with self.assertRaises(hmt.HmtError) as cm:
            hmt.Adapter(self.model)  # the model's own file has no hmt.* entries
        self.assertEqual(cm.exception.code, hmt.Status.E_FORMAT)
        with hmt.Stream(self.model, mode="segments", segment_length=8) as st:
            e = self.code_of(st.feed, [1, 2, 999])
            self.assertEqual(e.code, hmt.Status.E_TOKEN)
            self.assertEqual(st.n_fed, 0)
            self.assertEqual(hmt.last_error_msg(), e.message)
            st.feed([1, 2])
            self.assertEqual(st.n_fed, 2)
            with hmt.Model(data("qwen2-f32.gguf")) as other, \
                    hmt.Stream(other, mode="segments", segment_length=8) as os_:
                e = self.code_of(st.restore, os_.save())
                self.assertEqual(e.code, hmt.Status.E_INVAL)
            self.assertEqual(st.n_fed, 2)
            self.assertIsNone(st.logits(1000))
            e = self.code_of(st.set_int, "n_ctx", 5)  # not a runtime key
            self.assertEqual(e.code, hmt.Status.E_INVAL)
            e = self.code_of(st.get, "n_ctx")  # not a stream key any more (0.2)
            self.assertEqual(e.code, hmt.Status.E_INVAL)
            e = self.code_of(st.get, "window")  # only in window mode
            self.assertEqual(e.code, hmt.Status.E_INVAL)
        with hmt.Stream(self.model, mode="window", window=16) as st:
            self.assertEqual(st.get("window"), 16)


class TestForeignKeys(Fixture):
    """Each object reads its own keys; a key of another object set on its
    params is refused by the library (E_INVAL naming the key), not ignored,
    and the binding adds no key of its own."""

    def refused(self, key, fn, *args, **kwargs):
        e = self.code_of(fn, *args, **kwargs)
        self.assertEqual(e.code, hmt.Status.E_INVAL, e)
        self.assertIn(key, e.message)
        self.assertEqual(hmt.last_error_msg(), e.message)
        return e

    def test_context(self):
        e = self.refused("top_k", hmt.Context, self.model, top_k=3)
        self.assertEqual(e.name, "hmt_ctx_create")
        self.refused("mode", hmt.Context, self.model, n_ctx=16, mode="rmt")
        with hmt.Params(n_ctx=16, temperature=0.5) as p:
            self.refused("temperature", hmt.Context, self.model, p)
        with hmt.Context(self.model, n_ctx=16, n_batch=4, n_threads=1,
                         compute_type="bf16") as ctx:
            self.assertEqual(ctx.n_ctx, 16)
            self.assertEqual(ctx.get("compute_type"), hmt.ComputeType.BF16)

    def test_model_takes_no_keys(self):
        e = self.refused("n_threads", hmt.Model, data("llama-f32.gguf"), n_threads=1)
        self.assertEqual(e.name, "hmt_model_load")

    def test_sampler_and_processors(self):
        self.refused("n_ctx", hmt.Sampler, n_ctx=16)
        self.refused("knn_k", hmt.Sampler, temperature=0, knn_k=4)
        self.refused("top_k", hmt.DittoProc, self.model, top_k=4)
        with hmt.Sampler(temperature=0, top_k=1, top_p=0.5, seed=7) as s:
            self.assertEqual(s.sample([0.0, 1.0, 0.5]), 1)
        with hmt.DittoProc(self.model, ditto_lambda=0.5, ditto_scope="windowed",
                           ditto_window=4) as d:
            self.assertFalse(d.closed)

    def test_stream(self):
        # 0.1's window length (n_ctx) is the context's key now: window
        e = self.refused("n_ctx", hmt.Stream, self.model, mode="window", n_ctx=16)
        self.assertEqual(e.name, "hmt_stream_create")
        self.refused("seed", hmt.Stream, self.model, mode="segments", segment_length=8, seed=1)

    def test_params_objects_are_not_changed(self):
        # a Params shared by two objects: the create that refuses it leaves it
        # as it was, and kwargs go to a copy
        with hmt.Params(n_threads=1) as p:
            with hmt.Context(self.model, p, n_ctx=16) as ctx:
                self.assertEqual(ctx.n_ctx, 16)
            self.assertEqual(p["n_ctx"], hmt.AUTO)
            with hmt.Stream(self.model, None, p, mode="segments", segment_length=8) as st:
                self.assertEqual(st.get("segment_length"), 8)
            self.refused("n_threads", hmt.Sampler, p)

    def test_auto_and_zero(self):
        with hmt.Params() as p:
            for key in ("n_ctx", "n_threads", "segment_length", "cache_size", "summary_length",
                        "gen_summary_length", "window", "knn_nlist"):
                with self.subTest(key=key):
                    self.assertEqual(p[key], hmt.AUTO)   # the default
                    e = self.code_of(p.set, key, 0)       # 0 is no longer "auto"
                    self.assertEqual(e.code, hmt.Status.E_INVAL)
                    self.assertIn(key, e.message)
                    p.set(key, 5)
                    p.set(key, "auto")
                    self.assertEqual(p[key], hmt.AUTO)
            p.set("sensory_length", 0)                    # 0 = no sensory memory
            p.set("recall_bf16", 0)                       # 0 = off
            self.assertEqual(self.code_of(p.set, "top_k", "auto").code, hmt.Status.E_INVAL)
        with hmt.Context(self.model, n_ctx=hmt.AUTO, n_threads="auto") as ctx:
            self.assertEqual(ctx.n_ctx, self.model.n_ctx_train)
            self.assertGreaterEqual(ctx.n_threads, 1)


class TestErrorChannel(Fixture):
    """One error channel: hmt_last_error_msg(), per thread, set by a failing
    call and kept by successful ones."""

    def test_success_keeps_the_message(self):
        e = self.code_of(self.ctx.eval_tokens, [self.model.n_vocab])
        self.ctx.eval_tokens([1, 2])
        self.model.tokenize("fine")
        self.assertEqual(hmt.last_error_msg(), e.message)
        hmt.last_error_clear()
        self.assertEqual(hmt.last_error_msg(), "")

    def test_each_error_has_its_own_message(self):
        e1 = self.code_of(self.ctx.eval_tokens, [self.model.n_vocab])
        e2 = self.code_of(hmt.Model, "/nonexistent/x.gguf")
        self.assertNotEqual(e1.message, e2.message)
        self.assertIn("/nonexistent/x.gguf", e2.message)
        self.assertNotIn("/nonexistent", e1.message)

    def test_per_thread(self):
        import threading
        e = self.code_of(self.ctx.eval_tokens, [self.model.n_vocab])
        seen = []
        t = threading.Thread(target=lambda: seen.append(hmt.last_error_msg()))
        t.start()
        t.join()
        self.assertEqual(seen, [""])
        self.assertEqual(hmt.last_error_msg(), e.message)

    def test_str_names_the_function_once(self):
        e = self.code_of(hmt.Context, self.model, top_k=3)
        self.assertEqual(str(e).count("hmt_ctx_create"), 1, str(e))
        self.assertTrue(str(e).endswith(", HMT_E_INVAL)"), str(e))


class TestCallbacks(Fixture):
    def test_abort(self):
        calls = []
        self.ctx.set_abort_callback(lambda: calls.append(1) or len(calls) > 1)
        e = self.code_of(self.ctx.eval_tokens, [1, 2, 3])
        self.assertEqual(e.code, hmt.Status.E_ABORTED)
        self.assertEqual(len(calls), 2)
        self.assertEqual(self.ctx.n_past, 0)
        self.ctx.set_abort_callback(lambda: False)
        self.ctx.eval_tokens([1, 2, 3])
        self.assertEqual(self.ctx.n_past, 3)
        self.ctx.set_abort_callback(None)
        self.ctx.eval_tokens([4])
        self.assertEqual(self.ctx.n_past, 4)

    def test_exception_in_abort_callback(self):
        def boom():
            raise KeyError("from the callback")
        self.ctx.set_abort_callback(boom)
        for _ in range(3):  # repeatedly: the process survives, the context too
            with self.assertRaises(KeyError) as cm:
                self.ctx.eval_tokens([1, 2, 3])
            self.assertIsInstance(cm.exception.__cause__, hmt.HmtError)
            self.assertEqual(cm.exception.__cause__.code, hmt.Status.E_ABORTED)
            self.assertEqual(self.ctx.n_past, 0)
        self.ctx.set_abort_callback(None)
        self.ctx.eval_tokens([1, 2, 3])
        self.assertEqual(self.ctx.n_past, 3)

    def test_callback_kept_alive(self):
        import gc
        hits = []

        def make():
            def fn():
                hits.append(1)
                return False
            return fn
        self.ctx.set_abort_callback(make())
        gc.collect()
        self.ctx.eval_tokens([1, 2])
        self.assertGreater(len(hits), 0)

    def adapter_stream(self):
        case = next(c for c in read_manifest("hmt-manifest.txt") if c["case"] == "hmt-full-a")
        a = hmt.Adapter(self.model, data(case["adapter"]))
        return a, hmt.Stream(self.model, a, n_threads=1)

    def test_recall_callback(self):
        a, st = self.adapter_stream()
        got = []
        st.set_recall_callback(lambda seg, w, s: got.append((seg, list(w), list(s))))
        st.feed(list(range(3, 40)))  # 4 segments + 5 tokens: the open one has its P
        st.flush()
        self.assertEqual([g[0] for g in got], list(range(1, st.n_segments)))
        for seg, w, s in got:
            self.assertAlmostEqual(sum(w), 1.0, places=5)
            self.assertEqual(s, list(range(max(0, seg - a.cache_size), seg)))
        w, s = st.recall()
        self.assertEqual((list(w), list(s)), (got[-1][1], got[-1][2]))
        st.close()
        a.close()

    def test_exception_in_recall_callback(self):
        a, st = self.adapter_stream()
        ref_a, ref = self.adapter_stream()
        n = [0]

        def bad(seg, w, s):
            n[0] += 1
            raise RuntimeError(f"segment {seg}")
        st.set_recall_callback(bad)
        toks = list(range(3, 43))
        with self.assertRaises(RuntimeError) as cm:
            st.feed(toks)
        self.assertIn("segment 1", str(cm.exception))
        self.assertGreater(n[0], 1)
        # the computation itself completed and matches a stream without callback
        ref.feed(toks)
        self.assertEqual((st.n_fed, st.n_ready), (ref.n_fed, ref.n_ready))
        last = st.n_ready - 1
        self.assertEqual(list(st.logits(last)), list(ref.logits(last)))
        st.set_recall_callback(None)
        st.flush()
        for o in (st, a, ref, ref_a):
            o.close()

    def test_log_callback(self):
        lines = []
        hmt.set_log_callback(lambda level, msg: lines.append((level, msg)))
        try:
            # the library logs rarely; call the registered C thunk directly
            _api._log_cb(int(hmt.LogLevel.WARN), b"hello from C", None)
            self.assertEqual(lines, [(hmt.LogLevel.WARN, "hello from C")])
            seen = []
            old = sys.unraisablehook
            sys.unraisablehook = seen.append
            try:
                hmt.set_log_callback(lambda level, msg: 1 / 0)
                _api._log_cb(0, b"x", None)
            finally:
                sys.unraisablehook = old
            self.assertEqual(len(seen), 1)
            self.assertIs(seen[0].exc_type, ZeroDivisionError)
        finally:
            hmt.set_log_callback(None)
        self.assertIsNone(_api._log_cb)


class TestErrorObject(unittest.TestCase):
    def test_fields_and_text(self):
        e = hmt.HmtError(-3, "f", "detail")
        self.assertIs(e.code, hmt.Status.E_IO)
        self.assertEqual((e.name, e.message), ("f", "detail"))
        self.assertEqual(str(e), f"f: detail ({hmt.strerror(-3)}, HMT_E_IO)")
        e = hmt.HmtError(-99, "g")
        self.assertEqual(e.code, -99)
        self.assertIn("unknown status", str(e))
        self.assertIs(_capi.HmtError, hmt.HmtError)


if __name__ == "__main__":
    unittest.main()
