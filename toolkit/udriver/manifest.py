"""The driver manifest: the ID table and ABI a built driver carries.

`udriver build` writes it as `<name>-<version>.dist-info/udriver.json` in the wheel and
as `/usr/share/udriver/drivers/<driver>.json` in the .deb; repositories and clients
read it back to check that a package really drives the device it is installed for.

Format (JSON object, UTF-8, keys sorted, format 1):

    format       1
    package      distribution name, e.g. "udriver-edu"
    version      distribution version (PEP 440)
    driver       entry-point name in the `udriver.drivers` group, e.g. "edu"
    entry_point  "module:Class" of the Driver subclass
    abi          "MAJOR.MINOR" of the udriver ABI the driver was built against
    modaliases   canonical modalias patterns (see udriver.modalias), sorted
    bridge       optional: the kernel bridge the driver needs, one of `BRIDGE_KINDS`
                 ("block": a Linux block device through NBD or ublk; "net": a network
                 interface through TAP); absent for a driver without one. The bridge API
                 is ABI 1.1 (docs/abi.md), so a manifest with a bridge needs abi >= 1.1.

This module is pure: it parses and validates bytes and never touches files.
"""

from __future__ import annotations

import json
import re

from ._fields import Fields
from ._record import record
from .abi import AbiVersion, format_abi
from .errors import ManifestError
from .modalias import Pattern, normalise_patterns, parse_pattern

__all__ = ["BRIDGE_ABI", "BRIDGE_KINDS", "ENTRY_POINT_GROUP", "FORMAT", "MANIFEST_NAME",
           "DriverManifest", "bridge_problem"]

MANIFEST_NAME = "udriver.json"
ENTRY_POINT_GROUP = "udriver.drivers"
FORMAT = 1

BRIDGE_KINDS = ("block", "net")
"""The kernel bridges a driver may declare (`[tool.udriver] bridge`)."""
BRIDGE_ABI: AbiVersion = (1, 1)
"""The first ABI with the bridge API."""


def bridge_problem(bridge: object, abi: AbiVersion) -> str | None:
    """Why `bridge` is not a valid declaration for a driver of ABI `abi` (None: valid).

    Pure: shared by `udriver build`, the manifest parser and so the repository gate.
    """
    if bridge is None:
        return None
    if not isinstance(bridge, str) or bridge not in BRIDGE_KINDS:
        return (f"`bridge` must be one of {', '.join(repr(k) for k in BRIDGE_KINDS)} "
                f"(or absent), got {bridge!r}")
    if abi[0] == BRIDGE_ABI[0] and abi[1] < BRIDGE_ABI[1]:
        return (f"`bridge = {bridge!r}` needs abi {format_abi(BRIDGE_ABI)} or later (the bridge "
                f"API is ABI {format_abi(BRIDGE_ABI)}), got abi {format_abi(abi)}")
    return None

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_EP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$")


@record(frozen=True)
class DriverManifest:
    """What a driver package declares about itself."""

    package: str
    """Distribution name."""
    version: str
    """Distribution version."""
    driver: str
    """Entry-point name in the `udriver.drivers` group."""
    entry_point: str
    """"module:Class" of the Driver subclass."""
    abi: AbiVersion
    """The udriver ABI the driver was built against."""
    modaliases: tuple[str, ...]
    """Canonical modalias patterns, sorted."""
    bridge: str | None = None
    """The kernel bridge the driver needs (`BRIDGE_KINDS`), None for none."""

    @property
    def patterns(self) -> list[Pattern]:
        return [parse_pattern(p) for p in self.modaliases]

    def to_json(self) -> bytes:
        """Deterministic encoding (sorted keys, fixed separators, trailing newline)."""
        obj: dict[str, object] = {
            "format": FORMAT,
            "package": self.package,
            "version": self.version,
            "driver": self.driver,
            "entry_point": self.entry_point,
            "abi": format_abi(self.abi),
            "modaliases": sorted(self.modaliases),
        }
        if self.bridge is not None:  # absent when None: older manifests stay byte-identical
            obj["bridge"] = self.bridge
        return (json.dumps(obj, sort_keys=True, indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, source: str = "udriver.json") -> DriverManifest:
        """Parse and validate a manifest; collects every problem before raising.

        Raises:
            ManifestError: not JSON, wrong format, or invalid fields.
        """
        try:
            obj = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ManifestError(f"{source}: not valid JSON: {e}") from e
        if not isinstance(obj, dict):
            raise ManifestError(f"{source}: expected a JSON object, got {type(obj).__name__}")
        return cls.from_dict(obj, source)

    @classmethod
    def from_dict(cls, obj: dict[str, object], source: str = "udriver.json") -> DriverManifest:
        fields = Fields(obj)
        problems = fields.problems
        if obj.get("format") != FORMAT:
            problems.append(f"`format` must be {FORMAT}, got {obj.get('format')!r}")
        package, version, driver, ep = (fields.text(k) for k in
                                        ("package", "version", "driver", "entry_point"))
        if driver and not _NAME_RE.match(driver):
            problems.append(f"`driver` must match {_NAME_RE.pattern}, got {driver!r}")
        if ep and not _EP_RE.match(ep):
            problems.append(f"`entry_point` must be \"module:Class\", got {ep!r}")
        abi = fields.abi()
        raw = fields.patterns()
        mods: list[str] = []
        if raw:
            try:
                mods = normalise_patterns(raw)
            except ManifestError as e:
                problems.append(f"`modaliases`: {e}")
        bridge = obj.get("bridge")
        why = bridge_problem(bridge, abi)
        if why is not None:
            problems.append(why)
        if problems:
            raise ManifestError(f"{source}: " + "; ".join(problems))
        return cls(package, version, driver, ep, abi, tuple(sorted(mods)),
                   bridge if isinstance(bridge, str) else None)
