"""The NVMe block device under faults and fio (issue 10, acceptance 2 and 3): NBD on
6.1, ublk on 6.12 (the parent's choice, see tests/vm/test_nvme_bridge.py).

One guest, one controller hot-plugged behind a PCIe root port (so that `device_del` can
take it), the driver installed from its wheel and run by `udriver supervise`:

1. Integrity: fio `verify=crc32c` on /dev/nbdN or /dev/ublkbN, sequential then random writes, each read
   back and checked by fio: 0 verify errors (fio exits 0 and reports no error).
2. SIGKILL of the driver during fio random writes: fio ends within `BOUND` seconds (the
   kernel fails the pending I/O when the socket closes and the parent clears the device;
   nothing hangs), the supervisor restarts the driver, the block device comes back with its
   size, and a file system made on it afterwards is clean by the host's `e2fsck -fn` of
   the backing file.
3. `device_del` during fio: the block device loses its capacity, fio ends within `BOUND`,
   the supervisor stops, and the guest kernel logs no warning.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from udriver_vm.harness import Guest
from udriver_vm.hotplug import events, prepare_guest, wait_for
from vm._fixtures import require_vm

# One guest and fio on every kernel of `make test-kernels`; `make test` (--kernel-matrix=core):
# 6.1 only (CI time).
pytestmark = [pytest.mark.vm, pytest.mark.kernel_primary("6.1")]

ROOT = Path(__file__).resolve().parents[2]
IMAGE_MB = 128
BOUND = 45.0
"""Seconds within which pending I/O must fail or complete after a fault (NBD_SET_TIMEOUT
is 30 s; the socket closing normally ends it at once)."""


@pytest.fixture(scope="module")
def nvme_wheel(session_wheels: Any) -> Path:
    """The session's NVMe wheel: the same file on every kernel (sha256 printed at the start)."""
    return session_wheels.wheels["nvme"]


@pytest.fixture(scope="module")
def served(kernel: str, tmp_path_factory: pytest.TempPathFactory,
           nvme_wheel: Path) -> Iterator[dict[str, Any]]:
    """The guest, with the hot-plugged controller served as a block device."""
    require_vm(kernel)
    image = tmp_path_factory.mktemp(f"nvme-faults-{kernel}") / "disk.img"
    with open(image, "wb") as f:
        f.truncate(IMAGE_MB << 20)
    with Guest(kernel=kernel, devices=(), root_ports=1) as g:
        prepare_guest(g)
        (g.workdir / nvme_wheel.name).write_bytes(nvme_wheel.read_bytes())
        g.run(f"set -e; rm -rf /var/lib/udriver /run/udriver; udriver install --wheel "
              f"{g.workdir / nvme_wheel.name}", timeout=600, check=True)
        g.hotplug_nvme(image, "nvme1", bus="rp1", serial="udrv0101")
        bdf = wait_for(lambda: g.run(
            "for d in /sys/bus/pci/devices/*; do [ $(cat $d/class) = 0x010802 ] && "
            "basename $d; done; true", timeout=30, check=True).stdout.split(), 60,
            "the hot-added controller")[0]
        log = "/tmp/nvme-faults.log"
        job = g.run_bg(f"UDRIVER_CRASH_WINDOW=1 udriver supervise --device {bdf} "
                       f"--driver nvme > {log} 2>&1")
        st: dict[str, Any] = {"g": g, "bdf": bdf, "log": log, "job": job, "image": image}
        st["bridge"] = wait_bridge(st, 1)
        yield st


def wait_bridge(st: dict[str, Any], n: int) -> dict[str, Any]:
    """The n-th `bridge` event, once the driver that sent it is ready."""
    g = st["g"]

    def nth() -> dict[str, Any] | None:
        evs = events(g.run(f"cat {st['log']}", timeout=60).stdout)
        br = [e for e in evs if e.get("event") == "bridge"]
        probed = [e for e in evs if e.get("event") == "probed"]
        ready = [e for e in evs if e.get("event") == "ready"]
        if len(br) >= n and len(ready) >= n:
            return br[n - 1] | {"pid": probed[n - 1]["pid"]}
        return None
    br: dict[str, Any] = wait_for(nth, 300, f"bridge #{n}", step=1.0)
    kind = "ublk" if g.kernel in ("6.12", "7.2") else "nbd"  # the kernels with ublk_drv
    assert br["kind"] == kind and br["device"].startswith(f"/dev/{kind}"), br
    size = g.run(f"blockdev --getsize64 {br['device']}", timeout=60, check=True).stdout
    assert int(size) == IMAGE_MB << 20
    return br


