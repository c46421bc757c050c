"""The Packages index of the apt view: stanzas, chunks and Release lines. Pure.

Fields and their order follow the Debian repository format (wiki.debian.org/
DebianRepository/Format, "Packages Indices") and Debian policy 5.3: a stanza is a
package's control fields plus what the archive computes (Filename, Size, MD5sum,
SHA256). A driver's stanza is built from validated data only (`driver_stanza`).

Stanzas fall into 256 *chunks* by sha256(Filename)[:2] (`chunk_of`); a chunk is encoded
once as a gzip member and as xz blocks (`encode_chunk`), so a publish re-encodes only
the chunks it touches (see `_apt` for how the files are assembled and committed).
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import re
from dataclasses import dataclass

from udriver.artifacts import parse_control
from udriver.errors import PackageError
from udriver.manifest import DriverManifest

from ._xzblocks import Blocks, compress_blocks

__all__ = [
    "ARCH",
    "COMPONENT",
    "INDEX",
    "INDEX_NAMES",
    "KEEP_GENERATIONS",
    "SUITE",
    "Chunk",
    "chunk_of",
    "deb_stanza",
    "decode_packages",
    "driver_stanza",
    "encode_chunk",
    "parse_packages",
    "release_packages_sha",
    "split_stanzas",
]

SUITE = "stable"
COMPONENT = "main"
ARCH = "amd64"
INDEX = f"{COMPONENT}/binary-{ARCH}"
INDEX_NAMES = ("Packages.gz", "Packages.xz")
KEEP_GENERATIONS = 2
"""Generations of by-hash indexes kept: the committed one and the one before it."""

# Debian policy 5.3: the usual order of binary package fields in Packages.
_ORDER = ["Package", "Source", "Version", "Installed-Size", "Maintainer", "Architecture",
          "Depends", "Pre-Depends", "Recommends", "Suggests", "Conflicts", "Breaks",
          "Replaces", "Provides", "Section", "Priority", "Homepage", "Description", "Modaliases"]


_COMPUTED = ("Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512", "Description-md5")
"""Fields of a Packages stanza the archive computes (Debian repository format,
"Packages Indices"): never taken from a package's own control data."""
_DRIVER_FIELDS = ("Version", "Architecture", "Maintainer", "Installed-Size", "Depends",
                  "Section", "Priority", "Homepage", "Description")
"""Control fields of a driver .deb carried into Packages, after validation; `Package`
and `Modaliases` are computed from the validated manifest instead."""
_ONE_LINE = re.compile(r"^[^\x00-\x1f\x7f]*$")
_FIELD_RE = {
    "Version": re.compile(r"^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*$"),   # policy 5.6.12
    "Architecture": re.compile(r"^(?:all|amd64)$"),
    "Installed-Size": re.compile(r"^[0-9]{1,12}$"),
    "Section": re.compile(r"^[a-z0-9/-]{1,40}$"),
    "Priority": re.compile(r"^(?:required|important|standard|optional|extra)$"),
    "Depends": re.compile(r"^[A-Za-z0-9.+~:=<>(), |-]*$"),
}


def _fmt_field(name: str, value: str) -> str:
    lines = value.split("\n")
    return "\n".join([f"{name}: {lines[0]}"] + [f" {ln}" for ln in lines[1:]])


def _tail(filename: str, data: bytes) -> list[str]:
    return [f"Filename: {filename}", f"Size: {len(data)}",
            f"MD5sum: {hashlib.md5(data).hexdigest()}",
            f"SHA256: {hashlib.sha256(data).hexdigest()}"]


def deb_stanza(control: dict[str, str], filename: str, data: bytes) -> str:
    """One Packages stanza (no trailing blank line) for an operator's system deb at pool
    path `filename`: its control fields, minus any the archive computes."""
    fields = {k: v for k, v in control.items() if k not in _COMPUTED}
    keys = [k for k in _ORDER if k in fields] + sorted(k for k in fields if k not in _ORDER)
    return "\n".join([_fmt_field(k, fields[k]) for k in keys] + _tail(filename, data))


