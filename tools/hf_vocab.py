"""A Hugging Face model directory's tokenizer -> llama.cpp's tokenizer.ggml.*
GGUF metadata, as llama.cpp's convert_hf_to_gguf.py writes it, without the
transformers library:

- tokenizer.model (SentencePiece) -> model "llama": pieces, scores and types
  from SentencePiece itself (gguf_write.spm_vocab), added tokens from
  added_tokens.json and tokenizer_config.json's added_tokens_decoder.
- tokenizer.json with a byte-level BPE model -> model "gpt2": vocabulary,
  added tokens, merges, and tokenizer.ggml.pre named from the pre-tokenizer
  it declares (llama.cpp hashes a test encoding instead; we read the
  declaration, so no tokenizer library is needed).

Token types follow llama.cpp: added tokens are CONTROL when marked special
or when they look special (<|...|> and a few others), else USER_DEFINED;
ids of the embedding table without a token become [PAD<id>] UNUSED. Special
ids: tokenizer_config.json's <kind>_token text, then config.json's
<kind>_token_id, then (SentencePiece) the model's own ids.
"""
import os
import sys

from gguf_write import (BOOL, CONTROL, FLOAT32, INT32, NORMAL, STRING, UINT32, UNKNOWN, UNUSED,
                        USER_DEFINED, spm_vocab)
from hf_files import HFError, load_json

# tokenizer.json pre-tokenizer regexes that libhmt implements (Split stage);
# llama.cpp also spells the contractions ASCII-case-insensitively by hand.
_TAIL_LLAMA3 = r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
_TAIL_QWEN2 = r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
_CONTRACTIONS = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)",
                 r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])")
_SPLIT_PRE = {c + _TAIL_LLAMA3: "llama-bpe" for c in _CONTRACTIONS}
_SPLIT_PRE.update({c + _TAIL_QWEN2: "qwen2" for c in _CONTRACTIONS})
# tiktoken's o200k_base (GPT-4o; Phi-4-mini's tokenizer.json), as written
_O200K_WORD = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]%s[\p{Ll}\p{Lm}\p{Lo}\p{M}]%s" \
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
O200K_SPLIT = "|".join([_O200K_WORD % ("*", "+"), _O200K_WORD % ("+", "*"), r"\p{N}{1,3}",
                        r" ?[^\s\p{L}\p{N}]+[\r\n/]*", r"\s*[\r\n]+", r"\s+(?!\S)", r"\s+"])
_SPLIT_PRE[O200K_SPLIT] = "gpt-4o"
PRE_NAMES = ("gpt-2", "llama-bpe", "qwen2", "smollm", "gpt-4o")
# names for which libhmt looks a whole pre-tokenized word up before merging
# (lib/text/tokenizer.c), as tokenizer.json's model.ignore_merges does
_IGNORE_MERGES = ("llama-bpe", "gpt-4o")

SPECIAL_KINDS = {"bos": "bos_token_id", "eos": "eos_token_id", "unk": "unknown_token_id",
                 "pad": "padding_token_id"}


def _warn(msg):
    print(f"convert_hf: warning: {msg}", file=sys.stderr)


def looks_special(text):
    """Added tokens that llama.cpp makes CONTROL even when not marked special."""
    return (text in ("<pad>", "<mask>", "<2mass>", "[@BOS@]") or
            (text.startswith("<|") and text.endswith("|>")) or
            (text.startswith("<\uff5c") and text.endswith("\uff5c>")) or
            (text.startswith("<unused") and text.endswith(">")))


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


