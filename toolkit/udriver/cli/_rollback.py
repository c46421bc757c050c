"""`udriver rollback DRIVER`: switch back to the previously current version."""

from __future__ import annotations

import argparse

from ..client import DriverStore
from ..supervise import sync_udev_rules
from ._clientopts import add_json_option, print_json

__all__ = ["HELP", "add_arguments", "main"]

HELP = "switch a driver back to its previous version"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("driver")
    add_json_option(p)


def main(args: argparse.Namespace) -> int:
    old, new = DriverStore().rollback(args.driver)
    sync_udev_rules()
    if args.json:
        print_json({"driver": args.driver, "from": old, "to": new, "held": True})
    else:
        print(f"rolled back {args.driver} from {old} to {new} "
              f"(held: `udriver unhold {args.driver}` lets update upgrade it again)")
    return 0
