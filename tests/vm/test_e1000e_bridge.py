"""The e1000e driver as a Linux network interface through the kernel bridge (issue 11,
acceptance 1, 2 and 4), on every kernel of `make test-kernels` (`make test`: 6.1 and 6.12):
ping both ways, a 256 MiB TCP transfer whose sha256 matches (the driver's uid != 0 and
capabilities read while it flows), a UDP burst whose counts match both interfaces' counters,
and the carrier following QMP `set_link`. The guest and the driver under `udriver
supervise`: `vm._net_bridge`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from udriver_vm.harness import Guest
from udriver_vm.hotplug import events
from udriver_vm.net import NIC_IDS
from vm._net_bridge import (
    BIG_MIB,
    IFNAME,
    UDP_N,
    carrier,
    counter,
    ns,
    pyns,
    tcp_transfer,
    wait_file,
)

pytestmark = [pytest.mark.vm, pytest.mark.kernel_primary("6.1", "6.12")]


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


