"""Hotplug of the e1000e driver (issue 11): `device_add` -> autobind -> signed install ->
interface up; on `device_del` the interface goes away. Kernel 6.1, one udev guest.

Host: build drivers/e1000e (the session's wheel, `udriver_vm.wheels`) and publish it in a signed
repository whose vendor `intel` holds PCI vendor 8086 (`hotplug.make_repo`). Guest
(`udriver_vm.net`): QEMU hub 0 with the kernel's 82574 at 00:10.0 and a free hub port for the
udriver NIC; the repository served on loopback, the client configured with its root and
auto-install, the udev rules generated. Then QMP `device_add e1000e` on root port rp1:
udev -> `udriver autobind` (catch-all rule: no installed driver claims 8086:10d3) ->
TUF-verified install -> vfio-pci -> `udriver supervise`, which grants the manifest's
`bridge = "net"`: the TAP interface `udp1s0f0` with the NIC's MAC and carrier.

The kernel's e1000e is listed in `/etc/modprobe.d` as `blacklist e1000e`, as an
administrator who gives that NIC model to udriver would: udev's `kmod load` of the
device's modalias then skips it, so the kernel does not claim the new NIC before
autobind (autobind leaves a device a kernel driver already took alone, by design). The
kernel's NIC is given e1000e by name (`modprobe e1000e`, which the blacklist does not
stop) once the udriver NIC is bound to vfio-pci with its driver_override.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from udriver_vm.harness import Guest
from udriver_vm.hotplug import (
    GuestRepo,
    copy_repo,
    driver_log,
    events,
    make_repo,
    prepare_guest,
    proc_status,
    status,
    wait_for,
)
from udriver_vm.net import (
    HOTPLUG_BDF,
    KERNEL_BDF,
    NIC_IDS,
    UDRIVER_MAC,
    net_qemu_args,
    udriver_nic_props,
)
from vm._fixtures import require_vm
from vm._net_bridge import (
    IFNAME,
    attach_interface,
    carrier,
    ns,
    setup_namespaces,
)

pytestmark = [pytest.mark.vm, pytest.mark.kernel_subset("6.1")]

_KERNEL_NIC = f"""
set -e
modprobe e1000e
udevadm settle --timeout=60
for i in $(seq 100); do [ -d /sys/bus/pci/devices/{KERNEL_BDF}/net ] && break; sleep 0.1; done
ls /sys/bus/pci/devices/{KERNEL_BDF}/net
"""


@pytest.fixture(scope="module")
def env(kernel: str, tmp_path_factory: pytest.TempPathFactory,
        session_wheels: Any) -> Iterator[dict[str, Any]]:
    """The udev guest with the kernel NIC's hub port and the repository served and
    configured; nothing is installed yet."""
    require_vm(kernel)
    tmp = tmp_path_factory.mktemp("e1000e-hotplug")
    repo = make_repo(tmp / "repo", [session_wheels.wheels["e1000e"]], vendor=("intel", 0x8086))
    with Guest(kernel=kernel, devices=[], root_ports=1, udev=True, mem_mb=1024,
               qemu_args=net_qemu_args(hotplug=True, plug_udriver=False)) as g:
        shared = copy_repo(repo, g.workdir / "repo")
        prepare_guest(g)
        g.run("echo 'blacklist e1000e' > /etc/modprobe.d/udriver-e1000e.conf", timeout=30,
              check=True)
        gr = GuestRepo(g, shared)
        try:
            gr.configure(shared / "public/keys/root.json")
            yield {"guest": g, "repo": gr}
        finally:
            gr.stop()


def wait_ready(g: Guest, bdf: str, timeout: float = 240) -> list[dict[str, Any]]:
    """The driver log's events once the driver reports `ready` (fails on autobind `failed`)."""
    def ready() -> list[dict[str, Any]] | None:
        st = status(g, bdf)
        if st.get("state") == "failed":
            raise AssertionError(f"autobind failed: {st}\n{driver_log(g, bdf)}")
        evs = events(driver_log(g, bdf))
        return evs if any(e.get("event") == "ready" for e in evs) else None
    try:
        return list(wait_for(ready, timeout, f"the e1000e driver on {bdf}", step=1.0))
    except AssertionError as e:  # say what autobind did (e.g. left it to a kernel driver)
        bound = g.run(f"readlink /sys/bus/pci/devices/{bdf}/driver; lsmod | grep e1000e",
                      timeout=60).stdout
        raise AssertionError(f"{e}\ndevice driver: {bound}\nlog: {driver_log(g, bdf)}") from None


