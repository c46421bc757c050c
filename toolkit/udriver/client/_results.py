"""What the client's operations return: `InstallResult`, one install's outcome (what
`udriver install` prints, or its JSON)."""

from __future__ import annotations

from .._record import field, record

__all__ = ["InstallResult"]


@record
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
