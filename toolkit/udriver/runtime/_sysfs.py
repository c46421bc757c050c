"""The sysfs facts `Device.open` checks before it asks VFIO for a device.

They turn what would be a bare errno from the kernel into a message that names the
device, its driver and the fix. The sysfs root is injectable for tests.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DeviceError
from ..pci import normalise_bdf  # the one PCI-address grammar

__all__ = ["group_members", "normalise_bdf", "precheck"]


def _driver(dev: Path) -> str | None:
    link = dev / "driver"
    return os.path.basename(os.readlink(link)) if link.is_symlink() else None


def group_members(sysfs: Path, group: str) -> list[tuple[str, str | None]]:
    """(bdf, bound driver or None) for every device in IOMMU group `group`."""
    devs = sysfs / "kernel" / "iommu_groups" / group / "devices"
    if not devs.is_dir():
        return []
    return [(p.name, _driver(p)) for p in sorted(devs.iterdir())]


def precheck(bdf: str, sysfs: Path = Path("/sys")) -> str:
    """Check that `bdf` exists, is bound to vfio-pci and has an IOMMU group.

    Returns:
        The IOMMU group number, as a string.

    Raises:
        DeviceError: the device is missing, not bound to vfio-pci, or has no IOMMU group.
    """
    dev = sysfs / "bus" / "pci" / "devices" / bdf
    if not dev.exists():
        raise DeviceError(f"No PCI device at {bdf} (no {dev})")
    driver = _driver(dev)
    if driver != "vfio-pci":
        bound = f"bound to `{driver}`" if driver else "not bound to any driver"
        err = DeviceError(f"PCI device {bdf} is {bound}, not to `vfio-pci`")
        err.hint = f"run `udriver bind {bdf}` first"
        raise err
    link = dev / "iommu_group"
    if not link.is_symlink():
        raise DeviceError(f"PCI device {bdf} has no IOMMU group (is the IOMMU enabled? "
                          "intel_iommu=on / amd_iommu=on)")
    return os.path.basename(os.readlink(link))
