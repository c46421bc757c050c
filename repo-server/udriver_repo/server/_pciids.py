"""Vendor, device and class names from pci.ids, for the web page.

Format (the header of pci.ids itself): `vvvv  name` for a vendor, a tab then `dddd  name`
for its devices, two tabs for subsystems (ignored here); `C cc  name` starts the class
list, a tab then `ss  name` for subclasses. The file is parsed once, lazily, and only the
vendor, device, class and subclass lines are kept. A missing file means no names, never
an error: the page then shows bare IDs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_PATHS", "PciNames"]

_log = logging.getLogger(__name__)

DEFAULT_PATHS = (Path("/usr/share/misc/pci.ids"), Path("/usr/share/hwdata/pci.ids"))


@dataclass
class PciNames:
    """Lazily loaded names from one pci.ids file."""

    path: Path | None = None
    """The file; None picks the first of DEFAULT_PATHS that exists."""
    _vendors: dict[int, str] = field(default_factory=dict, repr=False)
    _devices: dict[tuple[int, int], str] = field(default_factory=dict, repr=False)
    _classes: dict[tuple[int, int | None], str] = field(default_factory=dict, repr=False)
    _loaded: bool = field(default=False, repr=False)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        path = self.path or next((p for p in DEFAULT_PATHS if p.is_file()), None)
        if path is None:
            _log.warning("no pci.ids found in %s; the web page shows bare IDs",
                         ", ".join(map(str, DEFAULT_PATHS)))
            return
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            _log.warning("cannot read %s: %s", path, e)
            return
        vendor: int | None = None
        klass: int | None = None
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            try:
                if line.startswith("C "):
                    code, _, name = line[2:].partition("  ")
                    klass, vendor = int(code, 16), None
                    self._classes[(klass, None)] = name.strip()
                elif line.startswith("\t\t"):
                    continue
                elif line.startswith("\t"):
                    code, _, name = line[1:].partition("  ")
                    if vendor is not None:
                        self._devices[(vendor, int(code, 16))] = name.strip()
                    elif klass is not None:
                        self._classes[(klass, int(code, 16))] = name.strip()
                else:
                    code, _, name = line.partition("  ")
                    vendor, klass = int(code, 16), None
                    self._vendors[vendor] = name.strip()
            except ValueError:
                continue

    def vendor(self, vendor: int) -> str | None:
        """The vendor's name, or None."""
        self._load()
        return self._vendors.get(vendor)

    def device(self, vendor: int, device: int) -> str | None:
        """The device's name, or None."""
        self._load()
        return self._devices.get((vendor, device))

    def klass(self, base: int, sub: int | None = None) -> str | None:
        """The class (or subclass) name, or None."""
        self._load()
        return self._classes.get((base, sub))
