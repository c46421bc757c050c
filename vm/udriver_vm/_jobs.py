"""Results and handles of commands run in the guest (see :mod:`harness` for the protocol).

Files per command ``<n>`` in the work folder's ``cmd/``: the host writes ``<n>.sh`` (atomically,
by rename); the guest writes ``<n>.pid`` (first line of the script), ``<n>.out``, ``<n>.err`` and,
once the command has exited, ``<n>.rc``. The host writes ``<n>.kill`` to have the agent SIGKILL
the command's process group. The host removes all of them after reading the result.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import GuestCommandError, GuestTimeout

if TYPE_CHECKING:
    from .harness import Guest

__all__ = ["BgJob", "CommandResult", "kill_pending"]


@dataclasses.dataclass(frozen=True)
class CommandResult:
    """Outcome of one command in the guest."""

    cmd: str
    """The shell command as given."""
    rc: int
    """Exit status (128+N when killed by signal N)."""
    stdout: str
    """Everything it wrote to stdout (decoded as UTF-8, errors replaced)."""
    stderr: str
    """Everything it wrote to stderr."""
    seconds: float
    """Wall time from submission to the rc file being seen on the host."""

    def check(self) -> CommandResult:
        """Return self if rc == 0.

        Raises:
            GuestCommandError: rc != 0 (message has the command, rc and both outputs' tails).
        """
        if self.rc != 0:
            raise GuestCommandError(
                f"guest command failed with rc {self.rc}: {self.cmd!r}\n"
                f"--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-3000:]}"
            )
        return self


class BgJob:
    """A command started with :meth:`Guest.run_bg`."""

    def __init__(self, guest: Guest, job_id: str, cmd: str) -> None:
        self._guest = guest
        self.id = job_id
        self.cmd = cmd
        self._t0 = time.monotonic()
        self._pid: int | None = None

    @property
    def pid(self) -> int:
        """Guest pid of the command's shell (its process group leader; waits up to 30 s).

        Raises:
            GuestTimeout: the agent did not start the command within 30 s.
        """
        if self._pid is None:
            path = self._guest._cmd_dir / f"{self.id}.pid"
            self._guest._wait_for(lambda: _read_int(path) is not None, 30, f"start of {self.cmd!r}")
            self._pid = _read_int(path)
        assert self._pid is not None
        return self._pid

    def poll(self) -> CommandResult | None:
        """Return the result if the command has finished, else None (no waiting)."""
        base = self._guest._cmd_dir / self.id
        rc = _read_int(base.with_suffix(".rc"))
        if rc is None:
            return None
        out = base.with_suffix(".out").read_bytes().decode(errors="replace")
        err = base.with_suffix(".err").read_bytes().decode(errors="replace")
        res = CommandResult(self.cmd, rc, out, err, time.monotonic() - self._t0)
        if not self._guest.keep:
            for suffix in (".rc", ".out", ".err", ".pid", ".sh", ".kill"):
                base.with_suffix(suffix).unlink(missing_ok=True)
        return res

    def wait(self, timeout: float) -> CommandResult:
        """Wait for the command to finish and return its result.

        Raises:
            GuestTimeout: not finished within ``timeout`` s (the command is killed first).
            GuestDied: QEMU exited.
        """
        result: list[CommandResult] = []

        def done() -> bool:
            r = self.poll()
            if r is not None:
                result.append(r)
            return r is not None

        try:
            self._guest._wait_for(done, timeout, f"command {self.cmd!r}")
        except GuestTimeout:
            self.kill()
            raise
        return result[0]

    def kill(self) -> None:
        """Ask the agent to SIGKILL the command's process group (returns immediately)."""
        (self._guest._cmd_dir / f"{self.id}.kill").touch()
        self._guest.wake()


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def kill_pending(guest: Guest, cmd_dir: Path, timeout: float) -> None:
    """Have the agent SIGKILL every command without an ``.rc`` yet (``<n>.kill`` files).

    Waits up to ``timeout`` s for the agent to have reaped them (no error if not).
    """
    pending = [sh for sh in cmd_dir.glob("*.sh") if not sh.with_suffix(".rc").exists()]
    for sh in pending:
        sh.with_suffix(".kill").touch()
    guest.wake()
    deadline = time.monotonic() + timeout
    while guest.alive and time.monotonic() < deadline:
        if all(sh.with_suffix(".rc").exists() for sh in pending):
            break
        time.sleep(0.02)
