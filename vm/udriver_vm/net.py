"""A guest with two 82574s (QEMU `e1000e`) on one QEMU hub: one for the kernel, one for udriver.

`net_guest(kernel)` boots it; the kernel's NIC gets `e1000e.ko` (from the guest kernel's
own modules, bind-mounted by the harness), the udriver NIC is bound to vfio-pci first so
the kernel driver never claims it. Both sit on hub 0 (`-netdev hubport`): a frame one
sends reaches the other and nothing leaves the guest. `install_e1000e(target)` builds
drivers/e1000e into a directory for PYTHONPATH (as `_nvme.install_nvme` does).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._paths import checkout_root
from .harness import Guest

ROOT = checkout_root()
E1000E_PROJECT = ROOT / "drivers" / "e1000e"

KERNEL_MAC, UDRIVER_MAC = "52:54:00:00:10:0a", "52:54:00:00:11:0b"
KERNEL_BDF, UDRIVER_BDF = "0000:00:10.0", "0000:00:11.0"
NIC_IDS = {"kernel": "nick", "udriver": "nicu"}
"""QMP ids of the two NICs (`set_link`, `device_del`)."""
NETDEV_IDS = {"kernel": "hk", "udriver": "hu"}

__all__ = ["E1000E_PROJECT", "HOTPLUG_BDF", "KERNEL_BDF", "KERNEL_MAC", "NETDEV_IDS", "NIC_IDS", "UDRIVER_BDF",
           "UDRIVER_MAC", "install_e1000e", "net_guest", "net_qemu_args", "udriver_nic_props"]


def install_e1000e(target: Path) -> Path:
    """Install the e1000e driver package into `target` (a directory for PYTHONPATH)."""
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-deps", "--no-build-isolation", "--target", str(target),
                    str(E1000E_PROJECT)], check=True, capture_output=True)
    return target


HOTPLUG_BDF = "0000:01:00.0"
"""The udriver NIC's address behind root port rp1 (`hotplug=True`): device_del works there."""


def net_qemu_args(hotplug: bool = False, plug_udriver: bool = True) -> list[str]:
    """Two e1000e on hub 0, at fixed slots on the root bus (one IOMMU group each); with
    `hotplug` the udriver NIC sits behind root port rp1 instead, so it can be unplugged.
    Without `plug_udriver` only its hub port is made: `device_add` it later with
    `udriver_nic_props()`."""
    args: list[str] = []
    for who, mac, slot in (("kernel", KERNEL_MAC, 0x10), ("udriver", UDRIVER_MAC, 0x11)):
        where = "bus=rp1" if hotplug and who == "udriver" else f"addr={slot:#x}"
        args += ["-netdev", f"hubport,id={NETDEV_IDS[who]},hubid=0"]
        if who == "kernel" or plug_udriver:
            args += ["-device", (f"e1000e,netdev={NETDEV_IDS[who]},mac={mac},"
                                 f"id={NIC_IDS[who]},{where}")]
    return args


def udriver_nic_props(bus: str = "rp1") -> dict[str, Any]:
    """QMP `device_add` arguments of the udriver NIC on its hub port (see `net_qemu_args`)."""
    return {"driver": "e1000e", "netdev": NETDEV_IDS["udriver"], "mac": UDRIVER_MAC,
            "id": NIC_IDS["udriver"], "bus": bus}


SETUP = """
set -e
echo vfio-pci > /sys/bus/pci/devices/{u}/driver_override
modprobe vfio-pci
echo {u} > /sys/bus/pci/drivers_probe
[ "$(basename $(readlink /sys/bus/pci/devices/{u}/driver))" = vfio-pci ]
modprobe e1000e
for i in $(seq 100); do [ -d /sys/bus/pci/devices/{k}/net ] && break; sleep 0.1; done
ls /sys/bus/pci/devices/{k}/net
"""


@contextmanager
def net_guest(kernel: str, site: Path, *, mem_mb: int = 1024,
              hotplug: bool = False) -> Iterator[tuple[Guest, str]]:
    """Boot the two-NIC guest; yields (guest, the kernel NIC's interface name)."""
    import shutil

    with Guest(kernel=kernel, devices=(), root_ports=1 if hotplug else 0, mem_mb=mem_mb,
               qemu_args=net_qemu_args(hotplug)) as g:
        shutil.copytree(site, g.workdir / "site")
        u = HOTPLUG_BDF if hotplug else UDRIVER_BDF
        r = g.run(SETUP.format(u=u, k=KERNEL_BDF), timeout=90, check=True)
        yield g, r.stdout.split()[-1]
