"""`udriver run`: run one driver on one device until SIGTERM.

Started as root, it never runs a driver as root: it opens the device's VFIO container
and group, drops to the device's own uid with no capabilities (the same steps as
`udriver supervise`, `udriver.supervise._privsep`) and execs itself unprivileged with
the two fds. Started as another user, it runs the driver in place. A driver whose manifest
declares a kernel bridge is not exec'd in place: the root process stays its privileged
parent (`udriver.supervise._privsep`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import ConfigError
from . import env_option

HELP = "run a driver on a PCI device bound to vfio-pci (until SIGTERM)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    env_option(p, "--device", env="UDRIVER_DEVICE", required=False, metavar="BDF",
               help="PCI address, e.g. 0000:00:03.0")
    env_option(p, "--driver", env="UDRIVER_DRIVER", required=False, metavar="NAME",
               help="entry-point name in group `udriver.drivers`, e.g. edu")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="pass an option to the driver (repeatable)")
    p.add_argument("--once", action="store_true",
                   help="remove the driver and exit when its main task finishes")
    p.add_argument("--container-fd", type=int, metavar="FD",
                   help="already-open /dev/vfio/vfio fd from a privileged parent")
    p.add_argument("--group-fd", type=int, metavar="FD",
                   help="already-open /dev/vfio/N fd from a privileged parent")
    p.add_argument("--bridge-fd", type=int, metavar="FD",
                   help="the kernel-bridge control channel from a privileged parent")


def _options(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"`--option` must be KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def installed_driver_names() -> list[str]:
    """Every driver name this machine offers: `udriver install`ed and .deb-installed
    drivers (`udriver.paths.driver_search_path`, what `udriver status` lists) and entry
    points on sys.path (development installs)."""
    import importlib.metadata as md

    from ..manifest import ENTRY_POINT_GROUP
    from ..paths import driver_search_path

    names: set[str] = set()
    for where in [*([str(d)] for d in driver_search_path()), None]:
        dists = md.distributions(path=where) if where is not None else md.distributions()
        for dist in dists:
            names.update(ep.name for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP)
    return sorted(names)


def main(args: argparse.Namespace) -> int:
    from ..runtime.runner import run_driver

    if not args.device:
        raise ConfigError("`--device` is required (or set UDRIVER_DEVICE)")
    if not args.driver:
        raise ConfigError("`--driver` is required (or set UDRIVER_DRIVER)")
    if (args.container_fd is None) != (args.group_fd is None):
        raise ConfigError("`--container-fd` and `--group-fd` must be given together")
    options = _options(args.option)
    if os.geteuid() == 0:
        from ..supervise import run_as_device_user
        if args.container_fd is not None or args.bridge_fd is not None:
            from ..supervise import PrivilegeError
            err = PrivilegeError(f"refusing to run driver {args.driver!r} as root: "
                                 f"`--container-fd`/`--group-fd`/`--bridge-fd` are for the unprivileged "
                                 f"process a privileged parent starts (uid 0 here)")
            err.hint = ("run `udriver run` as root without them (it drops to the device's "
                        "uid after opening it), or use `udriver supervise` or "
                        "udriver@<BDF>.service")
            raise err
        extra = [a for k, v in options.items() for a in ("--option", f"{k}={v}")]
        rc = run_as_device_user(args.device, args.driver,
                                extra + (["--once"] if args.once else []),
                                root=Path(os.environ.get("UDRIVER_SYSFS_ROOT") or "/"))
        return rc  # only with a kernel bridge: this process was the driver's parent
    try:
        return run_driver(args.device, args.driver, options=options, once=args.once,
                          container_fd=args.container_fd, group_fd=args.group_fd,
                          bridge_fd=args.bridge_fd)
    except ConfigError as e:
        # The runtime's hint listed sys.path's drivers only ("none" while `udriver status`
        # listed one): name every installed driver, from the directories it searched too.
        if e.hint is not None and e.hint.startswith("installed drivers:"):
            e.hint = (f"installed drivers: {', '.join(installed_driver_names()) or 'none'} "
                      "(`udriver status` lists them)")
        raise
