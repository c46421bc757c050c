"""Replace a file so a reader sees the old one or the new one, never half: the one helper
for the client, the supervisor, the toolchain and the repository server (`udriver_repo._fsio`
adds its numbered crash-test steps and `RepositoryError` on top).

Rules (rename(2): "If newpath already exists, it will be atomically replaced"; the
replacement is durable only once the file and then its directory are fsync'ed, fsync(2)
"Calling fsync() does not necessarily ensure that the entry in the directory containing
the file has also reached disk"):

1. the new content is made under a temporary name in the same directory (a rename
   across filesystems is not atomic), hidden (`.<name>.…`);
2. the temporary file is fsync'ed and given its final mode;
3. it is renamed over the final name, and the directory is fsync'ed;
4. on any failure the temporary is removed and the old file is left as it was.

`durable=False` skips the two fsyncs (rules 2 and 3), for records a power cut may lose
because losing one means the same as a fresh boot (a device's status, claim and crash
history, `udriver._devstate`): the rename keeps them whole, and a writer between a crash
and a restart does not wait for the disk.

`write_atomic` writes bytes; `replace_atomic` lets the caller make the temporary
(a symlink, a download, a zip stream, a copy).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["fsync_dir", "replace_atomic", "write_atomic"]


def fsync_dir(path: Path) -> None:
    """fsync a directory, so a rename or create in it is durable.

    Raises:
        OSError: the directory cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomic(path: Path, make: Callable[[Path], object], mode: int | None = None, *,
                   prefix: str | None = None, durable: bool = True) -> None:
    """`make(tmp)` creates the new file at `tmp` (a free name beside `path`); it is
    fsync'ed, chmod'ed to `mode` (None: left as made), renamed over `path`, and the
    directory fsync'ed (module rules 1-4). A symlink is renamed without fsync or chmod.
    `prefix` names the temporary (default `.<name>.`), for a caller that sweeps the
    leftovers of a killed process by name; `durable=False`: no fsync (module docstring).

    Raises:
        OSError: the directory or file cannot be written (nothing is left behind).
        Exception: whatever `make` raises (nothing is left behind).
    """
    import tempfile  # here: commands that only read (`udriver devices`) never load it

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=prefix or f".{path.name}.")
    os.close(fd)
    tmp = Path(name)
    try:
        tmp.unlink()  # `make` creates it: a symlink, a download or a zip need a free name
        make(tmp)
        if mode is not None and not tmp.is_symlink():
            os.chmod(tmp, mode)
        if durable and not tmp.is_symlink():
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes, mode: int = 0o644, *, prefix: str | None = None,
                 durable: bool = True) -> None:
    """Write `data` to a temporary file beside `path`, fsync, chmod `mode`, rename(2) over
    it and fsync the directory (`prefix`, `durable`: as for `replace_atomic`).

    Raises:
        OSError: the directory or file cannot be written (nothing is left behind).
    """
    def write(tmp: Path) -> None:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(data)

    replace_atomic(path, write, mode, prefix=prefix, durable=durable)
