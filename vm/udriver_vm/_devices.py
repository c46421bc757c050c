"""PCI devices of a guest seen from the host: list edu devices, hot-add NVMe, undo a test.

What :meth:`Guest.reset_devices` undoes, in this order (PCI hotplug on a
``pcie-root-port`` is asynchronous: QEMU's ``device_del`` only asks the guest to release
the slot, PCIe base spec 6.7.1.5, attention button / hot-plug surprise):

1. ``device_del`` every device added through ``device_add`` and not removed yet;
2. wait until QMP ``query-pci`` no longer lists them (bounded by a timeout);
3. ``blockdev-del`` the backends of hot-added NVMe controllers, now unused;
4. unbind every edu left from its driver and clear its ``driver_override``
   (Documentation/ABI/testing/sysfs-bus-pci).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import GuestError, GuestTimeout

if TYPE_CHECKING:
    from .harness import Guest

__all__ = ["edu_bdfs", "hotplug_nvme", "pci_devices", "reset_devices"]

_EDU = '[ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x11e8 ]'
"""Shell test: ``$d`` is a QEMU edu device (vendor 1234, device 11e8)."""


def _args(arguments: dict[str, Any]) -> dict[str, Any]:
    """QMP arguments with dashed names, typed for ``**`` into :meth:`Guest.qmp`."""
    return arguments


def edu_bdfs(g: Guest) -> list[str]:
    """Return the PCI addresses of the guest's edu devices, read from its /sys, sorted.

    Raises:
        GuestCommandError: the listing failed in the guest.
    """
    r = g.run(f"cd /sys/bus/pci/devices && for d in *; do {_EDU} && echo $d; done; true",
              timeout=30, check=True)
    return sorted(r.stdout.split())


def pci_devices(g: Guest) -> list[dict[str, Any]]:
    """Every PCI device QEMU reports (QMP ``query-pci``), behind bridges too."""
    devs: list[dict[str, Any]] = []

    def walk(bus: dict[str, Any]) -> None:
        for d in bus.get("devices", []):
            devs.append(d)
            bridge = d.get("pci_bridge", {})
            if "bus" in bridge:
                walk(bridge["bus"])

    for bus in g.qmp("query-pci").get("return", []):
        walk(bus)
    return devs


def reset_devices(g: Guest, hotplugged: list[str], blockdevs: list[str], timeout: float) -> None:
    """Steps 1-4 of the module docstring; empties ``hotplugged`` and ``blockdevs``.

    Raises:
        GuestTimeout: a device did not go away within ``timeout`` s.
    """
    for dev_id in list(hotplugged):
        g.qmp("device_del", id=dev_id)
    deadline = time.monotonic() + timeout
    while hotplugged:
        if time.monotonic() > deadline:
            raise GuestTimeout(f"hot-added devices {hotplugged} not removed")
        present = {d.get("qdev_id") for d in pci_devices(g)}
        hotplugged[:] = [d for d in hotplugged if d in present]
        time.sleep(0.2)
    for node in blockdevs:  # backends of hot-added nvme devices, now unused
        g.qmp("blockdev-del", **_args({"node-name": node}))
    blockdevs.clear()
    g.run(
        f"for d in /sys/bus/pci/devices/*; do {_EDU} || continue; "
        '[ -e $d/driver ] && echo ${d##*/} > $d/driver/unbind; '
        "echo > $d/driver_override; done; true",
        timeout=timeout,
        check=True,
    )


def hotplug_nvme(g: Guest, blockdevs: list[str], path: str | Path, dev_id: str, bus: str,
                 serial: str) -> None:
    """QMP ``blockdev-add`` (node ``<dev_id>-blk``, recorded in ``blockdevs``), then
    ``device_add nvme`` on root port ``bus``.

    Raises:
        GuestError: QEMU refused either command.
    """
    node = f"{dev_id}-blk"
    reply = g.qmp("blockdev-add", **_args({"driver": "raw", "node-name": node,
                                           "file": {"driver": "file", "filename": str(path)}}))
    if "error" in reply:
        raise GuestError(f"blockdev-add {path}: {reply['error']}")
    blockdevs.append(node)
    reply = g.qmp("device_add", driver="nvme", bus=bus, id=dev_id, serial=serial, drive=node)
    if "error" in reply:
        raise GuestError(f"device_add nvme {dev_id}: {reply['error']}")
