"""Binds that survive a reboot: udev sets `driver_override` when the device appears.

The same mechanism as driverctl's overrides: a udev rule for the device's address writes
`driver_override` at its `add` event, before any driver probes it (the kernel's
Documentation/ABI/testing/sysfs-bus-pci, "driver_override"), and loads the override's
module, so the device goes straight to that driver at boot and on hotplug.

- One generated file, `/etc/udev/rules.d/61-udriver-bind.rules` (env
  `UDRIVER_BIND_RULES`), one line per device, rewritten atomically; it names only a PCI
  address and a driver, both checked, and runs nothing but udev's built-in kmod loader.
- It sorts after driverctl's `05-driverctl.rules` priority-wise below 60-udriver.rules,
  which hands devices to their user-mode driver.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import DeviceError
from ..fsio import write_atomic
from ._address import is_bdf, normalise_bdf

__all__ = ["forget_bind", "persist_bind", "persisted_binds", "persisted_rules_path"]

_DRIVER_RE = re.compile(r"^[a-z0-9_-]{1,64}$")
_LINE_RE = re.compile(r'^ACTION=="add", SUBSYSTEM=="pci", KERNEL=="([0-9a-f:.]+)", '
                      r'ATTR\{driver_override\}="([a-z0-9_-]+)"')
_HEADER = ("# Written by `udriver bind --persist`; `udriver unbind` removes a line.\n"
           "# Each device goes to its driver at boot and on hotplug (driver_override).\n")


def persisted_rules_path() -> Path:
    return Path(os.environ.get("UDRIVER_BIND_RULES") or
                "/etc/udev/rules.d/61-udriver-bind.rules")


def persisted_binds() -> dict[str, str]:
    """{BDF: driver} of every persisted bind ({} when there is no file)."""
    try:
        text = persisted_rules_path().read_text()
    except FileNotFoundError:
        return {}
    return {m.group(1): m.group(2) for m in map(_LINE_RE.match, text.splitlines())
            if m and is_bdf(m.group(1))}


def _line(bdf: str, driver: str) -> str:
    return (f'ACTION=="add", SUBSYSTEM=="pci", KERNEL=="{bdf}", '
            f'ATTR{{driver_override}}="{driver}", RUN{{builtin}}+="kmod load {driver}"\n')


def _write(binds: dict[str, str]) -> Path:
    path = persisted_rules_path()
    if not binds:
        path.unlink(missing_ok=True)
        return path
    write_atomic(path, (_HEADER + "".join(_line(b, d) for b, d in sorted(binds.items()))).encode())
    return path


def persist_bind(bdf: str, driver: str) -> Path:
    """Keep `bdf` bound to `driver` across reboots; returns the rules file.

    Raises:
        DeviceError: a malformed address or driver name.
        PermissionError: the rules file cannot be written (not root).
    """
    bdf = normalise_bdf(bdf)
    if not _DRIVER_RE.match(driver):
        raise DeviceError(f"Invalid kernel driver name for a persistent bind: {driver!r}")
    binds = persisted_binds()
    binds[bdf] = driver
    return _write(binds)


def forget_bind(bdf: str) -> bool:
    """Drop `bdf`'s persisted bind; True if there was one.

    Raises:
        DeviceError: a malformed address.
        PermissionError: the rules file cannot be written (not root).
    """
    bdf = normalise_bdf(bdf)
    binds = persisted_binds()
    if binds.pop(bdf, None) is None:
        return False
    _write(binds)
    return True
