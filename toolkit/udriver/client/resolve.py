"""Resolution: which driver (and which version of it) should drive a device. Pure.

Order of decisions, for one device modalias:

1. Look the modalias up in a `PatternIndex` built from the device vendor's index and
   the class-wide index (never a scan of every pattern).
2. Drop candidates whose ABI the local runtime does not provide
   (`udriver.abi.is_compatible`): they could never start, so they do not get to hide
   a less specific driver that can.
3. Most specific pattern wins (`Pattern.specificity`: vendor+device+subsystem over
   vendor+device over vendor over class); a driver's rank is its best matching pattern.
4. Among those, the highest version (packaging.version); ties between different
   drivers of equal rank and version break by repository order, then driver name,
   so the result is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from packaging.version import Version

from .._record import record
from ..abi import ABI_VERSION, AbiVersion, is_compatible
from ..modalias import Modalias, Pattern, PatternIndex, parse_pattern
from ..repoformat import IndexEntry

__all__ = ["Candidate", "candidates", "choose", "choose_named", "choose_version"]


@record(frozen=True)
class Candidate:
    """A driver version that matches a device, with the pattern that matched best."""

    entry: IndexEntry
    """The index entry."""
    pattern: Pattern
    """Its most specific pattern matching the device."""
    compatible: bool
    """Whether the local runtime provides the entry's ABI."""


def candidates(alias: Modalias, index: PatternIndex[IndexEntry],
               provided: AbiVersion = ABI_VERSION) -> list[Candidate]:
    """Every matching driver version, best first (compatible ones before the rest)."""
    best: dict[tuple[str, str, str], tuple[Pattern, IndexEntry]] = {}
    for pattern, entry in index.lookup(alias):
        key = (entry.repo, entry.driver, entry.version)
        cur = best.get(key)
        if cur is None or pattern.specificity > cur[0].specificity:
            best[key] = (pattern, entry)
    out = [Candidate(e, p, is_compatible(e.abi, provided)) for p, e in best.values()]
    # Stable sorts, least significant key first: name, repo; version (highest first);
    # then compatibility and specificity (rules 2-4).
    out.sort(key=lambda c: (c.entry.repo, c.entry.driver))
    out.sort(key=lambda c: c.entry.parsed_version, reverse=True)
    out.sort(key=lambda c: (not c.compatible, -c.pattern.specificity[0],
                            -c.pattern.specificity[1]))
    return out


def choose(alias: Modalias, index: PatternIndex[IndexEntry],
           provided: AbiVersion = ABI_VERSION) -> Candidate | None:
    """The driver version to install for `alias`, or None (rules 1-4 of the module)."""
    for c in candidates(alias, index, provided):
        return c if c.compatible else None
    return None


def choose_version(entries: Iterable[IndexEntry], driver: str, version: str | None = None,
                   provided: AbiVersion = ABI_VERSION) -> IndexEntry | None:
    """The entry for `driver` at `version` (or its highest ABI-compatible version)."""
    found: Sequence[IndexEntry] = [e for e in entries if e.driver == driver or e.package == driver]
    if version is not None:
        want = Version(version)
        exact = [e for e in found if e.parsed_version == want]
        return exact[0] if exact else None
    ok = [e for e in found if is_compatible(e.abi, provided)]
    return max(ok, key=lambda e: e.parsed_version) if ok else None


def choose_named(entries: Sequence[IndexEntry], driver: str, version: str | None,
                 devices: Mapping[str, Modalias], provided: AbiVersion = ABI_VERSION
                 ) -> IndexEntry | None:
    """`choose_version`, preferring entries whose ID table matches a local device (a
    class-wide driver of the same name matching none of them comes second)."""
    local = [e for e in entries if any(p.matches(a) for p in map(parse_pattern, e.modaliases)
                                       for a in devices.values())]
    return (choose_version(local, driver, version, provided)
            or choose_version(entries, driver, version, provided))
