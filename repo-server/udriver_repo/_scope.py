"""Vendor scope: may this publisher publish a package with this ID table?  (pure)

The rule (DESIGN.md, "one delegated role per PCI vendor"): every pattern's PCI vendor
must be one the publisher owns; a class-wide pattern (vendor `*`) needs an explicit
class grant. The TUF delegation enforces the same rule on clients cryptographically
(delegated role `paths`, TUF spec 5.6.7.2.1); this check gives the uploader a clear
403 before anything is written.

This module is pure: it sees only the publisher record and the patterns. Which index
shard lists a driver is the repository contract's (`udriver.repoformat.index_names`).
"""

from __future__ import annotations

from collections.abc import Iterable

from udriver.modalias import Pattern, parse_pattern

from ._errors import ScopeError
from ._types import Vendor

__all__ = ["check_scope", "scope_problems"]


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
