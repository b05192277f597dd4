"""libhmt's PyTorch trainer: tokenizer, base Llama from scratch, HMT parameters
(stage 1 memory passing, stage 2 with recall, BPTT), and evaluation.
CPU only, resumable (checkpoints under --dir), progress and loss printed
(base and hmt draw a progress line with the rate and ETA on stderr when it is
a terminal; -q turns it off).

    python3 tools/hmt_train.py tokenizer [--vocab 3000]
    python3 tools/hmt_train.py base      --minutes 18 --steps 900
    python3 tools/hmt_train.py hmt       --stage 1 --minutes 1.5
    python3 tools/hmt_train.py hmt       --stage 2 --minutes 8
    python3 tools/hmt_train.py hmt       --stage 1 --from-gguf models/brown-f16.gguf   (an existing backbone)
    python3 tools/hmt_train.py hmt       --stage 2 --from-gguf models/brown-f16.gguf \
            --init-adapter models/brown-hmt.gguf --curriculum copy --recall-scale 0.02 \
            --score-penalty 0.1   (recall training on segment-aligned facts: docs/TRAINING.md)
    python3 tools/export_gguf.py --base models/brown-f16.gguf --adapter models/brown-hmt.gguf
    python3 tools/hmt_train.py eval  [--model M.gguf --adapter A.gguf] [--mode all]   (trainer's PPL)
    python3 tools/hmt_train.py ceval --model M.gguf [--adapter A.gguf] [--L 64]       (libhmt's PPL)
(--dir defaults to build/brown; the exact runs behind the shipped model: docs/TRAINING.md)

Data: build/brown/train.txt (tools/prepare_brown.py); documents are separated
by blank lines; each document is tokenized as BOS + SentencePiece ids and the
training stream is their concatenation. Checkpoints: DIR/spm.model,
DIR/base.pt, DIR/hmt.pt (+ .log files).
Model math: tools/hmt_torch.py (docs/HMT.md).
"""
import argparse
import glob
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from atomic_write import atomic_write  # noqa: E402
from hmt_recall_curriculum import aligned_batch, word_pieces  # noqa: E402
from hmt_torch import HMT, Config, HMTParams, Llama  # noqa: E402
from progress import Progress  # noqa: E402

BOS = 1
PROGRESS = None  # the training loop's progress line, blanked before each log line


def log(path, msg):
    if PROGRESS is not None:
        PROGRESS.clear()
    print(msg, flush=True)
    with open(path, "a") as f:
        f.write(msg + "\n")


# ----------------------------------------------------------------------------- tokenizer
def cmd_tokenizer(a):
    import sentencepiece as spm
    with open(os.path.join(a.dir, "train.txt")) as f:
        lines = [ln.rstrip("\n") for ln in f if ln.strip()]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=os.path.join(a.dir, "spm"),
        model_type="bpe", vocab_size=a.vocab, byte_fallback=True, character_coverage=1.0,
        add_dummy_prefix=True, remove_extra_whitespaces=False,
        normalization_rule_name="identity", split_digits=True, allow_whitespace_only_pieces=True,
        num_threads=2, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, max_sentencepiece_length=16,
        minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(a.dir, "spm.model"))
    n = sum(len(sp.encode(ln)) for ln in lines)
    print(f"vocab {sp.get_piece_size()}, {n} tokens in train lines "
          f"({n / sum(len(ln.split()) for ln in lines):.2f} per word)")


def load_sp(d):
    import sentencepiece as spm
    return spm.SentencePieceProcessor(model_file=os.path.join(d, "spm.model"))


def encode_doc(sp, text):
    """What libhmt does with a file: BOS + SentencePiece ids of the whole text
    (add_space_prefix once, newlines as byte tokens)."""
    return [BOS] + sp.encode(text)


def train_stream(a, sp):
    cache = os.path.join(a.dir, "train_ids.npy")
    if os.path.exists(cache):
        return np.load(cache)
    with open(os.path.join(a.dir, "train.txt")) as f:
        docs = [d.strip("\n") for d in f.read().split("\n\n") if d.strip()]
    ids = []
    for d in docs:
        ids += encode_doc(sp, d)
    ids = np.asarray(ids, np.int32)
    np.save(cache, ids)
    return ids


