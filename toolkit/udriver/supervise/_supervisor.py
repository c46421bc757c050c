"""`udriver supervise`: one driver process per device, restarted with backoff.

Order of operations (`Supervisor.run`):

1. Claim the device (`<run>/supervise/<bdf>.json`) and record `running`.
2. Start the driver through the launcher (by default `spawn_driver`: open VFIO as root,
   drop to an unprivileged user, exec `udriver run`).
3. Wait until it exits or a stop is requested (SIGTERM/SIGINT -> `request_stop`).
4. On exit, ask the `CrashTracker` (pure policy, `_policy.py`): a clean exit ends
   supervision; a crash is restarted after the backoff; the 5th crash in 60 s gives up:
   the device is unbound (`udriver.pci.unbind`, so nothing drives it half-way) and the
   status record says why.
5. On a stop request: SIGTERM to the driver, wait `stop_timeout`, then SIGKILL; record
   `stopped`; release the claim; return 0.

Clock, sleeping, launcher and unbind are injected so that tests drive the loop with a
fake clock and fake processes.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Protocol

from .. import _devstate
from ..errors import UdriverError
from ._policy import CrashTracker, RestartPolicy, describe_exit

__all__ = ["REMOVED", "Process", "Supervisor", "SupervisorResult"]

REMOVED = "device removed (hot-unplug)"
"""`request_stop` reason when the kernel asked for the device back."""

log = logging.getLogger(__name__)


class Process(Protocol):
    """The part of `subprocess.Popen` the supervisor uses."""

    pid: int

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


@dataclass
class SupervisorResult:
    """How supervision ended."""

    exit_code: int
    """0: stopped or the driver exited cleanly; 1: gave up."""
    state: str
    """Final `state` written to the status record."""
    reason: str
    """The same reason as in the status record."""
    starts: int = 0
    """How many times the driver was started."""


@dataclass
class Supervisor:
    """Supervises the driver of one device."""

    bdf: str
    """PCI address of the device."""
    driver: str | None
    """Driver name passed to `udriver run` (None: the runner resolves it)."""
    launcher: Callable[[], Process]
    """Starts one driver process."""
    unbind: Callable[[str], None]
    """Unbinds the device on give-up (`udriver.pci.unbind`)."""
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    clock: Callable[[], float] = time.monotonic
    stop_timeout: float = 10.0
    """Seconds between SIGTERM and SIGKILL when stopping the driver."""
    poll_interval: float = 0.05
    device_gone: Callable[[], bool] = lambda: False
    """True when the device has left the machine: its status record is dropped at the end."""
    backoff_sleep: Callable[[float], None] | None = None
    """Waits out a restart backoff; default: wait on the stop event (a stop cuts it short)."""
    gone_timeout: float = 10.0
    """After a stop for hot-unplug, how long to wait for the device to leave sysfs."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _stop_reason: str = "stopped by request"

    def request_stop(self, reason: str = "stopped by request") -> None:
        """Ask `run` to stop the driver and return (safe from a signal handler)."""
        self._stop_reason = reason
        self._stop.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT request a stop (main thread only)."""
        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("%s: received %s, stopping the driver", self.bdf, signal.Signals(signum).name)
            self.request_stop()
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _record(self, state: str, reason: str, pid: int | None = None, crashes: int = 0) -> None:
        try:
            if state in ("stopped", "exited") and self.device_gone():
                # Hot-unplugged: there is nothing left to report about this address.
                _devstate.clear_status(self.bdf)
                return
            _devstate.record_state(self.bdf, state, reason, driver=self.driver,
                                   pid=pid, crashes=crashes)
        except OSError as e:
            log.warning("%s: cannot write status record: %s", self.bdf, e)

    def _wait_exit(self, proc: Process) -> int | None:
        """Wait for `proc` to exit (its return code) or for a stop request (None)."""
        while True:
            rc = proc.poll()
            if rc is not None:
                return rc
            if self._stop.wait(self.poll_interval):
                return None

    def _terminate(self, proc: Process) -> int:
        """SIGTERM, wait `stop_timeout`, then SIGKILL. Returns the exit code."""
        rc = proc.poll()
        if rc is not None:
            return rc
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = self.clock() + self.stop_timeout
        while self.clock() < deadline:
            rc = proc.poll()
            if rc is not None:
                return rc
            time.sleep(self.poll_interval)
        log.warning("%s: driver pid %d ignored SIGTERM for %g s; sending SIGKILL",
                    self.bdf, proc.pid, self.stop_timeout)
        try:
            proc.kill()
        except ProcessLookupError:
            pass
        while (rc := proc.poll()) is None:
            time.sleep(self.poll_interval)
        return rc

    def _wait_gone(self) -> None:
        """After a hot-unplug stop, give the kernel time to finish removing the device."""
        if self._stop_reason != REMOVED:
            return
        deadline = time.monotonic() + self.gone_timeout
        while not self.device_gone() and time.monotonic() < deadline:
            time.sleep(self.poll_interval)

    def _give_up(self, reason: str, crashes: int) -> SupervisorResult:
        log.error("%s: %s; unbinding the device", self.bdf, reason)
        try:
            self.unbind(self.bdf)
        except UdriverError as e:
            reason = f"{reason}; unbinding failed: {e}"
            log.error("%s: %s", self.bdf, e)
        self._record("failed", reason, crashes=crashes)
        return SupervisorResult(1, "failed", reason)

    def run(self) -> SupervisorResult:
        """Supervise until stopped, finished, or given up (module rules 1-5)."""
        tracker = CrashTracker(self.policy)
        starts = 0
        _devstate.write_claim(self.bdf, os.getpid(), self.driver, "supervise")
        try:
            while True:
                if self._stop.is_set():
                    self._record("stopped", self._stop_reason)
                    return SupervisorResult(0, "stopped", self._stop_reason, starts)
                started = self.clock()
                try:
                    proc = self.launcher()
                except UdriverError as e:
                    res = self._give_up(f"cannot start the driver: {e}", len(tracker.crashes))
                    res.starts = starts
                    return res
                starts += 1
                self._record("running", f"driver running (start {starts})", proc.pid,
                             len(tracker.crashes))
                rc = self._wait_exit(proc)
                if rc is None:
                    rc = self._terminate(proc)
                    reason = f"{self._stop_reason} (driver {describe_exit(rc)})"
                    self._wait_gone()
                    self._record("stopped", reason)
                    return SupervisorResult(0, "stopped", reason, starts)
                decision = tracker.on_exit(rc, started, max(started, self.clock()))
                if decision.give_up:
                    res = self._give_up(decision.reason, decision.crashes)
                    res.starts = starts
                    return res
                if not decision.restart:
                    self._record("exited", decision.reason)
                    return SupervisorResult(0, "exited", decision.reason, starts)
                log.warning("%s: %s", self.bdf, decision.reason)
                self._record("restarting", decision.reason, None, decision.crashes)
                if self.backoff_sleep is not None:
                    self.backoff_sleep(decision.delay)
                else:
                    self._stop.wait(decision.delay)
        finally:
            _devstate.remove_claim(self.bdf, os.getpid())
