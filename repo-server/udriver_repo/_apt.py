"""The apt view: `dists/stable/` and `pool/main/`, signed with GnuPG.

Layout and fields follow the Debian repository format (wiki.debian.org/DebianRepository/
Format): `Packages` stanzas are the deb's control fields (Debian policy 5.3) plus
Filename, Size, MD5sum, SHA256; `Release` lists every index file with its size and
hashes, and sets `Acquire-By-Hash: yes` so apt fetches indexes by content hash.

Commit order (a client sees the old or the new view, never a mix):
1. `pool/main/<package>/<file>.deb` (new names only, never replaced);
2. `main/binary-amd64/by-hash/SHA256/<sha256>` for Packages, .gz, .xz;
3. the plain Packages files, `Release`, `Release.gpg`;
4. `InRelease` by rename(2), last: apt reads InRelease first, and with by-hash every
   index it names is immutable.

The committed state is read back from `InRelease` (via by-hash), never from the plain
files, which may be ahead of it after a crash.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from udriver.artifacts import parse_control
from udriver.errors import RepositoryError

from ._fsio import write_atomic, write_new
from ._gpg import Gpg

__all__ = [
    "ARCH",
    "COMPONENT",
    "SUITE",
    "AptView",
    "deb_stanza",
    "parse_packages",
    "release_packages_sha",
]

SUITE = "stable"
COMPONENT = "main"
ARCH = "amd64"
_INDEX = f"{COMPONENT}/binary-{ARCH}"

# Debian policy 5.3: the usual order of binary package fields in Packages.
_ORDER = ["Package", "Source", "Version", "Installed-Size", "Maintainer", "Architecture",
          "Depends", "Pre-Depends", "Recommends", "Suggests", "Conflicts", "Breaks",
          "Replaces", "Provides", "Section", "Priority", "Homepage", "Description", "Modaliases"]


def _fmt_field(name: str, value: str) -> str:
    lines = value.split("\n")
    return "\n".join([f"{name}: {lines[0]}"] + [f" {ln}" for ln in lines[1:]])


def deb_stanza(control: dict[str, str], filename: str, data: bytes) -> str:
    """One Packages stanza (no trailing blank line) for a deb at pool path `filename`."""
    fields = dict(control)
    fields.pop("Filename", None)
    keys = [k for k in _ORDER if k in fields] + sorted(k for k in fields if k not in _ORDER)
    out = [_fmt_field(k, fields[k]) for k in keys]
    out += [f"Filename: {filename}", f"Size: {len(data)}",
            f"MD5sum: {hashlib.md5(data).hexdigest()}",
            f"SHA256: {hashlib.sha256(data).hexdigest()}"]
    return "\n".join(out)


def _split_stanzas(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for block in text.split("\n\n"):
        block = block.strip("\n")
        if not block:
            continue
        fields = parse_control(block, "Packages")
        out[fields["Filename"]] = block
    return out


def parse_packages(data: bytes) -> dict[str, dict[str, str]]:
    """Filename -> fields of every stanza of a Packages file."""
    return {k: parse_control(v, "Packages") for k, v in _split_stanzas(data.decode()).items()}


def release_packages_sha(release: str) -> str | None:
    """The SHA256 a Release (or the signed text of InRelease) gives for main's Packages."""
    in_sha = False
    for line in release.splitlines():
        if line.startswith("-----BEGIN PGP SIGNATURE"):
            break
        if not line.startswith(" "):
            in_sha = line.startswith("SHA256:")
            continue
        parts = line.split()
        if in_sha and len(parts) == 3 and parts[2] == f"{_INDEX}/Packages":
            return parts[0]
    return None


class AptView:
    """Reads and rewrites the apt view under `public/`."""

    def __init__(self, public: Path, gpg: Gpg) -> None:
        self.public = public
        self.dists = public / "dists" / SUITE
        self.gpg = gpg

    # -- committed state ---------------------------------------------------------------

    def committed_stanzas(self) -> dict[str, str]:
        """Filename -> stanza as named by the committed InRelease ({} before the first).

        Raises:
            RepositoryError: InRelease names a Packages file that is missing or corrupt.
        """
        try:
            text = (self.dists / "InRelease").read_text()
        except FileNotFoundError:
            return {}
        sha = release_packages_sha(text)
        if sha is None:
            raise RepositoryError(f"{self.dists}/InRelease names no {_INDEX}/Packages")
        path = self.dists / _INDEX / "by-hash" / "SHA256" / sha
        try:
            data = path.read_bytes()
        except OSError as e:
            raise RepositoryError(f"apt view: committed Packages missing: {path}") from e
        if hashlib.sha256(data).hexdigest() != sha:
            raise RepositoryError(f"apt view: committed Packages corrupt: {path}")
        return _split_stanzas(data.decode())

    # -- publishing --------------------------------------------------------------------

    def pool_path(self, package: str, filename: str) -> str:
        return f"pool/{COMPONENT}/{package[0]}/{package}/{filename}"

    def add_pool_file(self, rel: str, data: bytes) -> None:
        write_new(self.public / rel, data)

    def commit(self, stanzas: dict[str, str], now: datetime | None = None) -> None:
        """Write Packages{,.gz,.xz}, Release, Release.gpg, and switch InRelease last.

        Raises:
            RepositoryError: gpg or a write failed.
        """
        body = "\n\n".join(stanzas[k] for k in sorted(stanzas)) + ("\n" if stanzas else "")
        plain = body.encode()
        files = {
            "Packages": plain,
            "Packages.gz": gzip.compress(plain, compresslevel=9, mtime=0),
            "Packages.xz": lzma.compress(plain, preset=6),
        }
        idx_dir = self.dists / _INDEX
        for name, data in files.items():
            write_new(idx_dir / "by-hash" / "SHA256" / hashlib.sha256(data).hexdigest(), data)
        for name, data in files.items():
            write_atomic(idx_dir / name, data)
        release = self._release(files, now or datetime.now(UTC)).encode()
        # The two signatures are independent gpg runs: make them side by side.
        with ThreadPoolExecutor(max_workers=2) as pool:
            detached = pool.submit(self.gpg.detach_sign, release)
            inline = pool.submit(self.gpg.clearsign, release)
            detached_sig, inline_signed = detached.result(), inline.result()
        write_atomic(self.dists / "Release", release)
        write_atomic(self.dists / "Release.gpg", detached_sig)
        write_atomic(self.dists / "InRelease", inline_signed)

    def _release(self, files: dict[str, bytes], now: datetime) -> str:
        lines = [
            "Origin: udriver",
            "Label: udriver",
            f"Suite: {SUITE}",
            f"Codename: {SUITE}",
            f"Date: {format_datetime(now.astimezone(UTC), usegmt=True)}",
            f"Architectures: {ARCH}",
            f"Components: {COMPONENT}",
            "Acquire-By-Hash: yes",
            "Description: udriver user-mode PCI drivers",
        ]
        for field, algo in (("MD5Sum", "md5"), ("SHA256", "sha256")):
            lines.append(f"{field}:")
            for name, data in files.items():
                h = hashlib.new(algo, data).hexdigest()
                lines.append(f" {h} {len(data):>8} {_INDEX}/{name}")
        return "\n".join(lines) + "\n"
