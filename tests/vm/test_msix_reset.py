"""MSI-X onto eventfds and function-level reset, on a real kernel (the edu device has
neither: it offers INTx and MSI only).

A QEMU virtio-rng-pci device hot-plugged behind a PCIe root port is a PCIe endpoint with
an MSI-X table and FLR. It is bound to vfio-pci with `udriver.pci.bind` and driven through
`udriver.runtime.Device`: every MSI-X vector gets an eventfd (the kernel lists them as
`vfio-msix[i](BDF)` in /proc/interrupts), disabling removes them, and `reset()`
(VFIO_DEVICE_RESET, an FLR here) puts the device's virtio status back to 0 while vfio-pci
restores its config space.
"""

from __future__ import annotations

import json
import time

import pytest

from udriver_vm.harness import Guest

pytestmark = pytest.mark.vm

_SCRIPT = r'''
import json, sys
from udriver import pci
from udriver.runtime import Device

bdf = sys.argv[1]
out = {}
pci.bind(bdf)
with Device(bdf) as d:
    out["msix_available"] = d.interrupts.available("msix")
    fds = d.interrupts.enable("msix", out["msix_available"])
    out["fds"] = len(set(fds))
    out["proc_interrupts"] = sorted(
        line.split()[-1] for line in open("/proc/interrupts") if f"({bdf})" in line)
    out["pending"] = [d.interrupts.pending(v) for v in range(len(fds))]
    d.interrupts.disable()
    out["after_disable"] = [line.split()[-1] for line in open("/proc/interrupts")
                            if f"({bdf})" in line]
    # virtio 1.x common configuration (virtio spec 4.1.4.3): find it through the vendor
    # capabilities, then set device_status (offset 0x14) to ACKNOWLEDGE.
    pos, common = d.config.read8(0x34) & ~3, None
    while pos:
        if d.config.read8(pos) == 0x09 and d.config.read8(pos + 3) == 1:
            common = (d.bar(d.config.read8(pos + 4)), d.config.read32(pos + 8))
        pos = d.config.read8(pos + 1) & ~3
    bar, off = common
    d.set_bus_master(True)
    out["cmd_before"] = d.config.read16(0x04)
    bar.write8(off + 0x14, 1)
    out["status_before"] = bar.read8(off + 0x14)
    d.reset()
    out["status_after"] = bar.read8(off + 0x14)
    out["cmd_after"] = d.config.read16(0x04)
    out["vendor_after"] = d.config.read16(0x00)
    # The device still works after the reset: MSI-X can be set up again.
    out["msix_again"] = len(d.interrupts.enable("msix", 1))
    d.interrupts.disable()
print(json.dumps(out))
'''


def test_msix_vectors_and_flr(guest: Guest) -> None:
    before = set(guest.run("ls /sys/bus/pci/devices", timeout=60, check=True).stdout.split())
    reply = guest.qmp("device_add", driver="virtio-rng-pci", bus="rp2", id="rng1")
    assert "error" not in reply, reply
    deadline = time.monotonic() + 60
    while True:
        now = set(guest.run("ls /sys/bus/pci/devices", timeout=60, check=True).stdout.split())
        new = sorted(d for d in now - before
                     if guest.run(f"cat /sys/bus/pci/devices/{d}/vendor", timeout=60)
                     .stdout.strip() == "0x1af4")
        if new:
            break
        assert time.monotonic() < deadline, "virtio-rng-pci did not appear"
        time.sleep(0.5)
    [bdf] = new
    script = guest.workdir / "msix.py"
    script.write_text(_SCRIPT)
    r = guest.run(f"timeout 120 python3 {script} {bdf}", timeout=180)
    assert r.rc == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    n = out["msix_available"]
    assert n >= 2, out  # virtio-pci: a config vector plus one per queue
    assert out["fds"] == n
    assert out["proc_interrupts"] == sorted(f"vfio-msix[{i}]({bdf})" for i in range(n)), out
    assert out["pending"] == [0] * n
    assert out["after_disable"] == [], out
    # The device's own state is reset (virtio: device_status back to 0)...
    assert (out["status_before"], out["status_after"]) == (1, 0), out
    # ...while vfio-pci saves and restores config space around it (bus master stays on).
    assert out["cmd_before"] & 0x4 and out["cmd_after"] == out["cmd_before"], out
    assert out["vendor_after"] == 0x1AF4 and out["msix_again"] == 1, out
