"""Index targets: the shards `index/<vvvv>/<x>.json`, `index/<vvvv>/any.json`, and
`index/class.json`  (pure; which shard lists a driver: `_scope.index_names`).

Format 1 (repo-contract), encoded with sorted keys so equal content gives equal bytes;
`index` is the shard's name ("1234/8", "1234/any", "class"; "1234" in a per-vendor
index, which the repository no longer writes but clients still read):

    {"format": 1, "index": "1234/8", "drivers": [
      {"package": ..., "driver": ..., "version": ..., "abi": "1.0",
       "modaliases": [...], "files": {"wheel": "drivers/1234/x.whl", "deb": "..."}}]}

Drivers are sorted by (package, version string, driver). This module never touches files.
"""

from __future__ import annotations

import json
from typing import Any

from udriver.errors import RepositoryError

from ._errors import ConflictError

__all__ = ["FORMAT", "decode_index", "encode_index", "merge_entry"]

FORMAT = 1

Entry = dict[str, Any]


def _key(e: Entry) -> tuple[str, str, str]:
    return (str(e["package"]), str(e["version"]), str(e["driver"]))


def encode_index(name: str, drivers: list[Entry]) -> bytes:
    """Deterministic bytes of an index."""
    obj = {"format": FORMAT, "index": name, "drivers": sorted(drivers, key=_key)}
    return (json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n").encode()


def decode_index(data: bytes, name: str) -> list[Entry]:
    """Parse an index target.

    Raises:
        RepositoryError: not a format-1 index for `name`.
    """
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RepositoryError(f"index {name}: not JSON: {e}") from e
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or obj.get("index") != name \
            or not isinstance(obj.get("drivers"), list):
        raise RepositoryError(f"index {name}: not a format-{FORMAT} index for {name!r}")
    return list(obj["drivers"])


def merge_entry(drivers: list[Entry], new: Entry) -> tuple[list[Entry], bool]:
    """Add `new` to `drivers`, merging files of the same (package, version).

    Returns (drivers, changed). The caller has already checked that equal file names
    carry equal bytes; here a same-version entry must agree on driver, abi and patterns.

    Raises:
        ConflictError: same package and version with a different ID table or ABI.
    """
    out: list[Entry] = []
    changed = True
    for e in drivers:
        if (e["package"], e["version"]) != (new["package"], new["version"]):
            out.append(e)
            continue
        for field in ("driver", "abi", "modaliases"):
            if e[field] != new[field]:
                raise ConflictError(
                    f"{new['package']} {new['version']} is already published with a different "
                    f"`{field}` ({e[field]!r}, new {new[field]!r}); publish a new version")
        files = dict(e["files"])
        files.update(new["files"])
        changed = files != e["files"]
        new = dict(e, files=files)
    out.append(new)
    return out, changed
