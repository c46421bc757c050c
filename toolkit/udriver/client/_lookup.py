"""The derived lookup: answers about index targets, read without python-tuf.

`udriver devices`, `status` and `search` are run interactively and from scripts, next to
`lspci`. Loading python-tuf, verifying the top-level metadata and walking the
delegations (hash bins, then the vendor's role) to find one index shard costs far more
than the answer (issue 13, acceptance 6). So after the client has answered "what does
index target `index/<name>.json` list?" through the full TUF path, it writes the answer
to `<state>/repos/<name>/lookup.json`, and the next run reads it from there.

Trust argument (why this weakens no verification):

1. Derived only from verified metadata. An answer is recorded only after
   `RemoteRepo.index` returned it: python-tuf verified root, timestamp, snapshot and
   targets (TUF spec 1.0, sections 5.3-5.6), walked the delegations to the role that
   signs the index (5.6.7) and checked the index's length and hashes (5.7). The record
   keeps the index's bytes as verified, the signing role, and its signed hashes.
2. Keyed to the verified state. The record is keyed to the SHA-256 of the cached
   top-level metadata files (root, timestamp, snapshot, targets) as they were verified,
   and is written only if their versions on disk are the versions the verifying updater
   holds (no concurrent writer slipped in between). A reader uses it only while those
   files are byte-for-byte the same: any new snapshot (or timestamp, or root) that any
   process caches makes it stale, and the full path runs again. The snapshot pins the
   version of every delegated role (5.5), so the same snapshot means the same answers.
3. Expiry is kept. The record holds the earliest expiry of every piece of metadata the
   verifying updater had loaded (top-level and delegated); past it, the lookup is not
   used and the full path reports the expired role as it always did (5.3.10, 5.4.4,
   5.5.6, 5.6.6).
4. Online, the TUF contract is kept: a command that is not `--offline` first runs the
   root and timestamp steps of python-tuf's refresh (new roots and a new timestamp from
   the server, verified: 5.3-5.4), and uses the lookup only when they left the cached
   metadata unchanged (nothing new). The snapshot and targets steps (5.5-5.6) then
   have nothing to add: the cached snapshot and targets are byte for byte the files
   verified under this same root and timestamp when the lookup was written (point 2),
   and their expiry is the lookup's (point 3). When the lookup cannot answer, those
   steps run before the full path (`RemoteRepo.refresh_timestamp`).
5. Lists only. The lookup answers which drivers an index lists, and which role signed
   it (`Client.entries`: `devices`, `search`, and the index reads of `show`, `install`
   and `update`); before anything is installed, the name's owner is still looked up
   through TUF (`RemoteRepo.check_owner`) and every package is downloaded and checked
   against its signed length and hashes by python-tuf (5.7). The lookup file lives beside the metadata cache
   it is derived from, with the same owner and mode: whoever can rewrite it can rewrite
   that cache.

A lookup that is missing, unreadable, malformed, stale or expired is ignored (logged at
debug level) and the full path answers: the result is the same, only slower.
"""

from __future__ import annotations

import importlib
import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._log import getLogger
from ..errors import DownloadError, UdriverError
from ..fsio import write_atomic
from ..repoformat import IndexEntry, parse_index

if TYPE_CHECKING:
    from ._config import RepoConfig
    from ._remote import RemoteRepo

__all__ = ["FILE_NAME", "FORMAT", "Lookup", "cached_index_names"]

log = getLogger(__name__)

FORMAT = 1
"""The lookup file's format."""
FILE_NAME = "lookup.json"
"""Its name, in the repository's state directory (`RepoConfig.state`)."""
_ISO = "%Y-%m-%dT%H:%M:%SZ"
_ISO_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def expired(expires: object) -> bool:
    """Whether a metadata `expires` value ("2026-11-30T04:00:00Z") is past, or malformed
    (python-tuf's rule: expired when now >= expires). Fixed-width UTC timestamps compare
    as strings."""
    return not (isinstance(expires, str) and _ISO_RE.fullmatch(expires)
                and time.strftime(_ISO, time.gmtime()) < expires)
