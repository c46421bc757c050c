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
    from ..errors import DeviceError
    from ..supervise import _autobind, _udev
    if args.install_unit is not None:
        from ..supervise._systemd import install_unit
        for path in install_unit(args.install_unit):
            print(f"wrote {path}")
        return 0
    if args.update_rules:
        path = _udev.write_rules(args.rules_file)
        print(f"wrote {path}")
        return 0
    if not args.bdf:
        raise DeviceError("no device given: `udriver autobind [--driver NAME] BDF`")
    if args.action == "remove":
        return _autobind.remove_device(args.bdf)
    _autobind.ensure_path()
    if args.worker:
        _autobind.redirect_output(args.bdf)
    elif not args.foreground:
        if _autobind.systemd_running():
            # Under systemd the work happens in udriver-autobind@<BDF>.service, never in
            # udev's confined, short-lived RUN environment (see supervise._udev).
            return _autobind.start_autobind_unit(args.bdf)
        pid = _autobind.detach_add(args.bdf, args.driver)
        print(f"{args.bdf}: autobind worker {pid}, log {_autobind.log_path(args.bdf)}")
        return 0
    root = Path(os.environ.get("UDRIVER_SYSFS_ROOT") or "/")
    return _autobind.add_device(args.bdf, args.driver, root=root,
                                match_installed=args.match_installed)
