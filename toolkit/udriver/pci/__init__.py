"""PCI devices on this machine: discovery, names, IOMMU groups, and binding to vfio-pci.

This package is the only code in udriver that writes to sysfs (through `Sysfs`).
Every function takes the filesystem root as `sysfs_root` (a path or a `Sysfs`), so tests
run against a directory tree such as a snapshot of a real machine's /sys.

    list_devices(sysfs_root)         every PCI device, sorted by address
    get_device(bdf, sysfs_root)      one device; DeviceError names what exists if missing
    iommu_group / group_devices      the device's IOMMU group and its members
    check_viable(bdf)                DeviceError unless VFIO may open the device's group
    bind(bdf) / unbind(bdf)          driverctl's steps: modprobe, unbind, driver_override,
                                     drivers_probe, verify
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._bind import VFIO_PCI as VFIO_PCI
    from ._bind import bind as bind
    from ._bind import check_bound as check_bound
    from ._bind import unbind as unbind
    from ._iommu import check_viable as check_viable
    from ._iommu import group_devices as group_devices
    from ._iommu import iommu_group as iommu_group
    from ._iommu import is_vfio_driver as is_vfio_driver
    from ._iommu import kernel_release as kernel_release
    from ._iommu import viability_problems as viability_problems
    from ._pciids import PciIds as PciIds
    from ._pciids import PciNames as PciNames
    from ._pciids import default_pci_ids as default_pci_ids
    from ._sysfs import PciDevice as PciDevice
    from ._sysfs import Sysfs as Sysfs
    from ._sysfs import get_device as get_device
    from ._sysfs import list_devices as list_devices
    from ._sysfs import normalise_bdf as normalise_bdf

# Imported on first use, as in `udriver.client`: `udriver devices` reads sysfs and
# pci.ids and has no use for binding's modules (subprocess, the IOMMU checks).
_LAZY = {
    "VFIO_PCI": "_bind", "bind": "_bind", "check_bound": "_bind", "unbind": "_bind",
    "check_viable": "_iommu", "group_devices": "_iommu", "iommu_group": "_iommu",
    "is_vfio_driver": "_iommu", "kernel_release": "_iommu", "viability_problems": "_iommu",
    "PciIds": "_pciids", "PciNames": "_pciids", "default_pci_ids": "_pciids",
    "PciDevice": "_sysfs", "Sysfs": "_sysfs", "get_device": "_sysfs",
    "list_devices": "_sysfs", "normalise_bdf": "_sysfs",
}

__all__ = [
    "VFIO_PCI",
    "PciDevice",
    "PciIds",
    "PciNames",
    "Sysfs",
    "bind",
    "check_bound",
    "check_viable",
    "default_pci_ids",
    "get_device",
    "group_devices",
    "iommu_group",
    "is_vfio_driver",
    "kernel_release",
    "list_devices",
    "normalise_bdf",
    "unbind",
    "viability_problems",
]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value
