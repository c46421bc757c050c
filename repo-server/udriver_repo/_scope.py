"""Vendor scope: may this publisher publish a package with this ID table?  (pure)

The rule (DESIGN.md, "one delegated role per PCI vendor"): every pattern's PCI vendor
must be one the publisher owns; a class-wide pattern (vendor `*`) needs an explicit
class grant. The TUF delegation enforces the same rule on clients cryptographically
(delegated role `paths`, TUF spec 5.6.7.2.1); this check gives the uploader a clear
403 before anything is written.

This module is pure: it sees only the publisher record and the patterns.
"""

from __future__ import annotations

from collections.abc import Iterable

from udriver.modalias import Pattern, parse_pattern

from ._errors import ScopeError
from ._types import Vendor

__all__ = ["CLASS_INDEX", "check_scope", "index_names", "scope_problems", "shard_name"]

CLASS_INDEX = "class"


def scope_problems(vendor: Vendor, patterns: Iterable[Pattern | str]) -> list[str]:
    """Every reason `vendor` may not publish `patterns` (empty list: allowed)."""
    owned = set(vendor.pci_vendors)
    problems: list[str] = []
    if vendor.revoked:
        problems.append(f"vendor {vendor.name!r} is revoked")
    for p in patterns:
        pat = parse_pattern(p) if isinstance(p, str) else p
        if pat.vendor is None:
            if not vendor.class_grant:
                problems.append(f"class-wide pattern {str(pat)!r} needs a class grant, "
                                f"which vendor {vendor.name!r} does not have")
        elif pat.vendor not in owned:
            problems.append(f"pattern {str(pat)!r} claims PCI vendor {pat.vendor:04x}, "
                            f"which vendor {vendor.name!r} does not own")
    return problems


def check_scope(vendor: Vendor, patterns: Iterable[Pattern | str], what: str = "package") -> None:
    """Raise unless every pattern is within `vendor`'s scope.

    Raises:
        ScopeError: listing every offending pattern.
    """
    problems = scope_problems(vendor, patterns)
    if problems:
        owned = ", ".join(f"{v:04x}" for v in vendor.pci_vendors) or "none"
        raise ScopeError(f"{what}: outside the scope of vendor {vendor.name!r} "
                         f"(owns {owned}): " + "; ".join(problems))


def shard_name(pattern: Pattern) -> str:
    """The index shard listing drivers with `pattern` (see `index_names`)."""
    if pattern.vendor is None:
        return CLASS_INDEX
    if pattern.device is None:
        return f"{pattern.vendor:04x}/any"
    return f"{pattern.vendor:04x}/{pattern.device & 0xF:x}"


def index_names(patterns: Iterable[Pattern | str]) -> list[str]:
    """The index shards a driver with these patterns is listed in, sorted.

    A vendor's drivers are split over at most 17 shards, `index/<vvvv>/<x>.json` for
    device IDs ending in hex digit x and `index/<vvvv>/any.json` for patterns with
    device `*`, so a client fetches the shards of its own devices only and a vendor
    role lists at most 17 index targets. Class-wide drivers stay in `index/class.json`.
    """
    return sorted({shard_name(parse_pattern(p) if isinstance(p, str) else p)
                   for p in patterns})
