"""Bounded reads of the archives inside an artifact: sizes, ratios, safe member names.

Every byte the gate decompresses is charged to one `Tally` per artifact, so what a
hostile archive can make us (or, later, dpkg, pypa/installer or a mirror's scanner)
inflate is bounded three ways:

- per member: no member expands to more than `GateLimits.member_bytes`;
- per compressed stream: a zip member, or a .deb's control.tar.* / data.tar.*, may not
  expand more than `GateLimits.ratio` times its compressed size once it is over
  `GateLimits.ratio_floor` (deflate's best case on real data is far below 100:1; zeros
  give ~1000:1, xz far more);
- per artifact: all members together stay under `GateLimits.total_bytes`, and under
  `ratio` times the artifact's size.

A zip's sizes are checked from its central directory before anything is inflated
(zipfile never returns more than a member's declared size: it stops there and checks
the CRC, so the declared sizes bound every Python consumer, pypa/installer included);
then every member is inflated once to prove the declared sizes and CRCs true. A tar
stream is decompressed through a reader that stops at its budget.

Nothing here raises for a bad archive: problems are appended to the `Tally`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import lzma
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

__all__ = ["GateLimits", "Tally", "TarMember", "ZipMember", "check_zip_sizes", "member_name",
           "scan_tar", "scan_zip"]

_MIB = 1024 * 1024
_CHUNK = 65536


@dataclass(frozen=True)
class GateLimits:
    """Upper bounds for one artifact. Exceeding any is a problem, never a crash."""

    archive_bytes: int = 256 * _MIB
    """Size of the .whl or .deb file itself (the server's default upload limit)."""
    members: int = 10000
    """Members in one zip or tar."""
    member_bytes: int = 64 * _MIB
    """What one member may expand to."""
    total_bytes: int = 256 * _MIB
    """What all members of one artifact may expand to together."""
    ratio: int = 100
    """Largest expanded:compressed ratio of a stream or member over `ratio_floor`."""
    ratio_floor: int = 1 * _MIB
    """Expanded size below which the ratio is not checked (small files compress well)."""
    small_bytes: int = 1 * _MIB
    """A metadata file the gate reads into memory (manifest, control, METADATA...)."""


@dataclass
class Tally:
    """Problems found so far and bytes expanded so far, for one artifact."""

    limits: GateLimits
    """The bounds in force."""
    archive_size: int
    """Size of the artifact file (for the whole-archive ratio)."""
    problems: list[tuple[str, str]] = field(default_factory=list)
    """(rule, message) pairs, in the order found."""
    expanded: int = 0
    """Bytes expanded so far."""

    def add(self, rule: str, message: str) -> None:
        if (rule, message) not in self.problems:
            self.problems.append((rule, message))

    def budget(self) -> int:
        """Bytes that may still be expanded before the per-artifact bounds are hit."""
        whole = max(self.limits.ratio_floor, self.limits.ratio * self.archive_size)
        return max(0, min(self.limits.total_bytes, whole) - self.expanded)


def member_name(raw: str) -> str | None:
    """A member name normalised for comparison (no `./`, no trailing `/`), or None when
    it is unsafe: absolute, with a `..` or empty component, a backslash or a NUL, or a
    control character. `""` is the archive root (`./`)."""
    n = raw.removeprefix("./").rstrip("/")
    if n in ("", "."):
        return "" if not raw.startswith("/") else None
    parts = n.split("/")
    if (raw.startswith("/") or "\\" in n or any(ord(c) < 32 or c == "\x7f" for c in n)
            or any(p in ("", ".", "..") for p in parts)):
        return None
    return n


# ------------------------------------------------------------------------------- zip


@dataclass(frozen=True)
class ZipMember:
    """One zip member, inflated once."""

    name: str
    """Normalised name (see `member_name`)."""
    size: int
    """Bytes inflated."""
    sha256: str
    """urlsafe-base64 sha256 without padding, as RECORD writes it (PEP 376/427)."""
    mode: int
    """Unix mode from `external_attr` (0 when the zip was not made on Unix)."""
    is_dir: bool
    """A directory entry."""
    data: bytes | None
    """The contents, for the members the caller asked to keep."""


def check_zip_sizes(zf: zipfile.ZipFile, tally: Tally) -> bool:
    """Check the declared sizes of every member before inflating anything.

    Returns:
        True when nothing is over a bound (then inflating everything is safe).
    """
    lim = tally.limits
    infos = zf.infolist()
    ok = True
    if len(infos) > lim.members:
        tally.add("size", f"too many members ({len(infos)}, limit {lim.members})")
        return False
    total = 0
    for i in infos:
        total += i.file_size
        if i.file_size > lim.member_bytes:
            tally.add("bomb", f"zip bomb: member {i.filename!r} unpacks to {i.file_size} bytes "
                      f"(limit per member {lim.member_bytes})")
            ok = False
        elif i.file_size > lim.ratio_floor and i.file_size > lim.ratio * max(i.compress_size, 1):
            tally.add("bomb", f"zip bomb: member {i.filename!r} unpacks {i.file_size} bytes "
                      f"from {i.compress_size} (ratio over {lim.ratio}:1)")
            ok = False
    if total > lim.total_bytes:
        tally.add("bomb", f"zip bomb: members unpack to {total} bytes in total "
                  f"(limit {lim.total_bytes})")
        ok = False
    elif total > lim.ratio_floor and total > lim.ratio * max(tally.archive_size, 1):
        tally.add("bomb", f"zip bomb: members unpack to {total} bytes from a "
                  f"{tally.archive_size}-byte archive (ratio over {lim.ratio}:1)")
        ok = False
    return ok


def scan_zip(data: bytes, tally: Tally, keep: Callable[[str], bool]) -> list[ZipMember] | None:
    """Check and inflate every member of a zip held in memory.

    Args:
        data: the whole zip.
        tally: where problems and expanded bytes go.
        keep: which (normalised) member names to return the contents of.

    Returns:
        The members, or None when the zip cannot be read at all or is over a bound.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        tally.add("archive", f"not a valid wheel (zip) file: {e}")
        return None
    with zf:
        # APPNOTE 4.3.6: [local header + data]... central directory, end record. Anything
        # before the first member or after the end record (a multipart body's headers, an
        # HTML prefix, a polyglot) is not part of a wheel, although zipfile skips it.
        first = min((i.header_offset for i in zf.infolist()), default=0)
        if first != 0 or not data.startswith(b"PK\x03\x04"):
            tally.add("archive", f"the wheel has {first} bytes before its first zip member "
                      "(a prefixed or polyglot file, e.g. a multipart body, is not a wheel)")
        if data[-22:-18] != b"PK\x05\x06":
            tally.add("archive", "the wheel has a comment or other bytes after the zip's end "
                      "record")
        if not check_zip_sizes(zf, tally):
            return None
        out: list[ZipMember] = []
        for i in zf.infolist():
            name = member_name(i.filename)
            if name is None or name == "":
                tally.add("member-name", f"unsafe member name in the wheel: {i.filename!r}")
                continue
            if i.flag_bits & 0x1:
                tally.add("archive", f"member {name!r} is encrypted")
                continue
            if i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                tally.add("archive", f"member {name!r} uses compression method "
                          f"{i.compress_type}; only stored and deflate are allowed")
                continue
            mode = (i.external_attr >> 16) if i.create_system == 3 else 0
            h = hashlib.sha256()
            buf = bytearray()
            size = 0
            want = keep(name)
            try:
                with zf.open(i) as f:
                    while chunk := f.read(_CHUNK):
                        size += len(chunk)
                        h.update(chunk)
                        if want and len(buf) <= tally.limits.small_bytes:
                            buf += chunk
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError) as e:
                tally.add("archive", f"cannot read member {name!r}: {e}")
                continue
            tally.expanded += size
            if want and len(buf) > tally.limits.small_bytes:
                tally.add("size", f"{name} is larger than {tally.limits.small_bytes} bytes")
                want = False
            digest = base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
            out.append(ZipMember(name, size, digest, mode, i.is_dir(),
                                 bytes(buf) if want else None))
    return out


# ------------------------------------------------------------------------------- tar


@dataclass(frozen=True)
class TarMember:
    """One tar member, with its file contents hashed (never extracted)."""

    raw_name: str
    """The name as stored."""
    name: str | None
    """Normalised name, None when unsafe (see `member_name`)."""
    info: tarfile.TarInfo
    """Type, mode, owner, size, link target, pax headers."""
    md5: str | None
    """md5 of a regular file's contents (dpkg's md5sums), else None."""
    data: bytes | None
    """The contents, for the members the caller asked to keep."""


class _Exceeded(Exception):
    pass


class _Budgeted(io.RawIOBase):
    """A read-only stream that stops (raises `_Exceeded`) after `budget` bytes."""

    def __init__(self, inner: BinaryIO, budget: int) -> None:
        self._inner, self.left, self.used = inner, budget, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(b))
        self.used += len(data)
        if self.used > self.left:
            raise _Exceeded
        b[: len(data)] = data
        return len(data)


def _decompressor(raw: bytes, what: str) -> BinaryIO | None:
    fobj = io.BytesIO(raw)
    if what.endswith(".tar.gz"):
        return gzip.GzipFile(fileobj=fobj, mode="rb")  # type: ignore[return-value]
    if what.endswith(".tar.xz"):
        return lzma.LZMAFile(fobj, "rb")  # type: ignore[return-value]
    if what.endswith(".tar"):
        return fobj
    return None


def scan_tar(raw: bytes, what: str, tally: Tally,
             keep: Callable[[str], bool]) -> Iterator[TarMember]:
    """Decompress one tar stream within the bounds and yield its members in order.

    Args:
        raw: the compressed stream (an `ar` member of a .deb).
        what: its name (`data.tar.xz`...), which also picks the decompressor.
        tally: where problems and expanded bytes go.
        keep: which (normalised) member names to return the contents of.
    """
    lim = tally.limits
    inner = _decompressor(raw, what)
    if inner is None:
        tally.add("deb-format", f"{what}: unsupported compression (use gzip or xz)")
        return
    by_ratio = max(lim.ratio_floor, lim.ratio * len(raw))
    budget = min(by_ratio, tally.budget())
    stream = _Budgeted(inner, budget)
    count = 0
    try:
        with tarfile.open(fileobj=io.BufferedReader(stream, _CHUNK), mode="r|") as tf:
            for m in tf:
                count += 1
                if count > lim.members:
                    tally.add("size", f"{what}: too many members (limit {lim.members})")
                    return
                name = member_name(m.name)
                md5 = data = None
                if m.isreg():
                    if m.size > lim.member_bytes:
                        tally.add("bomb", f"{what}: member {m.name!r} is {m.size} bytes "
                                  f"(limit per member {lim.member_bytes})")
                    fo = tf.extractfile(m)
                    assert fo is not None
                    h = hashlib.md5(usedforsecurity=False)
                    want = name is not None and keep(name)
                    buf = bytearray()
                    while chunk := fo.read(_CHUNK):
                        h.update(chunk)
                        if want and len(buf) <= lim.small_bytes:
                            buf += chunk
                    md5 = h.hexdigest()
                    if want and len(buf) > lim.small_bytes:
                        tally.add("size", f"{name} is larger than {lim.small_bytes} bytes")
                    elif want:
                        data = bytes(buf)
                yield TarMember(m.name, name, m, md5, data)
    except _Exceeded:
        which = (f"ratio over {lim.ratio}:1 of its {len(raw)} bytes" if budget == by_ratio
                 else f"the artifact's total limit of {min(lim.total_bytes, tally.budget() + tally.expanded)} bytes")
        tally.add("bomb", f"archive bomb: {what} unpacks to more than {budget} bytes ({which})")
    except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, OSError, ValueError) as e:
        tally.add("archive", f"corrupt {what}: {e}")
    finally:
        tally.expanded += stream.used


def unix_mode_text(mode: int) -> str:
    """`0644`-style text of a mode's permission bits, for messages."""
    return f"{stat.S_IMODE(mode):04o}"
