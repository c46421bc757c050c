"""Reading a driver .deb without extracting it (deb(5), ar(5), Debian policy 5.1/5.3).

Order of operations: the `ar` archive must start with `debian-binary` ("2.0"), then
`control.tar[.gz|.xz]`, then `data.tar[.gz|.xz]`. The control tar gives `control`
(deb822) and `md5sums`; the data tar is streamed once, hashing every regular file and
keeping the few small files the checks need (the manifest and the udev rules). Every
read is bounded (`_bounded`). Public through `udriver.artifacts`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ._bounded import (
    DEFAULT_LIMITS,
    BoundedReader,
    Budget,
    Limits,
    Slice,
    check_size,
    read_member,
    safe_name,
)
from .errors import PackageError
from .manifest import DriverManifest

__all__ = ["DEB_MANIFEST_DIR", "UDEV_RULES_DIR", "DebInfo", "parse_control",
           "parse_modaliases_field", "read_deb"]

#: Where a .deb carries the manifest: `<DEB_MANIFEST_DIR>/<driver>.json`.
DEB_MANIFEST_DIR = "usr/share/udriver/drivers"
#: Where a .deb carries its udev rule.
UDEV_RULES_DIR = "usr/lib/udev/rules.d"


@dataclass(frozen=True)
class DebInfo:
    """What a driver .deb says about itself, read without extracting it."""

    path: Path
    """The .deb file."""
    control: dict[str, str]
    """Fields of `DEBIAN/control`, in file order (continuation lines joined with "\\n")."""
    md5sums: dict[str, str]
    """`DEBIAN/md5sums`: path (relative, no leading "./") -> hex md5."""
    files: dict[str, str]
    """Every regular file in data.tar: path (relative) -> hex md5 of what we read."""
    dirs: tuple[str, ...]
    """Every directory in data.tar (relative, no trailing "/")."""
    symlinks: dict[str, str]
    """Symlinks in data.tar: path -> target (never followed)."""
    small_files: dict[str, bytes]
    """Contents of the files the checks need (manifest and udev rules)."""
    manifest: DriverManifest | None
    """`usr/share/udriver/drivers/<driver>.json`, or None when the deb has none."""
    control_members: tuple[str, ...] = field(default=())
    """Member names of control.tar (relative)."""
    control_text: str = ""
    """`DEBIAN/control` exactly as shipped (for an apt `Packages` stanza)."""

    @property
    def package(self) -> str:
        return self.control.get("Package", "")

    @property
    def version(self) -> str:
        return self.control.get("Version", "")

    @property
    def architecture(self) -> str:
        return self.control.get("Architecture", "")

    @property
    def modaliases(self) -> dict[str, list[str]]:
        """The `Modaliases:` field parsed (module -> patterns); {} when absent."""
        return parse_modaliases_field(self.control.get("Modaliases", ""))

    @property
    def udev_rules(self) -> dict[str, bytes]:
        return {k: v for k, v in self.small_files.items() if k.startswith(UDEV_RULES_DIR + "/")}


def _ar_members(f: BinaryIO, src: Path, size: int) -> list[tuple[str, int, int]]:
    """(name, offset, size) of each member of an `ar` archive (deb(5), ar(5)).

    Raises:
        PackageError: bad magic or header, or a member that runs past the end.
    """
    if f.read(8) != b"!<arch>\n":
        raise PackageError(f"{src}: not a .deb (missing `!<arch>` ar magic)")
    out: list[tuple[str, int, int]] = []
    pos = 8
    while pos < size:
        hdr = f.read(60)
        if len(hdr) == 0:
            break
        if len(hdr) != 60 or hdr[58:60] != b"`\n":
            raise PackageError(f"{src}: corrupt ar member header at offset {pos}")
        name = hdr[0:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            msize = int(hdr[48:58].decode("ascii").strip())
        except ValueError as e:
            raise PackageError(f"{src}: corrupt ar member size at offset {pos}") from e
        start = pos + 60
        if msize < 0 or start + msize > size:
            raise PackageError(f"{src}: ar member {name!r} runs past the end of the file")
        out.append((name, start, msize))
        pos = start + msize + (msize & 1)
        f.seek(pos)
        if len(out) > 16:
            raise PackageError(f"{src}: too many ar members")
    return out


def _open_tar_stream(raw: bytes | BinaryIO, name: str, budget: Budget, src: Path) -> tarfile.TarFile:
    fobj: BinaryIO = io.BytesIO(raw) if isinstance(raw, bytes) else raw
    inner: BinaryIO
    if name.endswith(".tar.gz"):
        # Closed with the tar stream that wraps it.
        inner = gzip.GzipFile(fileobj=fobj, mode="rb")  # type: ignore[assignment]
    elif name.endswith(".tar.xz"):
        inner = lzma.LZMAFile(fobj, "rb")  # type: ignore[assignment]  # noqa: SIM115
    elif name.endswith(".tar"):
        inner = fobj
    else:
        raise PackageError(f"{src}: unsupported compression for {name!r} (use gzip or xz)")
    stream = io.BufferedReader(BoundedReader(inner, budget), 65536)
    try:
        return tarfile.open(fileobj=stream, mode="r|")
    except (tarfile.TarError, OSError, EOFError, lzma.LZMAError) as e:
        raise PackageError(f"{src}: {name} is not a valid tar: {e}") from e


def parse_control(text: str, source: str = "control") -> dict[str, str]:
    """Parse one deb822 paragraph (Debian policy 5.1): `Field: value` plus continuations.

    Raises:
        PackageError: a line that is neither a field nor a continuation, or a repeated field.
    """
    fields: dict[str, str] = {}
    last: str | None = None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t":
            if last is None:
                raise PackageError(f"{source}:{n}: continuation line before any field: {line!r}")
            fields[last] += "\n" + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep or not re.match(r"^[!-9;-~][!-9;-~]*$", name):
            raise PackageError(f"{source}:{n}: not a `Field: value` line: {line!r}")
        if name in fields:
            raise PackageError(f"{source}:{n}: field `{name}` appears twice")
        fields[name] = value.strip()
        last = name
    return fields


_MODALIAS_GROUP_RE = re.compile(r"\s*([A-Za-z0-9_.+-]+)\s*\(([^()]*)\)\s*(?:,|$)")


def parse_modaliases_field(value: str) -> dict[str, list[str]]:
    """Parse `Modaliases: mod(pat, pat), mod2(pat)` (the ubuntu-drivers format).

    Patterns are returned as written (callers normalise them with `udriver.modalias`).

    Raises:
        PackageError: the field does not follow `module(pattern, ...)[, ...]`.
    """
    out: dict[str, list[str]] = {}
    text = " ".join(value.split())
    pos = 0
    while pos < len(text):
        m = _MODALIAS_GROUP_RE.match(text, pos)
        if m is None:
            raise PackageError(f"`Modaliases` is not `module(pattern, ...)` at {text[pos:]!r}")
        pats = [p.strip() for p in m.group(2).split(",") if p.strip()]
        out.setdefault(m.group(1), []).extend(pats)
        pos = m.end()
    return out


def read_deb(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> DebInfo:
    """Read a driver .deb's control data, file list and manifest without extracting it.

    Raises:
        PackageError: not a .deb, unsafe names, malformed control, a bound exceeded.
        ManifestError: the embedded manifest is invalid.
    """
    src = Path(path)
    check_size(src, limits)
    size = src.stat().st_size
    budget = Budget(src, limits.unpacked_bytes)
    with open(src, "rb") as f:
        members = _ar_members(f, src, size)
        names = [m[0] for m in members]
        # deb(5): debian-binary first, then control.tar*, then data.tar*.
        if len(names) < 3 or names[0] != "debian-binary" or not names[1].startswith("control.tar") \
                or not names[2].startswith("data.tar"):
            raise PackageError(f"{src}: ar members must be debian-binary, control.tar*, data.tar* "
                               f"in that order, got {names}")
        _, off, msize = members[0]
        f.seek(off)
        if f.read(min(msize, 16)).split(b"\n")[0] != b"2.0":
            raise PackageError(f"{src}: debian-binary is not \"2.0\"")
        _, off, msize = members[1]
        if msize > limits.small_file_bytes * 4:
            raise PackageError(f"{src}: control archive too large ({msize} bytes)")
        f.seek(off)
        control_raw = f.read(msize)
        ctl_files, ctl_names = _read_control_tar(control_raw, names[1], budget, limits, src)
        _, off, msize = members[2]
        data = _read_data_tar(io.BufferedReader(Slice(f, off, msize), 65536),
                              names[2], budget, limits, src)
    if "control" not in ctl_files:
        raise PackageError(f"{src}: control.tar has no `control` file")
    control_text = ctl_files["control"].decode("utf-8", "replace")
    control = parse_control(control_text, f"{src.name}:control")
    md5sums: dict[str, str] = {}
    for n, line in enumerate(ctl_files.get("md5sums", b"").decode("utf-8", "replace").splitlines(), 1):
        digest, _, name = line.partition("  ")
        if not re.match(r"^[0-9a-f]{32}$", digest) or not name:
            raise PackageError(f"{src.name}:md5sums:{n}: not `<md5>  <path>`: {line!r}")
        md5sums[safe_name(name, "md5sums", src)] = digest
    files, dirs, links, small = data
    manifests = {k: v for k, v in small.items() if k.startswith(DEB_MANIFEST_DIR + "/")}
    manifest = None
    if len(manifests) > 1:
        raise PackageError(f"{src}: more than one manifest under /{DEB_MANIFEST_DIR}: "
                           f"{', '.join(sorted(manifests))}")
    if manifests:
        (mname, mdata), = manifests.items()
        manifest = DriverManifest.from_json(mdata, f"{src.name}:/{mname}")
    return DebInfo(src, control, md5sums, files, tuple(dirs), links, small, manifest,
                   tuple(ctl_names), control_text)


def _read_control_tar(raw: bytes, name: str, budget: Budget, limits: Limits,
                      src: Path) -> tuple[dict[str, bytes], list[str]]:
    out: dict[str, bytes] = {}
    names: list[str] = []
    tf = _open_tar_stream(raw, name, budget, src)
    try:
        for i, m in enumerate(tf):
            if i >= limits.members:
                raise PackageError(f"{src}: too many members in {name}")
            n = safe_name(m.name, name, src)
            if not n:
                continue
            names.append(n)
            if m.isfile() and n in ("control", "md5sums", "conffiles"):
                fo = tf.extractfile(m)
                assert fo is not None
                out[n] = read_member(fo, limits.small_file_bytes, f"{name}:{n}", src)  # type: ignore[arg-type]
    except (tarfile.TarError, EOFError, lzma.LZMAError, OSError) as e:
        raise PackageError(f"{src}: corrupt {name}: {e}") from e
    return out, names


def _wanted_small(n: str) -> bool:
    return ((n.startswith(DEB_MANIFEST_DIR + "/") and n.endswith(".json")
             and n.count("/") == DEB_MANIFEST_DIR.count("/") + 1)
            or (n.startswith(UDEV_RULES_DIR + "/") and n.endswith(".rules")))


def _read_data_tar(raw: BinaryIO, name: str, budget: Budget, limits: Limits, src: Path
                   ) -> tuple[dict[str, str], list[str], dict[str, str], dict[str, bytes]]:
    files: dict[str, str] = {}
    dirs: list[str] = []
    links: dict[str, str] = {}
    small: dict[str, bytes] = {}
    tf = _open_tar_stream(raw, name, budget, src)
    try:
        for i, m in enumerate(tf):
            if i >= limits.members:
                raise PackageError(f"{src}: too many members in {name}")
            n = safe_name(m.name, name, src)
            if not n:
                continue
            if n in files or n in links:
                raise PackageError(f"{src}: {name} has {n!r} twice")
            if m.isdir():
                dirs.append(n)
            elif m.issym():
                links[n] = m.linkname
            elif m.isfile():
                fo = tf.extractfile(m)
                assert fo is not None
                h = hashlib.md5(usedforsecurity=False)
                keep = _wanted_small(n)
                buf = bytearray()
                while chunk := fo.read(65536):
                    h.update(chunk)
                    if keep:
                        buf += chunk
                        if len(buf) > limits.small_file_bytes:
                            raise PackageError(f"{src}: {n} is larger than {limits.small_file_bytes} bytes")
                files[n] = h.hexdigest()
                if keep:
                    small[n] = bytes(buf)
            else:
                raise PackageError(f"{src}: {name} member {n!r} is not a file, directory or symlink")
    except (tarfile.TarError, EOFError, lzma.LZMAError, OSError) as e:
        raise PackageError(f"{src}: corrupt {name}: {e}") from e
    return files, dirs, links, small
