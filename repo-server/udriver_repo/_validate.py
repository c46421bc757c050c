"""Validate an uploaded wheel or .deb: a thin wrapper around the one acceptance gate.

Every rule lives in `udriver.gate.admit` (bounds, names and versions against the
metadata, the driver's dist-info, and the .deb allow-list); `udriver check` and the
HTTP upload call the same function, so all three give the same verdict. This module
only adapts its answer to the repository's `Artifact`.

The toolchain's `driver-ids` check is deliberately skipped: it imports the driver, i.e.
runs uploaded code, which a repository server must never do. The ID table the client
relies on is the embedded manifest, which the gate checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from udriver.gate import admit
from udriver.manifest import DriverManifest

__all__ = ["Artifact", "validate"]


@dataclass(frozen=True)
class Artifact:
    """A validated artifact and its bytes."""

    path: Path
    """Where it was read from."""
    kind: str
    """"wheel" or "deb"."""
    manifest: DriverManifest
    """Its ID table and identity."""
    data: bytes
    """The file's bytes, exactly as the gate judged them (hashed and copied into the tree)."""
    control: dict[str, str] | None = None
    """The deb's control fields, each checked by the gate against the ID table or derived
    from it (None for a wheel); build apt stanzas from these, never from the upload."""
    version_key: str = ""
    """The normalised PEP 440 version (`1.0.0.0` and `1.0` give `1`): two artifacts of one
    package with the same key are the same version."""


def validate(path: Path) -> Artifact:
    """Read and check one artifact with the acceptance gate.

    Raises:
        GateIdTableError: the ID table is missing or invalid (a ManifestError).
        GateError: any other problem (a PackageError); every problem is listed.
    """
    a = admit(path)
    return Artifact(a.path, a.kind, a.manifest, a.data, a.control, a.version_key)
