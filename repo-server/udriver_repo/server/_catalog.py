"""What is published, read back from REPO/public the way a client would see it.

The web page must show what clients get, not what some table says was published, so the
catalog walks the committed TUF metadata of the static tree (consistent snapshots, TUF
specification 1.0 section 5.6/5.5):

1. `metadata/timestamp.json` -> the snapshot version S (timestamp.json is renamed into
   place last by the publisher, so it always names a complete state);
2. `metadata/S.snapshot.json` -> the version V of every targets role;
3. each `metadata/V.<role>.json` -> its target entries named `index/<name>.json`, where
   name is `class`, a vendor's shard `<vvvv>/<x>` or `<vvvv>/any`, or a format-1
   per-vendor index `<vvvv>`;
4. each index target at `targets/index/[<vvvv>/]<sha256>.<base>.json` (consistent-snapshot
   target name), checked against the sha256 in the metadata, parsed as the index format
   of the repository contract; a vendor's shards are merged under its vendor ID, each
   (package, version, driver) once.

Signatures are deliberately not verified here: the server reads its own tree from its own
disk; `udriver-repo verify` is the tool that runs a real client. The result is cached and
only rebuilt when timestamp.json changes (mtime, size).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from udriver.errors import RepositoryError
from udriver.repoformat import IndexEntry, entry_from_json

__all__ = ["Catalog", "CatalogView", "parse_index"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogView:
    """A consistent view of every published index."""

    snapshot_version: int
    """The snapshot version the view was read from (0: nothing published yet)."""
    indexes: dict[str, list[IndexEntry]]
    """Index name (`1234`, `class`) -> its driver entries."""


def parse_index(data: bytes, name: str) -> list[IndexEntry]:
    """Parse one index target (`udriver.repoformat`, format 1). Malformed entries are
    skipped with a warning: the page shows what it can.

    Args:
        data: the file's bytes.
        name: the index name, used when the file does not say.

    Raises:
        ValueError: not JSON or not an object with a `drivers` list.
    """
    obj = json.loads(data)
    if not isinstance(obj, dict) or not isinstance(obj.get("drivers"), list):
        raise ValueError(  # noqa: TRY004 - a malformed file, reported like bad JSON
            f"index {name!r}: expected an object with a `drivers` list")
    index = str(obj.get("index", name))
    out: list[IndexEntry] = []
    for i, d in enumerate(obj["drivers"]):
        try:
            out.append(entry_from_json(d, i, index))
        except RepositoryError:
            _log.warning("index %s: skipping malformed entry %r", name, d)
    return out


def _load_json(path: Path) -> Any:
    with open(path, "rb") as f:
        return json.loads(f.read())


class Catalog:
    """Reads and caches the published indexes of one public tree."""

    def __init__(self, public: Path) -> None:
        self._public = public
        self._lock = threading.Lock()
        self._key: tuple[int, int] | None = None
        self._view = CatalogView(0, {})

    def view(self) -> CatalogView:
        """The current view; re-read only if timestamp.json changed. Blocking (file I/O).

        A tree that cannot be read (not initialised, or a file missing) gives the last good
        view and a logged warning rather than an error page.
        """
        ts = self._public / "metadata" / "timestamp.json"
        try:
            st = ts.stat()
        except FileNotFoundError:
            return CatalogView(0, {})
        key = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if key != self._key:
                try:
                    self._view = self._read(ts)
                    self._key = key
                except (OSError, ValueError, KeyError, TypeError) as e:
                    _log.warning("cannot read the published tree %s: %s", self._public, e)
            return self._view

    def _read(self, ts_path: Path) -> CatalogView:
        meta_dir = self._public / "metadata"
        # 1. timestamp -> snapshot version
        snap_version = int(_load_json(ts_path)["signed"]["meta"]["snapshot.json"]["version"])
        # 2. snapshot -> version of every targets role
        snapshot = _load_json(meta_dir / f"{snap_version}.snapshot.json")
        indexes: dict[str, list[IndexEntry]] = {}
        for role_file, info in sorted(snapshot["signed"]["meta"].items()):
            role = role_file.removesuffix(".json")
            if "/" in role or role.startswith("."):
                continue
            signed = _load_json(meta_dir / f"{int(info['version'])}.{role}.json")["signed"]
            # 3. index targets this role lists
            for target, tinfo in (signed.get("targets") or {}).items():
                if not (target.startswith("index/") and target.endswith(".json")):
                    continue
                name = target[len("index/"):-len(".json")]
                parts = name.split("/")
                if len(parts) > 2 or any(not p or p.startswith(".") for p in parts):
                    continue
                sha = str(tinfo["hashes"]["sha256"])
                # 4. consistent-snapshot target file, checked against the metadata
                path = self._public.joinpath("targets", "index", *parts[:-1],
                                             f"{sha}.{parts[-1]}.json")
                data = path.read_bytes()
                if hashlib.sha256(data).hexdigest() != sha:
                    _log.warning("index %s: %s does not match its sha256; skipped", name, path)
                    continue
                have = indexes.setdefault(parts[0], [])
                seen = {(e.package, e.version, e.driver) for e in have}
                for e in parse_index(data, name):
                    if (e.package, e.version, e.driver) not in seen:
                        seen.add((e.package, e.version, e.driver))
                        have.append(replace(e, index=parts[0]))
        for entries in indexes.values():
            entries.sort(key=lambda e: (e.package, e.version, e.driver))
        return CatalogView(snap_version, indexes)
