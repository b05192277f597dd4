"""Checks of hmt_train.py's recall-training options (see check_train_options.sh)."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "tools")
sys.path.insert(0, TOOLS)
from hmt_recall_curriculum import aligned_batch  # noqa: E402
from hmt_train import load_adapter, score_penalty  # noqa: E402

FAILS = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        FAILS.append(what)


def check_batches():
    """The fact opens segment s, the probe opens s + d, answers are marked
    where the target is an answer token, the rest is the source text."""
    rng = np.random.default_rng(3)
    src = np.arange(5, 20000, dtype=np.int64) % 3000 + 3     # distinct-ish, no BOS
    L, B = 32, 4
    for task, pool in (("copy", None), ("kv", list(range(100, 140)))):
        for s, d in ((1, 1), (2, 3)):
            x, ans = aligned_batch(task, src, rng, B, L, s, d, 16, pool)
            T = (s + d + 1) * L
            check(tuple(x.shape) == (B, T + 1) and tuple(ans.shape) == (B, T),
                  f"{task} s={s} d={d}: shapes")
            check(bool((x[:, 0] == 1).all()), f"{task} s={s} d={d}: BOS first")
            p = (s + d) * L
            if task == "copy":
                same = bool((x[:, s * L:s * L + 16] == x[:, p:p + 16]).all())
                want = list(range(p + 1, p + 15))           # targets of tokens 2..15
            else:
                keys, vals = x[:, s * L:s * L + 8:2], x[:, s * L + 1:s * L + 8:2]
                same = all(int(x[b, p]) in keys[b].tolist() and
                           int(x[b, p + 1]) == int(vals[b][keys[b].tolist().index(int(x[b, p]))])
                           for b in range(B))
                want = [p]                                   # the value, predicted at the key
            check(same, f"{task} s={s} d={d}: the probe asks for the fact")
            got = [sorted(torch.nonzero(ans[b])[:, 0].tolist()) for b in range(B)]
            check(all(g == want for g in got), f"{task} s={s} d={d}: answer mask {got[0]} == {want}")


def check_penalty():
    s = torch.tensor([[0.0, 1.0, -1.0, 0.0]], requires_grad=True)
    check(float(score_penalty([s], 4.0)) == 0.0, "penalty 0 within the margin")
    s2 = torch.tensor([[0.0, 100.0, -100.0, 0.0]], requires_grad=True)
    pen = score_penalty([s2], 4.0)
    pen.backward()
    g = s2.grad[0].tolist()
    check(float(pen) > 0 and g[1] > 0 and g[2] < 0,
          f"penalty {float(pen):.1f} > 0 beyond the margin, its gradient narrows the spread")


def check_run():
    """Two curriculum steps on the demo model: --recall-only leaves M_init
    alone and trains T, W_q, W_k; --recall-scale scaled W first."""
    import sentencepiece as spm
    adapter = os.path.join(HERE, "..", "..", "models", "demo-random-hmt.gguf")
    model = os.path.join(HERE, "..", "..", "models", "demo-random-f16.gguf")
    with tempfile.TemporaryDirectory() as d:
        lines = [f"word{i % 97} and some text {i}." for i in range(400)]
        spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=d + "/spm",
                                       vocab_size=120, minloglevel=2)
        np.save(d + "/train_ids.npy",
                (np.arange(20000) * 7919 % 1000 + 3).astype(np.int32))
        cmd = [sys.executable, os.path.join(TOOLS, "hmt_train.py"), "hmt", "--stage", "2",
               "--dir", d, "--from-gguf", model, "--init-adapter", adapter, "--curriculum", "copy",
               "--cur-start", "1", "--cur-distances", "1", "--recall-only", "1",
               "--recall-scale", "0.5", "--score-penalty", "1", "--batch", "2", "--steps", "2",
               "--log-every", "1", "--threads", "1", "--lr", "1e-3", "-q"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        check(r.returncode == 0, f"hmt_train.py exit {r.returncode} {r.stderr[-300:]}")
        if r.returncode:
            return
        check(" ans " in r.stdout and " w_fact " in r.stdout and "|s|" in r.stdout,
              "the log reports answer NLL, weight on the fact and score spread")
        p0, hp = load_adapter(adapter)
        p = torch.load(d + "/hmt.pt")["params"]
        check(torch.equal(p["M_init"], p0.M_init.data), "--recall-only: M_init unchanged")
        dq = (p["Wq"] - 0.5 * p0.Wq.data).abs().max().item()
        check(0 < dq <= 2.05e-3, f"--recall-scale 0.5 then 2 Adam steps of 1e-3 (max |dW_q| {dq:.2e})")
        check(not torch.equal(p["T"], p0.T.data), "--recall-only: T trained")
        check(torch.load(d + "/hmt.pt")["hp"]["L"] == hp["L"], "--init-adapter: its L kept")


check_batches()
check_penalty()
check_run()
print("check_train_options: " + ("FAILED " + "; ".join(FAILS) if FAILS else "all passed"))
sys.exit(1 if FAILS else 0)
