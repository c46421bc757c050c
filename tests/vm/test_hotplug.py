"""The whole chain on hotplug (issue 5, acceptance 1, 2 and 6), in one guest.

Host: `udriver build` the edu driver, create a signed repository with the repository core
and publish it. Guest: serve that repository on its loopback with `udriver-repo serve`,
configure the client with the repository's root and auto-install, generate the udev rules,
then QMP `device_add` edu: udev -> `udriver autobind` -> TUF-verified install -> bind ->
supervised, unprivileged driver, whose factorial and DMA checks must pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from udriver_vm.harness import Guest
from udriver_vm.hotplug import (
    GuestRepo,
    copy_repo,
    driver_log,
    edu_bdfs,
    events,
    hotplug,
    make_repo,
    prepare_guest,
    proc_status,
    status,
    unplug,
    wait_for,
)
from vm._fixtures import require_vm

pytestmark = [pytest.mark.vm, pytest.mark.slow]


@pytest.fixture(scope="module")
def env(kernel: str, tmp_path_factory: pytest.TempPathFactory,
        session_wheels: Any) -> Iterator[tuple[Guest, GuestRepo, Path]]:
    """One udev guest per kernel of the session, serving a repository with the session's edu
    wheel (the same file on every kernel)."""
    require_vm(kernel)
    tmp = tmp_path_factory.mktemp("hotplug")
    repo = make_repo(tmp / "repo", [session_wheels.wheels["edu"]])
    with Guest(kernel=kernel, devices=[], root_ports=3, udev=True, mem_mb=1024) as g:
        shared = copy_repo(repo, g.workdir / "repo")
        prepare_guest(g)
        gr = GuestRepo(g, shared)
        try:
            yield g, gr, shared
        finally:
            gr.stop()


def wait_done(g: Guest, bdf: str, timeout: float = 240) -> list[dict]:
    def done() -> list[dict] | None:
        st = status(g, bdf)
        if st.get("state") == "failed":
            raise AssertionError(f"autobind failed: {st}\n{driver_log(g, bdf)}")
        evs = events(driver_log(g, bdf))
        return evs if any(e.get("event") == "done" for e in evs) else None
    return wait_for(done, timeout, f"edu driver checks on {bdf}", step=1.0)


def test_hotplug_installs_from_signed_repo_binds_and_runs_unprivileged(env) -> None:
    g, gr, repo = env
    gr.configure(repo / "public/keys/root.json")
    bdf = hotplug(g, "edu1", "rp1")
    evs = wait_done(g, bdf)
    checks = {e["check"]: e for e in evs if "check" in e}
    assert checks["factorial_msi"]["ok"] and checks["dma"]["ok"], checks
    assert [e for e in evs if e.get("event") == "done"] == [{"event": "done", "ok": True}]
    # Installed from the repository, bound, supervised.
    r = g.run("readlink /var/lib/udriver/drivers/edu/current", timeout=60, check=True)
    assert r.stdout.strip() == "1.0.0"
    assert g.run(f"basename $(readlink /sys/bus/pci/devices/{bdf}/driver)",
                 timeout=60).stdout.strip() == "vfio-pci"
    st = status(g, bdf)
    assert st["state"] == "running" and st["driver"] == "edu"
    # Acceptance 6: no root in the driver.
    [probed] = [e for e in evs if e.get("event") == "probed"]
    ps = proc_status(g, probed["pid"])
    assert ps["Uid"].split()[0] != "0" and ps["Uid"].split()[1] != "0"
    assert ps["CapEff"] == "0000000000000000" and ps["CapPrm"] == "0000000000000000"
    assert ps["CapBnd"] == "0000000000000000" and ps["NoNewPrivs"] == "1"
    # device_del: the driver exits cleanly and the device's state is cleaned up.
    unplug(g, "edu1", bdf)
    wait_for(lambda: not status(g, bdf), 60, f"status record of {bdf} to go")
    assert g.run(f"test -e /proc/{probed['pid']}", timeout=60).rc != 0
    assert g.run(f"test -e /run/udriver/supervise/{bdf}.json", timeout=60).rc != 0
    assert any(e.get("event") == "removed" for e in events(driver_log(g, bdf)))


@pytest.mark.kernel_primary  # make test: first kernel only (the single-device test runs on all)
def test_two_devices_at_once_two_processes_one_install(env) -> None:
    g, gr, repo = env
    gr.configure(repo / "public/keys/root.json")
    fetched = gr.downloads()
    before = set(edu_bdfs(g))
    for dev_id, bus in (("edu2", "rp2"), ("edu3", "rp3")):
        assert "error" not in g.qmp("device_add", driver="edu", bus=bus, id=dev_id)
    bdfs = wait_for(lambda: sorted(set(edu_bdfs(g)) - before) if
                    len(set(edu_bdfs(g)) - before) == 2 else None, 60, "two edus")
    pids = set()
    for bdf in bdfs:
        evs = wait_done(g, bdf)
        [probed] = [e for e in evs if e.get("event") == "probed"]
        assert [e["ok"] for e in evs if e.get("event") == "done"] == [True]
        pids.add(probed["pid"])
    assert len(pids) == 2
    # Installed once: one version directory, and the wheel was downloaded once.
    r = g.run("ls /var/lib/udriver/drivers/edu", timeout=60, check=True)
    assert sorted(r.stdout.split()) == ["1.0.0", "current"]
    assert gr.downloads() - fetched == 1
    for dev_id, bdf in zip(("edu2", "edu3"), bdfs):
        unplug(g, dev_id, bdf)
