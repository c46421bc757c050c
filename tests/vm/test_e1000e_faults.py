"""The e1000e driver's faults through the kernel bridge (issue 11, acceptance 3), on every
kernel of `make test-kernels` (`make test`: 6.1 and 6.12): SIGKILL during a transfer (the
supervisor restarts the driver, the interface comes back, a new transfer completes) and
`device_del` during traffic (the interface disappears, nothing hangs, no kernel warning).
The guest: `vm._net_bridge`.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from udriver_vm.harness import Guest
from udriver_vm.hotplug import events
from udriver_vm.net import HOTPLUG_BDF, NIC_IDS
from vm._net_bridge import (
    IFNAME,
    carrier,
    ns,
    pyns,
    tcp_transfer,
    wait_file,
    wait_ready,
)

pytestmark = [pytest.mark.vm, pytest.mark.kernel_primary("6.1", "6.12")]


def test_sigkill_during_transfer_then_restart(br: dict[str, Any]) -> None:
    g: Guest = br["guest"]
    marker = g.workdir / "listen-kill"
    recv = pyns(br, "B", "tcp_recv.py", f"5003 {marker}", 120)
    wait_file(marker)
    send = pyns(br, "A", "tcp_send.py", "10.11.0.2 5003 4096", 120)
    time.sleep(6)
    assert send.poll() is None, "the transfer ended before the kill"
    old = br["probed"]["pid"]
    g.run(f"kill -9 {old}", timeout=30, check=True)
    g.run(f"kill -9 {send.pid} {recv.pid}", timeout=30)
    send.wait(60)
    recv.wait(60)
    # The supervisor restarts the driver; the new process asks for a new interface.
    probed = wait_ready(br, 2)
    assert probed["pid"] != old and probed["ifname"] == IFNAME
    assert carrier(br) == "1"
    sent, got = tcp_transfer(br, 16, "after-kill", timeout=120)
    assert sent["bytes"] == got["bytes"] == 16 << 20 and sent["sha256"] == got["sha256"]


def test_device_del_during_traffic(br: dict[str, Any]) -> None:
    g: Guest = br["guest"]
    flood = pyns(br, "A", "udp_send.py", "10.11.0.2 5004 100000", 120)
    time.sleep(2)
    assert flood.poll() is None
    t0 = time.monotonic()
    g.qmp("device_del", id=NIC_IDS["udriver"])
    g.wait_qmp_event("DEVICE_DELETED", device=NIC_IDS["udriver"], timeout=60)
    took = time.monotonic() - t0
    deadline = time.monotonic() + 60
    while "removed" not in [e.get("event") for e in events(br["log"].read_text())]:
        assert time.monotonic() < deadline, br["log"].read_text()
        time.sleep(0.3)
    gone = ns(br, "B", f"ip link show {IFNAME}")
    assert gone.rc != 0 and "does not exist" in gone.stderr, gone
    assert g.run(f"ip link show {IFNAME}", timeout=30).rc != 0  # nor back in the root
    g.run(f"kill {flood.pid}", timeout=30)
    flood.wait(60)
    assert g.run(f"ls /sys/bus/pci/devices/{HOTPLUG_BDF}", timeout=30).rc != 0
    assert took < 30, took
    log = g.dmesg()
    assert "WARNING" not in log and "Call Trace" not in log and "BUG" not in log, log[-3000:]
