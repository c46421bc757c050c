"""IOMMU groups and whether a group can be handed to user space (its "viability").

VFIO's unit of ownership is the IOMMU group, not the device (Documentation/driver-api/
vfio.rst, "Groups, Devices, and IOMMUs"): a process may use `/dev/vfio/<group>` only
when the group is *viable*, i.e. no device in it is used by a kernel driver that does
DMA through the kernel's own IOMMU domain. The rules, per kernel:

Linux 5.19 and later (DMA ownership, drivers/iommu/iommu.c; every kernel this project
tests, 6.1 and 6.12). `VFIO_GROUP_GET_STATUS` reports VIABLE unless
`iommu_group_dma_owner_claimed()`, and binding any driver *without*
`driver_managed_dma` claims the group (drivers/pci/pci-driver.c `pci_dma_configure`).
So a member is fine when it is unbound, or bound to vfio-pci or a variant driver
(`mlx5_vfio_pci`, `nvgrace-gpu-vfio-pci`...), `pci-stub` or `pcieport`, the PCI drivers
that set `driver_managed_dma`. Bridges get no exemption of their own: a PCIe port is
fine because pcieport is, a conventional bridge because it normally has no driver.

Before 5.19 (drivers/vfio/vfio.c `vfio_dev_viable`): unbound, a vfio driver, or
`pci-stub` (`vfio_driver_allowed`), and any device whose config header is not type 0,
i.e. a bridge, whatever its driver (`vfio_dev_driver_allowed`: "we can include PCI
interconnect devices").

`viability_problems` is a pure function over `PciDevice` records and is the only place
these rules live; `check_viable` does the reading, including the kernel release from
`<root>/proc/sys/kernel/osrelease`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

from ..errors import DeviceError
from ._address import normalise_bdf
from ._pciids import PciIds
from ._sysfs import PciDevice, SysfsLike, _as_sysfs, get_device

__all__ = [
    "DMA_SAFE_DRIVERS",
    "NO_IOMMU_GROUP_HINT",
    "check_viable",
    "group_devices",
    "iommu_group",
    "is_vfio_driver",
    "kernel_release",
    "viability_problems",
]

_log = logging.getLogger(__name__)

DMA_SAFE_DRIVERS = frozenset({"pci-stub", "pcieport"})
"""Non-VFIO PCI drivers with `driver_managed_dma` (Linux >= 5.19)."""

LEGACY_ALLOWED_DRIVERS = frozenset({"pci-stub"})
"""vfio.c `vfio_driver_allowed` before Linux 5.19."""

DMA_OWNERSHIP_KERNEL = (5, 19)
"""First kernel with the DMA-ownership rule."""

NO_IOMMU_GROUP_HINT = (
    "is the IOMMU enabled? Boot with intel_iommu=on (Intel) or amd_iommu=on (AMD); "
    "under QEMU add -device intel-iommu"
)

_VFIO_VARIANT = re.compile(r"^(vfio-pci|[a-z0-9_-]+[-_]vfio[-_]pci)$")


def is_vfio_driver(name: str | None) -> bool:
    """True for vfio-pci and its variant drivers (e.g. `mlx5_vfio_pci`)."""
    return name is not None and _VFIO_VARIANT.match(name) is not None


def viability_problems(target: str, members: Iterable[PciDevice], *,
                       kernel: tuple[int, int] | None = None) -> list[str]:
    """Why the IOMMU group holding `target` cannot be given to user space; [] if it can.

    Pure: decides over the records it is given. `target` itself is not judged: it is
    the device about to be (or already) bound to vfio-pci.

    Args:
        target: canonical BDF of the device the caller wants to use.
        members: every PCI device of the group (may include `target`).
        kernel: (major, minor) of the running kernel; None means a current kernel.
    """
    legacy = kernel is not None and kernel < DMA_OWNERSHIP_KERNEL
    problems: list[str] = []
    for dev in sorted(members, key=lambda d: d.bdf):
        if dev.bdf == target or dev.driver is None or is_vfio_driver(dev.driver):
            continue
        if legacy:
            if dev.driver in LEGACY_ALLOWED_DRIVERS or dev.is_bridge:
                continue
        elif dev.driver in DMA_SAFE_DRIVERS:
            continue
        problems.append(f"{dev.bdf} ({dev.ids}) is bound to `{dev.driver}`")
    return problems


def kernel_release(sysfs_root: SysfsLike = Path("/")) -> tuple[int, int] | None:
    """(major, minor) from `<root>/proc/sys/kernel/osrelease`; None if unknown."""
    fs = _as_sysfs(sysfs_root)
    text = fs.read_text(fs.root / "proc/sys/kernel/osrelease")
    m = re.match(r"^(\d+)\.(\d+)", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def iommu_group(bdf: str, sysfs_root: SysfsLike = Path("/")) -> int | None:
    """The IOMMU group number of a device, None when it has none.

    Raises:
        DeviceError: malformed or missing BDF.
    """
    return get_device(bdf, sysfs_root).iommu_group


def group_devices(group: int, sysfs_root: SysfsLike = Path("/")) -> list[str]:
    """BDFs of the PCI devices in an IOMMU group, sorted.

    Reads `/sys/kernel/iommu_groups/<group>/devices/`, whose entries are named after
    the devices (Documentation/ABI/testing/sysfs-kernel-iommu_groups).

    Raises:
        DeviceError: no such group.
    """
    fs = _as_sysfs(sysfs_root)
    d = fs.iommu_group_dir(group) / "devices"
    try:
        names = [p.name for p in d.iterdir()]
    except (FileNotFoundError, NotADirectoryError) as e:
        raise DeviceError(f"No IOMMU group {group}: {d} does not exist") from e
    out: list[str] = []
    for name in names:
        try:
            out.append(normalise_bdf(name))
        except DeviceError:
            _log.debug("IOMMU group %d: ignoring non-PCI member %s", group, name)
    return sorted(out)


def check_viable(bdf: str, sysfs_root: SysfsLike = Path("/"), *,
                 pci_ids: PciIds | None = None) -> None:
    """Succeed when the device's IOMMU group may be opened through VFIO.

    Raises:
        DeviceError: malformed/missing BDF; the device has no IOMMU group (IOMMU off);
            or another device of the group is bound to a kernel driver that does DMA
            (the message names each such device and its driver).
    """
    fs = _as_sysfs(sysfs_root)
    dev = get_device(bdf, fs, pci_ids=pci_ids)
    if dev.iommu_group is None:
        err = DeviceError(f"PCI device {dev.bdf} has no IOMMU group: {NO_IOMMU_GROUP_HINT}")
        raise err
    members: list[PciDevice] = []
    for member in group_devices(dev.iommu_group, fs):
        if member == dev.bdf:
            continue
        try:
            members.append(get_device(member, fs, pci_ids=pci_ids))
        except DeviceError:
            if fs.device_dir(member).is_dir():
                raise
            _log.info("IOMMU group %d: %s vanished while checking", dev.iommu_group, member)
    problems = viability_problems(dev.bdf, members, kernel=kernel_release(fs))
    if problems:
        err = DeviceError(
            f"IOMMU group {dev.iommu_group} of {dev.bdf} is not viable: "
            + "; ".join(problems)
            + " (every device in the group must be unbound or bound to vfio-pci or pci-stub)"
        )
        err.hint = "bind the other devices too (udriver bind BDF) or unbind them"
        raise err
