#!/usr/bin/env python3
"""Read valgrind memcheck XML files (one per process) and fail on every report
that libhmt is responsible for:

- a leak (definite, indirect or possible) whose allocation was made by
  libhmt: walking the allocation stack from the allocator outwards, past the
  system libraries (libc, ld.so, libstdc++, libgomp, valgrind's own), the
  first frame is in LIB;
- any other error (invalid read/write/free, uninitialised use, overlap) where
  that first frame is in LIB, or whose block was allocated or freed by libhmt
  (the binding reading past a buffer libhmt returned counts).

Reports that start in CPython, ctypes or NumPy are counted and ignored: the
interpreter keeps objects alive at exit on purpose, and the objects that a
Python callback creates while libhmt calls it are the interpreter's.

usage: vg_libhmt.py LIB FILE.xml...
Exit status 1 when a report is libhmt's (each is printed), 2 when a file
cannot be read, else 0.
"""
import os
import sys
import xml.etree.ElementTree as ET

SYSTEM = ("/lib/", "/usr/lib/x86_64-linux-gnu/", "/usr/libexec/valgrind/", "/usr/lib/valgrind/")


def frames(stack):
    for f in stack.findall("frame"):
        yield {k: (f.findtext(k) or "") for k in ("ip", "obj", "fn", "dir", "file", "line")}


def first_owner(stack):
    """realpath of the first frame's object that is not a system library (an
    unknown object, e.g. a libffi trampoline, is skipped too)."""
    for f in frames(stack):
        obj = os.path.realpath(f["obj"]) if f["obj"] else ""
        if obj and not obj.startswith(SYSTEM):
            return obj
    return ""


def is_ours(err, lib):
    stacks = err.findall("stack")
    if not stacks:
        return False
    if (err.findtext("kind") or "").startswith("Leak_"):
        return first_owner(stacks[0]) == lib
    return any(first_owner(s) == lib for s in stacks)


def describe(err):
    what = err.findtext("what") or err.findtext("xwhat/text") or ""
    return f"{err.findtext('kind')}: {what}"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    lib = os.path.realpath(sys.argv[1])
    processes, total, bad = 0, 0, []
    for path in sys.argv[2:]:
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as e:
            print(f"vg_libhmt: cannot read {path}: {e}", file=sys.stderr)
            sys.exit(2)
        processes += 1
        argv = " ".join(a.text or "" for a in root.findall("args/argv/*"))
        for err in root.findall("error"):
            total += 1
            if is_ours(err, lib):
                bad.append((argv, err))
    for argv, err in bad:
        print(f"vg_libhmt: {describe(err)}\n  in: {argv}")
        for s in err.findall("stack"):
            for f in list(frames(s))[:14]:
                where = f"{f['file']}:{f['line']}" if f["file"] else os.path.basename(f["obj"])
                print(f"    {f['fn'] or f['ip']}  ({where})")
            print("    --")
    print(f"vg_libhmt: {processes} processes, {total} valgrind reports, "
          f"{len(bad)} of them libhmt's")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
