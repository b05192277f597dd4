"""Issue 12 item 10: Ctrl-C during a long call raises KeyboardInterrupt
within a fraction of a second (bound: 2 s), and leaves the object in its
documented state. A child process starts the call; this process sends it
SIGINT once the call is running."""
import os
import signal
import time
import unittest

from hmt_testutil import ROOT, hmt
from safety_util import start_child

BOUND_S = 2.0
BROWN = os.path.join(ROOT, "models", "brown-f16.gguf")
BROWN_HMT = os.path.join(ROOT, "models", "brown-hmt.gguf")


@unittest.skipUnless(os.path.exists(BROWN), "models/brown-f16.gguf missing")
class TestCtrlC(unittest.TestCase):
    def interrupt(self, code, min_run_s=1.0):
        """Run code (it prints 'started' right before the long call, then
        'interrupted' from its KeyboardInterrupt handler); send SIGINT
        min_run_s after 'started'. Returns the child's later output lines."""
        p = start_child(code)
        try:
            line = p.stdout.readline()
            if line.strip() != "started":  # (reading stderr waits for the child's exit)
                self.fail(line + p.stderr.read())
            time.sleep(min_run_s)
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            line = p.stdout.readline()
            dt = time.monotonic() - t0
            if line.strip() != "interrupted":
                self.fail(f"after {dt:.1f} s: " + line + p.stdout.read() + p.stderr.read())
            self.assertLess(dt, BOUND_S, f"KeyboardInterrupt {dt:.2f} s after SIGINT")
            # not communicate(): it reads the pipe's fd and would skip what
            # readline() already buffered
            out, err = p.stdout.read(), p.stderr.read()
            p.wait(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 0, err[-2000:])
        self.assertNotIn("Exception ignored", err)
        return out.split("\n")

    def test_stream_feed(self):
        out = self.interrupt(f"""
            m = hmt.Model({BROWN!r})
            st = hmt.Stream(m, hmt.Adapter(m, {BROWN_HMT!r}), n_threads=1)
            st.feed(list(range(5, 300)))
            snap, fed = st.save(), st.n_fed
            print("started", flush=True)
            try:
                st.feed(list(range(5, 2900)) * 20)    # about a minute uninterrupted
                print("finished")
            except KeyboardInterrupt as e:
                print("interrupted", flush=True)
                assert isinstance(e.__context__, hmt.HmtError), e.__context__
                assert e.__context__.code == hmt.Status.E_ABORTED
            # documented state: unusable until restore()
            try:
                st.feed([5])
                print("usable")
            except hmt.HmtError as e:
                print("misuse" if e.code == hmt.Status.E_MISUSE else e)
            st.restore(snap)
            st.feed([5, 6])
            print("restored", st.n_fed == fed + 2)
            import signal
            print("handler", signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        """)
        self.assertIn("misuse", out)
        self.assertIn("restored True", out)
        self.assertIn("handler True", out)

    def test_context_eval_with_a_user_callback(self):
        # the issue: with the abort callback PYTHON.md recommended, Ctrl-C
        # turned into an "aborted" error and the KeyboardInterrupt was lost
        out = self.interrupt(f"""
            m = hmt.Model({BROWN!r})
            ctx = hmt.Context(m, n_ctx=16384, n_threads=1)
            ctx.set_abort_callback(lambda: False)
            ctx.eval_tokens([1, 2, 3])
            print("started", flush=True)
            try:
                ctx.eval_tokens(list(range(5, 2900)) * 5)   # 14,475 rows
                print("finished")
            except KeyboardInterrupt:
                print("interrupted", flush=True)
            # documented state: as before the call, and usable
            print("n_past", ctx.n_past)
            ctx.eval_tokens([4])
            print("after", ctx.n_past)
        """)
        self.assertIn("n_past 3", out)
        self.assertIn("after 4", out)

    def test_context_eval_default(self):
        out = self.interrupt(f"""
            m = hmt.Model({BROWN!r})
            ctx = hmt.Context(m, n_ctx=16384, n_threads=1)
            print("started", flush=True)
            try:
                ctx.eval_tokens(list(range(5, 2900)) * 5)
                print("finished")
            except KeyboardInterrupt:
                print("interrupted", flush=True)
            print("n_past", ctx.n_past)
        """)
        self.assertIn("n_past 0", out)

    def test_datastore_build(self):
        out = self.interrupt(f"""
            import tempfile
            m = hmt.Model({BROWN!r})
            ctx = hmt.Context(m, n_ctx=1024, n_threads=1)
            path = os.path.join(tempfile.mkdtemp(), "x.knn")
            b = hmt.KnnBuilder(m, path)
            print("started", flush=True)
            try:
                b.add_ctx(ctx, list(range(5, 2900)) * 30)
                print("finished")
            except KeyboardInterrupt:
                print("interrupted", flush=True)
            # documented state: the pairs so far stay; builder and ctx usable
            n = b.count
            print("partial", 0 < n < 2895 * 30)
            b.finish()
            print("loaded", len(hmt.Knn(m, path)) == n)
            ctx.kv_clear()
            ctx.eval_tokens([1, 2])
            print("ctx", ctx.n_past)
        """)
        self.assertIn("partial True", out)
        self.assertIn("loaded True", out)
        self.assertIn("ctx 2", out)


if __name__ == "__main__":
    unittest.main()
