"""`udriver install [DRIVER...] [--auto] [--device BDF...] [--wheel FILE]`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DeviceError, InstallError
from ..supervise import sync_udev_rules
from ._clientopts import add_client_options, devices, make_client, print_json

if TYPE_CHECKING:
    from ..client import InstallResult

__all__ = ["HELP", "add_arguments", "describe", "main"]

HELP = "install drivers from the signed repositories (verified, atomic)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("drivers", nargs="*", metavar="DRIVER[==VERSION]",
                   help="drivers to install (by driver or package name)")
    p.add_argument("--auto", action="store_true",
                   help="install the best driver for every local device that has none")
    p.add_argument("--device", action="append", default=[], metavar="BDF",
                   help="install the best driver for this device (repeatable)")
    p.add_argument("--wheel", type=Path, metavar="FILE",
                   help="install a local driver wheel (its RECORD and ID table are still checked)")
    add_client_options(p)


def describe(r: InstallResult) -> str:
    if not r.changed:
        return f"{r.driver} {r.version} is already installed"
    was = f" (was {r.previous})" if r.previous else ""
    src = f" from {r.repo}" if r.repo else ""
    devs = f" for {', '.join(r.devices)}" if r.devices else ""
    return f"installed {r.driver} {r.version}{was}{src}{devs}"


def main(args: argparse.Namespace) -> int:
    if not (args.drivers or args.auto or args.device or args.wheel):
        raise InstallError("nothing to install: name drivers, or use --auto, --device or --wheel")
    client = make_client(args)
    local = devices(args)
    results: list[InstallResult] = []
    if args.wheel:
        results.append(client.install_local_wheel(args.wheel))
    if args.device:
        from ..pci import normalise_bdf  # the one grammar, as `bind` and `run` read it
        wanted = [normalise_bdf(b) for b in args.device]
        unknown = [b for b in wanted if b not in local]
        if unknown:
            raise DeviceError(f"no such PCI device: {', '.join(unknown)} "
                              f"(present: {', '.join(local) or 'none'})")
        results += client.install_for_devices({b: local[b] for b in wanted})
    for spec in args.drivers:
        results.append(client.install_entry(client.find(spec, local)))
    if args.auto:
        results += client.install_auto(local)
    if any(r.changed for r in results):
        sync_udev_rules()
    if args.json:
        print_json([r.to_dict() for r in results])
    elif not results:
        print("nothing to install")
    for r in results if not args.json else ():
        print(describe(r))
    return 0
