"""Model.chat_apply and the end-of-generation set from Python: the same
golden strings as tests/check_chat.c (tests/data/chat/, made by
tests/reference/chat_golden.py from the real Hugging Face templates)."""
import os
import unittest

from hmt_testutil import ROOT, hmt

CHAT = os.path.join(ROOT, "tests", "data", "chat")
DEMO = os.path.join(ROOT, "models", "demo-random-f16.gguf")


def conversations():
    out, cur = {}, None
    with open(os.path.join(CHAT, "conversations.txt")) as f:
        for line in f:
            w = line.split()
            if not w or w[0].startswith("#"):
                continue
            if w[0] == "conv":
                cur = out.setdefault(w[1], [])
            else:
                cur.append((w[1], "" if w[2] == "-" else bytes.fromhex(w[2]).decode()))
    return out


class TestChat(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = hmt.Model(DEMO)

    @classmethod
    def tearDownClass(cls):
        cls.model.close()

    def test_golden_with_template_text(self):
        convs = conversations()
        n = 0
        for name in ("llama3-8b-instruct", "qwen2.5-instruct", "gemma-2-it", "gemma-3-it",
                     "mistral-large-instruct-2407", "mistral-large-instruct-2411", "phi-4",
                     "deepseek-r1-distill-llama-8b", "qwen3-0.6b"):
            with open(os.path.join(CHAT, name + ".jinja"), encoding="utf-8") as f:
                tmpl = f.read()
            with open(os.path.join(CHAT, name + ".golden")) as f:
                for line in f:
                    w = line.split(" ", 3)
                    if line.startswith("#"):
                        continue
                    msgs, gen = convs[w[0]], w[1] == "1"
                    if w[2] == "error":
                        with self.assertRaises(hmt.HmtError) as e:
                            self.model.chat_apply(msgs, gen, template=tmpl)
                        self.assertEqual(e.exception.code, hmt.Status.E_INVAL)
                    else:
                        want = "" if w[3].strip() == "-" else bytes.fromhex(w[3].strip()).decode()
                        dicts = [{"role": r, "content": c} for r, c in msgs]
                        self.assertEqual(self.model.chat_apply(dicts, gen, template=tmpl), want)
                    n += 1
        self.assertGreater(n, 9 * 15 * 2 - 1)

    def test_no_template_and_errors(self):
        self.assertIsNone(self.model.chat_template)
        with self.assertRaises(hmt.HmtError) as e:
            self.model.chat_apply([("user", "hi")])
        self.assertEqual(e.exception.code, hmt.Status.E_UNSUPPORTED)
        with self.assertRaises(hmt.HmtError) as e:
            self.model.chat_apply([("tool", "hi")], template="chatml")
        self.assertEqual(e.exception.code, hmt.Status.E_INVAL)
        with self.assertRaises(hmt.HmtError):
            self.model.chat_apply([], template="chatml")
        long = "é" * 5000  # longer than the first buffer
        text = self.model.chat_apply([("user", long)], template="chatml")
        self.assertEqual(text, f"<|im_start|>user\n{long}<|im_end|>\n<|im_start|>assistant\n")

    def test_eog(self):
        m = self.model
        self.assertTrue(m.token_is_eog(m.eos))
        self.assertFalse(m.token_is_eog(-1))
        self.assertFalse(m.token_is_eog(m.n_vocab))
        self.assertIsNone(m.eot)  # the demo vocabulary has no end-of-turn token


if __name__ == "__main__":
    unittest.main()
