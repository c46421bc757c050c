"""The apt view: `dists/stable/` and `pool/main/`, signed with GnuPG.

Layout and fields follow the Debian repository format (wiki.debian.org/DebianRepository/
Format): `Packages` stanzas are the deb's control fields (Debian policy 5.3) plus
Filename, Size, MD5sum, SHA256; `Release` lists every index file with its size and
hashes, and sets `Acquire-By-Hash: yes` so apt fetches indexes by content hash.

Scale (a publish must not cost O(N)): the index is published compressed only, as
`Packages.gz` and `Packages.xz` (Debian's own archive ships no uncompressed Packages
either). Stanzas fall into 256 *chunks* by sha256(Filename)[:2]; each compressed file is
one gzip member per non-empty chunk, concatenated in chunk order (RFC 1952 2.2 "a gzip
file consists of a series of members"; apt reads them all through zlib), and one xz
stream whose blocks are the chunks' (see `_xzblocks`: apt reads only the first xz
stream). `Release` lists the uncompressed `Packages` too (size and SHA256 only; apt
skips an index whose uncompressed name Release does not list), but no such file is
served. A publish re-encodes only the chunks it touches and copies the other members
and blocks byte for byte from the committed files, located through a private,
content-addressed chunk map `REPO/apt-state/<sha256 of Packages.gz>.json`. Without that
map (an older tree), the committed files are decoded once in full.

Commit order (a client sees the old or the new view, never a mix):
0. `plan`: decode and re-encode the touched chunks in memory; a publish calls it before
   committing TUF, so a view that cannot be updated refuses the publish before either
   is written;
1. `pool/main/<vendor-role>/<package>/<file>.deb` for drivers (`pool/main/<p>/...` for
   system packages); new names only, never replaced (`check_pool_file` refuses);
2. new chunks' plain text (`REPO/apt-state/chunks/<sha256>`), the by-hash Packages.gz
   and .xz (`main/binary-amd64/by-hash/SHA256/<sha256>`), and the chunk map;
3. the plain-named Packages.gz/.xz (hard links to the by-hash files), `Release`,
   `Release.gpg`;
4. `InRelease` by rename(2), last: apt reads InRelease first, and with by-hash every
   index it names is immutable;
5. by-hash files, chunk maps and chunks of generations older than the previous one are deleted
   (`KEEP_GENERATIONS`), so a client holding the previous InRelease still finds its
   indexes.

The committed state is read back from `InRelease` (via by-hash), never from the plain
files, which may be ahead of it after a crash.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import os
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from udriver.artifacts import parse_control
from udriver.errors import PackageError, RepositoryError
from udriver.manifest import DriverManifest

from ._errors import ConflictError
from ._fsio import link_atomic, write_atomic, write_new
from ._gpg import Gpg
from ._xzblocks import Blocks, compress_blocks, join_blocks

__all__ = [
    "ARCH",
    "COMPONENT",
    "KEEP_GENERATIONS",
    "SUITE",
    "AptView",
    "deb_stanza",
    "driver_stanza",
    "parse_packages",
    "release_packages_sha",
]

SUITE = "stable"
COMPONENT = "main"
ARCH = "amd64"
_INDEX = f"{COMPONENT}/binary-{ARCH}"
_NAMES = ("Packages.gz", "Packages.xz")
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
    """Filename -> fields of every stanza of a Packages file (plain, .gz or .xz)."""
    return {k: parse_control(v, "Packages") for k, v in _split_stanzas(_decode(data)).items()}


def _decode(data: bytes) -> str:
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
class _Chunk:
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


def _encode_chunk(stanzas: dict[str, str]) -> _Chunk:
    """One chunk's stanzas, sorted by Filename, encoded."""
    plain = "".join(stanzas[k] + "\n\n" for k in sorted(stanzas)).encode()
    # mtime=0 and fixed presets: equal content gives equal bytes (by-hash stays stable).
    return _Chunk(gzip.compress(plain, compresslevel=6, mtime=0), compress_blocks(plain),
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
        if in_sha and len(parts) == 3 and parts[2] == f"{_INDEX}/{name}":
            return parts[0]
    return None


class AptView:
    """Reads and rewrites the apt view under `public/` (chunk maps under `state_dir`)."""

    def __init__(self, public: Path, gpg: Gpg, state_dir: Path | None = None) -> None:
        self.public = public
        self.dists = public / "dists" / SUITE
        self.by_hash = self.dists / _INDEX / "by-hash" / "SHA256"
        self.state_dir = state_dir if state_dir is not None else public.parent / "apt-state"
        self.chunk_dir = self.state_dir / "chunks"
        self.gpg = gpg

    # -- committed state ---------------------------------------------------------------

    def _committed_sha(self) -> str | None:
        try:
            text = (self.dists / "InRelease").read_text()
        except FileNotFoundError:
            return None
        sha = release_packages_sha(text)
        if sha is None:
            raise RepositoryError(f"{self.dists}/InRelease names no {_INDEX}/Packages.gz")
        return sha

    def _read_by_hash(self, sha: str) -> bytes:
        path = self.by_hash / sha
        try:
            data = path.read_bytes()
        except OSError as e:
            raise RepositoryError(f"apt view: committed index missing: {path}") from e
        if hashlib.sha256(data).hexdigest() != sha:
            raise RepositoryError(f"apt view: committed index corrupt: {path}")
        return data

    def committed_stanzas(self) -> dict[str, str]:
        """Filename -> stanza as named by the committed InRelease ({} before the first).

        Decodes the whole index (O(N)): for checks and tests; publishing uses the chunks.

        Raises:
            RepositoryError: InRelease names a Packages.gz that is missing or corrupt.
        """
        sha = self._committed_sha()
        return {} if sha is None else _split_stanzas(_decode(self._read_by_hash(sha)))

    def _committed_chunks(self) -> dict[str, _Chunk]:
        """Chunk -> its encoding in the committed view."""
        sha = self._committed_sha()
        if sha is None:
            return {}
        gz = self._read_by_hash(sha)
        try:
            cmap = json.loads((self.state_dir / f"{sha}.json").read_bytes())
            xz = self._read_by_hash(cmap["xz"])
            out = {c: _Chunk(gz[g0:g0 + gl], (xz[x0:x0 + xl], [(u, n) for u, n in recs]),
                             plain_sha, size)
                   for c, (g0, gl, x0, xl, recs, plain_sha, size) in cmap["chunks"].items()}
            if sum(len(ch.gz) for ch in out.values()) == len(gz) or not out:
                return out
        except (OSError, ValueError, KeyError, TypeError, RepositoryError):
            pass
        # No usable chunk map (older tree, or it was lost): re-chunk from the full index.
        by_chunk: dict[str, dict[str, str]] = {}
        for name, stanza in _split_stanzas(_decode(gz)).items():
            by_chunk.setdefault(chunk_of(name), {})[name] = stanza
        return {c: _encode_chunk(s) for c, s in by_chunk.items()}

    # -- publishing --------------------------------------------------------------------

    def pool_path(self, package: str, filename: str, owner: str | None = None) -> str:
        """Pool path of a deb: `pool/main/<owner>/<package>/<file>` for a driver .deb,
        where `owner` is the publishing vendor's role (`vendor-<name>`), so two vendors'
        files can never share a path; `pool/main/<p>/<package>/<file>` (Debian's own
        layout) for an operator's system package and for driver debs published before."""
        if owner is None:
            return f"pool/{COMPONENT}/{package[0]}/{package}/{filename}"
        return f"pool/{COMPONENT}/{owner}/{package}/{filename}"

    def has_pool_file(self, rel: str, data: bytes) -> bool:
        """Whether `rel` exists with exactly these bytes."""
        try:
            p = self.public / rel
            return p.stat().st_size == len(data) and p.read_bytes() == data
        except OSError:
            return False

    def check_pool_file(self, rel: str, data: bytes) -> None:
        """Refuse to replace a pool file: pool paths are immutable (apt caches by name).

        Raises:
            ConflictError: `rel` exists with other bytes.
        """
        p = self.public / rel
        if p.exists() and not self.has_pool_file(rel, data):
            raise ConflictError(f"{rel} is already in the apt pool with different bytes; "
                                "publish a new version instead")

    def add_pool_file(self, rel: str, data: bytes) -> None:
        """Write a pool file (after `check_pool_file`)."""
        write_new(self.public / rel, data)

    def plan(self, stanzas: dict[str, str]) -> dict[str, _Chunk] | None:
        """Every chunk of the view with `stanzas` added or replaced (by Filename), or None
        when nothing would change. Writes nothing but caches of committed chunks, so a
        publish can decide on TUF and apt before committing either.

        Raises:
            RepositoryError: the committed view is missing or corrupt, or a touched
                chunk does not parse.
            PackageError: a touched chunk has a malformed stanza.
        """
        chunks = self._committed_chunks()
        touched: dict[str, dict[str, str]] = {}
        for name, stanza in stanzas.items():
            touched.setdefault(chunk_of(name), {})[name] = stanza
        changed = False
        for c, new in touched.items():
            current = _split_stanzas(self._plain(chunks[c]).decode()) if c in chunks else {}
            if all(current.get(k) == v for k, v in new.items()):
                continue
            current.update(new)
            chunks[c] = _encode_chunk(current)
            changed = True
        return chunks if changed else None

    def commit_plan(self, chunks: dict[str, _Chunk], now: datetime | None = None) -> None:
        """Commit a view made by `plan` (see the module's commit order).

        Raises:
            RepositoryError: gpg or a write failed.
        """
        self._commit_chunks(chunks, now)

    def update(self, stanzas: dict[str, str], now: datetime | None = None) -> bool:
        """Add or replace stanzas (by Filename), re-encoding only their chunks.

        Returns True when the view changed (and was committed).

        Raises:
            RepositoryError: gpg, a write, or the committed view failed.
        """
        chunks = self.plan(stanzas)
        if chunks is None:
            return False
        self._commit_chunks(chunks, now)
        return True

    def commit(self, stanzas: dict[str, str], now: datetime | None = None) -> None:
        """Replace the whole view with `stanzas` (init, bulk imports).

        Raises:
            RepositoryError: gpg or a write failed.
        """
        by_chunk: dict[str, dict[str, str]] = {}
        for name, stanza in stanzas.items():
            by_chunk.setdefault(chunk_of(name), {})[name] = stanza
        self._commit_chunks({c: _encode_chunk(s) for c, s in by_chunk.items()}, now)

    def _plain(self, chunk: _Chunk) -> bytes:
        """A chunk's uncompressed stanzas: at hand, from apt-state/chunks, or decoded.

        Raises:
            RepositoryError: the committed gzip member does not decode to the chunk.
        """
        if chunk.plain is not None:
            return chunk.plain
        try:
            # Written atomically under its own hash and never rewritten, so the size
            # check is enough here (hashing every chunk again would double the cost).
            data = (self.chunk_dir / chunk.sha).read_bytes()
            if len(data) == chunk.size:
                return data
        except OSError:
            pass
        try:
            data = gzip.decompress(chunk.gz)
        except (OSError, EOFError, zlib.error) as e:
            raise RepositoryError(f"apt view: a committed Packages.gz member is corrupt: {e}") \
                from e
        if hashlib.sha256(data).hexdigest() != chunk.sha:
            raise RepositoryError(f"apt view: a committed Packages.gz member does not match "
                                  f"its chunk map (sha256 {chunk.sha})")
        write_new(self.chunk_dir / chunk.sha, data)
        return data

    def _commit_chunks(self, chunks: dict[str, _Chunk],
                       now: datetime | None) -> None:
        previous = self._generation()
        order = sorted(chunks)
        gz = b"".join(chunks[c].gz for c in order) if order else gzip.compress(b"", mtime=0)
        xz = join_blocks([chunks[c].xz for c in order])
        files = {"Packages.gz": gz, "Packages.xz": xz}
        shas = {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}
        # apt only fetches an index whose *uncompressed* name Release lists, and checks
        # the decompressed bytes against it; no file of that name is served. Its hash
        # runs over the chunks' stored plain text (no decompression).
        h = hashlib.sha256()
        for c in order:
            ch = chunks[c]
            if ch.plain is not None:
                write_new(self.chunk_dir / ch.sha, ch.plain)
            h.update(self._plain(ch))
        listed = {"Packages": (sum(chunks[c].size for c in order), h.hexdigest()),
                  **{n: (len(d), shas[n]) for n, d in files.items()}}
        for name, data in files.items():
            write_new(self.by_hash / shas[name], data)
        cmap: dict[str, list[object]] = {}
        g, x = 0, 12  # the xz blocks follow the 12-byte stream header
        for c in order:
            gl, xl = len(chunks[c].gz), len(chunks[c].xz[0])
            cmap[c] = [g, gl, x, xl, chunks[c].xz[1], chunks[c].sha, chunks[c].size]
            g, x = g + gl, x + xl
        write_new(self.state_dir / f"{shas['Packages.gz']}.json",
                  json.dumps({"xz": shas["Packages.xz"], "chunks": cmap},
                             sort_keys=True).encode())
        for name in files:
            link_atomic(self.by_hash / shas[name], self.dists / _INDEX / name)
        release = self._release(listed, now or datetime.now(UTC)).encode()
        # The two signatures are independent gpg runs: make them side by side.
        with ThreadPoolExecutor(max_workers=2) as pool:
            detached = pool.submit(self.gpg.detach_sign, release)
            inline = pool.submit(self.gpg.clearsign, release)
            detached_sig, inline_signed = detached.result(), inline.result()
        write_atomic(self.dists / "Release", release)
        write_atomic(self.dists / "Release.gpg", detached_sig)
        write_atomic(self.dists / "InRelease", inline_signed)
        self._prune({*shas.values(), *previous})

    def _generation(self) -> set[str]:
        """The by-hash names of the committed generation (empty before the first)."""
        try:
            text = (self.dists / "InRelease").read_text()
        except FileNotFoundError:
            return set()
        return {s for n in _NAMES if (s := release_packages_sha(text, n)) is not None}

    def _prune(self, keep: set[str]) -> None:
        """Delete by-hash files, chunk maps and chunks outside `keep` (by-hash names of the
        last KEEP_GENERATIONS) and the chunk maps they have."""
        chunks: set[str] = set()
        for sha in keep:
            try:
                cmap = json.loads((self.state_dir / f"{sha}.json").read_bytes())
            except (OSError, ValueError):
                continue
            chunks.update(str(v[5]) for v in cmap.get("chunks", {}).values())
        for d, suffix, kept in ((self.by_hash, "", keep), (self.state_dir, ".json", keep),
                                (self.chunk_dir, "", chunks)):
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue
            for n in names:
                if n.startswith(".") or n.removesuffix(suffix) in kept or n == "chunks":
                    continue
                (d / n).unlink(missing_ok=True)

    def _release(self, files: dict[str, tuple[int, str]], now: datetime) -> str:
        """Release text; `files` maps index names to (size, sha256). No MD5Sum: apt
        has not trusted MD5 for Release since 1.1 and it would cost a second pass."""
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
            "SHA256:",
        ]
        for name, (size, sha) in files.items():
            lines.append(f" {sha} {size:>8} {_INDEX}/{name}")
        return "\n".join(lines) + "\n"