class Vocab:
    """Token arrays plus special ids and flags, ready for GGUF."""

    def __init__(self, model, n_vocab):
        self.model, self.pre = model, None
        self.tokens = [None] * n_vocab
        self.types = [UNUSED] * n_vocab
        self.scores = [-10000.0] * n_vocab if model == "llama" else None
        self.merges = None
        self.special = {}     # kind -> id
        self.flags = {}       # GGUF key -> bool
        self.chat_template = None
        self.n_base = 0       # tokens from the tokenizer's own vocabulary
        self.post_processor = None  # tokenizer.json's, for add_bos_token

    def set(self, i, text, ttype, score=None, where=""):
        if not _is_int(i) or not 0 <= i < len(self.tokens):
            raise HFError(f"{where}: token {text!r} has id {i!r}, outside the embedding "
                          f"table (0..{len(self.tokens) - 1})")
        self.tokens[i], self.types[i] = text, ttype
        if score is not None and self.scores is not None:
            self.scores[i] = score

    def finish(self, where):
        """Pad missing ids and reject duplicate texts (llama.cpp and libhmt
        look tokens up by text)."""
        seen = {}
        for i, t in enumerate(self.tokens):
            if t is None:
                self.tokens[i], self.types[i] = f"[PAD{i}]", UNUSED
            prev = seen.setdefault(self.tokens[i], i)
            if prev != i:
                raise HFError(f"{where}: tokens {prev} and {i} have the same text "
                              f"{self.tokens[i]!r}")

    def entries(self):
        """[(key, value, value type, element type)] for GGUFWriter.add."""
        out = [("tokenizer.ggml.model", self.model, STRING, None)]
        if self.pre:
            out.append(("tokenizer.ggml.pre", self.pre, STRING, None))
        out.append(("tokenizer.ggml.tokens", self.tokens, None, STRING))
        if self.scores is not None:
            out.append(("tokenizer.ggml.scores", self.scores, None, FLOAT32))
        out.append(("tokenizer.ggml.token_type", self.types, None, INT32))
        if self.merges is not None:
            out.append(("tokenizer.ggml.merges", self.merges, None, STRING))
        for kind, key in SPECIAL_KINDS.items():
            if kind in self.special:
                out.append((f"tokenizer.ggml.{key}", self.special[kind], UINT32, None))
        for key, v in self.flags.items():
            out.append((key, v, BOOL, None))
        if self.chat_template:
            out.append(("tokenizer.chat_template", self.chat_template, STRING, None))
        return out

    def summary(self):
        n_added = sum(1 for t in self.types if t in (CONTROL, USER_DEFINED))
        n_pad = sum(1 for t in self.tokens if t.startswith("[PAD"))
        s = f"{self.model} tokenizer"
        if self.pre:
            s += f" (pre-tokenizer {self.pre})"
        s += f": {len(self.tokens)} tokens ({n_added} control/user-defined, {n_pad} padding)"
        if self.merges is not None:
            s += f", {len(self.merges)} merges"
        ids = ", ".join(f"{k} {v}" for k, v in self.special.items())
        return s + (f"; {ids}" if ids else "")


def _added_type(text, special):
    """llama.cpp's type for an added token, and its stored text (user-defined
    tokens have SentencePiece's U+2581 turned back into spaces)."""
    if special or looks_special(text):
        return CONTROL, text
    return USER_DEFINED, text.replace("\u2581", " ")


# ---------------------------------------------------------------------------
# SentencePiece
# ---------------------------------------------------------------------------
def _spm(model_dir, n_vocab, tok_config):
    path = os.path.join(model_dir, "tokenizer.model")
    try:
        import sentencepiece
    except ImportError:
        raise HFError(f"{path}: reading a SentencePiece model needs the sentencepiece module "
                      "(Debian: apt-get install python3-sentencepiece)") from None
    sp = sentencepiece.SentencePieceProcessor()
    try:
        with open(path, "rb") as f:
            blob = f.read()
        sp.LoadFromSerializedProto(blob)
    except OSError as e:
        raise HFError(f"{path}: cannot read: {e.strerror}") from None
    except Exception as e:  # sentencepiece raises RuntimeError on a bad protobuf
        raise HFError(f"{path}: not a SentencePiece model ({e})") from None
    toks, scores, types = spm_vocab(sp)
    if len(toks) > n_vocab:
        raise HFError(f"{path}: {len(toks)} pieces but the embedding table has {n_vocab} rows")
    v = Vocab("llama", n_vocab)
    for i, (t, s, ty) in enumerate(zip(toks, scores, types)):
        v.set(i, t, ty, s, path)
    v.n_base = len(toks)

    added_path = os.path.join(model_dir, "added_tokens.json")
    if os.path.isfile(added_path):
        added = load_json(added_path)
        if not isinstance(added, dict):
            raise HFError(f"{added_path}: not a JSON object of token -> id")
        for text, i in added.items():
            v.set(i, text, USER_DEFINED, -1000.0, added_path)
    decoder = tok_config.get("added_tokens_decoder") or {}
    if not isinstance(decoder, dict):
        raise HFError(f"{model_dir}/tokenizer_config.json: added_tokens_decoder is not an object")
    for key, entry in decoder.items():
        where = f"{model_dir}/tokenizer_config.json: added_tokens_decoder[{key!r}]"
        if not key.isdigit() or not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
            raise HFError(f"{where}: expected a numeric id and an object with a 'content' string")
        i = int(key)
        if i < v.n_base and v.tokens[i] == entry["content"] and v.types[i] in (CONTROL, UNKNOWN):
            continue  # <s>, </s>, <unk> as SentencePiece itself types them
        ttype, text = _added_type(entry["content"], entry.get("special"))
        v.set(i, text, ttype, -1000.0, where)

    # leading space: tokenizer_config's add_prefix_space as llama.cpp reads
    # it, else what the model itself does (SentencePiece's add_dummy_prefix)
    prefix = tok_config.get("add_prefix_space")
    if not isinstance(prefix, bool):
        pieces = sp.encode("a", out_type=str)
        prefix = bool(pieces) and pieces[0].startswith("\u2581")
    v.flags["tokenizer.ggml.add_space_prefix"] = prefix
    defaults = {"bos": sp.bos_id(), "eos": sp.eos_id(), "unk": sp.unk_id(), "pad": sp.pad_id()}
    return v, defaults


