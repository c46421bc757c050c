"""The e1000e driver as a Linux network interface through the kernel bridge (issue 11,
acceptance 1-4), on 6.1 and 6.12.

One guest per kernel with two e1000e on one QEMU hub (`vm._net`, the udriver NIC behind
root port rp1 so that it can be unplugged): the kernel's e1000e drives NIC K in network
namespace A (10.11.0.1). The e1000e driver is installed from its wheel (`udriver install
--wheel`) and run by `udriver supervise`: the privileged parent opens the device, drops
the driver to the device's uid with no capabilities and, because the manifest declares
`bridge = "net"`, creates the TAP interface `udp1s0f0` with the NIC's MAC when the driver
asks (ABI 1.1). The test then does what an administrator's network configuration would:
moves the interface into namespace B and gives it 10.11.0.2. IPv6 is off and both
neighbours are static, so the interface counters count only the test's own frames.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from udriver.toolchain import build_project
from vm._fixtures import require_vm
from vm._net import (
    E1000E_PROJECT,
    HOTPLUG_BDF,
    KERNEL_MAC,
    NIC_IDS,
    UDRIVER_MAC,
    install_e1000e,
    net_guest,
)
from vm._net_scripts import TCP_RECV, TCP_SEND, UDP_RECV, UDP_SEND
from vm.harness import Guest
from vm.hotplug import events

pytestmark = [pytest.mark.vm, pytest.mark.kernel_subset("6.1", "6.12")]

IFNAME = "udp1s0f0"  # the parent's name for 0000:01:00.0 (udriver.supervise._tap)
BIG_MIB = 256
UDP_N = 3000

_SETUP = """
set -e
ip netns add A; ip netns add B
ip link set {k} netns A
for ns in A B; do
    ip -n $ns link set lo up
    ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec $ns sysctl -qw net.ipv6.conf.default.disable_ipv6=1
done
ip -n A addr add 10.11.0.1/24 dev {k}; ip -n A link set {k} up
ip -n A neigh replace 10.11.0.2 lladdr {umac} dev {k} nud permanent
chmod o+x /root
"""

# What the administrator's configuration does when the interface appears (docs/network.md).
_ATTACH = f"""
set -e
ip link set {IFNAME} netns B
ip -n B addr add 10.11.0.2/24 dev {IFNAME}
ip -n B link set {IFNAME} up
ip -n B neigh replace 10.11.0.1 lladdr {KERNEL_MAC} dev {IFNAME} nud permanent
"""


@pytest.fixture(scope="module")
def e1000e_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = "1700000000"
    try:
        return build_project(E1000E_PROJECT, out_dir=tmp_path_factory.mktemp("whl"),
                             deb=False).wheel
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old


@pytest.fixture(scope="module")
def e1000e_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_e1000e(tmp_path_factory.mktemp("e1000e-site") / "site")


@pytest.fixture(scope="module", params=["6.1", "6.12"])
def br(request: pytest.FixtureRequest, e1000e_site: Path,
       e1000e_wheel: Path) -> Iterator[dict[str, Any]]:
    require_vm(request.param)
    with net_guest(request.param, e1000e_site, hotplug=True, mem_mb=1024) as (g, k):
        g.run(_SETUP.format(k=k, umac=UDRIVER_MAC), timeout=60, check=True)
        for name, text in (("tcp_recv.py", TCP_RECV), ("tcp_send.py", TCP_SEND),
                           ("udp_recv.py", UDP_RECV), ("udp_send.py", UDP_SEND)):
            (g.workdir / name).write_text(text)
        (g.workdir / e1000e_wheel.name).write_bytes(e1000e_wheel.read_bytes())
        g.run(f"rm -rf /var/lib/udriver /run/udriver; udriver install --wheel "
              f"{g.workdir / e1000e_wheel.name}", timeout=600, check=True)
        log = g.workdir / "supervise.log"
        sup = g.run_bg(f"exec udriver supervise --device {HOTPLUG_BDF} --driver e1000e "
                       f"> {log} 2>&1")
        ctx: dict[str, Any] = {"guest": g, "k": k, "log": log, "supervise": sup}
        wait_ready(ctx, 1)
        yield ctx
        if sup.poll() is None:
            g.run(f"kill -TERM {sup.pid}", timeout=30)
            sup.wait(60)


def wait_ready(ctx: dict[str, Any], n: int, timeout: float = 120) -> dict[str, Any]:
    """Wait for the driver's `n`-th `ready` event, then configure its interface."""
    deadline = time.monotonic() + timeout
    while True:
        evs = events(ctx["log"].read_text() if ctx["log"].exists() else "")
        if sum(e.get("event") == "ready" for e in evs) >= n:
            break
        assert time.monotonic() < deadline, ctx["log"].read_text()
        time.sleep(0.3)
    ctx["probed"] = [e for e in evs if e.get("event") == "probed"][-1]
    ctx["guest"].run(_ATTACH, timeout=60, check=True)
    return dict(ctx["probed"])


def ns(ctx: dict[str, Any], where: str, cmd: str, timeout: float = 60) -> Any:
    g: Guest = ctx["guest"]
    return g.run(f"cd /tmp && ip netns exec {where} {cmd}", timeout=timeout)


