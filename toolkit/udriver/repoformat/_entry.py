"""The index document and its one typed entry: encode and parse. Pure.

Format 1, encoded with sorted keys and no spaces so that equal content gives equal bytes
(a TUF target's hashes then change only when its content does); `index` is the name the
document is published under ("1234/8", "1234/any", "class"; "1234" for the first,
per-vendor layout):

    {"drivers": [{"abi": "1.0", "driver": "edu", "files": {"deb": "drivers/1234/...",
      "wheel": "drivers/1234/..."}, "modaliases": [...], "package": "udriver-edu",
      "version": "0.1.0"}], "format": 1, "index": "1234/8"}

An entry of the repository-signed `class` index also carries `vendor`, the publishing
vendor's role (see `_names`). Entries are sorted by (package, version, driver).

Rules applied when parsing, in this order:

1. the document must be format 1 and name the index it was fetched as (a vendor
   cannot serve its index under another vendor's name);
2. every entry is validated, every problem collected; one malformed entry makes the
   whole index invalid (`RepositoryError`): a signed index that is half-wrong is a
   publisher bug not to be guessed around. `entry_from_json` validates one entry, for a
   reader that prefers to skip a bad entry (the server's web catalog).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from packaging.version import InvalidVersion, Version

from .._fields import Fields
from .._record import field, record, replace
from ..abi import AbiVersion, format_abi
from ..errors import ManifestError, RepositoryError
from ..modalias import parse_pattern
from ._names import publisher_of

if TYPE_CHECKING:
    from ..manifest import DriverManifest

__all__ = ["FORMAT", "IndexEntry", "encode_index", "entry_from_json", "parse_index"]

FORMAT = 1
"""The index format this module reads and writes."""
_FILE_KINDS = ("wheel", "deb")
_TARGET_RE = re.compile(r"^drivers/([0-9a-f]{4}|class)/[A-Za-z0-9][A-Za-z0-9._+~-]{0,200}$")


@record(frozen=True)
class IndexEntry:
    """One driver version as listed in a signed index."""

    package: str
    """Distribution name, e.g. "udriver-edu"."""
    driver: str
    """Driver (entry-point) name, e.g. "edu"."""
    version: str
    """PEP 440 version string as published."""
    abi: AbiVersion
    """udriver ABI the driver was built against."""
    modaliases: tuple[str, ...]
    """The driver's whole ID table, canonical patterns."""
    files: dict[str, str] = field(hash=False, compare=False)
    """"wheel"/"deb" -> TUF target name under `drivers/`."""
    index: str = ""
    """The index this entry was read from ("1234/8", "class"; "" when built)."""
    repo: str = ""
    """Name of the configured repository it came from (client side)."""
    publisher: str = field(default="", compare=False)
    """The vendor role accountable for it (`publisher_of`; "" if unknown)."""
    vendor: str = field(default="", compare=False)
    """The entry's own `vendor` field (written in repository-signed indexes)."""
    signer: str = field(default="", compare=False)
    """The role that signed the index it was read from ("" if not known)."""

    @classmethod
    def of_manifest(cls, m: DriverManifest, files: dict[str, str],
                    vendor: str = "") -> IndexEntry:
        """The entry a repository writes for a driver with manifest `m`."""
        return cls(m.package, m.driver, m.version, m.abi, tuple(m.modaliases), dict(files),
                   vendor=vendor)

    @property
    def parsed_version(self) -> Version:
        return Version(self.version)

    @property
    def key(self) -> tuple[str, str, str]:
        """(package, version, driver): the sort key and identity inside one index."""
        return (self.package, self.version, self.driver)

    def to_json(self) -> dict[str, object]:
        """The entry as written in an index document (format 1)."""
        out: dict[str, object] = {"package": self.package, "driver": self.driver,
                                  "version": self.version, "abi": format_abi(self.abi),
                                  "modaliases": list(self.modaliases),
                                  "files": dict(self.files)}
        if self.vendor:
            out["vendor"] = self.vendor
        return out

    def to_dict(self) -> dict[str, object]:
        """The entry for `--json` output on the client (with its repository)."""
        return {"package": self.package, "driver": self.driver, "version": self.version,
                "abi": format_abi(self.abi), "modaliases": list(self.modaliases),
                "files": dict(self.files), "repo": self.repo}


