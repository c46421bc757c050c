"""`udriver status`: installed drivers and what happened to each device."""

from __future__ import annotations

import argparse

from ..client import DriverStore, read_status
from ..errors import ConfigError
from ..paths import state_dir
from ._clientopts import add_json_option, print_json

__all__ = ["HELP", "add_arguments", "main"]

HELP = "show installed drivers, bound devices and failures"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_json_option(p)


def main(args: argparse.Namespace) -> int:
    """Print the installed drivers and the devices' records.

    Raises:
        ConfigError: the state directory is something else than a directory (it said "no
            drivers installed", which hid a mistyped UDRIVER_STATE_DIR).
    """
    state = state_dir()
    if state.exists() and not state.is_dir():
        err = ConfigError(f"the udriver state directory is not a directory: '{state}'")
        err.hint = "UDRIVER_STATE_DIR names it (default /var/lib/udriver)"
        raise err
    drivers = DriverStore().installed()
    devices = read_status()
    if args.json:
        print_json({"drivers": [{"driver": d.driver, "current": d.current,
                                 "previous": d.previous, "versions": d.versions,
                                 "held": d.held}
                                for d in drivers],
                    "devices": devices})
        return 0
    if not drivers:
        print("no drivers installed")
    for d in drivers:
        prev = f" (previous {d.previous})" if d.previous else ""
        held = "  held" if d.held else ""
        print(f"{d.driver} {d.current or '(none current)'}{prev}{held}")
    for bdf, rec in devices.items():
        line = f"{bdf}  {rec.get('driver') or '-'} {rec.get('version') or ''}".rstrip()
        line += f"  {rec.get('state', 'unknown')}"
        if rec.get("pid"):
            line += f" pid {rec['pid']}"
        if rec.get("reason"):
            line += f": {rec['reason']}"
        print(line)
    return 0