def driver_stanza(control: dict[str, str], manifest: DriverManifest, filename: str,
                  data: bytes) -> str:
    """The Packages stanza of a driver .deb, built from validated data only.

    `Package` is `udriver-driver-<driver>` and `Modaliases` is `udriver(<patterns>)`,
    both computed from the validated manifest; the hashes and size are computed from
    the bytes; of the control data only `_DRIVER_FIELDS` are kept, each checked against
    its syntax (Debian policy 5.6), so an uploaded `SHA256:`, `Size:`, `Filename:` or
    any field `udriver build` does not write never reaches Packages.

    Raises:
        PackageError: every control value that is missing or malformed.
    """
    problems: list[str] = []
    package = "udriver-driver-" + manifest.driver.replace("_", "-")
    if control.get("Package") != package:
        problems.append(f"`Package: {control.get('Package')}` should be {package}")
    out = {"Package": package,
           "Modaliases": f"udriver({', '.join(manifest.modaliases)})"}
    for name in _DRIVER_FIELDS:
        value = control.get(name)
        if value is None:
            if name not in ("Homepage", "Depends"):
                problems.append(f"control field `{name}` is missing")
            continue
        lines = value.split("\n")
        if name != "Description" and len(lines) > 1:
            problems.append(f"control field `{name}` must be one line")
        elif not all(_ONE_LINE.match(ln) for ln in lines) or not lines[0].strip():
            problems.append(f"control field `{name}` has control characters or is empty")
        elif name in _FIELD_RE and not _FIELD_RE[name].match(value):
            problems.append(f"control field `{name}` is malformed: {value!r}")
        else:
            out[name] = value
    if problems:
        raise PackageError(f"{filename.rpartition('/')[2]}: " + "; ".join(problems))
    keys = [k for k in _ORDER if k in out]
    return "\n".join([_fmt_field(k, out[k]) for k in keys] + _tail(filename, data))


def split_stanzas(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for block in text.split("\n\n"):
        block = block.strip("\n")
        if not block:
            continue
        fields = parse_control(block, "Packages")
        out[fields["Filename"]] = block
    return out


def parse_packages(data: bytes) -> dict[str, dict[str, str]]:
    """Filename -> fields of every stanza of a Packages file (plain, .gz or .xz)."""
    return {k: parse_control(v, "Packages") for k, v in split_stanzas(decode_packages(data)).items()}


def decode_packages(data: bytes) -> str:
    """Text of a Packages file, plain or compressed (every member/stream)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    elif data[:6] == b"\xfd7zXZ\x00":
        data = lzma.decompress(data)
    return data.decode()


def chunk_of(filename: str) -> str:
    """The chunk ("00".."ff") a stanza belongs to, by its pool file name."""
    return hashlib.sha256(filename.encode()).hexdigest()[:2]


@dataclass
class Chunk:
    """One chunk of the index, encoded."""

    gz: bytes
    """Its gzip member."""
    xz: Blocks
    """Its xz blocks and their index records."""
    sha: str
    """sha256 of its uncompressed stanzas (also its file name under apt-state/chunks)."""
    size: int
    """Length of its uncompressed stanzas."""
    plain: bytes | None = None
    """The uncompressed stanzas, when at hand."""


def encode_chunk(stanzas: dict[str, str]) -> Chunk:
    """One chunk's stanzas, sorted by Filename, encoded."""
    plain = "".join(stanzas[k] + "\n\n" for k in sorted(stanzas)).encode()
    # mtime=0 and fixed presets: equal content gives equal bytes (by-hash stays stable).
    return Chunk(gzip.compress(plain, compresslevel=6, mtime=0), compress_blocks(plain),
                  hashlib.sha256(plain).hexdigest(), len(plain), plain)


def release_packages_sha(release: str, name: str = "Packages.gz") -> str | None:
    """The SHA256 a Release (or the signed text of InRelease) gives for main's `name`."""
    in_sha = False
    for line in release.splitlines():
        if line.startswith("-----BEGIN PGP SIGNATURE"):
            break
        if not line.startswith(" "):
            in_sha = line.startswith("SHA256:")
            continue
        parts = line.split()
        if in_sha and len(parts) == 3 and parts[2] == f"{INDEX}/{name}":
            return parts[0]
    return None
