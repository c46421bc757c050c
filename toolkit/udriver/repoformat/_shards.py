"""Shard naming, index scope and the device <-> ID-table matcher. Pure.

A repository cannot list its targets (TUF has no such call), so drivers are listed in
small signed index targets:

- `index/<vvvv>/<x>.json`: vendor vvvv's drivers with a pattern for a device ID ending
  in hex digit x (a *shard*), and `index/<vvvv>/any.json` for patterns with device `*`;
  a machine fetches only the shards of its own devices (`lookup_names`), so what it
  downloads does not grow with the vendor's catalogue, and a vendor role lists at most
  17 index targets;
- `index/class.json` (`CLASS_INDEX`): class-wide drivers (vendor `*`);
- `index/<vvvv>.json`: a whole vendor in one file (the first layout): clients still read
  it, the repository no longer writes it.

Scope (the rule both sides apply): in `index/<vvvv>/*.json` and `index/<vvvv>.json` only
patterns whose vendor is exactly `vvvv` are matched, and in `index/class.json` only
class-wide patterns. TUF delegation restricts who can sign a vendor's index targets
(spec 5.6.7.2.1); this rule makes sure a vendor's index cannot claim another vendor's
devices either. Out-of-scope patterns stay in the entry but are not indexed from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..modalias import Pattern, PatternIndex, parse_pattern

if TYPE_CHECKING:
    from ._entry import IndexEntry

__all__ = ["CLASS_INDEX", "build_pattern_index", "in_scope", "index_name", "index_names",
           "index_target", "lookup_names", "shard_name"]

CLASS_INDEX = "class"
"""Name of the class-wide index (`index/class.json`)."""


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


def shard_name(pattern: Pattern) -> str:
    """The index shard listing drivers with `pattern` (see `index_names`)."""
    if pattern.vendor is None:
        return CLASS_INDEX
    if pattern.device is None:
        return f"{pattern.vendor:04x}/any"
    return f"{pattern.vendor:04x}/{pattern.device & 0xF:x}"


def index_names(patterns: Iterable[Pattern | str]) -> list[str]:
    """The index shards a driver with these patterns is listed in, sorted."""
    return sorted({shard_name(parse_pattern(p) if isinstance(p, str) else p)
                   for p in patterns})


def in_scope(pattern: Pattern, index: str) -> bool:
    """Whether `pattern` may be matched from `index/<index>.json` (the scope rule)."""
    if index == CLASS_INDEX:
        return pattern.is_class_wide
    return pattern.vendor is not None and f"{pattern.vendor:04x}" == index.split("/")[0]


def build_pattern_index(entries: Iterable[IndexEntry],
                        into: PatternIndex[IndexEntry] | None = None) -> PatternIndex[IndexEntry]:
    """The matcher: every in-scope pattern of every entry, for `PatternIndex.lookup`
    of a device's modalias (the scope rule above)."""
    idx: PatternIndex[IndexEntry] = into if into is not None else PatternIndex()
    for e in entries:
        for text in e.modaliases:
            p = parse_pattern(text)
            if in_scope(p, e.index):
                idx.add(p, e)
    return idx
