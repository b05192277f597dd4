#!/usr/bin/python3
"""Generate the tokenizer test data committed in tests/data/tokenizer/.

    /usr/bin/python3 tests/reference/tokenizer/make_tokenizer_data.py [outdir]

Needs python3-sentencepiece, python3-regex and numpy (only to regenerate: the
C tests read the committed outputs). Deterministic.

"llama" (SentencePiece BPE): trains a BPE model with byte fallback on
corpus.txt with the real SentencePiece trainer (settings as Llama's
tokenizer: identity normalization, dummy prefix, no whitespace clean-up,
digits split), converts it to GGUF tokenizer metadata the way llama.cpp's
converter does (piece, score, type NORMAL/UNKNOWN/CONTROL/UNUSED/BYTE) and
records SentencePiece's own encodings of the test strings as the expected
answers. With HMT_TOKENIZE_SPECIAL the expectation follows llama.cpp: the text
is cut at control-token texts and each piece is encoded on its own (so each
gets the dummy prefix).

"gpt2" (byte-level BPE): trains merges on corpus.txt with a small BPE trainer,
and computes expectations with bpe_ref.py (the GPT-2 algorithm over the
regex module's real \\p{L}/\\p{N} classes) for each pre-tokenizer.

Expected files: one case per line, "flags<TAB>hex(input)<TAB>ids" with ids
space separated (flags: 1 = ADD_BOS, 2 = SPECIAL). pretok_*_expected.tsv use
the same layout with the byte lengths of the pre-tokenizer's pieces instead
of ids.
"""
import io
import os
import random
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.join(_HERE, "..", "..", "..")
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.join(_ROOT, "tools"))

import bpe_ref  # noqa: E402
from atomic_write import atomic_write  # noqa: E402
from gguf_write import GGUFWriter, INT32, FLOAT32, STRING, spm_vocab  # noqa: E402

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
ADD_BOS, SPECIAL = 1, 2


def corpus_lines():
    with open(os.path.join(_HERE, "corpus.txt"), encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f if l.strip()]


def random_strings(seed, n):
    """Random valid UTF-8 strings drawn from mixed pools (ASCII words, spaces,
    digits, accents, CJK, emoji, combining marks, unusual whitespace)."""
    rng = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "     \t\n\r",
        "0123456789",
        ".,;:!?'\"-()[]{}<>/\\@#$%^&*+=|~`_",
        "éèêëàâäôöûüçñßÅØæœ",
        "日本語中文한국어漁師海",
        "😀🎉👍🏽🇩",
        "\u0301\u0308\u00a0\u2003\u3000\u2028\u0085",
        "ΑΒΓαβγдлявЖЩ",
    ]
    out = []
    for _ in range(n):
        k = rng.randint(1, 40)
        s = "".join(rng.choice(pools[rng.choice([0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8])]) for _ in range(k))
        out.append(s)
    return out


BASE_STRINGS = [
    "", " ", "  ", "   ", "\t", "\n", "\n\n\n", "\r\n",
    "Hello", "Hello world", " Hello world", "Hello world ", "  leading and trailing  ",
    "multiple   spaces   here", "tabs\tand\nnewlines\r\nmixed", "line one\nline two\n\nline four\n",
    "digits 0123456789 and 3.14159 and 1,000,000", "12345678901234567890", "a1b22c333d4444",
    "punctuation!?.,;:-_()[]{}<>@#$%^&*+=|~`\"'/\\",
    "don't I'LL we've they're she'd it's you'RE I'M 'tis o'clock",
    "Café naïve résumé Ångström crème brûlée",
    "日本語のテキスト 中文字符 한국어",
    "emoji 😀🎉👍🏽 and flags 🇩🇪",
    "mixed: abc123def 45.6e7", "ＡＢＣ full-width ０１２", "e\u0301 combining",
    "unicode spaces:\u00a0\u2003\u3000end", "The fisherman and his wife lived by the sea.",
    "    def tokenize(text):\n        return text.split()\n",
    "x" * 300, " " * 100 + "y", "ab" * 200,
]

