"""Atomic file writes for libhmt's Python tools (standard library only),
the same protocol as the library's lib/io/atomic_file.c:

    with atomic_write("out.gguf") as f:      # binary; "w" for text
        f.write(...)

A unique temporary `<name>.tmp-XXXXXXXX` is created in the target's folder
(mode 0666 less the umask, as a plain create), written, flushed and fsynced,
then renamed over the target and the folder fsynced. Until the rename the old
file is untouched; if the body raises (or writing fails), the temporary is
removed and the exception propagates. A symbolic link at the path is followed
and the file it names replaced, as open(path, "w") would have written through
it. Two concurrent writers each write their own temporary, so the target is
always one whole file (the last rename wins), never a mix.
"""
import contextlib
import os
import tempfile


def _umask():
    """The process umask, read without changing it where Linux says it
    (/proc/self/status), else by the set-and-restore dance."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _target(path):
    path = os.fspath(path)
    if os.path.islink(path):
        return os.path.realpath(path)
    return path


def _sync_folder(folder):
    """fsync the folder so that the rename is durable; some filesystems
    cannot (EINVAL): the rename already happened, so that is not an error."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode="wb", encoding=None, newline=None):
    """Context manager yielding a file object (mode "wb" or "w") whose
    content replaces `path` atomically when the block ends without an
    exception."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode {mode!r} (wb or w)")
    target = _target(path)
    folder = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(target) + ".tmp-")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        if mode == "w":
            f = os.fdopen(fd, "w", encoding=encoding or "utf-8", newline=newline)
        else:
            f = os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _sync_folder(folder)


def write_bytes(path, data):
    with atomic_write(path) as f:
        f.write(data)


def write_text(path, text, encoding="utf-8"):
    with atomic_write(path, "w", encoding=encoding) as f:
        f.write(text)
