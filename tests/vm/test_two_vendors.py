"""Issue 9, acceptance 3: two vendors, two drivers, one machine; each device runs its own
vendor's code under a uid of its own, and one driver cannot signal the other.

Host: a signed repository with two vendors, `qemu` (PCI vendor 1234) publishing the real
edu driver (`udriver build` of examples/edu) and `redhat` (1b36) publishing `testdev`, a
small driver for QEMU's `pci-testdev` (1b36:0005: no kernel driver, nothing a machine
depends on) that probes, maps BAR0, and then behaves like a hostile driver: it tries
kill(pid, 0) on every pid up to a bound past its own and reports which ones it could
signal. Guest: the booted Debian 12 system (systemd PID 1, udriver from its .deb; see
:mod:`vm.system`), `udriver repo add --auto-install`; QMP hot-plugs edu, then pci-testdev:
udev -> udriver-autobind@ (sandboxed) -> TUF-verified install -> udriver@<BDF>.

Then, read from the running processes: which vendor's code each one runs
(/proc/PID/cmdline, the driver's own log line with its pid and module file), its uid
(/proc/PID/status, equal to the device's record in /var/lib/udriver/driver-uids.json),
and that signals between them fail with EPERM both ways: from inside the testdev driver,
and as the edu driver's uid (setpriv). Without systemd, `udriver supervise` and `udriver
run` as root give the same devices the same distinct uids.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from udriver_vm.chroot import need_tools
from udriver_vm.debs import build_udriver_debs
from udriver_vm.harness import Guest
from udriver_vm.hotplug import (
    GuestRepo,
    build_edu_wheel,
    copy_repo,
    events,
    journal,
    status,
    unit_props,
    wait_for,
)
from udriver_vm.system import system_root
from vm._fixtures import require_vm

pytestmark = [pytest.mark.vm, pytest.mark.slow]

TESTDEV = "pci:v00001B36d00000005sv*sd*bc*sc*i*"
EDU_ID, TESTDEV_ID = ("0x1234", "0x11e8"), ("0x1b36", "0x0005")
UID_RANGE = range(90000, 100000)

DRIVER = '''
"""Vendor B's driver for QEMU's pci-testdev: probe, map BAR0, then try to signal others."""
import asyncio, errno, json, os, sys
from udriver.runtime import Driver


def emit(**fields):
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\\n")
    sys.stdout.flush()


class Testdev(Driver):
    ids = ["{pattern}"]
    abi = "1.0"

    def probe(self, device):
        super().probe(device)
        bar0 = device.bar(0)
        emit(event="probed", bdf=device.bdf, pid=os.getpid(), uid=os.getuid(),
             module=__file__, bar0_size=bar0.size, bar0_word0=bar0.read32(0))

    async def run(self):
        # Pids are handed out in increasing order, so every driver started before this
        # one has a smaller pid; /proc does not show other users' processes here
        # (ProtectProc=invisible), so a hostile driver can only guess.
        me, signalable, eperm = os.getpid(), [], []
        for pid in range(1, me + 2048):
            try:
                os.kill(pid, 0)
                signalable.append(pid)
            except PermissionError:
                eperm.append(pid)
            except ProcessLookupError:
                pass
        emit(event="signal-scan", pid=me, uid=os.getuid(), signalable=signalable,
             eperm=eperm)
        await asyncio.Event().wait()
'''


def build_testdev_wheel(out: Path) -> Path:
    """`udriver build` of vendor B's `testdev` driver."""
    src = out / "testdev"
    (src / "udriver_testdev").mkdir(parents=True)
    (src / "pyproject.toml").write_text(f"""
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "udriver-testdev"
version = "1.0.0"
requires-python = ">=3.11"
dependencies = []

[project.entry-points."udriver.drivers"]
testdev = "udriver_testdev:Testdev"

[tool.setuptools]
packages = ["udriver_testdev"]

[tool.udriver]
driver = "testdev"
abi = "1.0"
modaliases = ["{TESTDEV}"]
""")
    (src / "udriver_testdev/__init__.py").write_text(DRIVER.replace("{pattern}", TESTDEV))
    subprocess.run(["udriver", "build", str(src), "-o", str(out), "--no-deb"], check=True,
                   capture_output=True, timeout=300)
    return next(out.glob("udriver_testdev-*.whl"))


