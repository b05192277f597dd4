"""Reference byte-level BPE ("gpt2" tokenizer), written from the algorithm,
independent of the C code: pre-tokenization with the `regex` module's real
Unicode classes, GPT-2's bytes_to_unicode, and the classic GPT-2 merge loop
(merge every occurrence of the lowest-ranked pair, repeat).

Pre-tokenizers are llama.cpp's regex lists per tokenizer.ggml.pre (each regex
splits the pieces of the previous one; text between matches stays a piece),
except "gpt-4o": there it is the regex of tiktoken's o200k_base and of Hugging
Face's tokenizer.json as written (real \\p{Lu}/\\p{Ll}/\\p{M} classes, (?i:...)
by Unicode case folding), not llama.cpp's ASCII approximation of it.
Ill-formed UTF-8 bytes are carried as lone surrogates (surrogateescape), which
no class matches: they count as "other" characters, as in the C code.
"""
import regex

GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
# llama.cpp's spelling of (?i:'s|'t|'re|'ve|'m|'ll|'d): ASCII case only
CONTR = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
LLAMA3 = CONTR + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = CONTR + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
# tiktoken's o200k_base pat_str, alternative by alternative
GPT4O = "|".join([
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"\p{N}{1,3}",
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"\s*[\r\n]+",
    r"\s+(?!\S)",
    r"\s+",
])

PRE = {
    "gpt2": [GPT2],
    "llama3": [LLAMA3],
    "qwen2": [QWEN2],
    "smollm": [r"\p{N}", GPT2],
    "default": [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
    "gpt-4o": [GPT4O],
}


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


_B2U = bytes_to_unicode()


def pretokenize(text, pre):
    pieces = [text]
    for pat in PRE[pre]:
        r = regex.compile(pat)
        nxt = []
        for p in pieces:
            pos = 0
            for m in r.finditer(p):
                if m.start() > pos:
                    nxt.append(p[pos:m.start()])
                nxt.append(m.group())
                pos = m.end()
            if pos < len(p):
                nxt.append(p[pos:])
        pieces = nxt
    return [p for p in pieces if p]


def byte_encode(b):
    return "".join(_B2U[x] for x in b)


def train(text, n_merges):
    """Plain BPE training over GPT-2 pre-tokenized words; ties broken by the
    lexicographically smallest pair, so the result is deterministic."""
    counts = {}
    for w in pretokenize(text, "gpt2"):
        e = tuple(byte_encode(w.encode("utf-8")))
        counts[e] = counts.get(e, 0) + 1
    words = dict(counts)
    merges = []
    for _ in range(n_merges):
        pairs = {}
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        nw = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            nw[tuple(out)] = nw.get(tuple(out), 0) + c
        words = nw
    return merges


def bpe(word, ranks):
    """The GPT-2 merge loop on a tuple of symbols."""
    word = list(word)
    while len(word) > 1:
        best = min(zip(word, word[1:]), key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        out, i = [], 0
        while i < len(word):
            if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                out.append(word[i] + word[i + 1])
                i += 2
            else:
                out.append(word[i])
                i += 1
        word = out
    return word


class Tokenizer:
    def __init__(self, tokens, merges, pre, ignore_merges=False):
        self.ids = {t: i for i, t in enumerate(tokens)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.pre = pre
        self.ignore_merges = ignore_merges

    def encode_text(self, raw):
        out = []
        text = raw.decode("utf-8", "surrogateescape")
        for piece in pretokenize(text, self.pre):
            enc = byte_encode(piece.encode("utf-8", "surrogateescape"))
            if self.ignore_merges and enc in self.ids:
                out.append(self.ids[enc])
                continue
            out += [self.ids[s] for s in bpe(tuple(enc), self.ranks)]
        return out

    def encode(self, raw, specials):
        """specials: token text -> id, cut out leftmost-longest first."""
        sp = sorted(((t.encode(), i) for t, i in specials.items()), key=lambda x: -len(x[0]))
        out, start, pos = [], 0, 0
        while pos < len(raw):
            hit = next(((t, i) for t, i in sp if raw.startswith(t, pos)), None)
            if hit is None:
                pos += 1
                continue
            out += self.encode_text(raw[start:pos])
            out.append(hit[1])
            pos += len(hit[0])
            start = pos
        return out + self.encode_text(raw[start:])
