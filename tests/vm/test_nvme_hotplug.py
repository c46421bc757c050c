"""The NVMe driver as a built package under `udriver run`, on a hot-plugged controller.

`udriver build drivers/nvme` makes the cp311-abi3 manylinux wheel; it is installed the way
`udriver install` lays drivers out (`<state>/drivers/nvme/current`). QMP `blockdev-add` +
`device_add nvme` (`Guest.hotplug_nvme`) puts a controller backed by a host file behind a
PCIe root port; it is bound to vfio-pci and `udriver run --driver nvme` probes it (full
bring-up), reports Identify, reads LBA 0, and on stop shuts the controller down (CC.SHN).
`device_del` while the driver serves: vfio-pci's request IRQ makes the runner call
`remove()`; the process exits 0 and the kernel logs no warning.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from udriver.toolchain import build_project
from udriver_vm.harness import Guest
from udriver_vm.state import guest_readable_state
from vm._fixtures import require_vm

# `make test` (--kernel-matrix=core): 6.1 only (CI time); on 6.12 the hot-plugged controller
# is driven end to end, autobind and unit included, by test_nvme_system.py. The full matrix
# (`pytest --kernels=...`) runs it on every kernel given.
pytestmark = [pytest.mark.vm, pytest.mark.kernel_primary("6.1")]

ROOT = Path(__file__).resolve().parents[2]
IMAGE_MB = 32


@pytest.fixture(scope="module")
def nvme_state(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Build the wheel with the toolchain and install it as <state>/drivers/nvme/current."""
    state = tmp_path_factory.mktemp("nvme-state")
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = "1700000000"
    try:
        res = build_project(ROOT / "drivers" / "nvme", out_dir=tmp_path_factory.mktemp("whl"),
                            deb=False)
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--disable-pip-version-check", "--target",
                    str(state / "drivers" / "nvme" / "current"), str(res.wheel)],
                   check=True, capture_output=True)
    return state, res.wheel.name


@pytest.fixture(scope="module")
def hp_guest(kernel: str, tmp_path_factory: pytest.TempPathFactory,
             nvme_state: tuple[Path, str]) -> Iterator[tuple[Guest, Path, str]]:
    require_vm(kernel)
    image = tmp_path_factory.mktemp(f"nvme-hp-{kernel}") / "disk.img"
    with open(image, "wb") as f:
        f.truncate(IMAGE_MB << 20)
    with Guest(kernel=kernel, devices=(), root_ports=1) as g:
        yield g, image, guest_readable_state(g, nvme_state[0], "nvme-state")


def plug(g: Guest, image: Path) -> str:
    """Hot-add the controller, wait for it in sysfs, bind it to vfio-pci; return its BDF."""
    g.hotplug_nvme(image, "nvme1", bus="rp1", serial="udrv0101")
    deadline = time.monotonic() + 60
    while True:
        r = g.run("for d in /sys/bus/pci/devices/*; do [ $(cat $d/class) = 0x010802 ] && "
                  "basename $d; done; true", timeout=30, check=True)
        if r.stdout.split():
            bdf = r.stdout.split()[0]
            break
        assert time.monotonic() < deadline, "the hot-added nvme controller did not appear"
        time.sleep(0.5)
    g.run(f"modprobe vfio-pci && echo vfio-pci > /sys/bus/pci/devices/{bdf}/driver_override && "
          f"echo {bdf} > /sys/bus/pci/drivers_probe && [ $(basename $(readlink "
          f"/sys/bus/pci/devices/{bdf}/driver)) = vfio-pci ]", timeout=60, check=True)
    return bdf


def events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_built_wheel_is_abi3_manylinux(nvme_state: tuple[Path, str]) -> None:
    assert "-cp311-abi3-" in nvme_state[1] and "manylinux" in nvme_state[1]


def test_udriver_run_probes_reads_and_shuts_down(hp_guest: tuple[Guest, Path, str]) -> None:
    g, image, state = hp_guest
    bdf = plug(g, image)
    try:
        # bridge=off: probe, read, remove (with the block device, run() serves it until
        # stopped; test_nvme_bridge.py covers that)
        r = g.run(f"UDRIVER_STATE_DIR={state} udriver run --device {bdf} --driver nvme --once "
                  f"--option bridge=off", timeout=120)
        assert r.rc == 0, r.stdout + r.stderr
        ev = events(r.stdout)
        assert [e["event"] for e in ev] == ["probed", "ready", "removed"], ev
        assert (ev[0]["model"], ev[0]["serial"], ev[0]["irq"]) == ("QEMU NVMe Ctrl", "udrv0101",
                                                                   "msix")
        assert ev[0]["namespaces"] == [{"nsid": 1, "blocks": IMAGE_MB * 2048, "lba_bytes": 512}]
        assert ev[1] == {"event": "ready", "lba0_bytes": 512}
        assert ev[2] == {"event": "removed", "shutdown": "shutdown complete"}
    finally:
        g.reset_devices()


def test_device_del_while_serving_removes_cleanly(hp_guest: tuple[Guest, Path, str]) -> None:
    g, image, state = hp_guest
    bdf = plug(g, image)
    out = g.workdir / "serve.out"
    out.unlink(missing_ok=True)
    job = g.run_bg(f"UDRIVER_STATE_DIR={state} udriver run --device {bdf} --driver nvme "
                   f"> {out}")
    deadline = time.monotonic() + 90
    while not (out.exists() and '"ready"' in out.read_text()):
        assert job.poll() is None, job.poll()
        assert time.monotonic() < deadline, "driver never became ready"
        time.sleep(0.5)
    before = g.dmesg()
    assert "error" not in g.qmp("device_del", id="nvme1")
    g.wait_qmp_event("DEVICE_DELETED", timeout=60, device="nvme1")
    res = job.wait(60)
    assert res.rc == 0, res.stderr
    assert events(out.read_text())[-1] == {"event": "removed", "shutdown": "shutdown complete"}
    new = g.dmesg()[len(before):]
    assert "WARNING" not in new and "Call Trace" not in new, new
    g.run(f"[ ! -e /sys/bus/pci/devices/{bdf} ]", timeout=30, check=True)
    g.reset_devices()  # deletes the block backend