def two_vendor_repo(path: Path, edu: Path, testdev: Path) -> Path:
    from udriver_repo import Repository
    repo = Repository.init(path)
    repo.add_vendor("qemu", [0x1234])
    repo.add_vendor("redhat", [0x1B36])
    repo.publish([edu], "qemu")
    repo.publish([testdev], "redhat")
    repo.stop_agent()
    repo.close()
    return path


def sh(g: Guest, cmd: str, timeout: float = 120) -> str:
    return g.run(cmd, timeout=timeout, check=True).stdout


def bdfs(g: Guest, ids: tuple[str, str]) -> list[str]:
    r = g.run("cd /sys/bus/pci/devices && for d in *; do "
              f'[ "$(cat $d/vendor)" = {ids[0]} ] && [ "$(cat $d/device)" = {ids[1]} ] '
              "&& echo $d; done; true", timeout=180, check=True)
    return sorted(r.stdout.split())


def plug(g: Guest, driver: str, dev_id: str, bus: str, ids: tuple[str, str]) -> str:
    before = set(bdfs(g, ids))
    reply = g.qmp("device_add", driver=driver, bus=bus, id=dev_id)
    assert "error" not in reply, reply
    return str(wait_for(lambda: sorted(set(bdfs(g, ids)) - before), 120,
                        f"{dev_id} in sysfs")[0])


# The minbase system has no procps (ps, pgrep): python3 (udriver's) reads /proc instead.
_PIDS = """
import os, sys
want = sys.argv[1]
for p in sorted(os.listdir("/proc"), key=lambda x: int(x) if x.isdigit() else 0):
    try:
        uid = open(f"/proc/{p}/status").read().split("Uid:")[1].split()[0]
        cmd = open(f"/proc/{p}/cmdline", "rb").read().replace(b"\\0", b" ").decode()
    except (OSError, IndexError, ValueError):
        continue
    if not p.isdigit() or p == str(os.getpid()):
        continue
    if (want.startswith("uid=") and uid == want[4:]) or want in cmd:
        print(p)
"""


def pids(g: Guest, want: str) -> list[int]:
    """Pids whose uid is `uid=N`, or whose command line contains `want`."""
    out = sh(g, f"python3 -c {shlex.quote(_PIDS)} {shlex.quote(want)}")
    return [int(x) for x in out.split()]


def proc_status(g: Guest, pid: int) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in sh(g, f"cat /proc/{pid}/status").splitlines()
                if ":\t" in line)


def uid_of(g: Guest, pid: int) -> int:
    uids = proc_status(g, pid)["Uid"].split()
    assert len(set(uids)) == 1, uids  # real, effective, saved and fs uid all the same
    return int(uids[0])


def driver_events(g: Guest, bdf: str) -> list[dict[str, Any]]:
    return events(journal(g, f"udriver@{bdf}.service"))


def running(g: Guest, bdf: str, event: str) -> tuple[int, list[dict[str, Any]]] | None:
    """(main pid, its events) once the unit's driver has logged `event`."""
    st = status(g, bdf)
    if st.get("state") == "failed":
        raise AssertionError(f"{bdf}: {st}\n" + sh(g, f"cat /run/udriver/log/{bdf}.log; "
                                                      f"journalctl --no-pager -u "
                                                      f"udriver-autobind@{bdf}.service"))
    p = unit_props(g, f"udriver@{bdf}.service", "ActiveState", "MainPID")
    evs = driver_events(g, bdf)
    pid = int(p["MainPID"])
    probed = [e for e in evs if e.get("event") == "probed"]
    if p["ActiveState"] == "active" and probed and probed[-1].get("pid") == pid and any(
            e.get("event") == event for e in evs):
        return pid, evs
    return None


def diagnose(g: Guest, bdf: str) -> str:
    """What the units did for `bdf` (for a failure message)."""
    return g.run(f"systemctl --no-pager status udriver-autobind@{bdf}.service "
                 f"udriver@{bdf}.service; journalctl --no-pager -n 80 -u "
                 f"udriver-autobind@{bdf}.service -u udriver@{bdf}.service; "
                 f"cat /run/udriver/log/{bdf}.log /var/lib/udriver/status/{bdf}.json",
                 timeout=180).stdout[-6000:]


