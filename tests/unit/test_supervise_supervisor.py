"""The `udriver supervise` loop with fake driver processes and a fake clock."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from udriver import _devstate
from udriver.errors import DeviceError
from udriver.supervise import RestartPolicy, Supervisor

BDF = "0000:01:00.0"


@pytest.fixture(autouse=True)
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("UDRIVER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("UDRIVER_RUN_DIR", str(tmp_path / "run"))
    return tmp_path


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, d: float) -> None:
        self.sleeps.append(d)
        self.now += d


class FakeProc:
    """Exits with `rc` after `runtime` fake seconds (None: runs until signalled)."""

    def __init__(self, clock: FakeClock, rc: int | None, runtime: float = 1.0,
                 ignore_term: bool = False) -> None:
        self.clock, self.rc, self.runtime, self.ignore_term = clock, rc, runtime, ignore_term
        self.pid = 4242
        self.signals: list[int] = []
        self.result: int | None = None

    def poll(self) -> int | None:
        if self.result is None and self.rc is not None:
            self.clock.now += self.runtime
            self.result = self.rc
        return self.result

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)
        if not self.ignore_term:
            self.result = -sig

    def kill(self) -> None:
        self.signals.append(signal.SIGKILL)
        self.result = -signal.SIGKILL


def make(clock: FakeClock, rcs: list[int | None], **kw: object) -> tuple[Supervisor, list, list]:
    procs: list[FakeProc] = []
    unbound: list[str] = []
    it = iter(rcs)
    ignore_term = bool(kw.pop("ignore_term", False))

    def launch() -> FakeProc:
        p = FakeProc(clock, next(it), ignore_term=ignore_term)
        procs.append(p)
        return p

    sup = Supervisor(BDF, "edu", launch, unbound.append, clock=clock,
                     backoff_sleep=clock.sleep, poll_interval=0.001, **kw)  # type: ignore[arg-type]
    return sup, procs, unbound


def status() -> dict:
    return _devstate.read_record(BDF)


def test_clean_exit_ends_supervision_without_restart() -> None:
    clock = FakeClock()
    sup, _procs, unbound = make(clock, [0])
    res = sup.run()
    assert (res.exit_code, res.state, res.starts) == (0, "exited", 1)
    assert unbound == [] and status()["state"] == "exited"
    assert not _devstate.claim_path(BDF).exists()


def test_crashes_are_restarted_with_backoff_then_clean_exit() -> None:
    clock = FakeClock()
    sup, _procs, unbound = make(clock, [1, -11, 2, 0])
    res = sup.run()
    assert res.state == "exited" and res.starts == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert unbound == []


def test_five_crashes_in_60s_give_up_unbind_and_record_why() -> None:
    clock = FakeClock()
    sup, _procs, unbound = make(clock, [1, 1, 1, 1, 3, 0])
    res = sup.run()
    assert (res.exit_code, res.state, res.starts) == (1, "failed", 5)
    assert unbound == [BDF]
    st = status()
    assert st["state"] == "failed" and st["restarts"] == 5
    assert st["reason"] == "gave up after 5 crashes in 60 s (last: exit status 3)"
    assert st["driver"] == "edu"


def test_slow_crashes_are_never_given_up() -> None:
    clock = FakeClock()
    sup, _procs, unbound = make(clock, [1] * 8 + [0])
    sup.policy = RestartPolicy(initial_delay=20, max_delay=20)  # one crash per >20 s
    res = sup.run()
    assert res.state == "exited" and res.starts == 9 and unbound == []


def test_stop_request_terminates_driver_and_exits_0() -> None:
    clock = FakeClock()
    sup, procs, unbound = make(clock, [None])
    threading.Timer(0.05, sup.request_stop).start()
    res = sup.run()
    assert (res.exit_code, res.state) == (0, "stopped")
    assert procs[0].signals == [signal.SIGTERM]
    assert res.reason == "stopped by request (driver killed by SIGTERM)"
    assert status()["state"] == "stopped" and unbound == []


def test_driver_ignoring_sigterm_is_killed_after_timeout() -> None:
    clock = FakeClock()
    sup, procs, _unbound = make(clock, [None], ignore_term=True, stop_timeout=0.0)
    threading.Timer(0.05, sup.request_stop).start()
    res = sup.run()
    assert procs[0].signals == [signal.SIGTERM, signal.SIGKILL]
    assert res.reason == "stopped by request (driver killed by SIGKILL)"


def test_launch_failure_gives_up_and_unbinds() -> None:
    clock = FakeClock()
    unbound: list[str] = []

    def launch() -> FakeProc:
        raise DeviceError(f"{BDF}: no IOMMU group")

    res = Supervisor(BDF, "edu", launch, unbound.append, clock=clock).run()
    assert res.exit_code == 1 and unbound == [BDF]
    assert status()["reason"] == f"cannot start the driver: {BDF}: no IOMMU group"


def test_claim_exists_while_running() -> None:
    clock = FakeClock()
    seen: list[dict] = []

    def launch() -> FakeProc:
        seen.append(_devstate.read_claim(BDF))
        return FakeProc(clock, 0)

    Supervisor(BDF, "edu", launch, lambda b: None, clock=clock).run()
    assert seen[0]["driver"] == "edu" and seen[0]["mode"] == "supervise"
    assert not _devstate.claim_path(BDF).exists()


def test_status_record_keeps_other_members(dirs: Path) -> None:
    path = _devstate.status_path(BDF)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"driver": "edu", "version": "0.1.0"}))
    clock = FakeClock()
    make(clock, [0])[0].run()
    rec = _devstate.read_record(BDF)
    assert rec["driver"] == "edu" and rec["version"] == "0.1.0"
    assert rec["state"] == "exited"


@pytest.mark.parametrize("bad", ["0000:01:00.0/../x", "0000:01:00.00", "../../etc",
                                 "0000:01:00:0", "0000:01:0G.0", "0000:01:20.0"])
def test_invalid_bdf_rejected(bad: str) -> None:
    with pytest.raises(DeviceError, match="Invalid PCI address"):
        _devstate.status_path(bad)


def test_real_subprocess_sigterm(tmp_path: Path) -> None:
    """The default clock and event wait with a real child process."""
    def launch() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    sup = Supervisor(BDF, None, launch, lambda b: None, stop_timeout=5.0)
    threading.Timer(0.3, sup.request_stop).start()
    t0 = time.monotonic()
    res = sup.run()
    assert res.state == "stopped" and time.monotonic() - t0 < 5


def test_removed_device_leaves_no_status_record() -> None:
    clock = FakeClock()
    sup, _procs, _unbound = make(clock, [None], device_gone=lambda: True)
    threading.Timer(0.05, sup.request_stop).start()
    assert sup.run().state == "stopped"
    assert not _devstate.status_path(BDF).exists()


def test_hot_unplug_stop_waits_for_removal_then_forgets_device() -> None:
    from udriver.supervise._supervisor import REMOVED
    clock = FakeClock()
    gone = threading.Event()
    sup, procs, unbound = make(clock, [None], device_gone=gone.is_set)

    def unplug() -> None:
        sup.request_stop(REMOVED)
        threading.Timer(0.2, gone.set).start()

    threading.Timer(0.05, unplug).start()
    res = sup.run()
    assert res.reason == f"{REMOVED} (driver killed by SIGTERM)"
    assert procs[0].signals == [signal.SIGTERM] and unbound == []
    assert not _devstate.status_path(BDF).exists()
