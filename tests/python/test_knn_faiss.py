"""The FAISS IVF-PQ backend through Python: build, attach, search with exact
distances, detach, errors (tests/check_knn_faiss.c has the recall test)."""
import os
import random
import tempfile
import unittest

from hmt_testutil import data, hmt


def clustered(n, d, seed):
    rng = random.Random(seed)
    centres = [[rng.gauss(0, 1) for _ in range(d)] for _ in range(50)]
    return [[c + rng.gauss(0, 0.9) for c in rng.choice(centres)] for _ in range(n)]


class TestKnnFaiss(unittest.TestCase):
    def test_build_attach_search(self):
        with hmt.Model(data("llama-f32.gguf")) as m, tempfile.TemporaryDirectory() as d:
            path, ipath = os.path.join(d, "a.knn"), os.path.join(d, "a.knn.faiss")
            rows = clustered(10000, m.n_embd, 1)
            with hmt.KnnBuilder(m, path) as b:
                b.add([x for r in rows for x in r], [i % m.n_vocab for i in range(len(rows))])
                b.finish()
            with hmt.Knn(m, path, n_threads=2) as knn:
                if not hmt.knn_faiss_available():
                    with self.assertRaises(hmt.HmtError) as cm:
                        knn.faiss_build(ipath)
                    self.assertEqual(cm.exception.code, hmt.Status.E_UNSUPPORTED)
                    return
                seen = []
                knn.faiss_build(ipath, knn_nlist=64, progress=lambda done, total: seen.append(done))
                self.assertEqual(seen[-1], 10000)
                q = [x for r in rows[:3] for x in r]
                exact_d, exact_i = knn.search(q, 8)
                # every list, 2048 candidates re-ranked: the exact answer here
                knn.faiss_attach(ipath, knn_nprobe=64, knn_rerank=256)
                d2, i2 = knn.search(q, 8)
                self.assertEqual([list(r) for r in i2], [list(r) for r in exact_i])
                self.assertEqual([list(r) for r in d2], [list(r) for r in exact_d])
                knn.faiss_detach()
                with self.assertRaises(hmt.HmtError) as cm:
                    knn.faiss_attach(path)  # the datastore is not an index
                self.assertEqual(cm.exception.code, hmt.Status.E_FORMAT)
                def bad_progress(done, total):
                    raise ValueError("stop")
                with self.assertRaises(ValueError):
                    knn.faiss_build(ipath, progress=bad_progress)


if __name__ == "__main__":
    unittest.main()
