"""`udriver run`: run one driver on one device until SIGTERM."""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from . import env_option

HELP = "run a driver on a PCI device bound to vfio-pci (until SIGTERM)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    env_option(p, "--device", env="UDRIVER_DEVICE", required=False, metavar="BDF",
               help="PCI address, e.g. 0000:00:03.0")
    env_option(p, "--driver", env="UDRIVER_DRIVER", required=False, metavar="NAME",
               help="entry-point name in group `udriver.drivers`, e.g. edu")
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="pass an option to the driver (repeatable)")
    p.add_argument("--once", action="store_true",
                   help="remove the driver and exit when its main task finishes")
    p.add_argument("--container-fd", type=int, metavar="FD",
                   help="already-open /dev/vfio/vfio fd from a privileged parent")
    p.add_argument("--group-fd", type=int, metavar="FD",
                   help="already-open /dev/vfio/N fd from a privileged parent")


def _options(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"`--option` must be KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def main(args: argparse.Namespace) -> int:
    from ..runtime._runner import run_driver

    if not args.device:
        raise ConfigError("`--device` is required (or set UDRIVER_DEVICE)")
    if not args.driver:
        raise ConfigError("`--driver` is required (or set UDRIVER_DRIVER)")
    if (args.container_fd is None) != (args.group_fd is None):
        raise ConfigError("`--container-fd` and `--group-fd` must be given together")
    return run_driver(args.device, args.driver, options=_options(args.option), once=args.once,
                      container_fd=args.container_fd, group_fd=args.group_fd)