def encode_index(name: str, entries: Iterable[IndexEntry]) -> bytes:
    """Deterministic bytes of index `name` listing `entries`."""
    drivers = [e.to_json() for e in sorted(entries, key=lambda e: e.key)]
    obj = {"format": FORMAT, "index": name, "drivers": drivers}
    return (json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n").encode()


def _problems(obj: dict[str, object]) -> tuple[list[str], IndexEntry]:
    fields = Fields(obj)
    problems = fields.problems
    package, driver, version = fields.text("package"), fields.text("driver"), fields.text("version")
    if version:
        try:
            Version(version)
        except InvalidVersion:
            problems.append(f"`version` is not a PEP 440 version: {version!r}")
    abi = fields.abi()
    mods: list[str] = []
    for p in fields.patterns():
        try:
            mods.append(str(parse_pattern(p)))
        except ManifestError as e:
            problems.append(f"`modaliases`: {e}")
    files = obj.get("files")
    out_files: dict[str, str] = {}
    if not isinstance(files, dict) or not files:
        problems.append(f"`files` must be an object with `wheel` and/or `deb`, got {files!r}")
    else:
        for kind, target in files.items():
            if kind not in _FILE_KINDS:
                problems.append(f"`files` has unknown kind {kind!r} (expected wheel or deb)")
            elif not isinstance(target, str) or not _TARGET_RE.match(target):
                problems.append(f"`files.{kind}` must be a target under drivers/, got {target!r}")
            else:
                out_files[kind] = target
    vendor = obj.get("vendor", "")
    if not isinstance(vendor, str):
        problems.append(f"`vendor` must be a string, got {vendor!r}")
        vendor = ""
    return problems, IndexEntry(package, driver, version, abi, tuple(sorted(set(mods))),
                                out_files, vendor=vendor)


def entry_from_json(obj: object, i: int, name: str) -> IndexEntry:
    """Validate entry `i` of index `name` (rule 2).

    Raises:
        RepositoryError: naming every problem of the entry.
    """
    if not isinstance(obj, dict):
        raise RepositoryError(f"index/{name}.json: `drivers[{i}]` must be an object, got {obj!r}")
    problems, entry = _problems(obj)
    if problems:
        raise RepositoryError(f"index/{name}.json: `drivers[{i}]`: " + "; ".join(problems))
    return replace(entry, index=name)


def parse_index(data: bytes, name: str, repo: str = "", signer: str = "") -> list[IndexEntry]:
    """Parse the index `index/<name>.json` (its bytes already verified by TUF), signed by
    role `signer` (sets each entry's `publisher`, see `publisher_of`).

    Raises:
        RepositoryError: not JSON, wrong format, wrong `index` field, or a bad entry.
    """
    where = f"index/{name}.json"
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RepositoryError(f"{where}: not valid JSON: {e}") from e
    if not isinstance(obj, dict):
        raise RepositoryError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if obj.get("format") != FORMAT:
        raise RepositoryError(f"{where}: `format` must be {FORMAT}, got {obj.get('format')!r}")
    if obj.get("index") != name:
        raise RepositoryError(f"{where}: `index` must be {name!r}, got {obj.get('index')!r}")
    drivers = obj.get("drivers")
    if not isinstance(drivers, list):
        raise RepositoryError(f"{where}: `drivers` must be a list, got {drivers!r}")
    entries = [entry_from_json(d, i, name) for i, d in enumerate(drivers)]
    if repo or signer:
        entries = [replace(e, repo=repo, publisher=publisher_of(signer, e.vendor),
                           signer=signer) for e in entries]
    return entries
