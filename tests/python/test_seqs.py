"""Several sequences in one context through Python (Context.eval_seqs,
seq_n_past, seq_rewind, seq_copy): each sequence's rows equal the same rows
evaluated alone, and misuse raises HmtError with the C status."""
import unittest

from hmt_testutil import data, hmt, maxdiff


class TestSequences(unittest.TestCase):
    def setUp(self):
        self.model = hmt.Model(data("llama-f32.gguf"))

    def tearDown(self):
        self.model.close()

    def test_interleaved_rows_equal_separate_contexts(self):
        a, b = [1, 5, 9, 13, 2], [1, 7, 3]
        with hmt.Context(self.model, n_seq=2, n_ctx=16) as ctx:
            # rows of both sequences interleaved in one call
            order = [(0, a[0]), (1, b[0]), (0, a[1]), (0, a[2]), (1, b[1]), (1, b[2]),
                     (0, a[3]), (0, a[4])]
            ctx.eval_seqs([s for s, _ in order], tokens=[t for _, t in order],
                          outputs=hmt.OUT_LOGITS)
            self.assertEqual((ctx.seq_n_past(0), ctx.seq_n_past(1)), (5, 3))
            self.assertEqual(ctx.n_past, 5)
            last_a, last_b = ctx.logits(7, copy=True), ctx.logits(5, copy=True)
        for toks, got in ((a, last_a), (b, last_b)):
            with hmt.Context(self.model, n_ctx=16) as ref:
                ref.eval(tokens=toks)
                self.assertLess(maxdiff(got, ref.logits(copy=True)), 1e-4)

    def test_fork_and_rewind(self):
        with hmt.Context(self.model, n_seq=3, n_ctx=16) as ctx:
            ctx.eval_seqs([0, 0, 0], tokens=[1, 4, 8])
            ctx.seq_copy(0, 2)
            self.assertEqual(ctx.seq_n_past(2), 3)
            ctx.seq_rewind(2, 1)
            self.assertEqual(ctx.seq_n_past(2), 1)
            self.assertEqual(ctx.seq_n_past(0), 3)
            self.assertEqual(ctx.seq_n_past(3), -1)
            self.assertEqual(ctx.get(hmt.Param.N_SEQ), 3)

    def test_sequence_state_moves(self):
        with hmt.Context(self.model, n_seq=2, n_ctx=16) as ctx:
            ctx.eval_seqs([0, 0, 0], tokens=[1, 4, 8])
            state = ctx.seq_save(0)
            ctx.eval_seqs([0], tokens=[3])
            want = ctx.logits(copy=True)
            ctx.seq_restore(1, state)
            self.assertEqual(ctx.seq_n_past(1), 3)
            ctx.eval_seqs([1], tokens=[3])
            self.assertEqual(maxdiff(ctx.logits(copy=True), want), 0)
            with self.assertRaises(hmt.HmtError) as e:
                ctx.save()  # several sequences: per sequence only
            self.assertEqual(e.exception.code, hmt.Status.E_INVAL)

    def test_misuse_raises_with_status(self):
        with hmt.Context(self.model, n_seq=2, n_ctx=4) as ctx:
            with self.assertRaises(hmt.HmtError) as e:
                ctx.eval_seqs([0, 2], tokens=[1, 2])
            self.assertEqual(e.exception.code, hmt.Status.E_INVAL)
            with self.assertRaises(hmt.HmtError) as e:
                ctx.eval_seqs([1] * 5, tokens=[1, 2, 3, 4, 5])
            self.assertEqual(e.exception.code, hmt.Status.E_CTX_FULL)
            self.assertIn("sequence 1", str(e.exception))
            with self.assertRaises(hmt.HmtError):
                ctx.eval_seqs([0], tokens=[1, 2])  # one id for two rows
            with self.assertRaises(hmt.HmtError):
                ctx.seq_copy(0, 5)
            self.assertEqual((ctx.seq_n_past(0), ctx.seq_n_past(1)), (0, 0))


if __name__ == "__main__":
    unittest.main()