_KEY_ROLES = ("root", "timestamp", "snapshot", "targets")


def _sha256_hex(data: bytes) -> str:
    """SHA-256 by CPython's own module when it has one: loading OpenSSL for hashlib
    costs more than the rest of an answer from the lookup (`udriver devices`)."""
    global _SHA256
    if _SHA256 is None:
        for name in ("_sha2", "_sha256"):  # 3.12+, 3.11
            try:
                _SHA256 = importlib.import_module(name).sha256
                break
            except (ImportError, AttributeError):
                continue
        else:
            import hashlib
            _SHA256 = hashlib.sha256
    return str(_SHA256(data).hexdigest())


_SHA256: Any = None


def cached_index_names(target_dir: Path) -> list[str]:
    """Indexes present in the target cache, e.g. ["1234", "1234/8"] (text search)."""
    base = target_dir / "index"
    return sorted(p.relative_to(base).with_suffix("").as_posix()
                  for p in base.rglob("*.json") if not p.name.startswith("."))


def _listing(metadata_dir: Path) -> str:
    """SHA-256 of the names in the metadata cache: which delegated roles are cached."""
    try:
        names = sorted(p.name for p in metadata_dir.iterdir())
    except OSError:
        return ""
    return _sha256_hex("\n".join(names).encode())


def _read_key(metadata_dir: Path) -> tuple[dict[str, str], dict[str, bytes]] | None:
    """SHA-256 of each cached top-level metadata file (and the bytes), or None if one is
    missing or unreadable."""
    key, raw = {}, {}
    for role in _KEY_ROLES:
        try:
            data = (metadata_dir / f"{role}.json").read_bytes()
        except OSError:
            return None
        key[role] = _sha256_hex(data)
        raw[role] = data
    return key, raw


