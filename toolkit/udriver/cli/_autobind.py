"""`udriver autobind`: udev's hook for PCI `add`/`remove` events, and rule generation."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

HELP = "hand a hot-plugged device to its driver (run by udev); --update-rules rewrites the rules"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bdf", nargs="?", metavar="BDF", help="PCI address ($kernel in udev rules)")
    p.add_argument("--driver", metavar="NAME", help="the installed driver udev matched")
    p.add_argument("--action", choices=("add", "remove"),
                   default=os.environ.get("ACTION", "add"),
                   help="udev action [env: ACTION, default add]")
    p.add_argument("--foreground", action="store_true",
                   help="do the work now instead of in a detached worker (udev kills slow "
                        "RUN programs, so it detaches by default)")
    p.add_argument("--worker", action="store_true",
                   help="like --foreground, with output appended to <run>/log/<BDF>.log (udev "
                        "rules start it through `setsid -f`)")
    p.add_argument("--match-installed", action="store_true",
                   help="no --driver: take it from the installed drivers' ID tables, as the "
                        "udev rules do (udriver-autobind@.service uses this)")
    p.add_argument("--update-rules", action="store_true",
                   help="regenerate the udev rules for the installed drivers and exit")
    p.add_argument("--install-unit", type=Path, metavar="DIR", nargs="?",
                   const=Path("/etc/systemd/system"),
                   help="write the udriver@.service and udriver-autobind@.service template "
                        "units into DIR (default /etc/systemd/system) and exit")
    p.add_argument("--rules-file", type=Path, metavar="PATH",
                   help="rules file (default /etc/udev/rules.d/60-udriver.rules) "
                        "[env: UDRIVER_UDEV_RULES]")


def main(args: argparse.Namespace) -> int:
    from .. import supervise
    from ..errors import DeviceError
    if args.install_unit is not None:
        for path in supervise.install_unit(args.install_unit):
            print(f"wrote {path}")
        return 0
    if args.update_rules:
        path = supervise.write_rules(args.rules_file)
        print(f"wrote {path}")
        return 0
    if not args.bdf:
        raise DeviceError("no device given: `udriver autobind [--driver NAME] BDF`")
    # Where the work runs (systemd unit, detached worker, here) is hotplug's choice.
    return supervise.autobind(args.bdf, action=args.action, driver=args.driver,
                              foreground=args.foreground, worker=args.worker,
                              match_installed=args.match_installed,
                              root=Path(os.environ.get("UDRIVER_SYSFS_ROOT") or "/"))