def fio(dev: str, rw: str, extra: str = "") -> str:
    return (f"fio --name=v --filename={dev} --direct=1 --ioengine=libaio --rw={rw} "
            f"--bs=16k --iodepth=8 --size=32m --output-format=json {extra}")


def test_fio_crc32c_verify_has_no_errors(served: dict[str, Any]) -> None:
    # One test for both patterns: the tests of this module share one guest, in file order.
    g, dev = served["g"], served["bridge"]["device"]
    for rw in ("write", "randwrite"):
        r = g.run(fio(dev, rw, "--verify=crc32c --do_verify=1 --verify_fatal=1"), timeout=600)
        assert r.rc == 0, rw + ": " + r.stdout[-2000:] + r.stderr
        job = json.loads(r.stdout[r.stdout.index("{"):])["jobs"][0]
        assert job["error"] == 0, rw
        assert job["write"]["io_bytes"] == 32 << 20 == job["read"]["io_bytes"], rw


def test_sigkill_during_io_fails_it_within_the_bound_and_recovers(
        served: dict[str, Any]) -> None:
    g, br = served["g"], served["bridge"]
    dev = br["device"]
    load = g.run_bg(fio(dev, "randwrite", "--time_based --runtime=120"))
    time.sleep(3)
    assert load.poll() is None, "fio ended before the fault"
    g.run(f"kill -KILL {br['pid']}", timeout=60, check=True)
    t0 = time.monotonic()
    res = load.wait(BOUND + 30)
    assert time.monotonic() - t0 < BOUND, "pending I/O outlived the bound"
    assert res.rc != 0  # the writes in flight failed with an error, they did not hang
    again = wait_bridge(served, 2)
    served["bridge"] = again
    assert again["pid"] != br["pid"]
    dev = again["device"]
    g.run(f"set -e; mkfs.ext4 -q -F {dev}; mkdir -p /mnt/f; mount {dev} /mnt/f; "
          f"head -c 8M /dev/urandom > /mnt/f/after; sync; umount /mnt/f", timeout=300,
          check=True)
    fsck = subprocess.run(["e2fsck", "-fn", str(served["image"])], capture_output=True,
                          text=True, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_device_del_during_io_removes_the_block_device(served: dict[str, Any]) -> None:
    g, br = served["g"], served["bridge"]
    dev = br["device"]
    before = g.dmesg()
    load = g.run_bg(fio(dev, "randread", "--time_based --runtime=120"))
    time.sleep(3)
    assert load.poll() is None, "fio ended before the fault"
    assert "error" not in g.qmp("device_del", id="nvme1")
    g.wait_qmp_event("DEVICE_DELETED", timeout=60, device="nvme1")
    t0 = time.monotonic()
    load.wait(BOUND + 30)
    assert time.monotonic() - t0 < BOUND
    assert served["job"].wait(120).rc == 0  # the supervisor stops: the device is gone
    name = dev.rsplit("/", 1)[1]
    if br["kind"] == "nbd":  # NBD_CLEAR_SOCK: capacity 0
        assert g.run(f"cat /sys/block/{name}/size", timeout=60,
                     check=True).stdout.strip() == "0"
    else:  # ublk: STOP_DEV removed the disk
        assert g.run(f"test -e /sys/block/{name}", timeout=60).rc != 0, name
    pid = served["bridge"]["pid"]
    assert g.run(f"test -e /proc/{pid}", timeout=60).rc != 0, "the driver is still running"
    new = g.dmesg()[len(before):]
    assert "WARNING" not in new and "Call Trace" not in new, new
