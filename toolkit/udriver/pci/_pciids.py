"""Human-readable names from the PCI ID database (`pci.ids`, Debian packages pci.ids/hwdata).

The file format (header comment of pci.ids itself):

    vendor  vendor_name
    \tdevice  device_name
    \t\tsubvendor subdevice  subsystem_name
    C class  class_name
    \tsubclass  subclass_name
    \t\tprog-if  prog-if_name

Hex IDs are lower case; the name follows two spaces. Lines starting with `#` are comments.

Rules:
- Nothing is read until the first lookup, and the whole file is never parsed: a lookup
  finds the one vendor (or class) block with a byte search and parses only that block,
  which is then cached. A missing database means every name is None, never an error.
- Unknown IDs give None, so callers can print "Device 0d57" the way lspci does.
"""

from __future__ import annotations

import _thread  # threading's Lock, without importing threading (`udriver devices`)
import os
import re
from pathlib import Path

from .._log import getLogger
from .._record import record

__all__ = ["PCI_IDS_PATHS", "PciIds", "PciNames", "default_pci_ids"]

_log = getLogger(__name__)

PCI_IDS_PATHS: tuple[Path, ...] = (
    Path("/usr/share/misc/pci.ids"),  # Debian package pci.ids
    Path("/usr/share/hwdata/pci.ids"),  # Debian package hwdata
)
"""Where Debian installs the database; `UDRIVER_PCI_IDS` overrides them."""


@record(frozen=True, slots=True)
class PciNames:
    """Names of one device; each is None when the database does not know it."""

    vendor: str | None
    """Vendor name, e.g. "NVIDIA Corporation"."""
    device: str | None
    """Device name, e.g. "GH100[H100 SXM5 80GB]"."""
    subsystem_vendor: str | None
    """Name of the subsystem vendor."""
    subsystem: str | None
    """Name of the (subvendor, subdevice) pair listed under the device."""
    class_name: str | None
    """The most specific class name known: subclass if listed, else base class."""

    def to_json(self) -> dict[str, str | None]:
        return {
            "vendor": self.vendor,
            "device": self.device,
            "subsystem_vendor": self.subsystem_vendor,
            "subsystem": self.subsystem,
            "class": self.class_name,
        }


@record(slots=True)
class _Span:
    """A name and the byte range of the indented lines below it."""

    name: str
    start: int
    end: int


@record(slots=True)
class _ClassBlock:
    name: str
    subclasses: dict[int, str]
    prog_ifs: dict[tuple[int, int], str]


_NEXT_TOP = re.compile(rb"\n(?=[^\t#\n])")  # next vendor or class header line
_NEXT_DEVICE = re.compile(rb"\n(?=\t[^\t])")  # next device line within a vendor block


def _split(line: str) -> tuple[str, str] | None:
    """"id  name" -> (id, name); None for a malformed line."""
    key, sep, name = line.partition("  ")
    if not sep or not key:
        return None
    return key.strip(), name.strip()


def _hex(text: str) -> int | None:
    try:
        return int(text, 16)
    except ValueError:
        return None


