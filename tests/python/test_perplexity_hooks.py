"""hmt-perplexity --ditto / --knn (docs/PERPLEXITY.md) on the demo model:
the identities (no effect at --knn-lambda 0 and --ditto 1, in every mode),
the figures against the library's own processors (DittoProc, KnnProc in a
Sampler) run position by position from Python, and the kNN figure against the NumPy
reference (tests/reference/knn_ref.py: brute-force search over the datastore
file read directly, the interpolation in float64)."""
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

from hmt_testutil import ROOT, hmt

MODEL = os.path.join(ROOT, "models", "demo-random-f16.gguf")
ADAPTER = os.path.join(ROOT, "models", "demo-random-hmt.gguf")
LIB = os.environ.get("HMT_LIB_PATH", "")
BIN = os.path.join(os.path.dirname(LIB), "bin") if LIB else ""
N_TOKENS = 300   # scored text, BOS included: one window of the demo model (W = 512)
KNN_K = 64

# repeated sentences, so that DITTO has something to penalise
SCORED = ("The cat sat on the mat. " * 6 + "A dog ran in the park. The cat sat on the mat. " * 4 +
          "Memory helps a model read long documents, one segment at a time. " * 3)


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=300)


def mean_nll(out):
    """{mode: mean_nll} from hmt-perplexity's table."""
    rows = {}
    for line in out.splitlines():
        f = line.split()
        if f and f[0] in ("full", "rmt", "segments", "window"):
            rows[f[0]] = float(f[-3])  # mode settings... scored mean_nll ppl tok/s
    return rows


def nll_of(logprobs, target):
    lp = [float(x) for x in logprobs]
    m = max(lp)
    return math.log(sum(math.exp(x - m) for x in lp)) + m - lp[target]


@unittest.skipUnless(os.path.exists(MODEL) and os.path.exists(ADAPTER), "demo model missing")
@unittest.skipUnless(BIN and os.path.exists(os.path.join(BIN, "hmt-perplexity")),
                     "hmt-perplexity not built (HMT_LIB_PATH unset)")
