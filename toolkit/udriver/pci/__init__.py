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

from ._address import PciAddress, is_bdf, parse_bdf
from ._bind import VFIO_PCI, bind, check_bound, unbind
from ._iommu import (
    check_viable,
    group_devices,
    iommu_group,
    is_vfio_driver,
    kernel_release,
    viability_problems,
)
from ._pciids import PciIds, PciNames, default_pci_ids
from ._persist import forget_bind, persist_bind, persisted_binds, persisted_rules_path
from ._sysfs import PciDevice, Sysfs, get_device, list_devices, normalise_bdf

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
