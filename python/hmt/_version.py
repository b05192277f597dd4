# Generated from include/hmt/hmt.h by `make python-version`; do not edit.
__version__ = "0.2.0"
ABI_VERSION = 1
