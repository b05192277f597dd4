"""Ctrl-C during long C calls (docs/PYTHON.md, "Ctrl-C").

Python runs its SIGINT handler only between bytecodes of the main thread, so
during a long C call nothing happens until the call returns, and the default
handler, if it runs inside a callback that C made, raises KeyboardInterrupt
where it cannot propagate ("Exception ignored on calling ctypes callback").

Around each long call on the main thread (eval, feed, flush, datastore
builds) `interruptible` therefore swaps Python's default SIGINT handler for
one that only sets a flag, and the class installs a C abort callback that
returns the flag (its Python code is where the handler gets to run, once per
layer). The C call stops with HMT_E_ABORTED within one layer, and
KeyboardInterrupt is raised when the block exits, with the HmtError as its
__context__. A SIGINT handler of the program's own, or a call on another
thread, is left alone.
"""
import signal
import threading

_MAIN = threading.main_thread().ident


class _Flag:
    __slots__ = ("set",)

    def __init__(self):
        self.set = False


_flag = _Flag()


def _on_sigint(signum, frame):
    _flag.set = True


def pending():
    """True when Ctrl-C arrived during the current interruptible call (the
    abort callbacks poll this; only the main thread's calls see it)."""
    return _flag.set and threading.get_ident() == _MAIN


class interruptible:
    """with interruptible() as g: a long C call. g.active says whether Ctrl-C
    is being caught (main thread, default handler): then the caller installs
    an abort callback that polls pending()."""

    __slots__ = ("active",)

    def __enter__(self):
        self.active = False
        if threading.get_ident() == _MAIN:
            try:
                if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                    _flag.set = False
                    signal.signal(signal.SIGINT, _on_sigint)
                    self.active = True
            except (ValueError, TypeError):  # interpreter shutting down
                pass
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.active:
            return False
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if _flag.set:
            _flag.set = False
            raise KeyboardInterrupt
        return False
