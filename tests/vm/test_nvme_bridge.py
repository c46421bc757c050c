"""The NVMe namespace handed back to the kernel as a block device (issue 10, acceptance 1
and 4): through ublk on 6.12, through NBD on 6.1.

The wheel from `udriver build drivers/nvme` (manifest: abi 1.1, `bridge = "block"`) is
installed with `udriver install --wheel` and run by `udriver supervise`, which opens VFIO
and, when the driver asks, sets up the kernel side as root: on a kernel with ublk it adds
/dev/ublkbN and hands the driver /dev/ublkcN, whose io_uring the driver serves
(udriver.supervise._ublk, udriver_nvme._ublk); elsewhere it connects a free /dev/nbdN to a
socket whose other end the driver serves (udriver.supervise._nbd, udriver_nvme._nbd). In
the guest:
`mkfs.ext4`, mount, 256 MiB of files, unmount. While the files are written the driver
process has uid != 0 and CapEff = CapPrm = CapBnd = 0 (/proc/PID/status). After the
driver is stopped, the host checks the controller's backing file itself: `e2fsck -fn` is
clean and `debugfs` reads every file back, byte for byte (sha256 against the guest's).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from udriver_vm.harness import Guest, GuestTimeout
from udriver_vm.hotplug import events, prepare_guest, wait_for
from udriver_vm.nvme import check_backing_file
from udriver_vm.wheels import SessionWheels
from vm._fixtures import require_vm

# 5.10 and 6.1 have no ublk (BLK_DEV_UBLK is 6.0+ and not in Debian's 6.1): NBD is their
# bridge. 6.12 and 7.2 have ublk (CONFIG_BLK_DEV_UBLK=m): ublk there. Every kernel in
# `make test-kernels`; `make test` (--kernel-matrix=core): 6.1 only (CI time), since
# test_nvme_system.py runs the same disk checks on a hot-plugged controller under the
# systemd unit on 6.1 (NBD) and 6.12 (ublk) there.
pytestmark = [pytest.mark.vm, pytest.mark.kernel_primary("6.1")]

ROOT = Path(__file__).resolve().parents[2]
IMAGE_MB = 384
UBLK_KERNELS = ("6.12", "7.2")
"""Kernels whose Debian config builds ublk_drv (tests/vm/test_kernel_features.py checks it)."""
FILES = 8
FILE_MB = 32  # 8 x 32 MiB = 256 MiB


@pytest.fixture(scope="module")
def nvme_wheel(session_wheels: SessionWheels) -> Path:
    """The session's NVMe wheel: the same file on every kernel (sha256 printed at the start)."""
    return session_wheels.wheels["nvme"]


@pytest.fixture(scope="module")
def bridge_guest(kernel: str, tmp_path_factory: pytest.TempPathFactory,
                 nvme_wheel: Path) -> Iterator[tuple[Guest, Path, Path]]:
    require_vm(kernel)
    image = tmp_path_factory.mktemp(f"nvme-nbd-{kernel}") / "disk.img"
    with open(image, "wb") as f:
        f.truncate(IMAGE_MB << 20)
    with Guest(kernel=kernel, devices=(), root_ports=1, nvme=[str(image)]) as g:
        prepare_guest(g)
        (g.workdir / nvme_wheel.name).write_bytes(nvme_wheel.read_bytes())
        yield g, g.workdir / nvme_wheel.name, image


def proc_status(g: Guest, pid: int) -> dict[str, str]:
    r = g.run(f"cat /proc/{pid}/status", timeout=60, check=True)
    return {k: v.strip() for k, v in (line.split(":\t", 1) for line in r.stdout.splitlines()
                                      if ":\t" in line)}


def explain(g: Guest, log: str, what: str) -> NoReturn:
    """Fail with what the driver and the guest kernel said (the end of each log)."""
    drv = g.run(f"cat {log}", timeout=60).stdout
    pytest.fail(f"{what}\n--- driver log\n{drv[-4000:]}\n--- dmesg\n{g.dmesg()[-4000:]}")


