"""The `udriver` command line.

Each command is a small module `udriver.cli._<name>`, listed in `_COMMANDS`, with:

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
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from .. import __version__, _log
from ..errors import UdriverError

__all__ = ["HelpFormatter", "build_parser", "complete", "dispatch", "env_option", "main",
           "man_page"]

# name -> (module, one-line help). Only the module of the command being run is imported,
# so `udriver devices` does not pay for the build toolchain's imports; the help text is
# kept here for `udriver --help` and checked against each module's HELP by the tests.
_COMMANDS: dict[str, tuple[str, str]] = {
    "devices": (
        "udriver.cli._devices",
        "list PCI devices: address, IDs, class, bound driver, IOMMU group and name",
    ),
    "bind": (
        "udriver.cli._bind",
        "bind a PCI device to vfio-pci so a user-mode driver can open it",
    ),
    "unbind": (
        "udriver.cli._unbind",
        "release a PCI device from vfio-pci and give it back to its kernel driver",
    ),
    "run": (
        "udriver.cli._run",
        "run a driver on a PCI device bound to vfio-pci (until SIGTERM)",
    ),
    "new": (
        "udriver.cli._new",
        "create a driver project from the template",
    ),
    "build": (
        "udriver.cli._build",
        "build a driver's wheel and .deb into dist/ (reproducible, checked)",
    ),
    "check": (
        "udriver.cli._check",
        "check built driver wheels and debs (exit 1 if any check fails)",
    ),
    "repo": (
        "udriver.cli._repo",
        "configure driver repositories (add, list, remove)",
    ),
    "search": (
        "udriver.cli._search",
        "search the repositories by PCI ID (1234, 1234:11e8, a modalias) or driver name",
    ),
    "show": (
        "udriver.cli._show",
        "show a driver: published versions, ABI, ID table, installed versions",
    ),
    "install": (
        "udriver.cli._install",
        "install drivers from the signed repositories (verified, atomic)",
    ),
    "remove": (
        "udriver.cli._remove",
        "remove installed drivers (all their versions)",
    ),
    "update": (
        "udriver.cli._update",
        "update installed drivers to their newest compatible versions",
    ),
    "rollback": (
        "udriver.cli._rollback",
        "switch a driver back to its previous version",
    ),
    "upload": (
        "udriver.cli._upload",
        "upload built driver wheels and debs to a repository server (vendors; token from env)",
    ),
    "hold": (
        "udriver.cli._hold",
        "keep drivers at their installed version (udriver update leaves them)",
    ),
    "unhold": (
        "udriver.cli._unhold",
        "release held drivers (udriver update upgrades them again)",
    ),
    "history": (
        "udriver.cli._history",
        "show what was installed, updated, rolled back, held or removed, when and why",
    ),
    "status": (
        "udriver.cli._status",
        "show installed drivers, bound devices and failures",
    ),
    "supervise": (
        "udriver.cli._supervise",
        "run and supervise the driver of one device (restarts with backoff; for systemd too)",
    ),
    "autobind": (
        "udriver.cli._autobind",
        "hand a hot-plugged device to its driver (run by udev); --update-rules rewrites the rules",
    ),
}




# The commands whose logging is set up only when first needed (`udriver._log`): they log
# nothing on most runs, and the only library they may load that logs through `logging`
# itself, python-tuf with urllib3, sets it up on import (`client/_remote`, `_fetcher`).
_DEFERRED_LOGGING = frozenset({"devices", "status", "search"})


def _columns() -> int:
    """The terminal's width as shutil.get_terminal_size gives it: $COLUMNS, else stdout's
    terminal, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, sized without importing shutil: argparse imports it for the
    terminal's width whenever a parser adds an argument, and shutil loads the bz2 and
    lzma libraries, a tenth of `udriver devices`' start-up. Every udriver parser uses it."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _columns() - 2 if width is None else width)


def env_option(parser: argparse.ArgumentParser, *flags: str, env: str, help: str,
               **kwargs: object) -> None:
    """Add an option whose default comes from environment variable `env`; help says so."""
    default = os.environ.get(env, kwargs.pop("default", None))
    parser.add_argument(*flags, default=default, help=f"{help} [env: {env}]", **kwargs)  # type: ignore[arg-type]


