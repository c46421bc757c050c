"""`udriver unbind BDF`: undo `udriver bind`; the kernel's own driver (if any) takes it back."""

from __future__ import annotations

import argparse
import json

from ..pci import unbind
from ._devices import add_sysfs_root_option, sysfs_root

__all__ = ["HELP", "add_arguments", "main"]

HELP = "release a PCI device from vfio-pci and give it back to its kernel driver"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bdf", metavar="BDF", help="PCI address, e.g. 0000:00:03.0")
    p.add_argument("--json", action="store_true", help="print the device afterwards as JSON")
    add_sysfs_root_option(p)


def main(args: argparse.Namespace) -> int:
    from ..pci import forget_bind, persisted_binds, persisted_rules_path

    dev = unbind(args.bdf, sysfs_root=sysfs_root(args))
    # A persisted bind would take the device again at the next boot: unbind ends it too.
    forgot = dev.bdf in persisted_binds() and forget_bind(dev.bdf)
    note = f"; persistent bind removed from {persisted_rules_path()}" if forgot else ""
    if args.json:
        print(json.dumps(dev.to_json(), indent=2))
    elif dev.driver is None:
        print(f"{dev.bdf}: unbound (no driver){note}")
    else:
        print(f"{dev.bdf}: bound to {dev.driver}{note}")
    return 0