def started(g: Guest, bdf: str, event: str, what: str) -> tuple[int, list[dict[str, Any]]]:
    try:
        return wait_for(lambda: running(g, bdf, event), 400, what, step=2.0)  # type: ignore[no-any-return]
    except AssertionError as e:
        raise AssertionError(f"{e}\n{diagnose(g, bdf)}") from None


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_vm("6.1")
    need_tools("dpkg-buildpackage", "debootstrap", "git")
    tmp = tmp_path_factory.mktemp("two-vendors")
    root = system_root(build_udriver_debs(tmp / "debs"))
    repo = two_vendor_repo(tmp / "repo", build_edu_wheel(tmp / "dist"),
                           build_testdev_wheel(tmp / "dist"))
    with Guest(kernel="6.1", devices=[], root_ports=2, mem_mb=1024, system=root,
               boot_timeout=400) as g:
        shared = copy_repo(repo, g.workdir / "repo")
        gr = GuestRepo(g, shared)
        try:
            g.run(f"set -e; udriver repo add main {gr.url} "
                  f"--root {shlex.quote(str(shared / 'public/keys/root.json'))} --auto-install; "
                  "udriver autobind --update-rules; udevadm control --reload",
                  timeout=600, check=True)
            # Vendor A's device first: the testdev driver, started later, has the larger pid.
            edu = plug(g, "edu", "edu1", "rp1", EDU_ID)
            a, a_evs = started(g, edu, "done", "edu driver")
            tdev = plug(g, "pci-testdev", "tdev1", "rp2", TESTDEV_ID)
            b, b_evs = started(g, tdev, "signal-scan", "testdev driver")
            yield {"g": g, "edu": edu, "tdev": tdev, "a": a, "b": b, "a_evs": a_evs,
                   "b_evs": b_evs}
        finally:
            gr.stop()


def test_each_device_runs_its_own_vendors_code(machine: dict[str, Any]) -> None:
    g, a, b = machine["g"], machine["a"], machine["b"]
    cmd_a = sh(g, f"cat /proc/{a}/cmdline").split("\0")
    cmd_b = sh(g, f"cat /proc/{b}/cmdline").split("\0")
    assert cmd_a[cmd_a.index("--device") + 1] == machine["edu"]
    assert cmd_a[cmd_a.index("--driver") + 1] == "edu"
    assert cmd_b[cmd_b.index("--device") + 1] == machine["tdev"]
    assert cmd_b[cmd_b.index("--driver") + 1] == "testdev"
    # Each driver's own log line, from the process that is the unit's main pid.
    [pa] = [e for e in machine["a_evs"] if e.get("event") == "probed"]
    assert pa["pid"] == a and pa["bdf"] == machine["edu"] and pa["id"].endswith("ed")
    checks = {e["check"]: e["ok"] for e in machine["a_evs"] if "check" in e}
    assert checks["factorial_msi"] and checks["dma"], checks
    [pb] = [e for e in machine["b_evs"] if e.get("event") == "probed"]
    assert pb["pid"] == b and pb["bdf"] == machine["tdev"] and pb["bar0_size"] > 0
    assert pb["module"] == \
        "/var/lib/udriver/drivers/testdev/current/udriver_testdev/__init__.py"
    # Installed from the repository by each device's hotplug, each from its vendor.
    assert sh(g, "readlink /var/lib/udriver/drivers/edu/current").strip() == "1.0.0"
    assert sh(g, "readlink /var/lib/udriver/drivers/testdev/current").strip() == "1.0.0"
    for bdf in (machine["edu"], machine["tdev"]):
        assert sh(g, f"basename $(readlink /sys/bus/pci/devices/{bdf}/driver)").strip() == \
            "vfio-pci"
        # ...by the autobind worker, which did all that in its sandbox (no capabilities,
        # read-only but for the store, /run/udriver, the udev rules and PCI sysfs).
        props = unit_props(g, f"udriver-autobind@{bdf}.service", "Result", "ExecMainStatus",
                           "CapabilityBoundingSet", "ProtectSystem", "ProtectKernelModules",
                           "NoNewPrivileges", "RestrictAddressFamilies")
        families = set(props.pop("RestrictAddressFamilies").split())
        assert families == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}, families
        assert props == {"Result": "success", "ExecMainStatus": "0",
                         "CapabilityBoundingSet": "", "ProtectSystem": "strict",
                         "ProtectKernelModules": "yes", "NoNewPrivileges": "yes"}, props


