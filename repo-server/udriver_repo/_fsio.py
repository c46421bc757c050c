"""Crash-safe file operations and the publisher lock.

Rules:
- A file in the public tree is written to a temporary name in the same directory,
  fsync'ed, renamed over its final name, and the directory is fsync'ed (rename(2) is
  atomic within one filesystem; the fsyncs make the order durable): udriver's one
  helper, `udriver.fsio.replace_atomic`, with the steps and errors below on top.
- Every write is a numbered *step*, reported to the step hook when one is set
  (`set_step_hook`): tests inject a callback that logs the steps or SIGKILLs the
  process right after step k, so they can stop a publish at every point without racing
  a timer. Nothing in the environment changes what a repository does.
- `RepoLock` is an exclusive flock(2) on `REPO/lock`; flock locks belong to the open
  file description, so it serialises threads of one process as well as processes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from udriver.errors import RepositoryError
from udriver.fsio import fsync_dir, replace_atomic

__all__ = ["RepoLock", "StepHook", "fsync_dir", "link_atomic", "set_step_hook", "step",
           "write_atomic", "write_new"]

StepHook = Callable[[int, str], None]
"""Called after each filesystem step with its number (from 1) and what it did."""

_counter = 0
_hook: StepHook | None = None
_counter_lock = threading.Lock()


def set_step_hook(hook: StepHook | None) -> StepHook | None:
    """Report every later step to `hook` (None: to nobody), counting from 1 again.

    Returns the hook it replaces. Process-wide: for tests that log the steps of a
    publish or stop it at one (crash tests run the publisher in a child process).
    """
    global _counter, _hook
    with _counter_lock:
        old, _hook, _counter = _hook, hook, 0
    return old


def step(what: str) -> None:
    """Count one filesystem step and report it to the step hook, if one is set."""
    global _counter
    with _counter_lock:
        _counter += 1
        n, hook = _counter, _hook
    if hook is not None:
        hook(n, what)


def _replace_via_temp(path: Path, make: Callable[[Path], None], what: str) -> None:
    """`make` a temporary sibling of `path`, then rename it over `path` with the file and
    the directory fsync'ed (`udriver.fsio.replace_atomic`, module rule 1); on failure the
    temporary is removed and RepositoryError("{what}: ...")."""
    try:
        replace_atomic(path, make)  # the mode is `make`'s (os.open's, under the umask)
    except OSError as e:
        raise RepositoryError(f"{what}: {e.strerror}") from e
    step(f"rename {path.name}")


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` atomically (temp file, fsync, rename, fsync dir).

    Raises:
        RepositoryError: the write failed.
    """
    def write(tmp: Path) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        step(f"write {path.name}")

    _replace_via_temp(path, write, f"cannot write {path}")


def link_atomic(src: Path, path: Path) -> None:
    """Make `path` a hard link to the (immutable) file `src`, replacing it atomically.

    Used for plain names of content-addressed files, so large files are not written twice.

    Raises:
        RepositoryError: the link or rename failed.
    """
    def link(tmp: Path) -> None:
        os.link(src, tmp)
        step(f"link {path.name}")

    _replace_via_temp(path, link, f"cannot link {path} to {src}")


def write_new(path: Path, data: bytes) -> bool:
    """Write a content-addressed file unless it already exists with that content.

    Returns True when the file was written. Existing content is trusted only if the
    size matches; a torn file from a crash is replaced.
    """
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    write_atomic(path, data)
    return True


class RepoLock:
    """Exclusive lock on the repository (flock on `REPO/lock`)."""

    def __init__(self, repo: Path) -> None:
        self._path = repo / "lock"
        self._fd = -1

    def __enter__(self) -> Self:
        try:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise RepositoryError(f"cannot open lock {self._path}: {e.strerror}") from e
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
                break
            except OSError as e:  # pragma: no cover - EINTR on a signal
                if e.errno != errno.EINTR:
                    os.close(self._fd)
                    raise RepositoryError(f"cannot lock {self._path}: {e.strerror}") from e
        return self

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None,
                 tb: TracebackType | None) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = -1
