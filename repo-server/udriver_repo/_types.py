"""Records the repository API returns. Plain frozen dataclasses, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PublishResult", "PublishedDriver", "Vendor", "VerifyReport"]


@dataclass(frozen=True)
class Vendor:
    """A publisher: owns PCI vendor IDs and signs with its own delegated role."""

    name: str
    """Publisher name, also the name of its delegated TUF role."""
    pci_vendors: tuple[int, ...]
    """PCI vendor IDs this publisher owns (each ID belongs to one publisher only)."""
    class_grant: bool = False
    """May publish class-wide drivers (patterns with vendor `*`)."""
    revoked: bool = False
    """Revoked publishers can neither authenticate nor publish."""
    created: str = ""
    """ISO 8601 UTC creation time."""


@dataclass(frozen=True)
class PublishedDriver:
    """One driver entry as it appears in an index target."""

    package: str
    """Distribution name."""
    driver: str
    """Entry-point name."""
    version: str
    """Distribution version."""
    abi: str
    """"MAJOR.MINOR" udriver ABI."""
    modaliases: tuple[str, ...]
    """Canonical modalias patterns."""
    files: dict[str, str] = field(default_factory=dict)
    """"wheel"/"deb" -> TUF target name (e.g. "drivers/1234/x.whl")."""
    indexes: tuple[str, ...] = ()
    """Index target names listing this driver (e.g. ("index/1234.json",))."""


@dataclass(frozen=True)
class PublishResult:
    """What `Repository.publish` did."""

    vendor: str
    """Publishing vendor."""
    drivers: tuple[PublishedDriver, ...]
    """The drivers the published files belong to."""
    unchanged: bool
    """True when every file was already published with the same bytes (idempotent)."""
    timestamp_version: int = 0
    """Version of the timestamp that made the publish visible (0 when unchanged)."""


@dataclass
class VerifyReport:
    """Result of `Repository.verify`: a fresh TUF client's and apt checker's view."""

    ok: bool = True
    """No problems found."""
    problems: list[str] = field(default_factory=list)
    """Human-readable problems, one per line."""
    versions: dict[str, int] = field(default_factory=dict)
    """Trusted metadata versions (root, timestamp, snapshot, targets)."""
    indexes: int = 0
    """Index targets downloaded and verified."""
    files: int = 0
    """Driver files downloaded and verified."""
    apt_packages: int = 0
    """Packages stanzas checked in the apt view."""

    def problem(self, text: str) -> None:
        self.ok = False
        self.problems.append(text)
