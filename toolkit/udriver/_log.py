"""Loggers that load `logging` when they first emit a record (the CLI's start-up time).

`import logging` costs `udriver devices`, `status` and `search` more than half of
`lspci -nnk`'s whole run (it loads `traceback`, `threading`, `weakref`, `string`; issue
13, acceptance 6), and on most runs they log nothing. The modules on their path take
their logger from `getLogger` here: a `Logger` with the methods they use (`debug`,
`info`, `warning`, `error`, `log`) that imports `logging` on the first record it emits
and hands it to `logging.getLogger(name)`, with the caller's file and line as usual.

Used as a library, nothing changes: every record reaches `logging`. The `udriver`
command (`udriver.cli.dispatch`) calls `configure` instead of configuring `logging`
itself: records below the level its `-v` options ask for are dropped before `logging`
is imported, and its handler set-up (format, credential masking) runs when `logging` is
first needed. A module that imports a library logging through `logging` directly
(python-tuf, urllib3: `client/_remote`, `client/_fetcher`) calls `ready()` first, so
that library's records are formatted and masked like udriver's own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

__all__ = ["DEBUG", "INFO", "WARNING", "Logger", "configure", "getLogger", "ready"]

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40
"""`logging`'s levels (the same numbers)."""

_threshold: int | None = None
_setup: Callable[[], None] | None = None


def configure(level: int, setup: Callable[[], None]) -> None:
    """Drop records below `level` without importing `logging`, and run `setup` (the
    handlers) once `logging` is needed: now if it is loaded already, else at the first
    record emitted or the first `ready()`."""
    global _threshold, _setup
    _threshold, _setup = level, setup
    if "logging" in sys.modules:
        ready()


def ready() -> None:
    """Run the pending `configure` set-up now (once)."""
    global _setup
    setup, _setup = _setup, None
    if setup is not None:
        setup()


class Logger:
    """A logger named `name` (module docstring)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def _emit(self, level: int, msg: object, args: tuple[object, ...],
              kwargs: dict[str, Any]) -> None:
        if _threshold is not None and level < _threshold and "logging" not in sys.modules:
            return  # once logging is loaded, its levels decide (as `configure` set them)
        import logging

        ready()
        logger = logging.getLogger(self.name)
        if logger.isEnabledFor(level):
            # The record names the caller: this method, the public one, then theirs.
            kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 2
            logger.log(level, msg, *args, **kwargs)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(level, msg, args, kwargs)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(DEBUG, msg, args, kwargs)

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(INFO, msg, args, kwargs)

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(WARNING, msg, args, kwargs)

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(ERROR, msg, args, kwargs)


def getLogger(name: str) -> Logger:
    """The `Logger` named `name` (use `__name__`)."""
    return Logger(name)
