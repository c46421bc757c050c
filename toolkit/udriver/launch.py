"""How udriver starts itself again: the import path a launcher chose, and the child command.

A launcher may put directories first on ``sys.path`` before it imports udriver. Debian's
does (``debian/scripts/udriver``, ``udriver-repo``): the udriver package ships python-tuf,
securesystemslib, urllib3, requests and installer at versions Debian 12 lacks in a private
directory, ``/usr/lib/udriver/vendor`` (``debian/vendor.txt``), seen by udriver's own
commands only -- not by every program that imports udriver.

udriver starts itself again with the running interpreter (``sys.executable``): the driver's
``udriver run`` under ``udriver supervise`` (``supervise._privsep``) and the detached
autobind worker (``supervise._autobind``). Such a child has not run the launcher, so
:func:`self_command` passes the launcher's directories on: the child calls
:func:`use_path` with them before it imports udriver's command line, and so do its own
children. Without a launcher's directories the command is
``python -c "from udriver.cli import run; run()"``.
"""

from __future__ import annotations

import sys

__all__ = ["self_command", "use_path"]

_BOOT = "from udriver.cli import run; run()"
_path: list[str] = []
"""The directories :func:`use_path` put first on ``sys.path``, in order."""


def use_path(*dirs: str) -> None:
    """Put ``dirs`` first on ``sys.path`` (in this order), here and in udriver's children.

    A launcher calls it before it imports anything the directories provide.
    """
    for d in reversed(dirs):
        if d in sys.path:
            sys.path.remove(d)
        sys.path.insert(0, d)
    _path[:] = [*dirs, *(d for d in _path if d not in dirs)]


def self_command() -> list[str]:
    """The command line that runs udriver the way this process was started.

    ``[sys.executable, "-c", BOOT]``; append udriver's arguments. BOOT first calls
    :func:`use_path` with this process's launcher directories, if any.
    """
    boot = _BOOT
    if _path:
        boot = f"from udriver.launch import use_path; use_path(*{_path!r}); {_BOOT}"
    return [sys.executable, "-c", boot]