class TestPerplexityHooks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.text = os.path.join(cls.tmp, "scored.txt")
        with open(cls.text, "w") as f:
            f.write(SCORED * 3)
        cls.knn = os.path.join(cls.tmp, "train.knn")
        r = run(os.path.join(BIN, "hmt-datastore"), "-m", MODEL, "-f",
                os.path.join(ROOT, "docs", "PROCESSORS.md"), "-o", cls.knn, "-t", "2", "-q")
        if r.returncode != 0:
            raise AssertionError(r.stderr)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def ppl(self, *flags, mode="all", code=0):
        r = run(os.path.join(BIN, "hmt-perplexity"), "-m", MODEL, "-a", ADAPTER, "-f", self.text,
                "--mode", mode, "--max-tokens", str(N_TOKENS), "-t", "2", "-q", *flags)
        self.assertEqual(r.returncode, code, r.stderr)
        return mean_nll(r.stdout), r

    def test_identities(self):
        base, _ = self.ppl()
        self.assertEqual(sorted(base), ["full", "rmt", "segments", "window"])
        for flags in (["--knn-lambda", "0", "--knn", self.knn], ["--ditto", "1"],
                      ["--ditto", "1", "--knn", self.knn, "--knn-lambda", "0"]):
            got, r = self.ppl(*flags)
            self.assertIn("final distribution of the sampler's processors", r.stdout)
            for mode, v in base.items():
                self.assertAlmostEqual(got[mode], v, delta=2e-6, msg=f"{flags} {mode}")
        knn, _ = self.ppl("--knn", self.knn)
        ditto, _ = self.ppl("--ditto", "0.5")
        for mode, v in base.items():
            self.assertGreater(abs(knn[mode] - v), 1e-3, mode)   # the datastore is used
            self.assertGreater(ditto[mode], v + 1e-3, mode)      # repeats are penalised

    def test_usage_errors(self):
        self.ppl("--knn-lambda", "0.5", code=2)
        self.ppl("--ditto", "0", code=2)
        self.ppl("--knn", self.knn, "--knn-lambda", "1.5", code=2)
        _, r = self.ppl("--knn", os.path.join(self.tmp, "missing.knn"), code=1)
        self.assertIn("kNN datastore", r.stderr)

    def chain_nll(self, model, tokens, rows, with_ditto, knn):
        """Mean NLL of tokens[1:] through DittoProc(0.5) then KnnProc, the
        sampler's processors applied at each position and told each true
        token."""
        procs = [hmt.DittoProc(model, ditto_lambda=0.5)] if with_ditto else []
        procs.append(hmt.KnnProc(knn, knn_k=KNN_K, knn_lambda=0.25))
        total = 0.0
        with hmt.Sampler(procs=procs) as s:
            for p in procs:
                p.close()  # the sampler holds them
            s.accept(tokens[0])
            for i in range(len(tokens) - 1):
                logits, key = rows(i)
                total += nll_of(s.apply(logits, key=key), tokens[i + 1])
                s.accept(tokens[i + 1])
        return total / (len(tokens) - 1)

    def test_against_library_processors(self):
        """The tool's batched kNN search + DITTO equal the library's own
        processors, in window mode (a plain context) and in full mode (HMT)."""
        flags = ["--knn", self.knn, "--knn-k", str(KNN_K)]
        tool = {"window": self.ppl(*flags, "--ditto", "0.5", mode="window")[0]["window"],
                "full": self.ppl(*flags, "--ditto", "0.5", mode="full")[0]["full"]}
        with hmt.Model.load(MODEL) as m, hmt.Knn(m, self.knn, n_threads=1) as knn:
            with open(self.text) as f:
                toks = m.tokenize(f.read())[:N_TOKENS]
            with hmt.Context(m, n_ctx=512, n_threads=1) as ctx:
                ctx.eval(toks, outputs=hmt.OUT_LOGITS | hmt.OUT_FFN_INPUT)
                window = self.chain_nll(m, toks, lambda i: (ctx.logits(i, copy=True),
                                                            ctx.ffn_input(i, copy=True)), True, knn)
            with hmt.Adapter(m, ADAPTER) as ad, \
                    hmt.Stream(m, ad, mode=hmt.Mode.FULL, all_logits=1, keep_ffn_input=1,
                               n_threads=1) as st:
                rows = {}  # fed in segments of L, as the tool feeds them
                L = int(ad.segment_length)
                for step in [lambda c=c: st.feed(toks[c:c + L]) for c in range(0, len(toks), L)] + \
                        [st.flush]:
                    step()
                    for i in st.ready_range:
                        rows.setdefault(i, (st.logits(i, copy=True), st.ffn_input(i, copy=True)))
                full = self.chain_nll(m, toks, rows.__getitem__, True, knn)
        self.assertAlmostEqual(tool["window"], window, delta=1e-5)
        self.assertAlmostEqual(tool["full"], full, delta=1e-5)

    @unittest.skipIf(os.environ.get("HMT_NO_NUMPY") or not hmt.HAVE_NUMPY, "needs NumPy")
    def test_against_numpy_reference(self):
        """Window mode, kNN alone: neighbours by brute force over the keys read
        from the datastore file, p = λ·p_kNN + (1−λ)·p_LM in float64."""
        import numpy as np
        sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
        import knn_ref
        tool = self.ppl("--knn", self.knn, "--knn-k", str(KNN_K), mode="window")[0]["window"]
        with open(self.knn, "rb") as f:
            b = f.read()
        d, kdt = struct.unpack_from("<2I", b, 16)
        n, koff, voff = struct.unpack_from("<3Q", b, 32)
        self.assertEqual(kdt, 0)  # F32 keys
        keys = np.frombuffer(b, "<f4", n * d, koff).reshape(n, d)
        vals = np.frombuffer(b, "<i4", n, voff)
        with hmt.Model.load(MODEL) as m, hmt.Context(m, n_ctx=512, n_threads=1) as ctx:
            with open(self.text) as f:
                toks = m.tokenize(f.read())[:N_TOKENS]
            ctx.eval(toks, outputs=hmt.OUT_LOGITS | hmt.OUT_FFN_INPUT)
            q = np.array([ctx.ffn_input(i, copy=True) for i in range(len(toks) - 1)])
            lg = np.array([ctx.logits(i, copy=True) for i in range(len(toks) - 1)])
        idx, dist = knn_ref.knn_search(keys, q, KNN_K)
        total = 0.0
        for i in range(len(toks) - 1):
            lp, _ = knn_ref.knn_logprobs(dist[i], vals[idx[i]], lg[i], lam0=0.25)
            total -= lp[toks[i + 1]]
        self.assertAlmostEqual(tool, total / (len(toks) - 1), delta=1e-5)


if __name__ == "__main__":
    unittest.main()
