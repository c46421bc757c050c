"""Driver indexes: name, parse, validate and scope them. Pure: no I/O.

A repository cannot list its targets (TUF has no such call), so drivers are listed in
small signed index targets (see the repository contract):

- `index/<vvvv>/<x>.json`: vendor vvvv's drivers with a pattern for a device ID ending
  in hex digit x (a *shard*), and `index/<vvvv>/any.json` for patterns with device `*`;
  a machine fetches only the shards of its own devices (`lookup_names`), so what it
  downloads does not grow with the vendor's catalogue;
- `index/class.json`: class-wide drivers;
- `index/<vvvv>.json`: a whole vendor in one file (the first layout), still read.

Rules applied here, in this order:

1. The document must be format 1 and name the index it was fetched as (a vendor
   cannot serve its index under another vendor's name).
2. Every entry is validated; a malformed entry makes the whole index invalid
   (`RepositoryError`), because a signed index that is half-wrong is a publisher bug
   we do not want to guess around.
3. Scope: in `index/<vvvv>/*.json` and `index/<vvvv>.json` only patterns whose vendor
   is exactly `vvvv` are used for matching, and in `index/class.json` only class-wide
   patterns (vendor `*`). TUF delegation already restricts who can sign a vendor's
   index targets; this step makes sure a vendor's index cannot claim another vendor's
   devices either. Patterns out of scope are kept in the entry (the package's table is
   what it is) but are not indexed from this file. Which shard of its vendor lists an
   entry is not a trust question (only the vendor's key can sign any of them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from packaging.version import InvalidVersion, Version

from ..abi import AbiVersion, format_abi, parse_abi
from ..errors import AbiError, ManifestError, RepositoryError
from ..modalias import Pattern, PatternIndex, parse_pattern
from ._owners import publisher_of

__all__ = [
    "CLASS_INDEX",
    "IndexEntry",
    "build_pattern_index",
    "index_name",
    "index_target",
    "lookup_names",
    "parse_index",
]

#: Name of the class-wide index (`index/class.json`).
CLASS_INDEX = "class"
_FORMAT = 1
_FILE_KINDS = ("wheel", "deb")
_TARGET_RE = re.compile(r"^drivers/([0-9a-f]{4}|class)/[A-Za-z0-9][A-Za-z0-9._+~-]{0,200}$")


@dataclass(frozen=True)
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
    """The index this entry was read from ("1234" or "class")."""
    repo: str = ""
    """Name of the configured repository it came from."""
    publisher: str = field(default="", compare=False)
    """The vendor role accountable for it: the role that signed its index, or the
    `vendor` field of a repository-signed (class) index entry ("" if unknown); see
    `_owners`."""
    vendor: str = field(default="", compare=False)
    """The entry's own `vendor` field (written in repository-signed indexes)."""
    signer: str = field(default="", compare=False)
    """The role that signed the index it was read from ("" if not known)."""

    @property
    def parsed_version(self) -> Version:
        return Version(self.version)

    def to_dict(self) -> dict[str, object]:
        return {"package": self.package, "driver": self.driver, "version": self.version,
                "abi": format_abi(self.abi), "modaliases": list(self.modaliases),
                "files": dict(self.files), "repo": self.repo}


def index_name(vendor: int | None) -> str:
    """"1234" for a PCI vendor, "class" for class-wide drivers."""
    return CLASS_INDEX if vendor is None else f"{vendor:04x}"


def index_target(index: int | str | None) -> str:
    """TUF target name of an index: a name ("1234/8", "class") or a vendor (per-vendor
    index; None: class-wide)."""
    return f"index/{index if isinstance(index, str) else index_name(index)}.json"


def lookup_names(vendor: int | None, device: int | None = None) -> list[str]:
    """The indexes that can list drivers for `vendor`:`device` (device None: any of the
    vendor's devices; vendor None: class-wide drivers)."""
    if vendor is None:
        return [CLASS_INDEX]
    v = f"{vendor:04x}"
    shards = [f"{d:x}" for d in range(16)] if device is None else [f"{device & 0xF:x}"]
    return [f"{v}/{s}" for s in shards] + [f"{v}/any", v]


def _entry(obj: object, i: int, name: str) -> IndexEntry:
    if not isinstance(obj, dict):
        raise RepositoryError(f"index/{name}.json: `drivers[{i}]` must be an object, got {obj!r}")
    problems: list[str] = []

    def text(key: str) -> str:
        v = obj.get(key)
        if not isinstance(v, str) or not v:
            problems.append(f"`{key}` must be a non-empty string, got {v!r}")
            return ""
        return v

    package, driver, version = text("package"), text("driver"), text("version")
    if version:
        try:
            Version(version)
        except InvalidVersion:
            problems.append(f"`version` is not a PEP 440 version: {version!r}")
    abi: AbiVersion = (0, 0)
    try:
        abi = parse_abi(str(obj.get("abi", "")))
    except AbiError as e:
        problems.append(f"`abi`: {e}")
    raw = obj.get("modaliases")
    mods: list[str] = []
    if not isinstance(raw, list) or not raw:
        problems.append(f"`modaliases` must be a non-empty list, got {raw!r}")
    else:
        for p in raw:
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
    if problems:
        raise RepositoryError(f"index/{name}.json: `drivers[{i}]`: " + "; ".join(problems))
    return IndexEntry(package, driver, version, abi, tuple(sorted(set(mods))), out_files, name,
                      vendor=vendor)


def parse_index(data: bytes, name: str, repo: str = "", signer: str = "") -> list[IndexEntry]:
    """Parse the signed index `index/<name>.json` (already verified by TUF), signed by
    role `signer` (sets each entry's `publisher`, see `_owners.publisher_of`).

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
    if obj.get("format") != _FORMAT:
        raise RepositoryError(f"{where}: `format` must be {_FORMAT}, got {obj.get('format')!r}")
    if obj.get("index") != name:
        raise RepositoryError(f"{where}: `index` must be {name!r}, got {obj.get('index')!r}")
    drivers = obj.get("drivers")
    if not isinstance(drivers, list):
        raise RepositoryError(f"{where}: `drivers` must be a list, got {drivers!r}")
    entries = [_entry(d, i, name) for i, d in enumerate(drivers)]
    if repo or signer:
        entries = [IndexEntry(e.package, e.driver, e.version, e.abi, e.modaliases, e.files,
                              e.index, repo, publisher_of(signer, e.vendor), e.vendor,
                              signer)
                   for e in entries]
    return entries


def in_scope(pattern: Pattern, index: str) -> bool:
    """Whether `pattern` may be matched from `index/<index>.json` (rule 3)."""
    if index == CLASS_INDEX:
        return pattern.is_class_wide
    return pattern.vendor is not None and f"{pattern.vendor:04x}" == index.split("/")[0]


def build_pattern_index(entries: Iterable[IndexEntry],
                        into: PatternIndex[IndexEntry] | None = None) -> PatternIndex[IndexEntry]:
    """Index every in-scope pattern of every entry (see rule 3)."""
    idx: PatternIndex[IndexEntry] = into if into is not None else PatternIndex()
    for e in entries:
        for text in e.modaliases:
            p = parse_pattern(text)
            if in_scope(p, e.index):
                idx.add(p, e)
    return idx
