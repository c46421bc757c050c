"""Issue 10's hotplug item and acceptance 1, 4 on a hot-plugged controller, in a booted system.

A Debian 12 system (systemd as PID 1, udriver from its .deb; :mod:`udriver_vm.system`) on
6.1 (NBD) and on 6.12 (ublk). The NVMe driver, built once by the session, is published to a
signed repository by a vendor with a class grant (its ID table is class-wide); the guest
serves it on its loopback, and the administrator has run `udriver repo add --auto-install`
and `udriver autobind --update-rules`, and has kept the kernel's `nvme` off new controllers
(`blacklist nvme`, as for e1000e in test_e1000e_hotplug.py). Then:

1. QMP `device_add nvme` (backed by a host file) -> udev -> autobind -> TUF-verified install
   -> vfio-pci -> `udriver-block@<BDF>.service` (the block unit's sandbox: seccomp with
   io_uring, DevicePolicy=closed plus the bridge's nodes) -> `/dev/nbdN` or `/dev/ublkbN`.
2. `mkfs.ext4` with a known UUID; udev names it `/dev/disk/by-uuid/<UUID>` (for ublk thanks
   to rule 5 of udriver's generated rules); a mount unit wanted by that device unit, as an
   administrator writes it (docs/storage.md), mounts it; 256 MiB of files are written while
   the driver's /proc status is read (uid != 0, no capabilities, seccomp on).
3. The mount is stopped and the controller unplugged: the unit stops cleanly, the disk goes,
   no kernel warning. The host checks the backing file: `e2fsck -fn` clean, `debugfs` reads
   every file back byte for byte.
4. The same file is plugged in again: systemd mounts it by UUID by itself, and the files read
   back in the guest match.
"""

from __future__ import annotations

import dataclasses
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from udriver_vm.chroot import need_tools
from udriver_vm.debs import build_udriver_debs
from udriver_vm.harness import Guest
from udriver_vm.hotplug import (
    GuestRepo,
    copy_repo,
    events,
    journal,
    make_repo,
    proc_status,
    status,
    unit_props,
    wait_for,
)
from udriver_vm.nvme import check_backing_file
from udriver_vm.system import system_root
from vm._fixtures import require_vm

pytestmark = [pytest.mark.vm, pytest.mark.slow]

IMAGE_MB = 384
FILES = 8
FILE_MB = 32  # 8 x 32 MiB = 256 MiB
UUID = "5f1c0d2e-7a41-4b8e-9c3d-2b6a8e4f1d90"
MOUNT = "/srv/nvme"
MOUNT_UNIT = "srv-nvme.mount"
DEVICE_UNIT = r"dev-disk-by\x2duuid-" + UUID.replace("-", r"\x2d") + ".device"


@dataclasses.dataclass(frozen=True)
class System:
    kernel: str
    bridge: str
    """The block bridge the driver gets on this kernel (docs/storage.md)."""


SYSTEMS = {"debian12-6.1": System("6.1", "nbd"), "debian12-6.12": System("6.12", "ublk")}


@pytest.fixture(scope="module", params=list(SYSTEMS))
def system(request: pytest.FixtureRequest) -> System:
    return SYSTEMS[request.param]


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory, system: System,
           session_wheels: Any) -> Iterator[tuple[Guest, GuestRepo, Path]]:
    require_vm(system.kernel)
    need_tools("dpkg-buildpackage", "debootstrap", "git", "e2fsck", "debugfs")
    tmp = tmp_path_factory.mktemp("nvme-system")
    root = system_root(build_udriver_debs(tmp / "debs"), suite="bookworm")
    repo = make_repo(tmp / "repo", [session_wheels.wheels["nvme"]], vendor=("qemu", 0x1B36),
                     class_grant=True)
    image = tmp / "disk.img"
    with open(image, "wb") as f:
        f.truncate(IMAGE_MB << 20)
    with Guest(kernel=system.kernel, devices=[], root_ports=2, mem_mb=1024, system=root,
               boot_timeout=400) as g:
        shared = copy_repo(repo, g.workdir / "repo")
        gr = GuestRepo(g, shared)
        try:
            g.run("set -e; echo 'blacklist nvme' > /etc/modprobe.d/udriver-nvme.conf; "
                  f"udriver repo add main {gr.url} "
                  f"--root {shlex.quote(str(shared / 'public/keys/root.json'))} --auto-install; "
                  "udriver autobind --update-rules; udevadm control --reload",
                  timeout=600, check=True)
            yield g, gr, image
        finally:
            gr.stop()


