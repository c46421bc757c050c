"""`udriver bind/unbind/devices` on a real kernel: QEMU's edu device behind an emulated VT-d.

The guest runs the project's own CLI (the host's install, seen through the overlay), so
these show driverctl's steps working against the real sysfs: vfio-pci takes the device,
`/dev/vfio/<group>` appears, and unbind gives the device back to nobody (edu has no kernel
driver).
"""

from __future__ import annotations

import json
import shlex
import time

import pytest

from udriver_vm.harness import CommandResult, Guest

pytestmark = pytest.mark.vm

EDU_IDS = ("1234", "11e8")  # QEMU docs/specs/edu.rst


def _udriver(g: Guest, *args: str) -> CommandResult:
    return g.run("udriver " + " ".join(shlex.quote(a) for a in args), timeout=120)


def _sysfs(g: Guest, bdf: str, script: str) -> str:
    """Run a shell snippet in the device's sysfs directory; return its stripped stdout."""
    return g.run(f"cd /sys/bus/pci/devices/{bdf} && {script}", timeout=30,
                 check=True).stdout.strip()


def test_bind_devices_unbind_edu(guest: Guest) -> None:
    bdf = guest.edu_bdfs()[0]
    group = int(_sysfs(guest, bdf, "basename $(readlink iommu_group)"))

    r = _udriver(guest, "bind", bdf)
    assert (r.rc, r.stderr) == (0, ""), r.stderr
    assert r.stdout == f"{bdf}: bound to vfio-pci (IOMMU group {group}, /dev/vfio/{group})\n"
    assert _sysfs(guest, bdf, "basename $(readlink driver)") == "vfio-pci"
    assert _sysfs(guest, bdf, "cat driver_override") == "vfio-pci"
    guest.run(f"test -c /dev/vfio/{group}", timeout=30, check=True)

    r = _udriver(guest, "devices", "--json")
    assert r.rc == 0, r.stderr
    [edu] = [d for d in json.loads(r.stdout) if d["bdf"] == bdf]
    assert (edu["vendor"], edu["device"]) == EDU_IDS
    assert (edu["driver"], edu["driver_override"], edu["iommu_group"]) == (
        "vfio-pci", "vfio-pci", group)
    assert edu["modalias"].startswith("pci:v00001234d000011E8")

    # The group is viable: edu sits alone in its group on q35 with intel-iommu.
    code = f"from udriver.pci import check_viable; check_viable({bdf!r})"
    guest.run(f"python3 -c {shlex.quote(code)}", timeout=60, check=True)

    # Idempotent: a second bind says the same and leaves the binding alone.
    r = _udriver(guest, "bind", bdf)
    bound = f"{bdf}: bound to vfio-pci (IOMMU group {group}, /dev/vfio/{group})\n"
    assert (r.rc, r.stdout) == (0, bound)

    r = _udriver(guest, "unbind", bdf)
    assert (r.rc, r.stdout, r.stderr) == (0, f"{bdf}: unbound (no driver)\n", "")
    assert _sysfs(guest, bdf, "test -e driver && echo bound || echo none") == "none"
    assert _sysfs(guest, bdf, "cat driver_override") == "(null)"

    r = _udriver(guest, "devices")
    assert r.rc == 0
    [row] = [line for line in r.stdout.splitlines() if line.startswith(bdf)]
    assert row.split()[:4] == [bdf, "1234:11e8", "00ff00", "-"]


def test_bind_missing_device_lists_present(guest_61: Guest) -> None:
    present = guest_61.run("ls /sys/bus/pci/devices", timeout=30, check=True).stdout.split()
    r = _udriver(guest_61, "bind", "0000:00:1f.7")
    assert (r.rc, r.stdout) == (1, "")
    assert r.stderr == (f"error: No PCI device 0000:00:1f.7 in /sys/bus/pci/devices "
                        f"(present: {', '.join(sorted(present))})\n")


def test_unbound_device_is_refused_by_check_bound(guest_61: Guest) -> None:
    bdf = guest_61.edu_bdfs()[0]
    code = ("import sys\nfrom udriver.pci import check_bound\n"
            "from udriver.errors import DeviceError\n"
            f"try: check_bound({bdf!r})\n"
            "except DeviceError as e: print(e); sys.exit(3)\n")
    r = guest_61.run(f"python3 -c {shlex.quote(code)}", timeout=60)
    assert (r.rc, r.stdout) == (
        3, f"PCI device {bdf} is not bound to any driver; it must be bound to `vfio-pci`\n")


def test_bind_hotplugged_edu(guest_61: Guest) -> None:
    before = set(guest_61.edu_bdfs())
    reply = guest_61.qmp("device_add", driver="edu", bus="rp1", id="edu-bind")
    assert "return" in reply, reply
    deadline = time.monotonic() + 30
    while not (new := set(guest_61.edu_bdfs()) - before):
        assert time.monotonic() < deadline, "hot-added edu never appeared"
        time.sleep(0.3)
    [bdf] = new
    # A hot-added device gets a group number of its own; read it, never assume it.
    group = int(_sysfs(guest_61, bdf, "basename $(readlink iommu_group)"))
    r = _udriver(guest_61, "bind", "--json", bdf)
    assert r.rc == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d["bdf"], d["driver"], d["iommu_group"]) == (bdf, "vfio-pci", group)
    guest_61.run(f"test -c /dev/vfio/{group}", timeout=30, check=True)
