"""The kernel-bridge guest of the e1000e tests (test_e1000e_bridge.py, test_e1000e_faults.py).

One guest per kernel with two e1000e on one QEMU hub (`udriver_vm.net`, the udriver NIC behind
root port rp1 so that it can be unplugged): the kernel's e1000e drives NIC K in network
namespace A (10.11.0.1). The e1000e driver is installed from its wheel (`udriver install
--wheel`) and run by `udriver supervise`: the privileged parent opens the device, drops
the driver to the device's uid with no capabilities and, because the manifest declares
`bridge = "net"`, creates the TAP interface `udp1s0f0` with the NIC's MAC when the driver
asks (ABI 1.1). `wait_ready` then does what an administrator's network configuration
would: moves the interface into namespace B and gives it 10.11.0.2. IPv6 is off and both
neighbours are static, so the interface counters count only the tests' own frames.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from udriver_vm.harness import Guest
from udriver_vm.hotplug import events
from udriver_vm.net import (
    HOTPLUG_BDF,
    KERNEL_MAC,
    UDRIVER_MAC,
    install_e1000e,
    net_guest,
)
from udriver_vm.net_scripts import TCP_RECV, TCP_SEND, UDP_RECV, UDP_SEND
from vm._fixtures import require_vm

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


@contextmanager
def bridge_guest(kernel: str, e1000e_site: Path,
                 e1000e_wheel: Path) -> Iterator[dict[str, Any]]:
    """Boot, install, start `udriver supervise`, wait for the interface, configure it."""
    with net_guest(kernel, e1000e_site, hotplug=True, mem_mb=1024) as (g, k):
        setup_namespaces(g, k)
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


def setup_namespaces(g: Guest, k: str) -> None:
    """Namespaces A and B; the kernel's interface `k` into A as 10.11.0.1 (`_SETUP`)."""
    g.run(_SETUP.format(k=k, umac=UDRIVER_MAC), timeout=60, check=True)


def attach_interface(g: Guest) -> None:
    """Do what the administrator's configuration does with the new interface (`_ATTACH`)."""
    g.run(_ATTACH, timeout=60, check=True)


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
    attach_interface(ctx["guest"])
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


@pytest.fixture(scope="module")
def br(kernel: str, tmp_path_factory: pytest.TempPathFactory,
       session_wheels: Any) -> Iterator[dict[str, Any]]:
    """The bridge guest of a test module (`bridge_guest`) on the session's kernel, running the
    session's e1000e wheel (the same file on every kernel, sha256 printed at the start)."""
    require_vm(kernel)
    site = install_e1000e(tmp_path_factory.mktemp("e1000e-site") / "site")
    with bridge_guest(kernel, site, session_wheels.wheels["e1000e"]) as ctx:
        yield ctx
