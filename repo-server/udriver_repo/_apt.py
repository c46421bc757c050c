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
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from udriver.errors import RepositoryError

from ._errors import ConflictError
from ._fsio import link_atomic, write_atomic, write_new
from ._gpg import Gpg
from ._packages import (
    ARCH,
    COMPONENT,
    INDEX,
    INDEX_NAMES,
    SUITE,
    Chunk,
    chunk_of,
    decode_packages,
    encode_chunk,
    release_packages_sha,
    split_stanzas,
)
from ._xzblocks import join_blocks

__all__ = ["AptView"]

class AptView:
    """Reads and rewrites the apt view under `public/` (chunk maps under `state_dir`)."""

    def __init__(self, public: Path, gpg: Gpg, state_dir: Path | None = None) -> None:
        self.public = public
        self.dists = public / "dists" / SUITE
        self.by_hash = self.dists / INDEX / "by-hash" / "SHA256"
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
            raise RepositoryError(f"{self.dists}/InRelease names no {INDEX}/Packages.gz")
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
        return {} if sha is None else split_stanzas(decode_packages(self._read_by_hash(sha)))

    def _committed_chunks(self) -> dict[str, Chunk]:
        """Chunk -> its encoding in the committed view."""
        sha = self._committed_sha()
        if sha is None:
            return {}
        gz = self._read_by_hash(sha)
        try:
            cmap = json.loads((self.state_dir / f"{sha}.json").read_bytes())
            xz = self._read_by_hash(cmap["xz"])
            out = {c: Chunk(gz[g0:g0 + gl], (xz[x0:x0 + xl], [(u, n) for u, n in recs]),
                             plain_sha, size)
                   for c, (g0, gl, x0, xl, recs, plain_sha, size) in cmap["chunks"].items()}
            if sum(len(ch.gz) for ch in out.values()) == len(gz) or not out:
                return out
        except (OSError, ValueError, KeyError, TypeError, RepositoryError):
            pass
        # No usable chunk map (older tree, or it was lost): re-chunk from the full index.
        by_chunk: dict[str, dict[str, str]] = {}
        for name, stanza in split_stanzas(decode_packages(gz)).items():
            by_chunk.setdefault(chunk_of(name), {})[name] = stanza
        return {c: encode_chunk(s) for c, s in by_chunk.items()}

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

    def plan(self, stanzas: dict[str, str]) -> dict[str, Chunk] | None:
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
            current = split_stanzas(self._plain(chunks[c]).decode()) if c in chunks else {}
            if all(current.get(k) == v for k, v in new.items()):
                continue
            current.update(new)
            chunks[c] = encode_chunk(current)
            changed = True
        return chunks if changed else None

    def commit_plan(self, chunks: dict[str, Chunk], now: datetime | None = None) -> None:
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
        self._commit_chunks({c: encode_chunk(s) for c, s in by_chunk.items()}, now)

    def _plain(self, chunk: Chunk) -> bytes:
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

    def _commit_chunks(self, chunks: dict[str, Chunk],
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
            link_atomic(self.by_hash / shas[name], self.dists / INDEX / name)
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
        return {s for n in INDEX_NAMES if (s := release_packages_sha(text, n)) is not None}

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
            lines.append(f" {sha} {size:>8} {INDEX}/{name}")
        return "\n".join(lines) + "\n"