def sh(g: Guest, cmd: str, timeout: float = 120) -> str:
    return g.run(cmd, timeout=timeout, check=True).stdout


def nvme_bdfs(g: Guest) -> list[str]:
    return sh(g, "for d in /sys/bus/pci/devices/*; do [ $(cat $d/class) = 0x010802 ] && "
                 "basename $d; done; true", timeout=60).split()


def plug(g: Guest, image: Path, dev_id: str, bus: str) -> str:
    """device_add the controller; its BDF once the guest sees it."""
    g.hotplug_nvme(image, dev_id, bus=bus, serial=f"udrv{dev_id[-1]}")
    return str(wait_for(lambda: (b := nvme_bdfs(g)) and b[0], 120, f"{dev_id} in sysfs"))


def unplug(g: Guest, dev_id: str, bdf: str) -> None:
    """device_del, then free the host file (QEMU holds a write lock on it)."""
    assert "error" not in (r := g.qmp("device_del", id=dev_id)), r
    g.wait_qmp_event("DEVICE_DELETED", timeout=120, device=dev_id)
    wait_for(lambda: bdf not in nvme_bdfs(g), 60, f"{bdf} to leave")
    assert "error" not in (r := g.qmp("blockdev-del", **{"node-name": f"{dev_id}-blk"})), r


def serving(g: Guest, bdf: str, unit: str) -> dict[str, Any]:
    """The driver's `bridge` event (its block device) once the unit reports `ready`."""
    def ready() -> dict[str, Any] | None:
        st = status(g, bdf)
        if st.get("state") == "failed":
            raise AssertionError(f"autobind failed: {st}\n{journal(g, unit)[-3000:]}")
        evs = events(journal(g, unit))
        if any(e.get("event") == "ready" for e in evs):
            return next(e for e in evs if e.get("event") == "bridge")
        return None
    try:
        return dict(wait_for(ready, 300, f"{unit} serving its block device", step=2.0))
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- journal\n{journal(g, unit)[-3000:]}\n--- autobind\n"
                             + g.run(f"journalctl --no-pager -n 40 -u udriver-autobind@{bdf}",
                                     timeout=120).stdout) from None