def test_two_devices_two_uids(machine: dict[str, Any]) -> None:
    g, a, b = machine["g"], machine["a"], machine["b"]
    ua, ub = uid_of(g, a), uid_of(g, b)
    print(f"uids: edu driver pid {a} uid {ua}; testdev driver pid {b} uid {ub}")
    assert ua != ub and ua in UID_RANGE and ub in UID_RANGE
    records = json.loads(sh(g, "cat /var/lib/udriver/driver-uids.json"))
    assert records == {machine["edu"]: ua, machine["tdev"]: ub}
    assert [e["uid"] for e in machine["b_evs"] if e.get("event") == "probed"] == [ub]
    for pid in (a, b):
        st = proc_status(g, pid)
        assert st["Gid"].split() == [st["Uid"].split()[0]] * 4
        assert st["CapEff"] == st["CapPrm"] == st["CapBnd"] == "0000000000000000", st
        assert st["NoNewPrivs"] == "1" and st["Seccomp"].strip() == "2", st
    # No user in the database has either uid: nothing else on the machine runs as them.
    assert g.run(f"getent passwd {ua} {ub}", timeout=60).rc == 2
    assert pids(g, f"uid={ua}") == [a] and pids(g, f"uid={ub}") == [b]


def test_one_driver_cannot_signal_the_other(machine: dict[str, Any]) -> None:
    g, a, b = machine["g"], machine["a"], machine["b"]
    # From inside the testdev driver: only its own process (and threads) answer.
    [scan] = [e for e in machine["b_evs"] if e.get("event") == "signal-scan"]
    own = {int(t) for t in sh(g, f"ls /proc/{b}/task").split()}
    assert set(scan["signalable"]) <= own and b in scan["signalable"], scan["signalable"]
    assert a in scan["eperm"], (a, scan["eperm"])
    assert 1 in scan["eperm"]  # not even systemd
    # As the edu driver's uid, towards the testdev driver (and back): EPERM.
    probe = ("import os, sys\n"
             "try:\n    os.kill(int(sys.argv[1]), 0); print('sent')\n"
             "except PermissionError: print('EPERM')\n")
    ua, ub = uid_of(g, a), uid_of(g, b)

    def kill0(uid: int, pid: int) -> str:
        return sh(g, f"setpriv --reuid={uid} --regid={uid} --clear-groups "
                     f"--inh-caps=-all --bounding-set=-all "
                     f"python3 -c {shlex.quote(probe)} {pid}").strip()

    assert kill0(ua, b) == "EPERM"
    assert kill0(ub, a) == "EPERM"
    assert kill0(ub, b) == "sent"  # the check itself can succeed: same uid may signal
    # Both drivers still run, untouched.
    assert running(g, machine["edu"], "done") is not None
    assert running(g, machine["tdev"], "signal-scan") is not None


def test_without_systemd_supervise_and_run_use_the_same_distinct_uids(
        machine: dict[str, Any]) -> None:
    """The fallback: `udriver supervise` (and `udriver run` as root) drop to the same
    per-device uids, never to a shared user."""
    g = machine["g"]
    edu, tdev = machine["edu"], machine["tdev"]
    records = json.loads(sh(g, "cat /var/lib/udriver/driver-uids.json"))
    sh(g, f"systemctl stop udriver@{edu}.service udriver@{tdev}.service", timeout=180)
    sup = g.run_bg(f"exec udriver supervise --no-bind --device {tdev} --driver testdev "
                   f"> /tmp/sup.log 2>&1")
    run = g.run_bg(f"exec udriver run --device {edu} --driver edu > /tmp/run.log 2>&1")
    try:
        def child_of(pattern: str) -> int | None:
            found = pids(g, pattern)
            return found[-1] if found else None

        pb = wait_for(lambda: (p := child_of(f"run --device {tdev} --container-fd"))
                      and uid_of(g, p) != 0 and p, 300, "supervised testdev driver", step=2.0)
        pa = wait_for(lambda: (p := child_of(f"run --device {edu} --container-fd"))
                      and uid_of(g, p) != 0 and p, 300, "edu driver from udriver run",
                      step=2.0)
        print(f"fallback uids: edu {uid_of(g, pa)}, testdev {uid_of(g, pb)}")
        assert uid_of(g, pa) == records[edu] and uid_of(g, pb) == records[tdev]
        assert proc_status(g, pa)["CapEff"] == "0000000000000000"
        # `udriver run` as root became the driver itself (exec): same pid, now unprivileged.
        assert sh(g, f"cat /proc/{pa}/cmdline").split("\0")[4:6] == ["--device", edu]
    finally:
        sup.kill()
        run.kill()