# What the GPT-4o regex tells apart: letter case runs (non-ASCII too, and
# titlecase), combining marks, modifier and other letters, contractions after
# upper case, digit runs, symbols followed by newlines and slashes.
GPT4O_STRINGS = [
    "DON'T WON'T I'M THEY'RE HE'LL SHE'D WE'VE IT'S it'S It'Ll",
    "camelCaseÜber naïveÉcole ÉCOLE École ÅngströmÖl straßeSTRASSE",
    "cafe\u0301s e\u0301te\u0301 \u0301start a\u0301\u0302b E\u0301COLE x\u0308Y",
    "ΑΒΓαβγ ΑβΓδ ДЖунгли жЖ ǅungla ǈj ᾈᾀ Ǆǅǆ",
    "ʰʲmodifier ʰA Aʰ AʰB aʰB",
    "漢字Kanji かなABC 中文abc ABC中文 한국어Text",
    "12345 1234567 ١٢٣٤٥ ⅣⅤⅥⅦ x2y 3D",
    "a/b//c!\n/x !!\r\n/ ok ?/\n\n//",
    "x\n\n\ny \r\n\r\n z\n \n  \t\n",
    "it'ſ it'S IT'S it's'S 'tis 'TIS O'Neil McDonald's",
    "HTTPServer XMLHttpRequest iPhone getURLForID",
    "  \t  \n  tail  ",
]


# ---------------------------------------------------------------------------
# SentencePiece ("llama")
# ---------------------------------------------------------------------------
def train_spm(lines):
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, model_type="bpe", vocab_size=900,
        byte_fallback=True, character_coverage=1.0, add_dummy_prefix=True,
        remove_extra_whitespaces=False, normalization_rule_name="identity", split_digits=True,
        allow_whitespace_only_pieces=True, num_threads=1, unk_id=0, bos_id=1, eos_id=2,
        pad_id=-1, hard_vocab_limit=False, minloglevel=2, max_sentencepiece_length=16,
        control_symbols=["<|ctl|>"])
    return model.getvalue()




def split_special(text, specials):
    """Leftmost-longest split of text at the given token texts:
    [(is_special, text_or_id)]."""
    out, start, pos = [], 0, 0
    by_len = sorted(specials.items(), key=lambda kv: -len(kv[0]))
    while pos < len(text):
        hit = None
        for s, i in by_len:
            if text.startswith(s, pos):
                hit = (s, i)
                break
        if hit is None:
            pos += 1
            continue
        if pos > start:
            out.append((False, text[start:pos]))
        out.append((True, hit[1]))
        pos += len(hit[0])
        start = pos
    if start < len(text):
        out.append((False, text[start:]))
    return out


def make_spm(outdir):
    import sentencepiece as spm

    lines = corpus_lines()
    blob = train_spm(lines)
    with open(os.path.join(outdir, "spm.model"), "wb") as f:
        f.write(blob)
    sp = spm.SentencePieceProcessor(model_proto=blob)
    toks, scores, types = spm_vocab(sp)

    w = GGUFWriter()
    w.add("general.architecture", "llama")
    w.add("tokenizer.ggml.model", "llama")
    w.add("tokenizer.ggml.tokens", toks, elem_type=STRING)
    w.add("tokenizer.ggml.scores", scores, elem_type=FLOAT32)
    w.add("tokenizer.ggml.token_type", types, elem_type=INT32)
    w.add("tokenizer.ggml.bos_token_id", 1)
    w.add("tokenizer.ggml.eos_token_id", 2)
    w.add("tokenizer.ggml.unknown_token_id", 0)
    w.add("tokenizer.ggml.add_bos_token", True)
    w.add("tokenizer.ggml.add_space_prefix", True)
    w.write(os.path.join(outdir, "spm.gguf"))

    control = {toks[i]: i for i in range(len(toks)) if types[i] in (CONTROL, UNKNOWN)}
    strings = list(BASE_STRINGS) + lines[:12] + random_strings(1, 60) + [
        "<s>", "</s>", "<unk>", "a<s>b</s>c", "<s>Hello", "Hello</s>", " <s> spaced </s> ",
        "<|ctl|>x<|ctl|>", "<s><s></s>", "<0x41>",
    ]
    cases = []
    for k, s in enumerate(strings):
        plain = sp.encode(s)
        cases.append((0, s, plain))
        if k < 8:
            cases.append((ADD_BOS, s, [1] + plain))
        if any(c in s for c in control):
            ids = []
            for is_sp, x in split_special(s, control):
                ids += [x] if is_sp else sp.encode(x)
            cases.append((SPECIAL, s, ids))
            cases.append((SPECIAL | ADD_BOS, s, [1] + ids))
    write_cases(os.path.join(outdir, "spm_expected.tsv"), cases)
    return len(toks), len(cases)


