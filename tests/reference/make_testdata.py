"""Generate every file the C test suite reads into the directory given as
argv[1]: small random-weight models and golden outputs. Deterministic."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)


if __name__ == "__main__":
    main()
