"""Supervision in a real guest (issue 5, acceptance 5): a crashing driver is restarted with
backoff and, after 5 crashes, given up: the device is unbound and `udriver status` says why.
And `udriver supervise` stops its driver cleanly on SIGTERM.

The window is widened to 600 s through UDRIVER_CRASH_WINDOW (passed to the udev rule): under
TCG on a busy machine one start of a Python driver can take 15 s, so five crashes may not
fit in the default 60 s. The 60 s default itself is proven by the policy's unit tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from udriver_vm.harness import Guest
from udriver_vm.hotplug import (
    build_edu_wheel,
    crashing_wheel,
    driver_log,
    events,
    hotplug,
    prepare_guest,
    status,
    unplug,
    wait_for,
)
from vm._fixtures import require_vm

pytestmark = [pytest.mark.vm, pytest.mark.slow]

WINDOW = 600


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Guest, Path, Path]]:
    require_vm("6.1")
    tmp = tmp_path_factory.mktemp("crash")
    crashy = crashing_wheel(tmp / "crashy", exit_code=3)
    edu = build_edu_wheel(tmp / "edu")
    with Guest(kernel="6.1", devices=[], root_ports=2, udev=True, mem_mb=1024) as g:
        prepare_guest(g)
        for whl in (crashy, edu):
            (g.workdir / whl.name).write_bytes(whl.read_bytes())
        yield g, g.workdir / crashy.name, g.workdir / edu.name


def test_crashing_driver_is_restarted_then_given_up_and_unbound(env) -> None:
    g, crashy, _ = env
    g.run(f"set -e; rm -rf /var/lib/udriver /run/udriver; udriver install --wheel {crashy}; "
          f"UDRIVER_CRASH_WINDOW={WINDOW} udriver autobind --update-rules", timeout=600,
          check=True)
    g.udev_reload()
    bdf = hotplug(g, "edu1", "rp1")
    rec = wait_for(lambda: (s := status(g, bdf)).get("state") == "failed" and s, 400,
                   f"the supervisor of {bdf} to give up", step=2.0)
    log = driver_log(g, bdf)
    starts = [e["pid"] for e in events(log) if e.get("event") == "crashy"]
    assert len(starts) == 5 and len(set(starts)) == 5, log
    restarts = re.findall(r"driver crashed \(exit status 3\); restart (\d) of 4 in ([\d.]+) s", log)
    assert restarts == [("1", "0.5"), ("2", "1"), ("3", "2"), ("4", "4")], log
    reason = f"gave up after 5 crashes in {WINDOW} s (last: exit status 3)"
    assert rec["reason"] == reason and rec["driver"] == "crashy" and rec["restarts"] == 5
    # Given up: unbound, nothing left running.
    r = g.run(f"readlink /sys/bus/pci/devices/{bdf}/driver; "
              f"cat /sys/bus/pci/devices/{bdf}/driver_override; "
              f"ls /run/udriver/supervise", timeout=60)
    assert r.stdout.split() == ["(null)"], r.stdout
    r = g.run("udriver status", timeout=300, check=True)
    assert f"{bdf}  crashy  failed: {reason}" in r.stdout.splitlines(), r.stdout
    unplug(g, "edu1", bdf)
    wait_for(lambda: not status(g, bdf), 300, f"status of {bdf} to be cleared", step=2.0)


def test_supervise_stops_driver_on_sigterm(env) -> None:
    g, _, edu = env
    g.run(f"set -e; rm -rf /var/lib/udriver /run/udriver /etc/udev/rules.d/60-udriver.rules; "
          f"udriver install --wheel {edu}", timeout=600, check=True)
    g.udev_reload()
    bdf = hotplug(g, "edu2", "rp2")
    job = g.run_bg(f"udriver supervise --device {bdf} --driver edu > /tmp/sup.log 2>&1")

    def probed() -> list[dict] | None:
        evs = events(g.run("cat /tmp/sup.log", timeout=60).stdout)
        return evs if any(e.get("event") == "done" for e in evs) else None
    evs = wait_for(probed, 300, "edu under `udriver supervise`", step=2.0)
    assert [e["ok"] for e in evs if e.get("event") == "done"] == [True]
    [pid] = [e["pid"] for e in evs if e.get("event") == "probed"]
    assert status(g, bdf)["state"] == "running"
    sup = g.run(f"cat /run/udriver/supervise/{bdf}.json", timeout=60, check=True).stdout
    g.run(f"kill -TERM $(python3 -c 'import json,sys; print(json.load(sys.stdin)[\"pid\"])' "
          f"<<< '{sup.strip()}')", timeout=120, check=True)
    res = job.wait(120)
    assert res.rc == 0, res
    log = g.run("cat /tmp/sup.log", timeout=60).stdout
    assert any(e.get("event") == "removed" for e in events(log)), log
    rec = status(g, bdf)
    assert rec["state"] == "stopped" and rec["reason"].startswith("stopped by request"), rec
    assert g.run(f"test -e /proc/{pid}", timeout=60).rc != 0
    # Still bound: a stop is not a give-up.
    assert g.run(f"basename $(readlink /sys/bus/pci/devices/{bdf}/driver)",
                 timeout=60).stdout.strip() == "vfio-pci"
    unplug(g, "edu2", bdf)