# ---------------------------------------------------------------------------
# byte-level BPE (tokenizer.json)
# ---------------------------------------------------------------------------
def _bytelevel(step):
    """(use_regex, add_prefix_space) of a ByteLevel step, with HF defaults."""
    return step.get("use_regex", True), step.get("add_prefix_space", True)


def detect_pre(tj, where):
    """tokenizer.ggml.pre for a tokenizer.json's pre_tokenizer, or HFError."""
    pt = tj.get("pre_tokenizer")
    steps = pt.get("pretokenizers") if isinstance(pt, dict) and pt.get("type") == "Sequence" else [pt]
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise HFError(f"{where}: pre_tokenizer {pt!r} is not one libhmt implements")
    kinds = [s.get("type") for s in steps]
    last = steps[-1] if steps else {}
    if kinds and kinds[-1] == "ByteLevel" and _bytelevel(last)[1]:
        raise HFError(f"{where}: ByteLevel pre-tokenizer with add_prefix_space=true is not "
                      "supported (libhmt does not add a leading space to byte-level BPE input)")
    name = None
    if kinds == ["ByteLevel"] and _bytelevel(last)[0]:
        name = "gpt-2"
    elif (kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") is True and
          _bytelevel(last)[0]):
        name = "smollm"
    elif kinds == ["Split", "ByteLevel"] and not _bytelevel(last)[0]:
        split = steps[0]
        pattern = split.get("pattern") if isinstance(split.get("pattern"), dict) else {}
        if split.get("behavior") == "Isolated" and not split.get("invert"):
            name = _SPLIT_PRE.get(pattern.get("Regex"))
    if name is None:
        desc = " + ".join(str(k) for k in kinds)
        raise HFError(f"{where}: pre-tokenizer ({desc}) is not one libhmt implements "
                      f"(those of GPT-2, Llama 3, Qwen2, SmolLM, GPT-4o); if you know it is equivalent to "
                      f"one of them, pass --pre with one of {', '.join(PRE_NAMES)}")
    return name


def _merges(raw, where):
    if not isinstance(raw, list):
        raise HFError(f"{where}: model.merges is not a list")
    out = []
    for k, m in enumerate(raw):
        parts = m.split(" ") if isinstance(m, str) else m
        if (not isinstance(parts, list) or len(parts) != 2 or
                not all(isinstance(p, str) and p and " " not in p for p in parts)):
            raise HFError(f"{where}: merge {k} ({m!r}) is not two tokens")
        out.append(parts[0] + " " + parts[1])
    return out


def _add_bos_from_template(pp, bos_text):
    """True/False when a tokenizer.json post-processor's single-sequence
    template starts (or not) with the BOS token; None when it has none."""
    procs = pp.get("processors", []) if isinstance(pp, dict) and pp.get("type") == "Sequence" else [pp]
    for p in procs:
        if isinstance(p, dict) and p.get("type") == "TemplateProcessing":
            single = p.get("single") or [{}]
            first = single[0].get("SpecialToken", {}) if isinstance(single[0], dict) else {}
            return bos_text is not None and first.get("id") == bos_text
    return None


