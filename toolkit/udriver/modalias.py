"""PCI modaliases and patterns, matched the way the kernel and modprobe match them.

A device's modalias (drivers/pci/pci-driver.c, `pci_uevent`) is

    pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X

A pattern is what scripts/mod/file2alias.c (`do_pci_entry`) writes for a
`struct pci_device_id`: every field is either its exact upper-case hex value or `*`,
and a trailing `*` is appended. We accept exactly that grammar (hex in either case,
normalised to upper case; the trailing `*` optional) and reject anything else with a
message that names the field, so a typo never silently matches nothing or everything.

Matching is glob matching as in fnmatch(3), case-insensitive on hex. Lookup never scans
every pattern: `PatternIndex` keys patterns by exact vendor:device first, then by
vendor, then by class, and only patterns with a wildcard vendor and class are kept in a
(small, class-wide) list.

This module is pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from ._record import field, record
from .errors import ManifestError

__all__ = [
    "Modalias",
    "Pattern",
    "PatternIndex",
    "PciId",
    "normalise_patterns",
    "parse_modalias",
    "parse_pattern",
]

# Field name, width in hex digits, in the order the kernel writes them.
_FIELDS: tuple[tuple[str, int], ...] = (
    ("v", 8),
    ("d", 8),
    ("sv", 8),
    ("sd", 8),
    ("bc", 2),
    ("sc", 2),
    ("i", 2),
)
_FIELD_NAMES = {"v": "vendor", "d": "device", "sv": "subvendor", "sd": "subdevice",
                "bc": "base class", "sc": "subclass", "i": "prog-if"}

_MODALIAS_RE = re.compile(
    r"^pci:v([0-9A-F]{8})d([0-9A-F]{8})sv([0-9A-F]{8})sd([0-9A-F]{8})"
    r"bc([0-9A-F]{2})sc([0-9A-F]{2})i([0-9A-F]{2})$",
    re.IGNORECASE,
)
_HEX = re.compile(r"^[0-9A-Fa-f]+$")


@record(frozen=True, slots=True)
class Modalias:
    """A concrete device modalias: every field known."""

    vendor: int
    device: int
    subvendor: int
    subdevice: int
    base_class: int
    subclass: int
    prog_if: int

    def __str__(self) -> str:
        return (
            f"pci:v{self.vendor:08X}d{self.device:08X}sv{self.subvendor:08X}"
            f"sd{self.subdevice:08X}bc{self.base_class:02X}sc{self.subclass:02X}"
            f"i{self.prog_if:02X}"
        )

    def values(self) -> tuple[int, ...]:
        return (self.vendor, self.device, self.subvendor, self.subdevice,
                self.base_class, self.subclass, self.prog_if)

    @classmethod
    def from_ids(cls, vendor: int, device: int, subvendor: int, subdevice: int,
                 class_code: int) -> Modalias:
        """Build from sysfs values; `class_code` is the 24-bit class (e.g. 0x010802)."""
        return cls(vendor, device, subvendor, subdevice,
                   (class_code >> 16) & 0xFF, (class_code >> 8) & 0xFF, class_code & 0xFF)


def parse_modalias(text: str) -> Modalias:
    """Parse a device modalias as read from sysfs or a uevent.

    Raises:
        ManifestError: not a complete PCI modalias.
    """
    m = _MODALIAS_RE.match(text.strip())
    if m is None:
        raise ManifestError(f"Invalid PCI modalias (expected pci:v%08Xd%08Xsv...i%02X): {text!r}")
    return Modalias(*(int(g, 16) for g in m.groups()))


@record(frozen=True, slots=True)
class Pattern:
    """A modalias pattern. Each field is an int, or None for `*`."""

    vendor: int | None
    device: int | None
    subvendor: int | None = None
    subdevice: int | None = None
    base_class: int | None = None
    subclass: int | None = None
    prog_if: int | None = None

    def values(self) -> tuple[int | None, ...]:
        return (self.vendor, self.device, self.subvendor, self.subdevice,
                self.base_class, self.subclass, self.prog_if)

    def __str__(self) -> str:
        parts = ["pci:"]
        for (name, width), value in zip(_FIELDS, self.values()):
            parts.append(name + ("*" if value is None else f"{value:0{width}X}"))
        text = "".join(parts)
        # file2alias.c add_wildcard(): append "*" unless the alias already ends in one.
        return text if text.endswith("*") else text + "*"

    def matches(self, alias: Modalias) -> bool:
        return all(p is None or p == a for p, a in zip(self.values(), alias.values()))

    @property
    def specificity(self) -> tuple[int, int]:
        """Higher is more specific: (device-identity fields, class fields) that are exact.

        vendor+device+subsystem beats vendor+device beats vendor-only beats class-only.
        """
        v = self.values()
        return (sum(x is not None for x in v[:4]), sum(x is not None for x in v[4:]))

    @property
    def is_class_wide(self) -> bool:
        """True when the pattern does not pin a vendor (e.g. "any NVMe controller")."""
        return self.vendor is None


@record(frozen=True, slots=True)
class PciId:
    """Convenience for `Driver.ids`: `PciId(0x1234, 0x11E8)`; None means any."""

    vendor: int | None
    device: int | None = None
    subvendor: int | None = None
    subdevice: int | None = None
    class_code: int | None = None
    class_mask: int = 0xFFFFFF

    def to_pattern(self) -> Pattern:
        bc = sc = pi = None
        if self.class_code is not None:
            cc, mask = self.class_code, self.class_mask
            bc = (cc >> 16) & 0xFF if mask & 0xFF0000 else None
            sc = (cc >> 8) & 0xFF if mask & 0x00FF00 else None
            pi = cc & 0xFF if mask & 0x0000FF else None
        return Pattern(self.vendor, self.device, self.subvendor, self.subdevice, bc, sc, pi)


def parse_pattern(text: object) -> Pattern:
    """Parse and validate one modalias pattern.

    Raises:
        ManifestError: with the field that is wrong and how to fix it.
    """
    if not isinstance(text, str):
        raise ManifestError(f"Invalid modalias pattern (expected a string): {text!r}")
    s = text.strip()
    example = "e.g. \"pci:v00001234d000011E8sv*sd*bc*sc*i*\""
    if not s[:4].lower() == "pci:":
        raise ManifestError(f"Invalid modalias pattern (must start with `pci:`): {text!r}; {example}")
    pos = 4
    values: list[int | None] = []
    for name, width in _FIELDS:
        if s[pos:pos + len(name)].lower() != name:
            raise ManifestError(
                f"Invalid modalias pattern (expected field `{name}` ({_FIELD_NAMES[name]}) "
                f"at offset {pos}): {text!r}; {example}"
            )
        pos += len(name)
        if s[pos:pos + 1] == "*":
            values.append(None)
            pos += 1
            continue
        raw = s[pos:pos + width]
        if len(raw) != width or not _HEX.match(raw):
            raise ManifestError(
                f"Invalid modalias pattern (field `{name}` ({_FIELD_NAMES[name]}) must be "
                f"{width} hex digits or `*`, got {s[pos:pos + width] or 'nothing'!r}): {text!r}"
            )
        values.append(int(raw, 16))
        pos += width
    if s[pos:] not in ("", "*"):
        raise ManifestError(
            f"Invalid modalias pattern (unexpected trailing text {s[pos:]!r}): {text!r}; {example}"
        )
    for name, value in zip(("v", "d", "sv", "sd"), values[:4]):
        if value is not None and value > 0xFFFF:
            raise ManifestError(
                f"Invalid modalias pattern (field `{name}` ({_FIELD_NAMES[name]}) is a 16-bit "
                f"PCI ID, got 0x{value:X}): {text!r}"
            )
    return Pattern(*values)


T = TypeVar("T")


@record
class PatternIndex(Generic[T]):
    """Patterns mapped to payloads, looked up without scanning every pattern.

    Buckets, most specific first: exact (vendor, device); vendor with any device;
    any vendor (class-wide). A lookup touches only the buckets keyed by the device's
    own vendor/device/class, so its cost does not depend on the size of the index.
    """

    _by_vd: dict[tuple[int, int], list[tuple[Pattern, T]]] = field(default_factory=dict)
    _by_v: dict[int, list[tuple[Pattern, T]]] = field(default_factory=dict)
    _by_class: dict[int | None, list[tuple[Pattern, T]]] = field(default_factory=dict)
    _count: int = 0

    def add(self, pattern: Pattern, payload: T) -> None:
        entry = (pattern, payload)
        if pattern.vendor is not None and pattern.device is not None:
            self._by_vd.setdefault((pattern.vendor, pattern.device), []).append(entry)
        elif pattern.vendor is not None:
            self._by_v.setdefault(pattern.vendor, []).append(entry)
        else:
            self._by_class.setdefault(pattern.base_class, []).append(entry)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def lookup(self, alias: Modalias) -> list[tuple[Pattern, T]]:
        """Every (pattern, payload) matching `alias`, most specific pattern first."""
        found: list[tuple[Pattern, T]] = []
        for bucket in (
            self._by_vd.get((alias.vendor, alias.device), ()),
            self._by_v.get(alias.vendor, ()),
            self._by_class.get(alias.base_class, ()),
            self._by_class.get(None, ()),
        ):
            found.extend(e for e in bucket if e[0].matches(alias))
        found.sort(key=lambda e: e[0].specificity, reverse=True)
        return found

    def __iter__(self) -> Iterator[tuple[Pattern, T]]:
        for d in (self._by_vd, self._by_v, self._by_class):
            for bucket in d.values():
                yield from bucket


def normalise_patterns(texts: Iterable[object]) -> list[str]:
    """Parse every pattern and return their canonical strings.

    Collects every problem before raising, so the author sees them all at once.

    Raises:
        ManifestError: one or more invalid or duplicate patterns.
    """
    out: list[str] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, t in enumerate(texts):
        try:
            canon = str(parse_pattern(t))
        except ManifestError as e:
            problems.append(f"entry {i}: {e}")
            continue
        if canon in seen:
            problems.append(f"entry {i}: duplicate modalias pattern {t!r} (same as entry {seen[canon]})")
            continue
        seen[canon] = i
        out.append(canon)
    if problems:
        raise ManifestError("; ".join(problems))
    return out
