"""`udriver remove DRIVER...`: remove every installed version of drivers."""

from __future__ import annotations

import argparse

from ..client import DriverStore
from ..supervise import sync_udev_rules
from ._clientopts import add_json_option, print_json

__all__ = ["HELP", "add_arguments", "main"]

HELP = "remove installed drivers (all their versions)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("drivers", nargs="+", metavar="DRIVER")
    add_json_option(p)


def main(args: argparse.Namespace) -> int:
    store = DriverStore()
    out = {d: store.remove(d) for d in args.drivers}
    sync_udev_rules()
    if args.json:
        print_json(out)
        return 0
    for d, versions in out.items():
        print(f"removed {d} ({', '.join(versions)})")
    return 0
