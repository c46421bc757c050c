"""The `udriver` command line.

Each command is a small module `udriver.cli._<name>` with:

    HELP: str                                  one line for `udriver --help`
    def add_arguments(p: argparse.ArgumentParser) -> None
    def main(args: argparse.Namespace) -> int  calls a plain library function

Results go to stdout, diagnostics to stderr. One top-level handler turns a
`UdriverError` into `error: <message>` (plus `hint: ...`) and exit status 1, Ctrl-C into
130, and lets anything unexpected keep its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from .. import __version__
from ..errors import UdriverError

__all__ = ["main", "build_parser", "env_option"]

# name -> module. A module that does not exist yet is left out of the parser.
_COMMANDS: dict[str, str] = {
    "devices": "udriver.cli._devices",
    "bind": "udriver.cli._bind",
    "unbind": "udriver.cli._unbind",
    "run": "udriver.cli._run",
    "new": "udriver.cli._new",
    "build": "udriver.cli._build",
    "check": "udriver.cli._check",
    "repo": "udriver.cli._repo",
    "search": "udriver.cli._search",
    "show": "udriver.cli._show",
    "install": "udriver.cli._install",
    "remove": "udriver.cli._remove",
    "update": "udriver.cli._update",
    "rollback": "udriver.cli._rollback",
    "status": "udriver.cli._status",
    "supervise": "udriver.cli._supervise",
    "autobind": "udriver.cli._autobind",
}


def env_option(parser: argparse.ArgumentParser, *flags: str, env: str, help: str,
               **kwargs: object) -> None:
    """Add an option whose default comes from environment variable `env`; help says so."""
    default = os.environ.get(env, kwargs.pop("default", None))
    parser.add_argument(*flags, default=default, help=f"{help} [env: {env}]", **kwargs)  # type: ignore[arg-type]


def _load(module: str) -> ModuleType | None:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="udriver",
        description="Write, build, install and run user-mode PCI drivers over VFIO.",
    )
    parser.add_argument("--version", action="version", version=f"udriver {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more diagnostics on stderr (repeat for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, modname in _COMMANDS.items():
        mod = _load(modname)
        if mod is None:
            continue
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        return int(args._main(args))
    except UdriverError as e:
        print(f"error: {e}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 141


def run() -> None:
    sys.exit(main())
