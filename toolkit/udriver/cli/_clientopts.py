"""Shared plumbing for the client's CLI commands (options, progress bar, output).

Library code logs and never prints; the CLI modules (`udriver.cli._<name>`) use these
helpers to build a `Client` from their options and to print results or JSON. It reaches
the client only through `udriver.client`'s public names (the CLI sits above it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import IO, TYPE_CHECKING, Any

from .._log import getLogger
from . import env_option

if TYPE_CHECKING:
    from ..client import Client
    from ..client._fetcher import Progress
    from ..modalias import Modalias

__all__ = [
    "add_client_options",
    "add_json_option",
    "devices",
    "make_client",
    "print_json",
    "terminal_progress",
]

log = getLogger(__name__)


def add_json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def add_client_options(p: argparse.ArgumentParser, *, sysfs: bool = True) -> None:
    """`--offline`, `--json` and (optionally) `--sysfs-root`."""
    p.add_argument("--offline", action="store_true",
                   default=os.environ.get("UDRIVER_OFFLINE", "") not in ("", "0"),
                   help="use only cached, unexpired repository metadata [env: UDRIVER_OFFLINE]")
    add_json_option(p)
    if sysfs:
        env_option(p, "--sysfs-root", env="UDRIVER_SYSFS_ROOT", default="/", metavar="DIR",
                   help="read DIR/sys instead of /sys")


def devices(args: argparse.Namespace) -> dict[str, Modalias]:
    from pathlib import Path

    from ..client import local_devices
    return local_devices(Path(getattr(args, "sysfs_root", None) or "/"))


def make_client(args: argparse.Namespace) -> Client:
    from ..client import Client
    progress = None if getattr(args, "json", False) else terminal_progress()
    return Client(offline=bool(getattr(args, "offline", False)), progress=progress)


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True))


def terminal_progress(stream: IO[str] | None = None) -> Progress | None:
    """A download progress bar on `stream` (stderr), or None when it is not a terminal.

    Honours NO_COLOR (https://no-color.org): the bar is drawn without colour then.
    """
    out = stream or sys.stderr
    if not out.isatty() or os.environ.get("TERM") == "dumb":
        return None
    color = not os.environ.get("NO_COLOR")

    def progress(url: str, got: int, total: int | None, done: bool) -> None:
        name = url.rsplit("/", 1)[-1].split(".", 1)[-1][:40]
        if total:
            frac = min(got / total, 1.0)
            bar = "#" * int(frac * 30)
            if color:
                bar = f"\033[32m{bar}\033[0m"
            line = f"\r{name:40} [{bar}{' ' * (30 - int(frac * 30))}] {got // 1024:>7} KiB"
        else:
            line = f"\r{name:40} {got // 1024:>7} KiB"
        out.write(line + ("\n" if done else ""))
        out.flush()

    return progress
