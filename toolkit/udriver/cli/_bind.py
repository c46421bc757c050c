"""`udriver bind BDF`: hand a PCI device to vfio-pci (driverctl's steps, then verify)."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import DeviceError
from ..pci import VFIO_PCI, bind, check_viable, is_vfio_driver
from ._devices import add_sysfs_root_option, sysfs_root

__all__ = ["HELP", "add_arguments", "main"]

HELP = "bind a PCI device to vfio-pci so a user-mode driver can open it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bdf", metavar="BDF", help="PCI address, e.g. 0000:00:03.0")
    p.add_argument("--kernel-driver", dest="kernel_driver", default=VFIO_PCI, metavar="NAME",
                   help="the kernel driver to bind it to (default: vfio-pci); `--driver` "
                        "always means a udriver driver")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="seconds to wait for the driver to bind (default: 5)")
    p.add_argument("--persist", action="store_true",
                   help="keep it bound across reboots and replugs, as driverctl's overrides "
                        "do (a udev rule; `udriver unbind` removes it) [rules file: env "
                        "UDRIVER_BIND_RULES]")
    p.add_argument("--json", action="store_true", help="print the device afterwards as JSON")
    add_sysfs_root_option(p)


def main(args: argparse.Namespace) -> int:
    root = sysfs_root(args)
    dev = bind(args.bdf, args.kernel_driver, sysfs_root=root, timeout=args.timeout)
    kept = ""
    if args.persist:
        from ..pci import persist_bind
        kept = f"; kept across reboots ({persist_bind(dev.bdf, args.kernel_driver)})"
    if is_vfio_driver(dev.driver):
        try:
            check_viable(dev.bdf, root)
        except DeviceError as e:
            # Not an error yet: the other devices of the group may be bound next.
            print(f"warning: {e}", file=sys.stderr)
    if args.json:
        print(json.dumps(dev.to_json(), indent=2))
    elif dev.iommu_group is not None and is_vfio_driver(dev.driver):
        print(f"{dev.bdf}: bound to {dev.driver} (IOMMU group {dev.iommu_group}, "
              f"/dev/vfio/{dev.iommu_group}){kept}")
    else:
        print(f"{dev.bdf}: bound to {dev.driver}{kept}")
    return 0
