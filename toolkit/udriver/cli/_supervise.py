"""`udriver supervise`: run one device's driver unprivileged, restart it, give up safely."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from . import env_option

HELP = "run and supervise the driver of one device (restarts with backoff; for systemd too)"
EPILOG = ("Gives up after UDRIVER_MAX_CRASHES (default 5) crashes within UDRIVER_CRASH_WINDOW "
          "(default 60) seconds: the device is unbound and `udriver status` says why.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    env_option(p, "--device", env="UDRIVER_DEVICE", required=False, metavar="BDF",
               help="PCI address of the device, e.g. 0000:01:00.0")
    p.add_argument("--driver", metavar="NAME",
                   help="driver to run (default: the runner picks the installed driver "
                        "that claims the device)")
    env_option(p, "--user", env="UDRIVER_DRIVER_USER", metavar="USER",
               help="user the driver runs as (default: a uid of the device's own, from "
                    "UDRIVER_DRIVER_UIDS, default 90000-99999)")
    p.add_argument("--no-bind", action="store_true",
                   help="the device is already bound to vfio-pci")
    p.add_argument("--stop-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="on SIGTERM, wait this long for the driver before SIGKILL (default 10)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--systemd-pre", action="store_true",
                      help="udriver@.service ExecStartPre: bind, unless we gave up on it")
    mode.add_argument("--systemd-exec", action="store_true",
                      help="udriver@.service ExecStart: open VFIO, drop root, exec the driver")
    mode.add_argument("--systemd-stop-post", action="store_true",
                      help="udriver@.service ExecStopPost: count crashes, unbind on give-up")


def main(args: argparse.Namespace) -> int:
    from .. import supervise
    from ..errors import DeviceError
    if not args.device:
        raise DeviceError("no device given: use `--device BDF` or set UDRIVER_DEVICE")
    root = Path(os.environ.get("UDRIVER_SYSFS_ROOT") or "/")
    if os.geteuid() != 0 and root == Path("/"):
        # Found before anything is touched: as an ordinary user the first write to sysfs
        # (or the VFIO open, or dropping to the driver's uid) fails half-way through.
        err = DeviceError(f"udriver supervise needs root: it binds {args.device} to "
                          f"vfio-pci, opens its VFIO group and starts the driver as an "
                          f"unprivileged user of its own (running as uid {os.geteuid()})")
        err.hint = ("run it as root (e.g. with sudo), or let systemd run it: "
                    f"`systemctl start udriver@{args.device}.service`")
        raise err
    if args.systemd_pre:
        return supervise.systemd_pre(args.device, root=root)
    if args.systemd_exec:
        return supervise.systemd_exec(args.device, args.driver, user=args.user, root=root)
    if args.systemd_stop_post:
        return supervise.systemd_stop_post(args.device, os.environ, root=root)
    return supervise.supervise(args.device, args.driver, bind=not args.no_bind, root=root,
                               user=args.user, stop_timeout=args.stop_timeout)