def _bpe(model_dir, n_vocab, tok_config, pre_override):
    path = os.path.join(model_dir, "tokenizer.json")
    tj = load_json(path)
    model = tj.get("model") if isinstance(tj, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE":
        kind = model.get("type") if isinstance(model, dict) else None
        raise HFError(f"{path}: tokenizer model {kind!r} is not supported (byte-level BPE, or "
                      "SentencePiece through tokenizer.model)")
    decoder = tj.get("decoder") if isinstance(tj.get("decoder"), dict) else {}
    if model.get("byte_fallback") or decoder.get("type") != "ByteLevel":
        raise HFError(f"{path}: a SentencePiece-style BPE (byte fallback / Metaspace), not a "
                      "byte-level one; this converter reads such vocabularies from "
                      "tokenizer.model, which this directory lacks")
    norm = tj.get("normalizer")
    if norm is not None and norm != {"type": "NFC"}:
        raise HFError(f"{path}: normalizer {norm.get('type') if isinstance(norm, dict) else norm!r} "
                      "is not supported (none, or NFC as in Qwen2)")
    v = Vocab("gpt2", n_vocab)
    v.pre = pre_override or detect_pre(tj, path)
    if bool(model.get("ignore_merges", False)) != (v.pre in _IGNORE_MERGES):
        _warn(f"{path}: model.ignore_merges is {bool(model.get('ignore_merges', False))}, but "
              f"libhmt's '{v.pre}' pre-tokenizer {'always' if v.pre in _IGNORE_MERGES else 'never'} "
              "looks whole words up before merging; a few words may tokenize differently")
    vocab = model.get("vocab")
    if not isinstance(vocab, dict):
        raise HFError(f"{path}: model.vocab is not an object of token -> id")
    for text, i in vocab.items():
        if _is_int(i) and 0 <= i < n_vocab and v.tokens[i] is not None:
            raise HFError(f"{path}: id {i} is used by both {v.tokens[i]!r} and {text!r}")
        v.set(i, text, NORMAL, where=path)
    v.n_base = len(vocab)
    added = tj.get("added_tokens") or []
    if not isinstance(added, list):
        raise HFError(f"{path}: added_tokens is not a list")
    for k, at in enumerate(added):
        if not isinstance(at, dict) or not isinstance(at.get("content"), str):
            raise HFError(f"{path}: added_tokens[{k}] has no 'content' string")
        ttype, text = _added_type(at["content"], at.get("special"))
        v.set(at.get("id"), text, ttype, where=f"{path}: added_tokens[{k}]")
    v.merges = _merges(model.get("merges", []), path)
    v.post_processor = tj.get("post_processor")
    return v, {}


# ---------------------------------------------------------------------------
def _special_ids(v, tok_config, config, defaults):
    """First found wins: tokenizer_config.json's token text, config.json's
    id (a list, as some Llama 3 configs give for eos, is skipped), the
    tokenizer model's own id."""
    by_text = {t: i for i, t in enumerate(v.tokens)}
    n_vocab = len(v.tokens)
    for kind in SPECIAL_KINDS:
        entry = tok_config.get(f"{kind}_token")
        text = entry.get("content") if isinstance(entry, dict) else entry
        if isinstance(text, str):
            if text in by_text:
                v.special[kind] = by_text[text]
                continue
            _warn(f"tokenizer_config.json: {kind}_token {text!r} is not a token")
        tid = config.get(f"{kind}_token_id")
        if _is_int(tid) and 0 <= tid < n_vocab:
            v.special[kind] = tid
            continue
        if tid is not None and not isinstance(tid, list):
            _warn(f"config.json: {kind}_token_id {tid!r} ignored (not an id below {n_vocab})")
        if defaults.get(kind, -1) >= 0:
            v.special[kind] = defaults[kind]


def convert_tokenizer(model_dir, n_vocab, config, pre_override=None):
    """Vocab for the directory's tokenizer; n_vocab = embedding rows."""
    tc_path = os.path.join(model_dir, "tokenizer_config.json")
    tok_config = load_json(tc_path) if os.path.isfile(tc_path) else {}
    if not isinstance(tok_config, dict):
        raise HFError(f"{tc_path}: not a JSON object")
    if os.path.isfile(os.path.join(model_dir, "tokenizer.model")):
        if pre_override:
            raise HFError("--pre applies to byte-level BPE tokenizers (tokenizer.json), "
                          "not to this SentencePiece model")
        v, defaults = _spm(model_dir, n_vocab, tok_config)
        where = os.path.join(model_dir, "tokenizer.model")
    elif os.path.isfile(os.path.join(model_dir, "tokenizer.json")):
        v, defaults = _bpe(model_dir, n_vocab, tok_config, pre_override)
        where = os.path.join(model_dir, "tokenizer.json")
    else:
        raise HFError(f"{model_dir}: no tokenizer (tokenizer.model or tokenizer.json)")
    v.finish(where)

    _special_ids(v, tok_config, config, defaults)
    for kind in ("bos", "eos"):
        flag = tok_config.get(f"add_{kind}_token")
        if isinstance(flag, bool):
            v.flags[f"tokenizer.ggml.add_{kind}_token"] = flag
    if v.model == "gpt2" and "tokenizer.ggml.add_bos_token" not in v.flags:
        bos_text = v.tokens[v.special["bos"]] if "bos" in v.special else None
        from_template = _add_bos_from_template(v.post_processor, bos_text)
        if from_template is not None:
            v.flags["tokenizer.ggml.add_bos_token"] = from_template
    if isinstance(tok_config.get("chat_template"), str):
        v.chat_template = tok_config["chat_template"]
    return v
