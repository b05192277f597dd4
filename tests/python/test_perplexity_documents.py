"""hmt-perplexity with several -f files (docs/PERPLEXITY.md): each file is a
document scored by a fresh stream, and the reported figure is the
token-weighted combination of the files scored one at a time."""
import os
import subprocess
import tempfile
import unittest

from hmt_testutil import ROOT

MODEL = os.path.join(ROOT, "models", "demo-random-f16.gguf")
ADAPTER = os.path.join(ROOT, "models", "demo-random-hmt.gguf")
LIB = os.environ.get("HMT_LIB_PATH", "")
BIN = os.path.join(os.path.dirname(LIB), "bin", "hmt-perplexity") if LIB else ""
TEXTS = ["The cat sat on the mat. " * 20, "Memory helps a model read long documents. " * 9,
         "A short one."]


def table(out):
    """{mode: (scored, mean_nll)}"""
    rows = {}
    for line in out.splitlines():
        f = line.split()
        if f and f[0] in ("full", "rmt", "segments", "window"):
            rows[f[0]] = (int(f[-4]), float(f[-3]))
    return rows


@unittest.skipUnless(os.path.exists(MODEL) and BIN and os.path.exists(BIN),
                     "demo model or hmt-perplexity missing (HMT_LIB_PATH unset)")
class TestPerplexityDocuments(unittest.TestCase):
    def run_ppl(self, *files, extra=()):
        args = [BIN, "-m", MODEL, "-a", ADAPTER, "--mode", "all", "-t", "1", "-q", *extra]
        for f in files:
            args += ["-f", f]
        return subprocess.run(args, capture_output=True, text=True, timeout=300)

    def test_token_weighted_over_documents(self):
        with tempfile.TemporaryDirectory() as d:
            paths = []
            for i, t in enumerate(TEXTS):
                paths.append(os.path.join(d, f"doc{i}.txt"))
                with open(paths[-1], "w") as f:
                    f.write(t)
            together = self.run_ppl(*paths)
            self.assertEqual(together.returncode, 0, together.stderr)
            self.assertIn("3 files", together.stdout)
            rows = table(together.stdout)
            self.assertEqual(set(rows), {"full", "rmt", "segments", "window"})
            singles = [table(self.run_ppl(p).stdout) for p in paths]
            for mode, (scored, mean) in rows.items():
                n = sum(s[mode][0] for s in singles)
                tot = sum(s[mode][0] * s[mode][1] for s in singles)
                self.assertEqual(scored, n, mode)
                self.assertAlmostEqual(mean, tot / n, delta=2e-6, msg=mode)
            # the documents are independent streams: not the same as one concatenated text
            cat = os.path.join(d, "cat.txt")
            with open(cat, "w") as f:
                f.write("".join(TEXTS))
            self.assertNotAlmostEqual(table(self.run_ppl(cat).stdout)["full"][1], rows["full"][1],
                                      places=4)

    def test_errors(self):
        one = os.path.join(ROOT, "models", "demo-random-hmt.gguf")  # any existing file
        r = self.run_ppl(one, one, extra=("--reference-protocol",))
        self.assertEqual(r.returncode, 2)
        self.assertIn("one file", r.stderr)
        r = self.run_ppl("/nonexistent/a.txt")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/a.txt", r.stderr)


if __name__ == "__main__":
    unittest.main()
