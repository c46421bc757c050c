"""Bounded, path-safe reading of untrusted archives: the primitives of `udriver.artifacts`.

Every byte read from an archive is charged to a `Budget`; a member is read only up to
its limit (`read_member`); a member name is only ever compared, after `safe_name`
refused anything absolute, with `..`, a backslash or a NUL; nothing is extracted.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import PackageError

__all__ = [
    "DEFAULT_LIMITS",
    "BoundedReader",
    "Budget",
    "Limits",
    "Slice",
    "check_size",
    "read_member",
    "safe_name",
]

_MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Upper bounds for reading one artifact. Exceeding any raises `PackageError`."""

    archive_bytes: int = 256 * _MIB
    """Size of the wheel or .deb file itself."""
    members: int = 20000
    """Number of members in a zip or tar."""
    small_file_bytes: int = 1 * _MIB
    """Any single member we read into memory (manifest, control, md5sums, udev rule)."""
    unpacked_bytes: int = 1024 * _MIB
    """Total bytes decompressed from one archive."""


DEFAULT_LIMITS = Limits()
"""The bounds the readers apply unless told otherwise."""


def safe_name(name: str, what: str, src: Path) -> str:
    """Normalise an archive member name for comparison; reject anything path-tricky.

    Raises:
        PackageError: absolute, `..`, backslash, NUL or empty component.
    """
    n = name.removeprefix("./")
    n = n.rstrip("/")
    if n in ("", "."):
        return ""
    parts = n.split("/")
    if (name.startswith("/") or "\\" in n or "\0" in n
            or any(p in ("", ".", "..") for p in parts)):
        raise PackageError(f"{src}: unsafe member name in {what}: {name!r}")
    return n


def check_size(path: Path, limits: Limits) -> None:
    try:
        size = path.stat().st_size
    except OSError as e:
        raise PackageError(f"cannot read {path}: {e.strerror}") from e
    if size > limits.archive_bytes:
        raise PackageError(f"{path}: archive too large ({size} bytes, limit {limits.archive_bytes})")


class Budget:
    """Counts decompressed bytes across one archive."""

    def __init__(self, src: Path, limit: int) -> None:
        self.src, self.limit, self.used = src, limit, 0

    def take(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise PackageError(f"{self.src}: unpacks to more than {self.limit} bytes (archive bomb?)")


class BoundedReader(io.RawIOBase):
    """A read-only stream that charges every byte to a `Budget`."""

    def __init__(self, inner: BinaryIO, budget: Budget) -> None:
        self._inner, self._budget = inner, budget

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(b))
        self._budget.take(len(data))
        b[: len(data)] = data
        return len(data)


class Slice(io.RawIOBase):
    """Bytes [offset, offset+size) of an open file, streamed (an ar member)."""

    def __init__(self, f: BinaryIO, offset: int, size: int) -> None:
        self._f, self._pos, self._end = f, offset, offset + size

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(b), self._end - self._pos)
        if n <= 0:
            return 0
        self._f.seek(self._pos)
        data = self._f.read(n)
        b[: len(data)] = data
        self._pos += len(data)
        return len(data)


def read_member(read: BinaryIO, limit: int, what: str, src: Path) -> bytes:
    data = read.read(limit + 1)
    if len(data) > limit:
        raise PackageError(f"{src}: {what} is larger than {limit} bytes")
    return data