def _command_word(argv: Sequence[str]) -> str | None:
    """The subcommand in argv (top-level options are all flags), or None."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in _COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The full parser, or, given argv, one where only argv's command module is imported."""
    parser = argparse.ArgumentParser(
        prog="udriver", formatter_class=HelpFormatter,
        description="Write, build, install and run user-mode PCI drivers over VFIO.",
        epilog="Environment: UDRIVER_CONFIG_DIR (default /etc/udriver: repositories, "
               "credentials), UDRIVER_STATE_DIR (default /var/lib/udriver: installed drivers, "
               "metadata cache, history), UDRIVER_RUN_DIR (default /run/udriver); each "
               "command's options name their own variables.",
    )
    parser.add_argument("--version", action="version", version=f"udriver {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more diagnostics on stderr (repeat for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    wanted = None if argv is None else _command_word(argv)
    # `-v` works after the command word too (`udriver install -v acme`), as in apt and pip.
    verbose = argparse.ArgumentParser(add_help=False, formatter_class=HelpFormatter)
    verbose.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                         help="more diagnostics on stderr (repeat for debug)")
    for name, (modname, help_text) in _COMMANDS.items():
        # Given a known command, its parser alone: argparse builds (and gettext looks up
        # the messages of) twenty parsers otherwise, a fifth of `udriver devices`' time.
        # `udriver --help`, a mistyped command and completion get every one.
        if wanted is not None and name != wanted:
            continue
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[verbose],
                           formatter_class=HelpFormatter)
        if argv is not None and name != wanted:
            continue
        mod: ModuleType = importlib.import_module(modname)
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    return dispatch(args, args._main)


def dispatch(args: argparse.Namespace, command: Callable[[argparse.Namespace], int]) -> int:
    """Run `command` under the one top-level handler (shared with `udriver-repo`).

    Installs the stderr log formatter (`-v` repeatable), turns a `UdriverError` into
    `error: ...` (+ `hint: ...`) and exit status 1, a `PermissionError` (an ordinary user
    writing what needs root) into one such line too, Ctrl-C into 130, a closed stdout into
    141, and lets anything unexpected keep its traceback.
    """
    from ..client import MaskingFilter, mask_secrets, set_reason

    if isinstance(getattr(args, "command", None), str):  # why the store changes, for history
        set_reason(f"udriver {args.command}")
    level = _log.WARNING - 10 * min(args.verbose, 2)

    def setup() -> None:  # when logging is first needed (`udriver._log`)
        import logging
        logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
        for handler in logging.getLogger().handlers:  # credentials never reach a log line
            handler.addFilter(MaskingFilter())
        if args.verbose < 2:  # urllib3's "Retrying (Retry(total=2...))" lines are debug detail
            logging.getLogger("urllib3").setLevel(logging.ERROR)
    _log.configure(level, setup)
    if getattr(args, "command", None) not in _DEFERRED_LOGGING:
        _log.ready()
    try:
        return int(command(args))
    except UdriverError as e:
        print(f"error: {mask_secrets(str(e))}", file=sys.stderr)
        if e.hint:
            print(f"hint: {mask_secrets(e.hint)}", file=sys.stderr)
        return 1
    except PermissionError as e:
        # Writing /etc/udriver, /var/lib/udriver, sysfs or a unit as an ordinary user: a
        # mistake the user can fix, so one line, not a traceback.
        where = f": {mask_secrets(str(e.filename))!r}" if e.filename else ""
        print(f"error: permission denied{where}: this needs root", file=sys.stderr)
        print("hint: run it as root (e.g. with sudo); udriver's own files can also go to "
              "directories you own with UDRIVER_CONFIG_DIR and UDRIVER_STATE_DIR",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 141


def man_page(parser: argparse.ArgumentParser, prog: str, version: str, date: str) -> str:
    """The man page (section 1) of a command, written from its argparse parser
    (`_manpage`): `udriver`'s by setup.py, `udriver-repo`'s by repo-server's."""
    from ._manpage import render
    return render(parser, prog, version, date)


def complete(parser: argparse.ArgumentParser) -> None:
    """Answer a shell's completion request (argcomplete's protocol, `_complete`) from the
    whole `parser` and exit; return when the shell is not asking (`_ARGCOMPLETE` unset)."""
    if "_ARGCOMPLETE" in os.environ:
        from ._complete import complete as answer
        answer(parser)


# Cloud-KMS SDKs that securesystemslib's signer module imports whenever they are installed
# (its AWS, Azure, GCP, Vault, PKCS#11 and TKey signers). A udriver command signs nothing and
# verifies with python-tuf's ed25519 keys only; boto3 alone cost 300-600 ms of every
# repository command's start (issue 13). Blocked in the `udriver` process only, not for
# programs that import udriver as a library.
_UNUSED_SIGNER_SDKS = ("boto3", "botocore", "azure.core", "azure.identity", "azure.keyvault",
                       "google.cloud.kms", "hvac", "pkcs11", "keylet")


def run() -> None:
    """The `udriver` command."""
    for name in _UNUSED_SIGNER_SDKS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # import -> ImportError
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (argcomplete)
        complete(build_parser(None))
    sys.exit(main())
