"""hmt.streams_feed: one token for each of several streams, the same
logits as feeding each alone; mismatched arguments raise."""
import unittest

from hmt_testutil import data, hmt, maxdiff


class TestStreamsFeed(unittest.TestCase):
    def setUp(self):
        self.model = hmt.Model(data("llama-q8.gguf"))

    def tearDown(self):
        self.model.close()

    def test_equals_feeding_alone(self):
        toks = [[1, 5, 9, 13, 2, 7, 3], [4, 8, 15, 16, 23, 42, 6], [11, 12, 13, 14, 15, 16, 17]]
        kw = dict(mode="segments", segment_length=4)
        bat = [hmt.Stream(self.model, **kw) for _ in toks]
        one = [hmt.Stream(self.model, **kw) for _ in toks]
        try:
            for step in range(len(toks[0])):
                now = [t[step] for t in toks]
                ranges = hmt.streams_feed(bat, now)
                for s, b, o, t in zip(range(3), bat, one, now):
                    self.assertEqual(o.feed([t]), ranges[s])
                    for i in ranges[s]:
                        self.assertEqual(maxdiff(b.logits(i, copy=True), o.logits(i, copy=True)), 0)
            with self.assertRaises(hmt.HmtError) as e:
                hmt.streams_feed(bat, [1, 2])
            self.assertEqual(e.exception.code, hmt.Status.E_INVAL)
            with self.assertRaises(hmt.HmtError) as e:
                hmt.streams_feed([bat[0], bat[0]], [1, 2])
            self.assertEqual(e.exception.code, hmt.Status.E_INVAL)
        finally:
            for s in bat + one:
                s.close()


if __name__ == "__main__":
    unittest.main()
