"""Bit-identical results through Python and through C: the same calls on the
same inputs, one thread each, compared byte for byte with tests/python/c_dump
(built by check_python.sh; skipped when HMT_C_DUMP is not set)."""
import array
import os
import subprocess
import tempfile
import unittest

from hmt_testutil import as_bytes, data, hmt, read_hmth, read_manifest

C_DUMP = os.environ.get("HMT_C_DUMP")


@unittest.skipUnless(C_DUMP, "HMT_C_DUMP not set (check_python.sh builds it)")
class TestSameAsC(unittest.TestCase):
    def dump(self, *args):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "out.bin")
            args = [a if a != "OUT" else out for a in args]
            subprocess.run([C_DUMP, *map(str, args)], check=True, timeout=120)
            with open(out, "rb") as f:
                return f.read()

    def test_context(self):
        for name in ("llama-f32", "qwen2-tied-f16", "llama-q8"):
            with self.subTest(model=name):
                path = data(name + ".gguf")
                with hmt.Model(path) as m, hmt.Context(m, n_threads=1) as ctx:
                    toks = m.tokenize("The quick brown fox jumps over the lazy dog")
                    c = self.dump("ctx", path, "OUT", *toks)
                    ctx.eval(tokens=toks, outputs=hmt.OUT_LOGITS | hmt.OUT_HIDDEN)
                    py = b"".join(as_bytes(ctx.logits(i)) for i in range(len(toks)))
                    py += b"".join(as_bytes(ctx.hidden(i)) for i in range(len(toks)))
                    self.assertEqual(len(py), len(c))
                    self.assertTrue(py == c, "Python and C outputs differ")

    def test_stream(self):
        case = next(c for c in read_manifest("hmt-manifest.txt") if c["case"] == "hmt-full-a")
        toks = list(read_hmth(data(case["golden"]))["tokens"])
        model, adapter = data(case["model"]), data(case["adapter"])
        c = self.dump("stream", model, adapter, "OUT", *toks)
        with hmt.Model(model) as m, hmt.Adapter(m, adapter) as a, \
                hmt.Stream(m, a, n_threads=1) as st:
            py = b""
            for t in toks:
                for i in st.feed([t]):
                    py += as_bytes(st.logits(i))
            for i in st.flush():
                py += as_bytes(st.logits(i))
            w, s = st.recall()
            py += as_bytes(w) + array.array("q", s).tobytes()
        self.assertEqual(len(py), len(c))
        self.assertTrue(py == c, "Python and C outputs differ")


if __name__ == "__main__":
    unittest.main()