def test_namespace_is_a_disk_served_unprivileged(bridge_guest: tuple[Guest, Path, Path]) -> None:
    g, wheel, image = bridge_guest
    g.run(f"set -e; rm -rf /var/lib/udriver /run/udriver; udriver install --wheel {wheel}",
          timeout=600, check=True)
    bdf = g.run("for d in /sys/bus/pci/devices/*; do [ $(cat $d/class) = 0x010802 ] && "
                "basename $d; done; true", timeout=30, check=True).stdout.split()[0]
    log = "/tmp/nvme-nbd.log"
    job = g.run_bg(f"udriver supervise --device {bdf} --driver nvme > {log} 2>&1")

    def bridged() -> list[dict] | None:
        evs = events(g.run(f"cat {log}", timeout=60).stdout)
        return evs if any(e.get("event") == "ready" for e in evs) else None
    evs = wait_for(bridged, 300, "the nvme driver with its block bridge", step=2.0)
    [probed] = [e for e in evs if e.get("event") == "probed"]
    [br] = [e for e in evs if e.get("event") == "bridge"]
    kind = "ublk" if g.kernel in UBLK_KERNELS else "nbd"
    assert br["kind"] == kind and br["device"].startswith(f"/dev/{kind}"), br
    assert br["blocks"] * br["block_size"] == IMAGE_MB << 20
    dev = br["device"]
    size = g.run(f"blockdev --getsize64 {dev}", timeout=60, check=True).stdout.strip()
    assert int(size) == IMAGE_MB << 20

    # Acceptance 1: a file system on it, 256 MiB of files, written in the background while
    # acceptance 4 is read from /proc.
    g.run(f"set -e; mkfs.ext4 -q -F -L udrvnbd {dev}; mkdir -p /mnt/nbd; mount {dev} /mnt/nbd",
          timeout=300, check=True)
    writer = g.run_bg(f"set -e; for i in $(seq 1 {FILES}); do head -c {FILE_MB}M /dev/urandom "
                      f"> /mnt/nbd/f$i; done; sync; cd /mnt/nbd; sha256sum f*")
    time.sleep(3)
    st = proc_status(g, probed["pid"])
    uids = st["Uid"].split()
    assert uids[0] != "0" and len(set(uids)) == 1, st["Uid"]
    assert st["CapEff"] == st["CapPrm"] == st["CapBnd"] == "0000000000000000", st
    assert st["NoNewPrivs"] == "1", st
    busy = g.run(f"cat /sys/block/{dev.rsplit('/', 1)[1]}/stat", timeout=60, check=True)
    res = writer.wait(600)
    if res.rc != 0:
        explain(g, log, f"writing the files failed: {res}")
    sums = dict(reversed(line.split()) for line in res.stdout.splitlines())
    assert len(sums) == FILES
    g.run("umount /mnt/nbd", timeout=300, check=True)
    writes_before = int(busy.stdout.split()[4])  # sectors written when /proc was read
    assert writes_before > 0, "the driver was not serving I/O when its status was read"

    # Stop: SIGTERM to the supervisor -> driver remove() -> CC.SHN; the bridge goes away.
    sup = json.loads(g.run(f"cat /run/udriver/supervise/{bdf}.json", timeout=60,
                           check=True).stdout)
    g.run(f"kill -TERM {sup['pid']}", timeout=60, check=True)
    try:
        assert job.wait(120).rc == 0
    except (AssertionError, GuestTimeout) as e:
        explain(g, log, f"the supervisor did not stop cleanly: {e}")
    evs = events(g.run(f"cat {log}", timeout=60).stdout)
    assert evs[-1] == {"event": "removed", "shutdown": "shutdown complete"}, evs
    # remove() stopped the server: it reports what it served (and, for ublk, what it cost:
    # every SQ doorbell carries at least one request, every CQ doorbell releases one).
    end = [e for e in evs if e["event"] == "bridge-ended"]
    assert len(end) == 1 and end[0]["served"] > 0 and end[0]["errors"] == 0, end
    if kind == "ublk":
        assert end[0]["why"] == "stopped", end
        c = end[0]
        assert 0 < c["sq_rings"] <= c["served"] + 1 and 0 < c["cq_rings"] <= c["served"], c
        assert 0 < c["irqs"] and c["sleeps"] <= c["enters"], c
    if kind == "nbd":
        assert g.run(f"cat /sys/block/{dev.rsplit('/', 1)[1]}/size", timeout=60,
                     check=True).stdout.strip() == "0"  # NBD_CLEAR_SOCK: capacity 0
    else:  # STOP_DEV removed the disk, DEL_DEV the char device
        gone = g.run(f"ls /sys/block/{dev.rsplit('/', 1)[1]} /dev/ublkc{br['device'][10:]}",
                     timeout=60)
        assert gone.rc != 0, gone.stdout
    assert "WARNING" not in g.dmesg()

    # The host reads the controller's backing file itself.
    check_backing_file(image, sums, FILE_MB << 20)
