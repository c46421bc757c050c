"""PCI devices on this machine: discovery, names, IOMMU groups, and binding to vfio-pci.

This package is the only code in udriver that writes to sysfs (through `Sysfs`).
Every function takes the filesystem root as `sysfs_root` (a path or a `Sysfs`), so tests
run against a directory tree such as a snapshot of a real machine's /sys.

    normalise_bdf / parse_bdf        the one PCI-address grammar (`_address`)
    list_devices(sysfs_root)         every PCI device, sorted by address
    get_device(bdf, sysfs_root)      one device; DeviceError names what exists if missing
    iommu_group / group_devices      the device's IOMMU group and its members
    check_viable(bdf)                DeviceError unless VFIO may open the device's group
    bind(bdf) / unbind(bdf)          driverctl's steps: modprobe, unbind, driver_override,
                                     drivers_probe, verify
    persist_bind / forget_bind       binds that survive a reboot (a udev rule per device)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:
    from ._address import PciAddress as PciAddress
    from ._address import is_bdf as is_bdf
    from ._address import normalise_bdf as normalise_bdf
    from ._address import parse_bdf as parse_bdf
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
    from ._persist import forget_bind as forget_bind
    from ._persist import persist_bind as persist_bind
    from ._persist import persisted_binds as persisted_binds
    from ._persist import persisted_rules_path as persisted_rules_path
    from ._sysfs import PciDevice as PciDevice
    from ._sysfs import Sysfs as Sysfs
    from ._sysfs import get_device as get_device
    from ._sysfs import list_devices as list_devices

# Imported on first use, as in `udriver.client`: `udriver devices` reads sysfs and
# pci.ids and has no use for binding's modules (subprocess, the IOMMU checks).
_LAZY = {
    "PciAddress": "_address", "is_bdf": "_address", "normalise_bdf": "_address",
    "parse_bdf": "_address", "VFIO_PCI": "_bind", "bind": "_bind", "check_bound": "_bind",
    "unbind": "_bind", "check_viable": "_iommu", "group_devices": "_iommu",
    "iommu_group": "_iommu", "is_vfio_driver": "_iommu", "kernel_release": "_iommu",
    "viability_problems": "_iommu", "PciIds": "_pciids", "PciNames": "_pciids",
    "default_pci_ids": "_pciids", "forget_bind": "_persist", "persist_bind": "_persist",
    "persisted_binds": "_persist", "persisted_rules_path": "_persist", "PciDevice": "_sysfs",
    "Sysfs": "_sysfs", "get_device": "_sysfs", "list_devices": "_sysfs",
}

__all__ = [
    "VFIO_PCI",
    "PciAddress",
    "PciDevice",
    "PciIds",
    "PciNames",
    "Sysfs",
    "bind",
    "check_bound",
    "check_viable",
    "default_pci_ids",
    "forget_bind",
    "get_device",
    "group_devices",
    "iommu_group",
    "is_bdf",
    "is_vfio_driver",
    "kernel_release",
    "list_devices",
    "normalise_bdf",
    "parse_bdf",
    "persist_bind",
    "persisted_binds",
    "persisted_rules_path",
    "unbind",
    "viability_problems",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