def test_hotplug_disk_mounted_by_uuid_unprivileged_then_unplugged(
        booted: tuple[Guest, GuestRepo, Path], system: System) -> None:
    g, gr, image = booted
    fetched = gr.downloads()
    bdf = plug(g, image, "nvme1", "rp1")
    unit = f"udriver-block@{bdf}.service"
    br = serving(g, bdf, unit)
    # Installed from the signed repository by udev -> autobind, run by the block unit.
    assert gr.downloads() - fetched == 1
    assert sh(g, f"basename $(readlink /sys/bus/pci/devices/{bdf}/driver)").strip() == "vfio-pci"
    assert sh(g, "lsmod | grep -c '^nvme ' || true").strip() == "0"  # the kernel's stayed out
    dev = br["device"]
    assert br["kind"] == system.bridge and dev.startswith(f"/dev/{system.bridge}"), br
    assert int(sh(g, f"blockdev --getsize64 {dev}")) == IMAGE_MB << 20

    # The file system, named by UUID through udev; the mount unit an administrator writes.
    sh(g, f"mkfs.ext4 -q -F -U {UUID} -L udrvnvme {dev}", timeout=300)
    wait_for(lambda: sh(g, f"readlink -f /dev/disk/by-uuid/{UUID} || true").strip() == dev,
             60, f"/dev/disk/by-uuid/{UUID} -> {dev}")
    escaped = sh(g, f"systemd-escape -p --suffix=device /dev/disk/by-uuid/{UUID}").strip()
    assert escaped == DEVICE_UNIT
    sh(g, f"set -e; mkdir -p {MOUNT}; printf '%s' {shlex.quote(mount_unit())} "
          f"> /etc/systemd/system/{MOUNT_UNIT}; systemctl daemon-reload; "
          f"systemctl enable {MOUNT_UNIT}; systemctl start {MOUNT_UNIT}")
    assert sh(g, f"findmnt -n -o SOURCE {MOUNT}").strip() == dev

    # Acceptance 4 while 256 MiB of files are written (acceptance 1).
    writer = g.run_bg(f"set -e; for i in $(seq 1 {FILES}); do head -c {FILE_MB}M /dev/urandom "
                      f"> {MOUNT}/f$i; done; sync; cd {MOUNT}; sha256sum f*")
    time.sleep(3)
    pid = int(unit_props(g, unit, "MainPID")["MainPID"])
    evs = events(journal(g, unit))
    probes = [e for e in evs if e.get("event") == "probed"]
    if len(probes) != 1:  # probed once: no restart
        pytest.fail(f"the driver probed {len(probes)} times:\n{journal(g, unit)}\n--- autobind\n"
                    + sh(g, f"journalctl --no-pager -o short-monotonic -u udriver-autobind@{bdf} "
                            f"-u {unit} -u systemd-udevd"))
    probed = probes[0]
    ps = proc_status(g, probed["pid"])
    uids = ps["Uid"].split()
    assert uids[0] != "0" and len(set(uids)) == 1, ps["Uid"]
    assert ps["CapEff"] == ps["CapPrm"] == ps["CapBnd"] == "0" * 16, ps
    assert ps["NoNewPrivs"] == "1" and ps["Seccomp"].strip() == "2", ps
    # The unit's main process is the root parent that set the bridge up; the driver is its
    # child, in the unit's cgroup.
    procs = sh(g, f'cat "/sys/fs/cgroup$(systemctl show -p ControlGroup --value {unit})'
                  '/cgroup.procs"').split()
    assert probed["pid"] != pid and str(probed["pid"]) in procs and str(pid) in procs, procs
    res = writer.wait(900)
    assert res.rc == 0, (res, journal(g, unit)[-3000:], g.dmesg()[-3000:])
    sums = dict(reversed(line.split()) for line in res.stdout.splitlines())
    assert len(sums) == FILES

    # Unmount, unplug: the unit stops cleanly, the disk goes, no kernel warning.
    before = g.dmesg()
    sh(g, f"systemctl stop {MOUNT_UNIT}", timeout=300)
    unplug(g, "nvme1", bdf)
    props = wait_for(lambda: (p := unit_props(g, unit, "ActiveState", "Result"))
                     ["ActiveState"] in ("inactive", "failed") and p, 120, f"{unit} to stop")
    assert props == {"ActiveState": "inactive", "Result": "success"}, (props, journal(g, unit))
    assert events(journal(g, unit))[-1].get("event") == "removed", journal(g, unit)[-2000:]
    name = dev.rsplit("/", 1)[1]
    if system.bridge == "ublk":  # STOP_DEV + DEL_DEV: the disk and its char device are gone
        assert g.run(f"ls /sys/block/{name} /dev/ublkc{name[5:]}", timeout=60).rc != 0
    else:  # NBD_CLEAR_SOCK: capacity 0
        assert sh(g, f"cat /sys/block/{name}/size").strip() == "0"
    assert sh(g, f"readlink -e /dev/disk/by-uuid/{UUID} || true").strip() == ""
    new = g.dmesg()[len(before):]
    assert "WARNING" not in new and "Call Trace" not in new, new

    # The host reads the controller's backing file itself.
    check_backing_file(image, sums, FILE_MB << 20)

    # Plugged in again: nothing to install, systemd mounts it by UUID by itself.
    old = bdf
    bdf = plug(g, image, "nvme2", "rp2")
    assert bdf != old  # another root port: a new unit instance, a fresh journal
    unit = f"udriver-block@{bdf}.service"
    br = serving(g, bdf, unit)
    assert gr.downloads() - fetched == 1
    src = wait_for(lambda: sh(g, f"findmnt -n -o SOURCE {MOUNT} || true").strip(), 120,
                   f"systemd to mount {MOUNT} when the disk came back")
    assert src == br["device"], (src, br)
    again = sh(g, f"cd {MOUNT} && sha256sum f*", timeout=600)
    assert dict(reversed(line.split()) for line in again.splitlines()) == sums
    sh(g, f"systemctl stop {MOUNT_UNIT}", timeout=300)
    unplug(g, "nvme2", bdf)


def mount_unit() -> str:
    """The mount unit of docs/storage.md ("Mounting it"): wanted by the by-UUID device unit,
    so systemd mounts the file system whenever the disk appears, at boot or on hotplug."""
    return (f"[Unit]\nDescription=NVMe namespace served by udriver\n\n"
            f"[Mount]\nWhat=/dev/disk/by-uuid/{UUID}\nWhere={MOUNT}\nType=ext4\n"
            f"Options=nofail\n\n[Install]\nWantedBy={DEVICE_UNIT}\n")
