"""The Python examples run (on the demo model shipped in models/)."""
import os
import subprocess
import sys
import unittest

from hmt_testutil import ROOT

MODEL = os.path.join(ROOT, "models", "demo-random-f16.gguf")
ADAPTER = os.path.join(ROOT, "models", "demo-random-hmt.gguf")


@unittest.skipUnless(os.path.exists(MODEL) and os.path.exists(ADAPTER), "demo model missing")
class TestExamples(unittest.TestCase):
    def run_example(self, *args):
        r = subprocess.run([sys.executable, os.path.join(ROOT, "python", "examples", args[0]),
                            *args[1:]], capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_score(self):
        out = self.run_example("hmt_score.py", MODEL, ADAPTER, "The history of memory " * 40)
        self.assertIn("segment   1 recalls [0:1.000]", out)
        self.assertIn("perplexity", out)

    def test_generate(self):
        out = self.run_example("generate.py", MODEL, ADAPTER, "The history of",
                               "The history of the world is long.")
        self.assertTrue(out.startswith("The history of"))


if __name__ == "__main__":
    unittest.main()
