"""`udriver devices`: list the PCI devices of this machine (a table, or `--json`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from ..cli import env_option
from ..errors import DeviceError
from ..pci import PciDevice, list_devices

__all__ = [
    "HELP",
    "add_arguments",
    "add_sysfs_root_option",
    "display_name",
    "format_table",
    "main",
    "sysfs_root",
]

HELP = "list PCI devices: address, IDs, class, bound driver, IOMMU group and name"


def add_sysfs_root_option(p: argparse.ArgumentParser) -> None:
    """`--sysfs-root DIR`: read (and write) DIR/sys instead of /sys, for tests and snapshots."""
    env_option(p, "--sysfs-root", env="UDRIVER_SYSFS_ROOT", default="/", metavar="DIR",
               help="filesystem root whose sys/ (and dev/) to use instead of / ")


def sysfs_root(args: argparse.Namespace) -> Path:
    return Path(args.sysfs_root or "/")


def display_name(dev: PciDevice) -> str:
    """lspci-style "class: vendor device", with hex IDs where pci.ids has no name."""
    n = dev.names
    if n is None:
        return "-"
    vendor = n.vendor or f"Vendor {dev.vendor:04x}"
    device = n.device or f"Device {dev.device:04x}"
    cls = n.class_name or f"Class {dev.class_code >> 8:04x}"
    return f"{cls}: {vendor} {device}"


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for r in [header, *rows]:
        cells = [c.ljust(w) for c, w in zip(r, widths)] + [r[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true",
                   help="print a JSON list with every field of every device")
    p.add_argument("--refresh", action="store_true",
                   help="refresh repository metadata first (default: use the cache only)")
    add_sysfs_root_option(p)


def _driver_cell(d: dict[str, str] | None) -> str:
    return f"{d['driver']} {d['version']}".strip() if d else "-"


def main(args: argparse.Namespace) -> int:
    from ..client import annotate  # not at import time: `udriver bind` shares this module

    root = sysfs_root(args)
    if not (root / "sys/bus/pci/devices").is_dir():
        err = DeviceError(f"No PCI devices directory under the sysfs root: "
                          f"{str(root / 'sys/bus/pci/devices')!r}")
        err.hint = ("is sysfs mounted? `--sysfs-root` (or UDRIVER_SYSFS_ROOT) names the "
                    "directory that holds sys/, / by default")
        raise err
    devices = list_devices(root)
    # Installed and available drivers per device: resolved through the cached, verified
    # per-vendor indexes (no network unless --refresh).
    drivers = annotate({d.bdf: d.modalias for d in devices}, refresh=args.refresh)
    if args.json:
        print(json.dumps([{**d.to_json(), **drivers[d.bdf]} for d in devices], indent=2))
        return 0
    rows = [[d.bdf, d.ids, f"{d.class_code:06x}", d.driver or "-",
             "-" if d.iommu_group is None else str(d.iommu_group),
             _driver_cell(drivers[d.bdf]["installed"]), _driver_cell(drivers[d.bdf]["available"]),
             display_name(d)]
            for d in devices]
    print(format_table(["BDF", "IDS", "CLASS", "DRIVER", "IOMMU", "INSTALLED", "AVAILABLE",
                        "NAME"], rows))
    return 0
