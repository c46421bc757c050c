"""What a user may type to name a driver or a device (pure).

- a driver spec: `NAME`, `NAME==VERSION` or `NAME<PEP 440 specifiers>`, as pip takes
  them (`parse_spec`, `within`), and the error when none matches (`not_found`);
- a device query: `VVVV`, `VVVV:DDDD`, a modalias or a modalias pattern
  (`query_alias`), for `udriver search`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from packaging.version import Version

from ..errors import InstallError, ManifestError
from ..modalias import parse_modalias, parse_pattern
from ..repoformat import IndexEntry

if TYPE_CHECKING:  # packaging.requirements costs 10 ms, which `udriver search` need not pay
    from packaging.specifiers import SpecifierSet

__all__ = ["is_device_query", "not_found", "parse_spec", "query_alias", "within"]


def is_device_query(query: str) -> bool:
    """Whether `udriver search QUERY` searches by PCI ID (VVVV, VVVV:DDDD, a modalias)."""
    return query_alias(query.strip().lower()) is not None


def query_alias(q: str) -> tuple[int, int | None] | None:
    """(vendor, device or None) of a device query, or None: not a device query."""
    if q.startswith("pci:"):
        try:
            a = parse_modalias(q)
            return a.vendor, a.device
        except ManifestError:
            try:
                p = parse_pattern(q)
            except ManifestError:
                return None
            return (p.vendor, p.device) if p.vendor is not None else None
    parts = q.split(":")
    try:
        if len(parts) == 1 and len(q) == 4:
            return int(q, 16), None
        if len(parts) == 2 and all(len(x) == 4 for x in parts):
            return int(parts[0], 16), int(parts[1], 16)
    except ValueError:
        return None
    return None


def parse_spec(spec: str) -> tuple[str, str | None, SpecifierSet | None]:
    """`NAME`, `NAME==VERSION` or `NAME<specifiers>` (PEP 440, as pip takes them).

    Returns:
        (name, exact version or None, other specifiers or None)

    Raises:
        InstallError: not a name with optional PEP 440 specifiers.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(spec)
    except InvalidRequirement as e:
        raise InstallError(f"Invalid driver specification {spec!r} (expected NAME, "
                           f"NAME==VERSION or NAME with PEP 440 specifiers such as "
                           f"NAME>=1.0)") from e
    if req.extras or req.marker or req.url:
        raise InstallError(f"Invalid driver specification {spec!r} (extras, markers and URLs "
                           f"do not apply to drivers)")
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version:
        return req.name, specs[0].version, None
    return req.name, None, (req.specifier if specs else None)


def within(entries: list[IndexEntry], name: str,
            allowed: SpecifierSet | None) -> list[IndexEntry]:
    """`entries`, less the versions of `name` that `allowed` excludes."""
    if allowed is None:
        return entries
    return [e for e in entries if name not in (e.driver, e.package)
            or allowed.contains(e.version, prereleases=True)]


def not_found(spec: str, verb: str, known: list[IndexEntry], constrained: bool
              ) -> InstallError:
    """The error for a driver spec that matched no usable entry.

    Args:
        spec: what the user asked for.
        verb: "install", "show", ...
        known: the entries of that name that were found (maybe none).
        constrained: whether the spec named a version or specifiers.
    """
    name = parse_spec(spec)[0]
    if known and constrained:
        why = f"no published version matches {spec[len(name):].strip()!r}"
        hint = ("published versions: "
                + ", ".join(sorted({e.version for e in known}, key=Version)))
    elif known:
        why = (f"no version provides ABI compatible with this runtime "
               f"({', '.join(sorted({f'{e.version} needs {e.abi[0]}.{e.abi[1]}' for e in known}))})")
        hint = "update udriver to a runtime that provides that ABI"
    else:
        why = "not found in the indexes of this machine's device vendors"
        hint = ("a driver is found by name among the drivers for this machine's "
                "devices; for another device, look it up by its PCI ID first "
                "(`udriver search VVVV:DDDD`), then use its name")
    err = InstallError(f"cannot {verb} {spec!r}: {why}")
    err.hint = hint
    return err
