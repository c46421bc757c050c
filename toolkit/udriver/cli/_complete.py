"""Shell completion for `udriver` through argcomplete, for pip and .deb users alike.

argcomplete (a library made for this, https://kislyuk.github.io/argcomplete/) completes
from the same argparse parser the command parses with, so subcommands and options cannot
drift from the CLI. On top of that, the values users type most are completed from this
machine:

- a PCI address (`bind BDF`, `--device BDF`): the devices under
  `<UDRIVER_SYSFS_ROOT or />/sys/bus/pci/devices`;
- an installed driver (`remove`, `hold`, `unhold`, `rollback`, `history`, `--driver`):
  what `udriver status` lists and the .deb-installed drivers;
- a configured repository (`repo remove NAME`): `<UDRIVER_CONFIG_DIR>/repos.d/*.json`.

Bash: `eval "$(register-python-argcomplete udriver)"` (the .deb and the wheel's data install
a completion file that does this). argcomplete is imported only while completing.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..paths import config_dir

__all__ = ["complete"]

# Positional arguments (by command, dest) that name an installed driver.
_INSTALLED_DRIVER_ARGS = {("remove", "drivers"), ("hold", "drivers"), ("unhold", "drivers"),
                          ("rollback", "driver"), ("history", "driver")}


def bdfs(prefix: str, **_: Any) -> list[str]:
    """The PCI addresses of this machine (sysfs), e.g. 0000:00:03.0."""
    root = Path(os.environ.get("UDRIVER_SYSFS_ROOT") or "/") / "sys/bus/pci/devices"
    try:
        return sorted(p.name for p in root.iterdir() if p.name.startswith(prefix))
    except OSError:
        return []


def installed_drivers(prefix: str, **_: Any) -> list[str]:
    """The drivers installed on this machine (`udriver install`, .deb, sys.path)."""
    from ._run import installed_driver_names
    return [n for n in installed_driver_names() if n.startswith(prefix)]


def repositories(prefix: str, **_: Any) -> list[str]:
    """The configured repositories' names."""
    try:
        names = [p.stem for p in (config_dir() / "repos.d").glob("*.json")]
    except OSError:
        return []
    return sorted(n for n in names if n.startswith(prefix))


def _attach(p: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sub in a.choices.items():
                _attach(sub, (*path, name))
            continue
        where = " ".join(path)
        if a.metavar == "BDF" or a.dest == "bdf":
            a.completer = bdfs  # type: ignore[attr-defined]
        elif "--driver" in a.option_strings or (where, a.dest) in _INSTALLED_DRIVER_ARGS:
            a.completer = installed_drivers  # type: ignore[attr-defined]
        elif (where, a.dest) == ("repo remove", "name"):
            a.completer = repositories  # type: ignore[attr-defined]


def complete(parser: argparse.ArgumentParser) -> None:
    """Answer a completion request (argcomplete's protocol) and exit; return otherwise.

    `parser` must be the whole parser (`build_parser(None)`).
    """
    import argcomplete  # imported only here: completion is its only use

    _attach(parser, ())
    # Options when the word starts with `-` (as git and apt complete), values otherwise.
    argcomplete.autocomplete(parser, always_complete_options=False)
