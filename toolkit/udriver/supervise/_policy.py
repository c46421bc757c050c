"""When to restart a crashed driver, and when to give up. Pure: no clock, no I/O.

Rules (issue 5, "Running"; they mirror the systemd unit's `StartLimitBurst=5` and
`StartLimitIntervalSec=60`):

1. A driver that exits with status 0 has finished; it is not restarted (systemd's
   `Restart=on-failure`).
2. Every other exit (non-zero status, killed by a signal) is a crash. Crashes older than
   `window` seconds are forgotten.
3. When a crash brings the number of crashes inside the window to `max_crashes`, the
   supervisor gives up: the device is unbound and the failure recorded.
4. Otherwise the driver is restarted after an exponential backoff:
   `initial_delay * factor ** (n - 1)` for the n-th crash in the window, capped at
   `max_delay`. A driver that stayed up for `reset_after` seconds before crashing starts
   again from `initial_delay`.

Time is a float of seconds from a monotonic clock, passed in by the caller; tests use
a fake clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["CrashTracker", "Decision", "RestartPolicy", "describe_exit"]


@dataclass(frozen=True)
class RestartPolicy:
    """The parameters of the restart/give-up rule."""

    max_crashes: int = 5
    """Give up at this many crashes inside `window`."""
    window: float = 60.0
    """Seconds a crash counts against `max_crashes`."""
    initial_delay: float = 0.5
    """Backoff before the first restart, in seconds."""
    factor: float = 2.0
    """Backoff multiplier per further crash in the window."""
    max_delay: float = 30.0
    """Upper bound of the backoff, in seconds."""
    reset_after: float = 60.0
    """A run at least this long resets the backoff to `initial_delay`."""

    def __post_init__(self) -> None:
        if self.max_crashes < 1:
            raise ValueError(f"`max_crashes` must be >= 1, got {self.max_crashes}")
        if self.window <= 0:
            raise ValueError(f"`window` must be > 0, got {self.window}")
        if self.initial_delay < 0 or self.max_delay < self.initial_delay:
            raise ValueError(f"need 0 <= `initial_delay` <= `max_delay`, got "
                             f"{self.initial_delay} and {self.max_delay}")
        if self.factor < 1:
            raise ValueError(f"`factor` must be >= 1, got {self.factor}")


@dataclass(frozen=True)
class Decision:
    """What to do after a driver process exited."""

    restart: bool
    """Start the driver again (after `delay`)."""
    delay: float
    """Seconds to wait before the restart (0 when not restarting)."""
    give_up: bool
    """Too many crashes: unbind the device and record the failure."""
    crashes: int
    """Crashes inside the window, this one included (0 for a clean exit)."""
    reason: str
    """One line for logs and `udriver status`."""


def describe_exit(returncode: int) -> str:
    """`subprocess` return code -> "exit status N" / "killed by signal SIGSEGV"."""
    if returncode >= 0:
        return f"exit status {returncode}"
    import signal
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"killed by {name}"


@dataclass
class CrashTracker:
    """Crash history of one device's driver; feed it every exit, follow its decisions."""

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    crashes: deque[float] = field(default_factory=deque)
    """Times of the crashes inside the window, oldest first."""
    _streak: int = 0

    def _forget_old(self, now: float) -> None:
        while self.crashes and now - self.crashes[0] >= self.policy.window:
            self.crashes.popleft()

    def on_exit(self, returncode: int, started: float, now: float) -> Decision:
        """Record that the driver started at `started` exited at `now` with `returncode`.

        Args:
            returncode: as `subprocess.Popen.returncode` (negative: killed by a signal).
            started: clock value when this run was started.
            now: clock value now (>= `started`).

        Raises:
            ValueError: the clock went backwards.
        """
        if now < started or (self.crashes and now < self.crashes[-1]):
            raise ValueError(f"clock went backwards: started={started} now={now}")
        what = describe_exit(returncode)
        if returncode == 0:
            # Rule 1: a clean exit is not a crash; systemd's Restart=on-failure agrees.
            self._streak = 0
            return Decision(False, 0.0, False, 0, f"driver exited cleanly ({what})")
        self._forget_old(now)
        self.crashes.append(now)
        n = len(self.crashes)
        if n >= self.policy.max_crashes:
            return Decision(False, 0.0, True, n,
                            f"gave up after {n} crashes in {self.policy.window:g} s "
                            f"(last: {what})")
        if now - started >= self.policy.reset_after:
            self._streak = 0
        self._streak += 1
        p = self.policy
        delay = min(p.max_delay, p.initial_delay * p.factor ** (self._streak - 1))
        return Decision(True, delay, False, n,
                        f"driver crashed ({what}); restart {n} of {p.max_crashes - 1} "
                        f"in {delay:g} s")

    def reset(self) -> None:
        """Forget every crash (a fresh `udriver install` or an explicit restart)."""
        self.crashes.clear()
        self._streak = 0