class Lookup:
    """The lookup of one configured repository (see the module docstring).

    Args:
        config: the repository.
        metadata_dir: its metadata cache (default `<state>/metadata`).
        path: the lookup file (default `<state>/lookup.json`).
    """

    def __init__(self, config: RepoConfig, metadata_dir: Path | None = None,
                 path: Path | None = None) -> None:
        self.config = config
        self.metadata_dir = metadata_dir or config.state / "metadata"
        self.path = path or config.state / FILE_NAME
        self._indexes: dict[str, dict[str, Any]] | None = None  # None: not loaded/unusable
        self._loaded = False
        self._new: dict[str, dict[str, Any]] = {}
        self._key: dict[str, str] | None = None  # of the file last read, when usable
        self._raw: dict[str, bytes] = {}  # the cached metadata that key was computed from
        self._expires = ""  # and its expiry

    def _load(self) -> dict[str, dict[str, Any]] | None:
        if self._loaded:
            return self._indexes
        self._loaded = True
        self._indexes = self._read()
        return self._indexes

    def _read(self) -> dict[str, dict[str, Any]] | None:
        try:
            doc = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            log.debug("lookup %s: missing", self.path)
            return None
        except (OSError, ValueError) as e:
            log.debug("lookup %s: unreadable: %s", self.path, e)
            return None
        if not (isinstance(doc, dict) and doc.get("format") == FORMAT
                and doc.get("url") == self.config.url
                and isinstance(doc.get("indexes"), dict) and isinstance(doc.get("expires"), str)):
            log.debug("lookup %s: not a format-%d lookup of %s", self.path, FORMAT,
                      self.config.display_url)
            return None
        current = _read_key(self.metadata_dir)
        if current is None or doc.get("key") != current[0]:
            log.debug("lookup %s: stale (the cached metadata changed since)", self.path)
            return None
        # Fixed-width UTC timestamps compare as strings (no _strptime import: 20 ms).
        if expired(doc["expires"]):
            log.debug("lookup %s: metadata expired %s", self.path, doc["expires"])
            return None
        self._key, self._raw, self._expires = current[0], current[1], doc["expires"]
        indexes: dict[str, dict[str, Any]] = doc["indexes"]
        return indexes

    def reload(self) -> None:
        """Forget what was read: the next use reads the file (and the cache) again."""
        self._loaded, self._indexes, self._raw = False, None, {}

    def verified(self) -> dict[str, bytes] | None:
        """The cached top-level metadata ({"root": bytes, "timestamp": ..., "snapshot",
        "targets"}) this lookup's answers were derived from, as read when it was loaded
        and found current (point 2); None when the lookup is unusable (`_fresh`)."""
        return self._raw if self._load() is not None else None

    def get(self, name: str, *, offline: bool = False) -> list[IndexEntry] | None:
        """The entries of index `name` as recorded, or None when the lookup cannot
        answer (missing, stale, expired, malformed, or `name` not recorded).

        Raises:
            DownloadError: offline, the full path could not answer either: the metadata
                it needs is not cached (`add_miss`), and the cache has not changed since.
        """
        indexes = self._load()
        rec = indexes.get(name) if indexes is not None else None
        if not isinstance(rec, dict):
            return None
        if "miss" in rec:
            # Offline only; online, the full path fetches what is missing.
            if offline and isinstance(rec["miss"], str) \
                    and rec.get("listing") == _listing(self.metadata_dir):
                err = DownloadError(rec["miss"])
                if isinstance(rec.get("hint"), str):
                    err.hint = rec["hint"]
                raise err
            return None
        doc, signer = rec.get("doc"), rec.get("signer", "")
        if doc is None:
            return []  # no role lists this index (as verified)
        if not isinstance(doc, str) or not isinstance(signer, str):
            return None
        try:
            return parse_index(doc.encode(), name, self.config.name, signer)
        except UdriverError as e:
            log.debug("lookup %s: index %s: %s", self.path, name, e)
            return None

    def add(self, name: str, doc: bytes | None, signer: str, hashes: dict[str, str]) -> None:
        """Remember the verified answer for index `name` (its bytes; None: no role
        lists it), written by `save`."""
        self._new[name] = {"doc": None if doc is None else doc.decode(),
                           "signer": signer, "hashes": hashes}

    def add_miss(self, name: str, error: DownloadError) -> None:
        """Remember that, offline, index `name` could not be looked up because metadata
        it needs is not cached (`error`); valid while the cache lists the same files."""
        rec: dict[str, Any] = {"miss": str(error), "listing": _listing(self.metadata_dir)}
        if getattr(error, "hint", None):
            rec["hint"] = error.hint
        self._new[name] = rec

    def save(self, remote: RemoteRepo) -> bool:
        """Write the answers added since, keyed to `remote`'s verified state (module
        docstring, points 1-3). Keeps the answers already recorded for the same state.

        Returns:
            whether the file was written (False: nothing new, no verified updater, or
            the cached metadata is not what the updater verified; logged at debug).
        """
        if not self._new:
            return False
        upd = remote.verified_updater()
        current = _read_key(self.metadata_dir)
        if upd is None or current is None:
            return False
        key, raw = current
        ts = upd._trusted_set
        for role in _KEY_ROLES:
            try:
                on_disk = json.loads(raw[role])["signed"]["version"]
            except (ValueError, KeyError, TypeError):
                return False
            if on_disk != ts[role].version:
                log.debug("lookup %s: %s.json changed while in use; not written",
                          self.path, role)
                return False
        expires = min(md.expires for md in ts).strftime(_ISO)
        prior = self._read()  # afresh: only answers for this same verified state are kept
        indexes = dict(prior or {}) if prior is not None and self._key == key else {}
        if indexes:  # kept answers may rest on delegated roles this updater did not load
            expires = min(expires, self._expires)
        indexes.update(self._new)
        doc = {"format": FORMAT, "url": self.config.url, "key": key,
               "versions": {r: ts[r].version for r in _KEY_ROLES},
               "expires": expires, "indexes": indexes}
        try:
            write_atomic(self.path, json.dumps(doc, sort_keys=True).encode())
        except OSError as e:  # a read-only state dir: the next run takes the full path
            log.debug("lookup %s: not written: %s", self.path, e)
            return False
        self._indexes, self._loaded, self._new = indexes, True, {}
        self._key, self._raw, self._expires = key, raw, expires
        return True
