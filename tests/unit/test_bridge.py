"""The kernel-bridge mechanism (ABI 1.1): manifest key, build, gate, control channel,
privileged host and its rules; the TAP back-end against the real kernel (in a private
network namespace). The NBD back-end is exercised in a guest (tests/vm/test_nvme_bridge.py).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from _gatefactory import (
    manifest,
    valid_deb_members,
    valid_wheel_members,
    wheel_name,
    write_deb,
    write_wheel,
)
from udriver import _bridgewire as wire
from udriver.errors import BridgeError, GateError, ManifestError
from udriver.gate import admit
from udriver.manifest import DriverManifest
from udriver.runtime import Bridge
from udriver.supervise._bridgehost import BridgeHost, channel
from udriver.supervise._systemd import BRIDGE_UNITS, UNIT_TEMPLATE, service_unit, unit_text
from udriver.supervise._tap import interface_name
from udriver.toolchain import load_project

BLOCK = replace(manifest("disk", abi=(1, 1)), bridge="block")


# ------------------------------------------------------------------ manifest and build


def test_manifest_round_trips_the_bridge() -> None:
    m = DriverManifest.from_json(BLOCK.to_json())
    assert m.bridge == "block" and m == BLOCK
    assert json.loads(BLOCK.to_json())["bridge"] == "block"


def test_manifest_without_a_bridge_is_unchanged() -> None:
    assert "bridge" not in json.loads(manifest().to_json())
    assert DriverManifest.from_json(manifest().to_json()).bridge is None


def test_manifest_refuses_an_unknown_bridge() -> None:
    obj = json.loads(BLOCK.to_json()) | {"bridge": "disk"}
    with pytest.raises(ManifestError, match=r"`bridge` must be one of 'block', 'net' \(or "
                                            r"absent\), got 'disk'"):
        DriverManifest.from_json(json.dumps(obj).encode())


def test_manifest_refuses_a_bridge_below_abi_1_1() -> None:
    obj = json.loads(BLOCK.to_json()) | {"abi": "1.0"}
    with pytest.raises(ManifestError, match=r"`bridge = 'block'` needs abi 1.1 or later .* "
                                            r"got abi 1.0"):
        DriverManifest.from_json(json.dumps(obj).encode())


def _project(tmp: Path, extra: str, abi: str = "1.1") -> Path:
    (tmp / "pyproject.toml").write_text(
        '[project]\nname = "udriver-disk"\nversion = "0.1.0"\n\n'
        '[project.entry-points."udriver.drivers"]\ndisk = "disk:Disk"\n\n'
        f'[tool.udriver]\ndriver = "disk"\nabi = "{abi}"\n'
        'modaliases = ["pci:v00001B36d00000010sv*sd*bc*sc*i*"]\n' + extra)
    return tmp


def test_project_bridge_goes_into_the_manifest(tmp_path: Path) -> None:
    p = load_project(_project(tmp_path, 'bridge = "net"\n'))
    assert p.bridge == "net" and p.manifest().bridge == "net"


def test_project_refuses_a_bad_bridge_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"pyproject.toml:12: `bridge` must be one of .* "
                                            r"got 'ublk'; fix: bridge = \"block\""):
        load_project(_project(tmp_path, 'bridge = "ublk"\n'))


def test_project_refuses_a_bridge_on_abi_1_0(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"needs abi 1.1 or later"):
        load_project(_project(tmp_path, 'bridge = "block"\n', abi="1.0"))


# ----------------------------------------------------------------------------- gate


def test_gate_admits_a_wheel_and_a_deb_with_a_bridge(tmp_path: Path) -> None:
    w = write_wheel(tmp_path / wheel_name(BLOCK), valid_wheel_members(BLOCK), record_for=BLOCK)
    assert admit(w).manifest.bridge == "block"
    assert admit(write_deb(tmp_path, BLOCK)).manifest.bridge == "block"


def test_gate_refuses_a_wheel_with_an_unknown_bridge(tmp_path: Path) -> None:
    bad = json.loads(BLOCK.to_json()) | {"bridge": "rootshell"}
    mem = valid_wheel_members(BLOCK)
    di = next(k for k in mem if k.endswith("/udriver.json"))
    mem[di] = json.dumps(bad).encode()
    w = write_wheel(tmp_path / wheel_name(BLOCK), mem, record_for=BLOCK)
    with pytest.raises(GateError, match=r"`bridge` must be one of 'block', 'net'.*'rootshell'"):
        admit(w)


def test_gate_refuses_a_deb_with_an_unknown_bridge(tmp_path: Path) -> None:
    mem = valid_deb_members(BLOCK)
    for member in mem:
        if member.name.endswith("share/udriver/drivers/disk.json"):
            member.data = json.dumps(json.loads(BLOCK.to_json()) | {"bridge": "x"}).encode()
    with pytest.raises(GateError, match=r"`bridge` must be one of"):
        admit(write_deb(tmp_path, BLOCK, mem))


# ------------------------------------------------------------------ channel messages


@pytest.mark.parametrize(("obj", "declared", "msg"), [
    ([], "block", "must be a JSON object, got list"),
    ({"op": "raw"}, "block", "unknown bridge request `op` 'raw'"),
    ({"op": "net", "mac": "52:54:00:12:34:56"}, "block",
     "asked for a 'net' bridge, but its manifest declares bridge 'block'"),
    ({"op": "block", "blocks": 1, "block_size": 512}, None,
     "asked for a 'block' bridge, but its manifest declares no bridge"),
    ({"op": "block", "blocks": 8, "block_size": 8192}, "block",
     "`block_size` must be an integer from 512 to 4096, got 8192"),
    ({"op": "block", "blocks": 8, "block_size": 1536}, "block",
     "`block_size` must be a power of two, got 1536"),
    ({"op": "block", "blocks": 0, "block_size": 512}, "block",
     "`blocks` must be an integer from 1"),
    ({"op": "block", "blocks": True, "block_size": 512}, "block",
     "`blocks` must be an integer"),
    ({"op": "net", "mac": "52:54:00:12:34"}, "net", "`mac` must be six hex octets"),
    ({"op": "net", "mac": "01:00:5e:00:00:01"}, "net", "is a multicast address"),
    ({"op": "net", "mac": "00:00:00:00:00:00"}, "net", "is not a valid interface address"),
    ({"op": "net", "mac": "52:54:00:12:34:56", "mtu": 40}, "net",
     "`mtu` must be an integer from 68 to 65535, got 40"),
])
def test_request_refusals(obj: object, declared: str | None, msg: str) -> None:
    with pytest.raises(BridgeError) as ei:
        wire.parse_request(obj, declared)
    assert msg in str(ei.value)


def test_requests_accepted() -> None:
    assert wire.parse_request({"op": "block", "blocks": 2048, "block_size": 4096},
                              "block") == wire.BlockRequest(2048, 4096)
    assert wire.parse_request({"op": "net", "mac": "52:54:00:AB:cd:01"}, "net") == \
        wire.NetRequest(bytes.fromhex("525400abcd01"), 1500)


def test_recv_refuses_a_non_json_message_and_closes_its_fds() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    r, w = os.pipe()
    socket.send_fds(a, [b"not json"], [r])
    with pytest.raises(BridgeError, match="not JSON"):
        wire.recv(b)
    os.close(r)
    os.close(w)
    a.close()
    assert wire.recv(b) is None  # peer closed
    b.close()


# --------------------------------------------------------------- the privileged host


class FakeOpened:
    def __init__(self, log: list[str]) -> None:
        r, w = os.pipe()
        self._keep, self.fds = r, [w]
        self.reply: dict[str, object] = {"kind": "fake", "device": "/dev/fake0"}
        self.log = log

    def close(self) -> None:
        self.log.append("closed")
        os.close(self._keep)


class FakeBackend:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.fail: str | None = None

    def open(self, bdf: str, request: wire.BlockRequest | wire.NetRequest) -> FakeOpened:
        if self.fail:
            raise BridgeError(self.fail)
        self.log.append(f"open {bdf} {request}")
        return FakeOpened(self.log)


def _host(declared: str = "block") -> tuple[BridgeHost, Bridge, FakeBackend]:
    be = FakeBackend()
    p, c = channel()
    host = BridgeHost("0000:00:04.0", declared, p, {declared: be})
    host.start()
    return host, Bridge(c.detach(), declared, timeout=10), be


def test_host_hands_over_the_fd_and_tears_down_when_the_driver_goes() -> None:
    host, bridge, be = _host()
    disk = bridge.block(blocks=2048, block_size=4096)
    assert (disk.kind, disk.device, disk.blocks) == ("fake", "/dev/fake0", 2048)
    assert be.log == [("open 0000:00:04.0 BlockRequest(blocks=2048, block_size=4096, "
                       "kinds=('nbd',), queue_depth=64, io_bytes=131072)")]
    os.write(disk.fd, b"x")  # the write end of the fake's pipe, passed by SCM_RIGHTS
    disk.close()
    bridge.close()  # the driver exits: the channel closes
    assert host._thread is not None
    host._thread.join(10)
    assert be.log[-1] == "closed"


def test_host_refuses_a_second_request() -> None:
    host, bridge, be = _host()
    bridge.block(blocks=8, block_size=512).close()
    with pytest.raises(BridgeError, match="already set up its bridge"):
        bridge.block(blocks=8, block_size=512)
    # the host refuses it too when a driver skips the client's check
    bridge._used = False
    with pytest.raises(BridgeError, match=r"refused .*already set up its bridge \(one per "):
        bridge.block(blocks=8, block_size=512)
    host.close()
    assert be.log.count("closed") == 1


def test_host_refuses_a_kind_the_manifest_does_not_declare() -> None:
    host, bridge, be = _host("block")
    bridge.declared = "net"  # a driver lying about its manifest gets the parent's refusal
    with pytest.raises(BridgeError, match="refused the network interface.*manifest declares "
                                          "bridge 'block'"):
        bridge.net("52:54:00:12:34:56")
    assert be.log == []
    host.close()


def test_host_passes_the_backend_error_on() -> None:
    host, bridge, be = _host()
    be.fail = "/dev/nbd0: NBD_SET_SOCK failed: Device or resource busy (errno 16)"
    with pytest.raises(BridgeError, match="refused the block device .*NBD_SET_SOCK failed"):
        bridge.block(blocks=8, block_size=512)
    host.close()


def test_client_refuses_before_asking() -> None:
    host, bridge, be = _host("net")
    with pytest.raises(BridgeError, match="manifest declares bridge 'net'"):
        bridge.block(blocks=8, block_size=512)
    assert be.log == []  # never reached the parent
    nic = bridge.net("52:54:00:12:34:56")  # the refused request did not use up the bridge
    assert nic.fd >= 0 and len(be.log) == 1
    nic.close()
    host.close()


def test_interface_names() -> None:
    assert interface_name("0000:00:04.0") == "udp0s4f0"
    assert interface_name("0001:3a:1f.7") == "udP1p58s31f7"
    with pytest.raises(BridgeError, match="not a PCI address: 'eth0'"):
        interface_name("eth0")


# ------------------------------------------------------------------- the systemd units


def _settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def test_units_grant_each_bridge_exactly_its_nodes() -> None:
    plain = _settings(unit_text(Path("/b"), UNIT_TEMPLATE))
    block = _settings(unit_text(Path("/b"), BRIDGE_UNITS["block"]))
    net = _settings(unit_text(Path("/b"), BRIDGE_UNITS["net"]))
    vfio = ["/dev/vfio/vfio rw", "char-vfio rw"]
    assert plain["DeviceAllow"] == vfio
    assert block["DeviceAllow"] == vfio + ["block-nbd rw", "/dev/ublk-control rw",
                                           "char-ublk-char rw"]
    assert net["DeviceAllow"] == vfio + ["/dev/net/tun rw"]
    base = "CAP_SETUID CAP_SETGID CAP_SETPCAP CAP_SYS_RESOURCE"
    assert plain["CapabilityBoundingSet"] == [base]
    assert block["CapabilityBoundingSet"] == [f"{base} CAP_SYS_ADMIN"]
    assert net["CapabilityBoundingSet"] == [f"{base} CAP_NET_ADMIN"]
    assert plain["PrivateNetwork"] == block["PrivateNetwork"] == ["yes"]
    assert net["PrivateNetwork"] == ["no"]
    # The modules load before the unit starts (systemd's modprobe@.service), because
    # DeviceAllow= is resolved then: an ExecStartPre modprobe left /dev/ublk-control out
    # of the first start's device policy (test_nvme_system.py).
    vfio_mods = "modprobe@vfio_iommu_type1.service modprobe@vfio-pci.service"
    assert plain["Wants"] == plain["After"] == [vfio_mods]
    assert block["Wants"] == block["After"] == [
        "modprobe@nbd.service modprobe@ublk_drv.service", vfio_mods]
    assert net["Wants"] == net["After"] == ["modprobe@tun.service", vfio_mods]
    for unit in (plain, block, net):
        assert not any("modprobe" in x for x in unit["ExecStartPre"]), unit["ExecStartPre"]
    # io_uring (ublk's server) for the block unit only
    assert plain["SystemCallFilter"] == net["SystemCallFilter"] == [
        "@system-service @setuid ioctl mmap"]
    assert block["SystemCallFilter"] == [
        "@system-service @setuid ioctl mmap io_uring_setup io_uring_enter"]
    # everything else is the same sandbox
    for s in (block, net):
        diff = {k for k in set(s) | set(plain) if s.get(k) != plain.get(k)}
        assert diff <= {"DeviceAllow", "CapabilityBoundingSet", "PrivateNetwork",
                        "Wants", "After", "Description", "SystemCallFilter"}, diff


def test_shipped_bridge_units_are_the_generated_ones() -> None:
    """The variants ship as files (the .deb installs them like the template); they must
    stay what `bridge_variant` makes of udriver@.service."""
    from importlib import resources

    from udriver.supervise._systemd import bridge_variant
    data = resources.files("udriver").joinpath("data")
    base = data.joinpath(UNIT_TEMPLATE).read_text()
    for bridge, name in BRIDGE_UNITS.items():
        assert data.joinpath(name).read_text() == bridge_variant(base, bridge), (
            f"{name} is stale: regenerate it with udriver.supervise._systemd.bridge_variant")


def test_debian_package_installs_every_unit() -> None:
    rules = (Path(__file__).resolve().parents[2] / "debian/rules").read_text()
    for name in [UNIT_TEMPLATE, *BRIDGE_UNITS.values(), "udriver-autobind@.service"]:
        assert name in rules, name


def test_service_unit_names() -> None:
    assert service_unit("0000:00:04.0", None) == "udriver@0000:00:04.0.service"
    assert service_unit("0000:00:04.0", "block") == "udriver-block@0000:00:04.0.service"
    assert service_unit("0000:00:04.0", "net") == "udriver-net@0000:00:04.0.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("name", sorted(BRIDGE_UNITS.values()))
def test_bridge_units_pass_systemd_analyze_verify(tmp_path: Path, name: str) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "udriver").write_text("#!/bin/sh\n")
    (bindir / "udriver").chmod(0o755)
    (tmp_path / name).write_text(unit_text(bindir, name))
    instance = name.replace("@", "@0000:01:00.0")
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", f"./{name}:{instance}"],
                       cwd=tmp_path, capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stderr == "", r.stderr


# ----------------------------------------------------- TAP against the real kernel

TAP_SCRIPT = r"""
import json, os, subprocess, sys
from udriver.supervise._bridgehost import BridgeHost, channel
from udriver.supervise._privsep import Credentials, drop_privileges
from udriver.runtime import Bridge
p, c = channel()
host = BridgeHost("0000:00:04.0", "net", p)
host.start()
pid = os.fork()
if pid == 0:  # the driver: unprivileged, no capabilities, only the channel
    p.close()
    drop_privileges(Credentials(65534, 65534, "nobody"), memlock=None)
    caps = [l for l in open("/proc/self/status") if l.startswith("CapEff")][0].split()[1]
    b = Bridge(c.detach(), "net")
    nic = b.net("52:54:00:12:34:56", mtu=1400)
    def carrier():  # /sys/class/net is the host's here (sysfs is bound to its netns)
        out = subprocess.run(["ip", "-j", "link", "show", "dev", nic.ifname],
                             capture_output=True, text=True, check=True).stdout
        return "0" if "NO-CARRIER" in json.loads(out)[0]["flags"] else "1"
    up0 = carrier()
    nic.set_carrier(True)
    up1 = carrier()
    os.write(nic.fd, bytes.fromhex("ffffffffffff525400123456" "88b5") + b"x" * 50)
    print(json.dumps({"ifname": nic.ifname, "caps": caps, "uid": os.getuid(),
                      "carrier": [up0, up1]}), flush=True)
    os._exit(0)
c.close()
_, status = os.waitpid(pid, 0)
host._thread.join(10)
ip = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True).stdout
print(json.dumps({"status": status, "after": [l["ifname"] for l in json.loads(ip)]}))
"""


def _can_tap() -> str | None:
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN) to create a TAP interface"
    if not os.path.exists("/dev/net/tun") or shutil.which("unshare") is None:
        return "no /dev/net/tun or no unshare(1)"
    r = subprocess.run(["unshare", "--net", "true"], capture_output=True, check=False)
    return None if r.returncode == 0 else "cannot create a network namespace"


@pytest.mark.skipif(_can_tap() is not None, reason=str(_can_tap()))
def test_tap_backend_in_a_private_network_namespace() -> None:
    r = subprocess.run(["unshare", "--net", sys.executable, "-c", TAP_SCRIPT],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    driver, parent = (json.loads(x) for x in r.stdout.splitlines()[-2:])
    assert driver["ifname"] == "udp0s4f0" and driver["uid"] == 65534
    assert driver["caps"] == "0000000000000000"
    assert driver["carrier"] == ["0", "1"]  # TUNSETCARRIER works without any capability
    assert parent["status"] == 0
    assert "udp0s4f0" not in parent["after"]  # torn down when the driver's channel closed