def model_from_ckpt(path):
    ck = torch.load(path)
    c = Config(**ck["config"])
    m = Llama(c)
    m.load_state_dict(ck["model"])
    return m, ck


# ----------------------------------------------------------------------------- base
def show_progress(step, total, tokens_per_step, session, t0, minutes):
    """The progress line: steps of the schedule, this session's rate, and the
    ETA of whichever ends the run first (the schedule or the time budget).
    session = (its start time, the step it started at)."""
    now = time.time()
    el = now - session[0]
    steps_per_s = (step - session[1]) / el if el > 0 else 0.0
    left = minutes * 60 - (now - t0)
    if steps_per_s > 0:
        left = min(left, (total - step) / steps_per_s)
    PROGRESS.update(step, total, (step - session[1]) * tokens_per_step, elapsed=el,
                    eta=max(0.0, left))


def lr_at(step, total, peak, warm):
    if step < warm:
        return peak * (step + 1) / warm
    t = min(1.0, (step - warm) / max(1, total - warm))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def cmd_base(a):
    torch.set_num_threads(a.threads)
    sp = load_sp(a.dir)
    ids = torch.from_numpy(train_stream(a, sp).astype(np.int64))
    ck_path, lg = os.path.join(a.dir, "base.pt"), os.path.join(a.dir, "base.log")
    if os.path.exists(ck_path):
        m, ck = model_from_ckpt(ck_path)
        step, elapsed = ck["step"], ck["elapsed"]
        opt = torch.optim.AdamW(m.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.1)
        opt.load_state_dict(ck["opt"])
        torch.set_rng_state(ck["rng"])
        log(lg, f"resumed at step {step} ({elapsed / 60:.1f} min)")
    else:
        torch.manual_seed(a.seed)
        c = Config(n_vocab=sp.get_piece_size(), n_embd=a.n_embd, n_layer=a.n_layer,
                   n_head=a.n_head, n_head_kv=a.n_head, n_ff=a.n_ff, n_ctx=a.n_ctx)
        m = Llama(c)
        opt = torch.optim.AdamW(m.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.1)
        step, elapsed = 0, 0.0
        n_par = sum(p.numel() for p in m.parameters())
        log(lg, f"base: {n_par} parameters, {len(ids)} training tokens, config {c.to_dict()}")
    total = a.steps
    t0, tl, nl = time.time() - elapsed, 0.0, 0

    def save():
        with atomic_write(ck_path) as f:
            torch.save(dict(config=m.c.to_dict(), model=m.state_dict(), opt=opt.state_dict(),
                            step=step, elapsed=time.time() - t0, rng=torch.get_rng_state()), f)

    global PROGRESS
    PROGRESS, session = Progress("base", quiet=a.quiet), (time.time(), step)
    while step < total and (time.time() - t0) < a.minutes * 60:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total, a.lr, a.warmup)
        starts = torch.randint(0, len(ids) - a.seq - 1, (a.batch,))
        x = torch.stack([ids[s:s + a.seq + 1] for s in starts.tolist()])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(a.bf16)):
            lgt, _ = m(x[:, :-1])
        loss = F.cross_entropy(lgt.float().reshape(-1, lgt.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        step += 1
        tl, nl = tl + loss.item(), nl + 1
        if step % a.log_every == 0:
            el = time.time() - t0
            log(lg, f"step {step}/{total} loss {tl / nl:.4f} lr {opt.param_groups[0]['lr']:.2e} "
                    f"{el / 60:.1f} min {a.batch * a.seq * nl / (el - getattr(cmd_base, 'last', 0) + 1e-9):.0f} tok/s")
            cmd_base.last = el
            tl, nl = 0.0, 0
        if step % a.save_every == 0:
            save()
        show_progress(step, total, a.batch * a.seq, session, t0, a.minutes)
    PROGRESS.end()
    save()
    log(lg, f"base: stopped at step {step}, {(time.time() - t0) / 60:.1f} min")


# ----------------------------------------------------------------------------- hmt
def cmd_hmt(a):
    torch.set_num_threads(a.threads)
    sp = load_sp(a.dir)
    ids = torch.from_numpy(train_stream(a, sp).astype(np.int64))
    ck_path, lg = os.path.join(a.dir, "hmt.pt"), os.path.join(a.dir, "hmt.log")
    ck = torch.load(ck_path) if os.path.exists(ck_path) else None
    init = None                                    # (params, hp) of --init-adapter
    if ck is None and a.init_adapter:
        init = load_adapter(a.init_adapter)
    if a.from_gguf:                               # an existing backbone (e.g. a llama.cpp GGUF)
        from hmt_torch import load_gguf
        # in libhmt's HMT context (k + L + 2 slots), which picks phi3's LongRoPE table
        shape = ck["hp"] if ck is not None else init[1] if init else dict(L=a.L, k=a.k)
        m, _, _ = load_gguf(a.from_gguf, n_ctx=shape["k"] + shape["L"] + 2)
    else:
        m, _ = model_from_ckpt(os.path.join(a.dir, "base.pt"))
    m.requires_grad_(bool(a.tune_backbone))
    m.eval()
    tuned_path = os.path.join(a.dir, "base-tuned.pt")   # the fine-tuned backbone (base.pt's format)
    if a.tune_backbone and os.path.exists(tuned_path):
        m.load_state_dict(torch.load(tuned_path)["model"])
    if ck is not None:
        hp = ck["hp"]
        p = HMTParams(m.c.n_embd, hp["d_h"])
        p.load_state_dict(ck["params"])
    elif init is not None:
        p, hp = init
    else:
        hp = dict(L=a.L, k=a.k, N=a.N, d_h=a.d_h, fraction=0.5)
        p = HMTParams(m.c.n_embd, a.d_h, seed=a.seed)
        with torch.no_grad():                      # start T, M_init as embedding-like rows
            p.T.copy_(m.tok_embd.weight[BOS])
            p.M_init.copy_(m.tok_embd.weight[BOS])
    key = f"stage{a.stage}"
    st = (ck or {}).get(key, dict(step=0, elapsed=0.0, opt=None))
    if st["step"] == 0 and a.recall_scale != 1.0:  # a saturated recall made soft again
        with torch.no_grad():
            p.Wq.mul_(a.recall_scale)
            p.Wk.mul_(a.recall_scale)
    params = [p.M_init] if a.stage == 1 else \
        [p.T, p.Wq, p.Wk] if a.recall_only else [p.T, p.M_init, p.Wq, p.Wk]
    groups = [dict(params=params, lr=a.lr)]
    if a.tune_backbone:                            # HMT-pytorch fine-tunes the backbone too
        groups.append(dict(params=list(m.parameters()), lr=a.backbone_lr))
        params = params + groups[1]["params"]
    opt = torch.optim.Adam(groups)
    if st["opt"] is not None:
        opt.load_state_dict(st["opt"])
    h = HMT(m, p, hp["L"], hp["k"], hp["N"], hp["fraction"], mode="rmt" if a.stage == 1 else "full")
    L, B = hp["L"], a.batch
    scores = []                                    # this step's recall scores (--score-penalty)
    h.on_scores = scores.append
    # B parallel streams over the training tokens, each starting at a random
    # segment-aligned offset; memory carried across BPTT windows (detached).
    g = torch.Generator().manual_seed(a.seed + a.stage * 1000 + st["step"])
    span = len(ids) // B
    pos = [i * span + int(torch.randint(0, span // 2, (1,), generator=g)) for i in range(B)]
    state = h.new_state()
    t0 = time.time() - st["elapsed"]
    step = st["step"]
    tl, nl, ts = 0.0, 0, time.time()
    log(lg, f"hmt stage {a.stage}: L={L} k={hp['k']} N={hp['N']} d_h={hp['d_h']} j={h.j} "
            f"B={B} bptt={a.bptt} from step {step}")
    if a.curriculum:
        cur_rng = np.random.default_rng([a.seed, st["step"]])
        cur_src = ids.numpy()
        cur_pool = word_pieces(sp) if a.curriculum == "kv" else None
        starts, dists = int_list(a.cur_start), int_list(a.cur_distances)
        log(lg, f"curriculum {a.curriculum}: fact opens segment {starts}, probe {dists} segments "
                f"later, answer weight {a.answer_weight}, score penalty {a.score_penalty} "
                f"beyond ±{a.score_margin}, recall-only {a.recall_only}")
    stat = dict(ans=0.0, w=0.0, spread=0.0, tok=0)  # logged: answer NLL, weight on the fact, tokens

    def save():
        d = torch.load(ck_path) if os.path.exists(ck_path) else {}
        d.update(hp=hp, params=p.state_dict())
        d[key] = dict(step=step, elapsed=time.time() - t0, opt=opt.state_dict())
        with atomic_write(ck_path) as f:
            torch.save(d, f)
        if a.tune_backbone:
            with atomic_write(tuned_path) as f:
                torch.save(dict(config=m.c.to_dict(), model=m.state_dict()), f)

    global PROGRESS
    PROGRESS, session = Progress(f"hmt stage {a.stage}", quiet=a.quiet), (time.time(), step)
    while step < a.steps and (time.time() - t0) < a.minutes * 60:
        # restart the memory (like a new document) every reset_every segments; in
        # stage 1 with the frozen backbone only M_init is trainable, so every
        # BPTT window starts fresh from it (as HMT-pytorch's training windows do)
        if state["n"] >= a.reset_every or a.stage == 1:
            state = h.new_state()
        scores.clear()
        if a.curriculum:
            loss = curriculum_loss(a, h, cur_rng, cur_src, cur_pool, starts, dists, B, stat,
                                   scores)
            state = h.new_state()
        else:
            loss = 0.0
            for _ in range(a.bptt):
                x = torch.stack([ids[q:q + L + 1] for q in pos])
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(a.bf16)):
                    lgt, state = h.segment(state, x[:, :L])
                lgt = lgt.float()
                loss = loss + F.cross_entropy(lgt.reshape(-1, lgt.shape[-1]), x[:, 1:].reshape(-1))
                pos = [q + L if q + 2 * L + 1 < len(ids) else 0 for q in pos]
            loss = loss / a.bptt
            stat["tok"] += B * L * a.bptt
        if scores:
            stat["spread"] += max(float((s - s.mean(-1, keepdim=True)).abs().max()) for s in scores)
            if a.score_penalty > 0:
                loss = loss + a.score_penalty * score_penalty(scores, a.score_margin)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        state = h.detach(state)
        step += 1
        tl, nl = tl + loss.item(), nl + 1
        if step % a.log_every == 0:
            el = time.time() - t0
            extra = f" ans {stat['ans'] / nl:.3f}" if a.curriculum else ""
            extra += f" w_fact {stat['w'] / nl:.3f}" if a.curriculum and a.stage == 2 else ""
            extra += f" |s| {stat['spread'] / nl:.1f}" if a.stage == 2 else ""
            log(lg, f"stage {a.stage} step {step}/{a.steps} loss {tl / nl:.4f}{extra} "
                    f"{el / 60:.1f} min {stat['tok'] / (time.time() - ts):.0f} tok/s")
            tl, nl, ts = 0.0, 0, time.time()
            stat.update(ans=0.0, w=0.0, spread=0.0, tok=0)
        if step % a.save_every == 0:
            save()
        show_progress(step, a.steps, B * L * a.bptt, session, t0, a.minutes)
    PROGRESS.end()
    save()
    log(lg, f"hmt stage {a.stage}: stopped at step {step}, {(time.time() - t0) / 60:.1f} min")


def int_list(spec):
    return [int(v) for v in spec.split(",") if v.strip()]


def load_adapter(path):
    """(HMTParams, hp) of an adapter GGUF (--init-adapter)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                    "reference"))
    from gguf_read import GGUFFile
    g = GGUFFile(path)
    t = lambda n: torch.from_numpy(g.tensor(n).copy())  # noqa: E731
    wq = g.tensor("hmt.recall.wq")
    p = HMTParams(wq.shape[1], wq.shape[0])
    p.load_state_dict(dict(T=t("hmt.summary_prompt").reshape(-1),
                           M_init=t("hmt.memory_init").reshape(-1),
                           Wq=t("hmt.recall.wq"), Wk=t("hmt.recall.wk")))
    mt = g.meta
    return p, dict(L=int(mt["hmt.segment_length"]), k=int(mt.get("hmt.sensory_length", 0)),
                   N=int(mt["hmt.cache_size"]), d_h=int(p.Wq.shape[0]),
                   fraction=float(mt.get("hmt.summary_fraction", 0.5)))


def score_penalty(scores, margin):
    """Mean squared excess of the recall scores' distance from their row
    mean beyond margin: zero while the softmax is soft enough to learn
    (a spread of ±margin still gives weights e^(2 margin) apart)."""
    tot = 0.0
    for s in scores:
        dev = (s.float() - s.float().mean(-1, keepdim=True)).abs()
        tot = tot + F.relu(dev - margin).pow(2).mean()
    return tot / len(scores)


def curriculum_loss(a, h, rng, src, pool, starts, dists, B, stat, scores):
    """One step on fresh segment-aligned documents (hmt_recall_curriculum.
    aligned_batch): the fact opens segment s, the probe opens s + d; BPTT
    over the whole document; the loss is the token-weighted mean NLL with
    weight --answer-weight on the answer tokens (1 elsewhere). scores: the
    list that h's recalls append to (segments 1, 2, ... in full mode)."""
    L = h.L
    s0, d = int(rng.choice(starts)), int(rng.choice(dists))
    x, ans = aligned_batch(a.curriculum, src, rng, B, L, s0, d, a.cur_span, pool)
    wt = 1.0 + (a.answer_weight - 1.0) * ans.float()
    state, tot, ans_nll, aux = h.new_state(), 0.0, 0.0, 0.0
    for n in range(x.shape[1] // L):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(a.bf16)):
            lgt, state = h.segment(state, x[:, n * L:(n + 1) * L])
        if n == s0 and a.memory_aux > 0:          # the fact's memory, read by the LM head
            fl = F.log_softmax(h.m.logits(state["mems"][-1]).float(), -1)      # [B, V]
            aux = -fl.gather(1, x[:, s0 * L:s0 * L + a.cur_span]).mean()
        ce = F.cross_entropy(lgt.float().reshape(-1, lgt.shape[-1]),
                             x[:, n * L + 1:(n + 1) * L + 1].reshape(-1),
                             reduction="none").view(B, L)
        w = wt[:, n * L:(n + 1) * L]
        tot = tot + (ce * w).sum()
        m = ans[:, n * L:(n + 1) * L]
        if m.any():
            ans_nll += float(ce[m].sum()) / B
    if h.mode == "full":                           # the probe's recall weight on the fact's memory
        stat["w"] += float(scores[s0 + d - 1].detach().float().softmax(-1)[:, s0].mean())
    stat["ans"] += ans_nll
    stat["tok"] += B * x.shape[1] - B
    return tot / wt.sum() + a.memory_aux * aux


# ----------------------------------------------------------------------------- eval
def batch_nll(h, docs, mode, W):
    """Sum of NLL and count over tokens 1..n-1 of each document (as
    hmt-perplexity scores a file), all documents batched: they are padded at
    the end (causal attention: padding never reaches a real token's logits),
    except that a final segment shorter than j is summarized from its own
    tokens only, so those documents are redone one by one there."""
    D = len(docs)
    order = sorted(range(D), key=lambda i: -len(docs[i]))
    docs = [docs[i] for i in order]
    lens = [len(d) for d in docs]
    step = W // 2 if mode == "window" else h.L
    T = max(lens) + step + W + 1
    x = torch.zeros(D, T, dtype=torch.int64)
    y = torch.full((D, T), -100, dtype=torch.int64)
    for i, d in enumerate(docs):
        t = torch.tensor(d, dtype=torch.int64)
        x[i, :len(d)] = t
        y[i, :len(d) - 1] = t[1:]
    nll = torch.zeros(D, dtype=torch.float64)

    def add(lg, tgt, rows):
        ce = F.cross_entropy(lg.reshape(-1, lg.shape[-1]).float(), tgt.reshape(-1),
                             ignore_index=-100, reduction="none").view(tgt.shape)
        nll[rows] += ce.double().sum(1)

    if mode == "window":
        lg, _ = h.m(x[:, :W])
        add(lg, y[:, :W], slice(0, D))
        s = W
        while s < max(lens):
            b = sum(1 for n in lens if n > s)
            lg, _ = h.m(x[:b, s - W // 2:s + W // 2])
            add(lg[:, W // 2:], y[:b, s:s + W // 2], slice(0, b))
            s += W // 2
        return float(nll.sum()), sum(n - 1 for n in lens)
    L = h.L
    state = h.new_state()
    n = 0
    while n * L < max(lens):
        b = sum(1 for ln in lens if ln > n * L)
        st = dict(n=state["n"], mems=[m_[:b] for m_ in state["mems"]],
                  sens=None if state["sens"] is None else state["sens"][:b])
        lg, new = h.segment(st, x[:b, n * L:(n + 1) * L])
        add(lg, y[:b, n * L:(n + 1) * L], slice(0, b))
        if mode == "full" and n > 0:
            for i in range(b):
                rem = lens[i] - n * L
                if 0 < rem < h.j:                 # short last segment: j' = rem
                    sti = dict(n=st["n"], mems=[m_[i:i + 1] for m_ in st["mems"]],
                               sens=None if st["sens"] is None else st["sens"][i:i + 1])
                    lgi, _ = h.segment(sti, x[i:i + 1, n * L:n * L + rem])
                    ce_old = F.cross_entropy(lg[i, :rem].float(), y[i, n * L:n * L + rem],
                                             ignore_index=-100, reduction="sum")
                    ce_new = F.cross_entropy(lgi[0].float(), y[i, n * L:n * L + rem],
                                             ignore_index=-100, reduction="sum")
                    nll[i] += float(ce_new) - float(ce_old)
        state = new
        n += 1
    return float(nll.sum()), sum(ln - 1 for ln in lens)


def cmd_eval(a):
    """Token-weighted PPL over the held-out documents, each scored as
    hmt-perplexity scores a file (BOS + text, tokens 1..n-1)."""
    torch.set_num_threads(a.threads)
    sp = load_sp(a.dir)
    dt = torch.float64 if a.dtype == "f64" else torch.float32
    if a.model:                                   # the exported GGUF files (what libhmt reads)
        from hmt_torch import load_gguf
        m, p, hp = load_gguf(a.model, a.adapter, dtype=dt)
        if hp is None:
            hp = dict(L=a.L or 64, k=0, N=1, fraction=0.5)
    else:                                         # checkpoints; 2-D weights rounded to F16 as exported
        m, _ = model_from_ckpt(os.path.join(a.dir, "base.pt"))
        with torch.no_grad():
            for q in m.parameters():
                if q.dim() >= 2:
                    q.copy_(q.half().float())
        m.to(dt)
        hk = os.path.join(a.dir, "hmt.pt")
        p, hp = None, dict(L=a.L or 64, k=0, N=1, fraction=0.5)
        if os.path.exists(hk):
            ck = torch.load(hk)
            hp = ck["hp"]
            p = HMTParams(m.c.n_embd, hp["d_h"])
            p.load_state_dict(ck["params"])
            p.to(dt)
    m.eval()
    L = a.L or hp["L"]
    files = sorted(glob.glob(a.files)) if a.files else sorted(
        glob.glob(os.path.join(a.dir, "heldout", "*.txt")))
    if a.max_docs:
        files = files[:a.max_docs]
    modes = ["full", "rmt", "segments", "window"] if a.mode == "all" else a.mode.split(",")
    W = a.ctx or m.c.n_ctx
    res = {}
    with torch.no_grad():
        for mode in modes:
            if mode in ("full", "rmt") and p is None:
                continue
            h = HMT(m, p, L, hp["k"], hp["N"], hp["fraction"], mode=mode)
            t0 = time.time()
            docs = []
            for fn in files:
                with open(fn) as f:
                    docs.append(encode_doc(sp, f.read()))
            tot, cnt = batch_nll(h, docs, mode, W)
            res[mode] = (tot, cnt)
            print(f"{mode:9s} L={L if mode != 'window' else W:<4d} scored {cnt:7d} "
                  f"mean_nll {tot / cnt:.6f} ppl {math.exp(tot / cnt):.4f} "
                  f"({time.time() - t0:.0f} s)", flush=True)
    return res


def cmd_ceval(a):
    """The same held-out score through libhmt: build/bin/hmt-perplexity on each
    file (fresh stream per document), token-weighted over all of them."""
    import subprocess
    files = sorted(glob.glob(a.files)) if a.files else sorted(
        glob.glob(os.path.join(a.dir, "heldout", "*.txt")))
    tot, t0 = {}, time.time()
    for fn in files:
        cmd = [a.bin, "-m", a.model, "-f", fn, "--mode", a.mode, "-t", str(a.threads), "-q"]
        if a.adapter:
            cmd += ["-a", a.adapter]
        if a.L:
            cmd += ["-L", str(a.L)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        for ln in out.splitlines():
            f = ln.split()
            if f and f[0] in ("full", "rmt", "segments", "window"):
                i = next(k for k in range(1, len(f)) if f[k].isdigit())
                sc, mn = int(f[i]), float(f[i + 1])
                s_, c_ = tot.get(f[0], (0.0, 0))
                tot[f[0]] = (s_ + sc * mn, c_ + sc)
                tot.setdefault(f[0] + "#settings", " ".join(f[1:i]))
    for mode in ("full", "rmt", "segments", "window"):
        if mode in tot:
            s_, c_ = tot[mode]
            print(f"{mode:9s} {tot[mode + '#settings']:24s} scored {c_:7d} mean_nll {s_ / c_:.6f} "
                  f"ppl {math.exp(s_ / c_):.4f}", flush=True)
    print(f"({len(files)} files, {time.time() - t0:.0f} s)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("tokenizer", "base", "hmt", "eval", "ceval"):
        s = sub.add_parser(name)
        s.add_argument("--dir", default="build/brown")
        s.add_argument("--threads", type=int, default=2)
        s.add_argument("--seed", type=int, default=1)
        if name in ("base", "hmt"):
            s.add_argument("-q", "--quiet", action="store_true",
                           help="no progress line (drawn only when stderr is a terminal, "
                                "or with HMT_PROGRESS=1)")
        if name == "tokenizer":
            s.add_argument("--vocab", type=int, default=3000)
        if name == "base":
            s.add_argument("--n-embd", type=int, default=256)
            s.add_argument("--n-layer", type=int, default=4)
            s.add_argument("--n-head", type=int, default=4)
            s.add_argument("--n-ff", type=int, default=688)
            s.add_argument("--n-ctx", type=int, default=256, help="context length (= the training sequence length)")
            s.add_argument("--seq", type=int, default=256, help="training sequence length")
            s.add_argument("--batch", type=int, default=16)
            s.add_argument("--lr", type=float, default=2e-3)
            s.add_argument("--warmup", type=int, default=60)
            s.add_argument("--steps", type=int, default=1200, help="schedule length")
            s.add_argument("--minutes", type=float, default=18, help="stop after this (resumable)")
            s.add_argument("--log-every", type=int, default=10)
            s.add_argument("--bf16", type=int, default=1, help="bf16 autocast matmuls (oneDNN; fp32 master weights)")
            s.add_argument("--save-every", type=int, default=50)
        if name == "hmt":
            s.add_argument("--stage", type=int, choices=[1, 2], required=True)
            s.add_argument("--L", type=int, default=64)
            s.add_argument("--k", type=int, default=16)
            s.add_argument("--N", type=int, default=32)
            s.add_argument("--d-h", type=int, default=128)
            s.add_argument("--batch", type=int, default=8)
            s.add_argument("--bptt", type=int, default=4)
            s.add_argument("--reset-every", type=int, default=40, help="segments per stream before a reset")
            s.add_argument("--lr", type=float, default=1e-2)
            s.add_argument("--steps", type=int, default=100000)
            s.add_argument("--minutes", type=float, default=5)
            s.add_argument("--log-every", type=int, default=5)
            s.add_argument("--save-every", type=int, default=20)
            s.add_argument("--bf16", type=int, default=1, help="bf16 autocast matmuls")
            s.add_argument("--from-gguf", help="backbone from this GGUF instead of DIR/base.pt")
            s.add_argument("--tune-backbone", type=int, default=0,
                           help="1: fine-tune the backbone too (saved as DIR/base-tuned.pt; export it "
                                "with export_gguf.py --base OUT --base-ckpt base-tuned.pt)")
            s.add_argument("--backbone-lr", type=float, default=1e-4)
            s.add_argument("--init-adapter", metavar="GGUF",
                           help="start from this adapter's T, M_init, W_q, W_k and its L, k, N "
                                "(instead of a fresh init; ignored when DIR/hmt.pt exists)")
            s.add_argument("--recall-only", type=int, default=0,
                           help="1: train only the recall path (T, W_q, W_k); M_init stays")
            s.add_argument("--recall-scale", type=float, default=1.0,
                           help="multiply W_q and W_k by this at the stage's first step (0.02 "
                                "turns scores in the thousands into a soft softmax again)")
            s.add_argument("--score-penalty", type=float, default=0.0,
                           help="weight of the recall-score regulariser: mean squared excess "
                                "of |score - row mean| beyond --score-margin (training only; "
                                "the exported adapter runs exact HMT)")
            s.add_argument("--score-margin", type=float, default=4.0)
            s.add_argument("--curriculum", choices=("copy", "kv"),
                           help="train on segment-aligned documents instead of the plain stream: "
                                "BOS + training text, the fact (copy: a 16-token span; kv: 4 "
                                "word pairs) opens segment s, its probe opens segment s + d; "
                                "fresh memory per document, BPTT over all of it (--bptt unused)")
            s.add_argument("--cur-start", default="1,2", help="segments s that hold the fact")
            s.add_argument("--cur-distances", default="1,2,3,4",
                           help="distances d (segments) from fact to probe, one drawn per step")
            s.add_argument("--cur-span", type=int, default=16, help="copy: fact length in tokens")
            s.add_argument("--answer-weight", type=float, default=10.0,
                           help="loss weight of the probe's answer tokens (others 1)")
            s.add_argument("--memory-aux", type=float, default=0.0,
                           help="weight of an auxiliary loss that asks the fact segment's memory "
                                "M_s, read by the LM head, for the fact's tokens (a bag of words; "
                                "training only)")
        if name == "ceval":
            s.add_argument("--bin", default="build/bin/hmt-perplexity")
            s.add_argument("--model", required=True)
            s.add_argument("--adapter")
            s.add_argument("--L", type=int, default=0, help="segment length (segments mode without adapter)")
            s.add_argument("--mode", default="all")
            s.add_argument("--files", help="glob (default DIR/heldout/*.txt)")
        if name == "eval":
            s.add_argument("--mode", default="all")
            s.add_argument("--files", help="glob (default DIR/heldout/*.txt)")
            s.add_argument("--max-docs", type=int, default=0)
            s.add_argument("--L", type=int, default=0)
            s.add_argument("--ctx", type=int, default=0)
            s.add_argument("--dtype", choices=["f32", "f64"], default="f32")
            s.add_argument("--model", help="base GGUF (default: DIR/base.pt rounded to F16)")
            s.add_argument("--adapter", help="adapter GGUF (with --model)")
    a = ap.parse_args(argv)
    {"tokenizer": cmd_tokenizer, "base": cmd_base, "hmt": cmd_hmt, "eval": cmd_eval,
     "ceval": cmd_ceval}[a.cmd](a)


if __name__ == "__main__":
    main()
