"""What the client's operations return, and which installed driver claims a device.

`InstallResult` is one install's outcome (what `udriver install` prints, or its JSON);
`installed_for_alias` picks, among installed drivers, the one whose ID table matches a
device most specifically (the same specificity rule `resolve.choose` applies to a
repository's candidates).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..modalias import Modalias, Pattern
from ._store import DriverStore, InstalledDriver

__all__ = ["InstallResult", "installed_for", "installed_for_alias"]


@dataclass
class InstallResult:
    """What one install did."""

    driver: str
    """Driver name."""
    version: str
    """Version now current."""
    previous: str | None
    """Version current before (None if first install)."""
    repo: str
    """Repository it came from ("" for a local wheel)."""
    devices: list[str] = field(default_factory=list)
    """Devices it was installed for."""
    changed: bool = True
    """False when that version was already current."""

    def to_dict(self) -> dict[str, object]:
        return {"driver": self.driver, "version": self.version, "previous": self.previous,
                "repo": self.repo, "devices": self.devices, "changed": self.changed}


def installed_for_alias(alias: Modalias, installed: list[tuple[InstalledDriver, list[Pattern]]]
                   ) -> InstalledDriver | None:
    """The installed driver whose most specific pattern matches `alias` (None if none)."""
    best: tuple[tuple[int, int], InstalledDriver] | None = None
    for inst, patterns in installed:
        for p in patterns:
            if p.matches(alias) and (best is None or p.specificity > best[0]):
                best = (p.specificity, inst)
    return best[1] if best else None


def installed_for(store: DriverStore, devices: Mapping[str, Modalias]
                  ) -> dict[str, InstalledDriver | None]:
    """The installed driver (most specific current ID table) claiming each device."""
    installed = [(inst, m.patterns) for inst in store.installed()
                 if (m := inst.manifest()) is not None]
    return {bdf: installed_for_alias(alias, installed) for bdf, alias in devices.items()}
