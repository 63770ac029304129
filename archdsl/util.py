"""Small shared helpers: writing outputs (atomically where that is possible), pausing the garbage
collector, the Graphviz layout time limit (here so that `report`'s options need not import the
diagram module)."""

from __future__ import annotations

import contextlib
import gc
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import Diagnostic, OutputError, UsageError

__all__ = ["write_atomic", "write_output", "gc_paused", "LAYOUT_TIMEOUT"]

# Layout time: ``dot`` is killed after this many seconds (``--timeout``; ``archdsl.draw`` uses it).
# Graphviz's network simplex has no bound of its own: a few hundred layers with many long skip
# connections take minutes.
LAYOUT_TIMEOUT = 60.0


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a large, long-lived structure is built.

    Expanding and analysing a network allocates many objects that all stay alive; every burst of
    allocations makes the collector scan the whole growing heap again, which was about a third of
    the time of loading and analysing a 4,000-node graph. Reference counting still frees what dies;
    cycles are collected after. Also a decorator (``@gc_paused()``); nesting is fine.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write a file so that readers see the old content or the new, never a partial file.

    The data goes to a temporary file in the same directory, is flushed to disk, then renamed
    over the target (atomic on POSIX). On any error the temporary file is removed.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8", "newline": "\n"})) as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _target_mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _target_mode(path: Path) -> int:
    """The mode the file would get from a plain open(): the old file's, else 0o666 minus umask."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_output(path: str | Path, data: str | bytes) -> None:
    """Write a command's output (``-o PATH``), every failure a diagnostic naming the path.

    ``-`` is standard output. A regular file (or a new one) is replaced atomically with
    :func:`write_atomic`: readers see the old content or the new, and a failed write leaves the
    old file intact; through a symlink, the file it points to is replaced and the link stays.
    Anything else that exists — a device (``/dev/null``), a FIFO, a socket, a shell's
    ``/dev/fd/63`` — is opened and written through, never replaced, so the old-file guarantee
    holds for regular files only. A directory that does not exist is a command-line error (exit 2);
    any other failure (no permission, a full disk) exits 1.
    """
    if str(path) == "-":
        _write_stream(data)
        return
    try:
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            mode = None  # a new file (or a dangling symlink: its target is created)
        if mode is not None and stat.S_ISDIR(mode):
            raise IsADirectoryError(21, "Is a directory")
        if mode is not None and not stat.S_ISREG(mode):
            _write_through(path, data)
        else:
            write_atomic(os.path.realpath(path), data)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        parent = Path(path).parent
        missing = isinstance(exc, FileNotFoundError)
        raise UsageError(Diagnostic(
            f"-o {path}: " + (f"the directory {parent} does not exist" if missing
                              else exc.strerror or str(exc)),
            None, expected="a file in an existing directory, or - for standard output",
            hint=f"create the directory first (mkdir -p {parent})" if missing else None)) from None
    except OSError as exc:
        raise OutputError(Diagnostic(f"cannot write {path}: {exc.strerror or exc}", None,
                                     hint="check the permissions and the free space; "
                                          "nothing was replaced")) from None


def _write_through(path: str | Path, data: str | bytes) -> None:
    """Write into an existing device, FIFO or socket in place (it is never replaced)."""
    if isinstance(data, bytes):
        with open(path, "wb") as fh:
            fh.write(data)
    else:
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(data)


def _write_stream(data: str | bytes) -> None:
    if isinstance(data, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(data)
        sys.stdout.flush()