def pyns(ctx: dict[str, Any], where: str, script: str, args: str, timeout: float = 60) -> Any:
    g: Guest = ctx["guest"]
    return g.run_bg(f"cd /tmp && exec ip netns exec {where} timeout {int(timeout)} python3 "
                    f"{g.workdir}/{script} {args}")


def counter(ctx: dict[str, Any], where: str, dev: str, name: str) -> int:
    r = ns(ctx, where, f"cat /sys/class/net/{dev}/statistics/{name}")
    assert r.rc == 0, r.stderr
    return int(r.stdout)


def carrier(ctx: dict[str, Any]) -> str:
    return str(ns(ctx, "B", f"cat /sys/class/net/{IFNAME}/carrier").stdout.strip())


def wait_file(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def tcp_transfer(ctx: dict[str, Any], mib: int, tag: str, timeout: float = 240,
                 during: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
    g: Guest = ctx["guest"]
    marker = g.workdir / f"listen-{tag}"
    recv = pyns(ctx, "B", "tcp_recv.py", f"5001 {marker}", timeout)
    wait_file(marker)
    send = pyns(ctx, "A", "tcp_send.py", f"10.11.0.2 5001 {mib}", timeout)
    if during is not None:
        during()
    s, r = send.wait(timeout + 30), recv.wait(timeout + 30)
    assert s.rc == 0 and r.rc == 0, (s, r)
    return json.loads(s.stdout), json.loads(r.stdout)


def test_ping_both_ways(br: dict[str, Any]) -> None:
    a = ns(br, "A", "busybox ping -c 3 -W 5 10.11.0.2")
    b = ns(br, "B", "busybox ping -c 3 -W 5 10.11.0.1")
    assert a.rc == 0 and " 0% packet loss" in a.stdout, a.stdout + a.stderr
    assert b.rc == 0 and " 0% packet loss" in b.stdout, b.stdout + b.stderr


def test_tcp_256_mib_sha256_matches_while_unprivileged(br: dict[str, Any]) -> None:
    g: Guest = br["guest"]
    seen: dict[str, str] = {}

    def check_status() -> None:
        time.sleep(5)  # the transfer is running
        text = g.run(f"cat /proc/{br['probed']['pid']}/status", timeout=30, check=True).stdout
        seen.update(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
    sent, got = tcp_transfer(br, BIG_MIB, "big", during=check_status)
    assert sent["bytes"] == got["bytes"] == BIG_MIB << 20
    assert sent["sha256"] == got["sha256"]
    uids = seen["Uid"].split()
    assert uids[0] != "0" and len(set(uids)) == 1, seen["Uid"]  # real = effective = saved
    assert br["probed"]["uid"] == int(uids[0]) and br["probed"]["ifname"] == IFNAME
    assert seen["CapEff"].strip() == seen["CapPrm"].strip() == "0" * 16, seen


def test_udp_burst_counts_match_interface_counters(br: dict[str, Any]) -> None:
    g: Guest = br["guest"]
    k = br["k"]
    before = {"k_tx": counter(br, "A", k, "tx_packets"), "tap_rx": counter(br, "B", IFNAME, "rx_packets"),
              "tap_tx": counter(br, "B", IFNAME, "tx_packets"), "k_rx": counter(br, "A", k, "rx_packets")}
    marker = g.workdir / "listen-udp"
    recv = pyns(br, "B", "udp_recv.py", f"5002 {marker}", 90)
    wait_file(marker)
    send = pyns(br, "A", "udp_send.py", f"10.11.0.2 5002 {UDP_N}", 90).wait(120)
    got = recv.wait(120)
    assert send.rc == 0 and got.rc == 0, (send, got)
    received = json.loads(got.stdout)["received"]
    delta = {"k_tx": counter(br, "A", k, "tx_packets") - before["k_tx"],
             "tap_rx": counter(br, "B", IFNAME, "rx_packets") - before["tap_rx"],
             "tap_tx": counter(br, "B", IFNAME, "tx_packets") - before["tap_tx"],
             "k_rx": counter(br, "A", k, "rx_packets") - before["k_rx"]}
    # Sent == received == what K's driver counted out == what the TAP counted in, and
    # nothing went the other way (UDP, static neighbours, IPv6 off).
    assert (json.loads(send.stdout)["sent"], received) == (UDP_N, UDP_N)
    assert delta == {"k_tx": UDP_N, "tap_rx": UDP_N, "tap_tx": 0, "k_rx": 0}, delta


def test_carrier_follows_set_link(br: dict[str, Any]) -> None:
    g: Guest = br["guest"]
    assert carrier(br) == "1"
    for up, want in ((False, "0"), (True, "1")):
        assert g.qmp("set_link", name=NIC_IDS["udriver"], up=up).get("return") == {}
        deadline = time.monotonic() + 20
        while carrier(br) != want:
            assert time.monotonic() < deadline, f"carrier stayed {carrier(br)} after up={up}"
            time.sleep(0.2)
    assert ns(br, "A", "busybox ping -c 2 -W 5 10.11.0.2").rc == 0  # traffic again
    evs = events(br["log"].read_text())
    assert [e["up"] for e in evs if e.get("event") == "link"][-2:] == [False, True]


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