def test_hotplug_installs_binds_interface_up_then_unplug(env: dict[str, Any]) -> None:
    g: Guest = env["guest"]
    fetched = env["repo"].downloads()
    assert "error" not in (r := g.qmp("device_add", **udriver_nic_props())), r
    evs = wait_ready(g, HOTPLUG_BDF)
    # Installed from the signed repository (one download), bound to vfio-pci, supervised.
    assert env["repo"].downloads() - fetched == 1
    assert g.run("readlink /var/lib/udriver/drivers/e1000e/current", timeout=60,
                 check=True).stdout.strip()
    dev = f"/sys/bus/pci/devices/{HOTPLUG_BDF}"
    assert g.run(f"basename $(readlink {dev}/driver); cat {dev}/driver_override", timeout=60,
                 check=True).stdout.split() == ["vfio-pci", "vfio-pci"]
    st = status(g, HOTPLUG_BDF)
    assert st["state"] == "running" and st["driver"] == "e1000e", st
    [probed] = [e for e in evs if e.get("event") == "probed"]
    assert probed["ifname"] == IFNAME, probed
    # The peer: the kernel's e1000e takes only its own NIC now (the other has its override).
    k = g.run(_KERNEL_NIC, timeout=120, check=True).stdout.split()[-1]
    setup_namespaces(g, k)
    ctx = {"guest": g}
    attach_interface(g)
    assert ns(ctx, "B", f"cat /sys/class/net/{IFNAME}/address").stdout.strip() == UDRIVER_MAC
    wait_for(lambda: carrier(ctx) == "1", 30, f"carrier on {IFNAME}")
    wait_for(lambda: ns(ctx, "A", f"cat /sys/class/net/{k}/carrier").stdout.strip() == "1", 30,
             f"carrier on the kernel's {k}")  # its autonegotiation ends after `link set up`
    ping = ns(ctx, "A", "busybox ping -c 3 -W 5 10.11.0.2")
    assert ping.rc == 0 and "3 packets received" in ping.stdout, ping
    # Unprivileged while it serves.
    ps = proc_status(g, probed["pid"])
    uids = ps["Uid"].split()
    assert uids[0] != "0" and len(set(uids)) == 1, ps["Uid"]
    assert ps["CapEff"] == ps["CapPrm"] == ps["CapBnd"] == "0" * 16, ps
    assert ps["NoNewPrivs"] == "1", ps
    # device_del: the interface goes, the driver exits, the device's records are cleaned up.
    before = g.dmesg()
    t0 = time.monotonic()
    assert "error" not in g.qmp("device_del", id=NIC_IDS["udriver"])
    g.wait_qmp_event("DEVICE_DELETED", device=NIC_IDS["udriver"], timeout=60)
    wait_for(lambda: any(e.get("event") == "removed" for e in events(driver_log(g, HOTPLUG_BDF))),
             60, "the driver's `removed` event")
    gone = ns(ctx, "B", f"ip link show {IFNAME}")
    assert gone.rc != 0 and "does not exist" in gone.stderr, gone
    assert g.run(f"ip link show {IFNAME}", timeout=30).rc != 0  # nor back in the root namespace
    wait_for(lambda: g.run(f"test -e /proc/{probed['pid']}", timeout=60).rc != 0, 60,
             "the driver process to exit")
    wait_for(lambda: not status(g, HOTPLUG_BDF), 60, f"status record of {HOTPLUG_BDF} to go")
    assert g.run(f"test -e {dev}", timeout=30).rc != 0
    assert time.monotonic() - t0 < 90
    new = g.dmesg()[len(before):]
    assert "WARNING" not in new and "Call Trace" not in new and "BUG" not in new, new
