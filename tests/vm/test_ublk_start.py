"""A driver that says `start` without fetching its tags cannot hold the privileged parent.

ublk's START_DEV waits until every tag of the device has been fetched by its server
(drivers/block/ublk_drv.c, `ublk_ctrl_start_dev`), without a limit. The server is the
unprivileged driver, so a buggy or hostile one could keep the root parent's bridge thread,
the ublk device, and the lock that tear-down needs (`udriver.supervise._ublk`, step 5).
Here, in a 6.12 guest as root, the real parent (`BridgeHost` with the real ublk back-end)
serves a scripted "driver" over the real bridge channel: it asks for a ublk block device,
takes the char device, never fetches, says `start`. The parent must answer with an error
within its bound, tear down promptly when the driver goes, and leave no ublk device behind.
A second run with a driver that does fetch is not needed here: every ublk test in
test_nvme_bridge*.py and test_nvme_system.py starts a real one.
"""

from __future__ import annotations

import json

import pytest

from udriver_vm.harness import Guest

pytestmark = [pytest.mark.vm]

BOUND = 3.0
"""START_TIMEOUT for this run (the shipped 30 s would only make the test slower)."""

_SCRIPT = r'''
import json, os, sys, time
import udriver.supervise._ublk as ublk
from udriver import _bridgewire as wire
from udriver.supervise._bridgehost import BridgeHost, channel

ublk.START_TIMEOUT = float(sys.argv[1])
parent, child = channel()
host = BridgeHost("0000:00:1f.7", "block", parent)
host.driver_pid = os.getpid()
host.start()
wire.send(child, {"op": "block", "blocks": 2048, "block_size": 512, "kinds": ["ublk"],
                  "queue_depth": 4, "io_bytes": 4096})
reply, fds = wire.recv(child)
chars = sorted(os.listdir("/sys/class/ublk-char"))
t0 = time.monotonic()
wire.send(child, {"op": "start"})  # without a single FETCH_REQ
started, _ = wire.recv(child)
waited = time.monotonic() - t0
for fd in fds:
    os.close(fd)
child.close()
t1 = time.monotonic()
host.close(timeout=60)
closed = time.monotonic() - t1
for _ in range(100):  # DEL_DEV completes once the char device is released
    if not os.listdir("/sys/class/ublk-char"):
        break
    time.sleep(0.1)
print(json.dumps({"reply": reply, "chars": chars, "started": started, "waited": waited,
                  "closed": closed, "left": sorted(os.listdir("/sys/class/ublk-char")),
                  "blocks": sorted(b for b in os.listdir("/sys/block") if b.startswith("ublk"))}))
'''


def test_start_without_fetching_is_refused_within_the_bound(guest_612: Guest) -> None:
    g = guest_612
    g.run("modprobe ublk_drv", timeout=60, check=True)
    script = g.workdir / "ublk_start.py"
    script.write_text(_SCRIPT)
    r = g.run(f"python3 {script} {BOUND}", timeout=180)
    assert r.rc == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["reply"]["ok"] is True and out["reply"]["kind"] == "ublk", out
    assert out["chars"] == [f"ublkc{out['reply']['dev_id']}"], out
    # Refused with the reason, after the bound and not much later.
    assert out["started"]["ok"] is False, out
    assert "START_DEV" in out["started"]["error"] and "no answer within 3 s" in \
        out["started"]["error"] and "fetched every tag" in out["started"]["error"], out
    assert BOUND <= out["waited"] < BOUND + 10, out
    # The cancelled START_DEV left nothing held: tear-down is prompt, the device is gone.
    assert out["closed"] < 15, out
    assert out["left"] == [] and out["blocks"] == [], out
    assert "WARNING" not in g.dmesg()