class PciIds:
    """Lazy, cached lookups in one pci.ids file.

    Thread-safe. The first lookup of a vendor finds its block with one byte search and
    remembers only the block's byte range; a device or subsystem is then a bounded byte
    search inside that range, cached. Nothing is parsed line by line except the (small)
    class blocks.
    """

    def __init__(self, path: Path | None) -> None:
        """Args:
            path: the pci.ids file, or None for "no database" (every name is None).
        """
        self.path = path
        self._data: bytes | None = None
        self._loaded = False
        self._lock = _thread.allocate_lock()
        self._vendors: dict[int, _Span | None] = {}
        self._devices: dict[tuple[int, int], _Span | None] = {}
        self._subsystems: dict[tuple[int, int, int, int], str | None] = {}
        self._classes: dict[int, _ClassBlock | None] = {}
        self._class_start = -1

    def _bytes(self) -> bytes | None:
        with self._lock:
            if not self._loaded:
                self._loaded = True
                if self.path is not None:
                    try:
                        data = self.path.read_bytes()
                    except OSError as e:
                        _log.warning("cannot read PCI ID database %s: %s", self.path, e)
                    else:
                        # A leading newline lets every block be found as b"\n<key>".
                        self._data = b"\n" + data
                        found = self._data.find(b"\nC ")
                        self._class_start = found if found != -1 else len(self._data)
            return self._data

    def _block_lines(self, data: bytes, start: int) -> list[str]:
        """The indented lines following the header line at `start` (comments dropped)."""
        out: list[str] = []
        pos = data.find(b"\n", start + 1)
        while pos != -1 and pos + 1 < len(data):
            end = data.find(b"\n", pos + 1)
            raw = data[pos + 1:end if end != -1 else len(data)]
            if raw.startswith(b"\t"):
                out.append(raw.decode("utf-8", "replace").rstrip("\r"))
            elif raw and not raw.startswith(b"#"):
                break  # next vendor or class header
            pos = end
        return out

    def _line_name(self, data: bytes, pos: int, skip: int) -> str:
        """Name on the line starting at data[pos] (after "\n"), `skip` bytes of ID/indent."""
        end = data.find(b"\n", pos + 1)
        line = data[pos + 1:end if end != -1 else len(data)].decode("utf-8", "replace")
        return line[skip:].strip()

    def _vendor(self, vendor: int) -> _Span | None:
        if vendor in self._vendors:
            return self._vendors[vendor]
        span: _Span | None = None
        data = self._bytes()
        if data is not None:
            start = data.find(b"\n%04x  " % vendor, 0, self._class_start)
            if start != -1:
                # The block ends at the next unindented, non-comment, non-blank line.
                m = _NEXT_TOP.search(data, start + 1)
                end = m.start() if m else len(data)
                span = _Span(self._line_name(data, start, 6), start, end)
        self._vendors[vendor] = span
        return span

    def _device(self, vendor: int, device: int) -> _Span | None:
        key = (vendor, device)
        if key in self._devices:
            return self._devices[key]
        span: _Span | None = None
        v = self._vendor(vendor)
        data = self._data
        if v is not None and data is not None:
            start = data.find(b"\n\t%04x  " % device, v.start, v.end)
            if start != -1:
                m = _NEXT_DEVICE.search(data, start + 1, v.end)
                span = _Span(self._line_name(data, start, 7), start, m.start() if m else v.end)
        self._devices[key] = span
        return span

    def vendor_name(self, vendor: int) -> str | None:
        span = self._vendor(vendor)
        return span.name if span else None

    def device_name(self, vendor: int, device: int) -> str | None:
        span = self._device(vendor, device)
        return span.name if span else None

    def subsystem_name(self, vendor: int, device: int, subvendor: int,
                       subdevice: int) -> str | None:
        key = (vendor, device, subvendor, subdevice)
        if key in self._subsystems:
            return self._subsystems[key]
        span = self._device(vendor, device)
        data = self._data
        name = None
        if span is not None and data is not None:
            pos = data.find(b"\n\t\t%04x %04x  " % (subvendor, subdevice), span.start, span.end)
            name = self._line_name(data, pos, 13) if pos != -1 else None
        self._subsystems[key] = name
        return name

    def _class(self, base: int) -> _ClassBlock | None:
        if base in self._classes:
            return self._classes[base]
        block: _ClassBlock | None = None
        data = self._bytes()
        if data is not None:
            # Classes follow every vendor: search from the first (an unknown class
            # scanned the whole 1.3 MB file, a third of `udriver devices`' own time).
            start = data.find(b"\nC %02x  " % base, max(self._class_start, 0))
            if start != -1:
                header = data[start + 1:data.find(b"\n", start + 1)].decode("utf-8", "replace")
                block = _ClassBlock(header[6:].strip(), {}, {})
                sub: int | None = None
                for line in self._block_lines(data, start):
                    if line.startswith("\t\t"):
                        parsed = _split(line[2:])
                        pi = _hex(parsed[0]) if parsed else None
                        if parsed and sub is not None and pi is not None:
                            block.prog_ifs[(sub, pi)] = parsed[1]
                    else:
                        parsed = _split(line[1:])
                        sub = _hex(parsed[0]) if parsed else None
                        if parsed and sub is not None:
                            block.subclasses[sub] = parsed[1]
        self._classes[base] = block
        return block

    def class_name(self, class_code: int) -> str | None:
        """Most specific name for a 24-bit class code: subclass, else base class."""
        block = self._class((class_code >> 16) & 0xFF)
        if block is None:
            return None
        return block.subclasses.get((class_code >> 8) & 0xFF, block.name)

    def names(self, vendor: int, device: int, subvendor: int, subdevice: int,
              class_code: int) -> PciNames | None:
        """All names for one device, or None when there is no database at all."""
        if self._bytes() is None:
            return None
        return PciNames(
            vendor=self.vendor_name(vendor),
            device=self.device_name(vendor, device),
            subsystem_vendor=self.vendor_name(subvendor) if subvendor else None,
            subsystem=self.subsystem_name(vendor, device, subvendor, subdevice),
            class_name=self.class_name(class_code),
        )


_default: PciIds | None = None
_default_key: str | None = None
_default_lock = _thread.allocate_lock()


def default_pci_ids() -> PciIds:
    """The process-wide database: `$UDRIVER_PCI_IDS` (empty: none), else the first of
    PCI_IDS_PATHS that exists. Re-resolved when the variable changes."""
    global _default, _default_key
    with _default_lock:
        env = os.environ.get("UDRIVER_PCI_IDS")
        if _default is None or env != _default_key:
            if env is not None:
                path: Path | None = Path(env) if env else None
            else:
                path = next((p for p in PCI_IDS_PATHS if p.is_file()), None)
            _default, _default_key = PciIds(path), env
        return _default
