"""The one grammar of a PCI address (`DDDD:BB:DD.F`) for every part of udriver.

The kernel names a PCI device in sysfs `"%04x:%02x:%02x.%d"` of its domain, bus, slot
and function (drivers/pci/probe.c, `pci_setup_device`; Documentation/ABI/testing/
sysfs-bus-pci). So:

    address  = [domain ":"] bus ":" device "." function
    domain   = 4 to 8 hex digits: a 16-bit segment number printed with `%04x`, or wider
               (the domain is an `int`; Intel VMD numbers its domains from 0x10000, so
               `10000:01:00.0` is a real device), at most 0xffffffff
    bus      = 2 hex digits (00-ff)
    device   = 2 hex digits, 00-1f (5 bits of devfn, PCI Local Bus spec 3.0, 3.2.2.3.1)
    function = 1 digit, 0-7 (3 bits of devfn)

Hex digits may be upper or lower case. `BB:DD.F` (as `lspci` prints it) means domain 0.
Nothing else is accepted: no surrounding whitespace, no other separator, no trailing
text, so an address is always safe as a file name (`<state>/status/<bdf>.json`), a
systemd instance name (`udriver@<bdf>.service`) or a sysfs path component.

The canonical spelling is the kernel's: lower case, the domain `%04x` (`normalise_bdf`).
`is_bdf` tells whether a name already is one (a directory entry, a status file's stem).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ..errors import DeviceError

__all__ = ["PciAddress", "is_bdf", "normalise_bdf", "parse_bdf"]

_ADDRESS_RE = re.compile(
    r"(?:(?P<domain>[0-9a-f]{4,8}):)?(?P<bus>[0-9a-f]{2}):(?P<dev>[0-9a-f]{2})\.(?P<fn>[0-7])",
    re.IGNORECASE,
)
_EXAMPLE = "DDDD:BB:DD.F, e.g. 0000:00:06.0"
_MAX_DEVICE = 0x1F


class PciAddress(NamedTuple):
    """A parsed PCI address; `str()` is its canonical spelling."""

    domain: int
    """PCI segment (domain) number."""
    bus: int
    """Bus number, 0-255."""
    device: int
    """Device (slot) number, 0-31."""
    function: int
    """Function number, 0-7."""

    def __str__(self) -> str:
        return f"{self.domain:04x}:{self.bus:02x}:{self.device:02x}.{self.function}"


def parse_bdf(text: str) -> PciAddress:
    """Parse a PCI address written as the module docstring's grammar allows.

    Raises:
        DeviceError: `text` is not a PCI address (the message quotes it and says the
            expected form).
    """
    m = _ADDRESS_RE.fullmatch(text) if isinstance(text, str) else None
    if m is None or int(m.group("dev"), 16) > _MAX_DEVICE:
        raise DeviceError(f"Invalid PCI address (expected {_EXAMPLE}): {text!r}")
    return PciAddress(int(m.group("domain") or "0", 16), int(m.group("bus"), 16),
                      int(m.group("dev"), 16), int(m.group("fn")))


def normalise_bdf(text: str) -> str:
    """The canonical spelling of a PCI address: `00:03.0` -> `0000:00:03.0`, lower case.

    Raises:
        DeviceError: `text` is not a PCI address.
    """
    return str(parse_bdf(text))


def is_bdf(name: str) -> bool:
    """True when `name` is a PCI address in canonical spelling (as sysfs names devices)."""
    try:
        return normalise_bdf(name) == name
    except DeviceError:
        return False