# ---------------------------------------------------------------------------
# Byte-level BPE ("gpt2")
# ---------------------------------------------------------------------------
def make_bpe(outdir):
    lines = corpus_lines()
    merges = bpe_ref.train("\n".join(lines) + "\n", n_merges=500)
    b2u = bpe_ref.bytes_to_unicode()
    toks = [b2u[b] for b in range(256)]
    types = [NORMAL] * 256
    for a, b in merges:
        toks.append(a + b)
        types.append(NORMAL)
    # words reachable only as whole tokens (for ignore_merges: llama3, gpt-4o)
    for extra in ["Ġzebra", "Ġfisherwoman", "ĠHello"]:
        if extra not in toks:
            toks.append(extra)
            types.append(NORMAL)
    specials = [("<|endoftext|>", CONTROL), ("<|im_start|>", CONTROL), ("<|im_end|>", CONTROL),
                ("<tool>", USER_DEFINED)]
    for t, ty in specials:
        toks.append(t)
        types.append(ty)
    eot = toks.index("<|endoftext|>")
    merge_strs = [a + " " + b for a, b in merges]

    control = {t: toks.index(t) for t, ty in specials if ty == CONTROL}
    user = {t: toks.index(t) for t, ty in specials if ty == USER_DEFINED}
    strings = list(BASE_STRINGS) + lines + random_strings(2, 50) + [
        "<|endoftext|>", "a<|endoftext|>b", "<|im_start|>user\nhi<|im_end|>\n",
        "<tool>call</tool>", "x <tool> y", "<|endoftext|><|endoftext|>", "<|endoftext",
        " zebra", "a zebra and a fisherwoman", "Hello Hello", "HELLO'S DON'T",
    ] + GPT4O_STRINGS
    raw = [s.encode("utf-8") for s in strings] + [
        b"\xff\xfe", b"abc\x80def", b"\xc3\x28", b"\xe2\x82", b"x\xf0\x9f\x98", b"\xed\xa0\x80",
        b"\xc0\xaf", b"a\x00b\x00", b"\x00", b"caf\xe9 na\xefve", b" \xff \xfe\xfd!", b"'\x80s",
        b"12\x8034", b"\xf4\x90\x80\x80", b"\xef\xbf\xbd",
    ]
    summary = []
    for pre in ["gpt2", "llama3", "qwen2", "smollm", "default", "gpt-4o"]:
        w = GGUFWriter()
        w.add("general.architecture", "llama")
        w.add("tokenizer.ggml.model", "gpt2")
        w.add("tokenizer.ggml.pre", pre)
        w.add("tokenizer.ggml.tokens", toks, elem_type=STRING)
        w.add("tokenizer.ggml.token_type", types, elem_type=INT32)
        w.add("tokenizer.ggml.merges", merge_strs, elem_type=STRING)
        w.add("tokenizer.ggml.bos_token_id", eot)
        w.add("tokenizer.ggml.eos_token_id", eot)
        w.write(os.path.join(outdir, f"bpe_{pre}.gguf"))
        tok = bpe_ref.Tokenizer(toks, merges, pre, ignore_merges=(pre in ("llama3", "gpt-4o")))
        cases = []
        for k, b in enumerate(raw):
            plain = tok.encode(b, dict(user))
            cases.append((0, b, plain))
            if k < 8:
                cases.append((ADD_BOS, b, [eot] + plain))
            if any(c.encode() in b for c in control):
                cases.append((SPECIAL, b, tok.encode(b, {**user, **control})))
        write_cases(os.path.join(outdir, f"bpe_{pre}_expected.tsv"), cases)
        summary.append((pre, len(cases)))
        # the pre-tokenizer's pieces themselves (byte lengths), which the
        # token ids of a small vocabulary do not always tell apart
        pcases = []
        for b in raw:
            pieces = bpe_ref.pretokenize(b.decode("utf-8", "surrogateescape"), pre)
            pcases.append((0, b, [len(p.encode("utf-8", "surrogateescape")) for p in pieces]))
        write_cases(os.path.join(outdir, f"pretok_{pre}_expected.tsv"), pcases)
    return len(toks), len(merges), summary


def write_cases(path, cases):
    with atomic_write(path, "w", encoding="ascii") as f:
        f.write("# flags\thex(input)\ttoken ids (generated by make_tokenizer_data.py)\n")
        for flags, s, ids in cases:
            b = s.encode("utf-8") if isinstance(s, str) else s
            f.write(f"{flags}\t{b.hex()}\t{' '.join(map(str, ids))}\n")


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(_ROOT, "tests", "data", "tokenizer")
    os.makedirs(outdir, exist_ok=True)
    n_spm, n_spm_cases = make_spm(outdir)
    n_bpe, n_merges, summary = make_bpe(outdir)
    print(f"spm: {n_spm} tokens, {n_spm_cases} cases")
    print(f"bpe: {n_bpe} tokens, {n_merges} merges, cases: {summary}")


if __name__ == "__main__":
    main()
