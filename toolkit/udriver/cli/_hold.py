"""`udriver hold DRIVER...`: keep drivers at their version when `udriver update` runs."""

from __future__ import annotations

import argparse

from ._clientopts import add_json_option, print_json

__all__ = ["HELP", "add_arguments", "main"]

HELP = "keep drivers at their installed version (udriver update leaves them)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("drivers", nargs="+", metavar="DRIVER")
    add_json_option(p)


def main(args: argparse.Namespace, held: bool = True) -> int:
    from ..client import DriverStore
    from ..errors import InstallError

    store = DriverStore()
    for d in args.drivers:  # every name checked before anything changes
        info = store.get(d)
        if info is None or info.current is None:
            raise InstallError(f"driver {d!r} is not installed")
    changed = {d: store.hold(d, held) for d in args.drivers}
    word = "held" if held else "not held"
    if args.json:
        print_json([{"driver": d, "held": held, "changed": c} for d, c in changed.items()])
    else:
        for d, c in changed.items():
            print(f"{d} {'is now' if c else 'was already'} {word}")
    return 0
