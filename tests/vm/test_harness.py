"""The QEMU guest harness works: boots both kernels, runs the project, VFIO, hotplug, udev.

These run the real thing: Debian's kernels under QEMU TCG with q35, intel-iommu and edu.
"""

from __future__ import annotations

import shutil
import time

import pytest

from udriver_vm.harness import Guest, GuestCommandError, GuestDied, GuestError, GuestTimeout
from udriver_vm.kernels import kernel_paths
from vm._fixtures import require_vm

# The harness itself is kernel-independent; test_kernel_features covers each kernel.
pytestmark = [pytest.mark.vm, pytest.mark.kernel_subset("6.1")]

EDU_VENDOR, EDU_DEVICE = "0x1234", "0x11e8"  # QEMU docs/specs/edu.rst


def _wait_guest(g: Guest, cmd: str, timeout: float) -> str:
    """Poll ``cmd`` in the guest until it succeeds; return its stdout."""
    deadline = time.monotonic() + timeout
    while True:
        r = g.run(cmd, timeout=30)
        if r.rc == 0:
            return r.stdout
        if time.monotonic() > deadline:
            pytest.fail(f"guest condition not met in {timeout} s: {cmd!r}: {r.stderr}")
        time.sleep(0.3)


def test_boots_the_requested_kernel(guest: Guest) -> None:
    r = guest.run("uname -r", check=True)
    assert r.stdout.strip() == kernel_paths(guest.kernel).version
    assert guest.kernel_version == r.stdout.strip()
    # The emulated VT-d unit is active (the kernel cmdline has intel_iommu=on).
    assert "intel_iommu=on" in guest.run("cat /proc/cmdline", check=True).stdout
    assert guest.run("ls /sys/class/iommu", check=True).stdout.split() == ["dmar0"]


def test_host_python_and_project_visible(guest: Guest) -> None:
    r = guest.run('python3 -c "import udriver, sys; print(udriver.__file__)"', check=True)
    assert r.stdout.strip().endswith("toolkit/udriver/__init__.py")
    r = guest.run("udriver --version", check=True)  # the console script of the editable install
    assert r.stdout.startswith("udriver ")


def test_result_carries_rc_stdout_stderr(guest: Guest) -> None:
    r = guest.run("echo out; echo err >&2; exit 7")
    assert (r.rc, r.stdout, r.stderr) == (7, "out\n", "err\n")
    with pytest.raises(GuestCommandError, match="rc 7"):
        r.check()


def test_network_is_loopback_only_and_up(guest: Guest) -> None:
    assert guest.run("ls /sys/class/net", check=True).stdout.split() == ["lo"]
    flags = int(guest.run("cat /sys/class/net/lo/flags", check=True).stdout, 16)
    assert flags & 0x1  # IFF_UP (linux/if.h)


def test_env_and_cwd(guest: Guest) -> None:
    r = guest.run('echo "$FOO $(pwd)"', env={"FOO": "a b"}, cwd="/usr", check=True)
    assert r.stdout == "a b /usr\n"


def test_guest_writes_stay_in_the_guest(guest: Guest) -> None:
    guest.run("mkdir -p /etc/udriver && echo x > /etc/udriver/probe", check=True)
    assert guest.run("cat /etc/udriver/probe", check=True).stdout == "x\n"
    from pathlib import Path

    assert not Path("/etc/udriver/probe").exists()
    guest.run("rm -rf /etc/udriver", check=True)


def test_workdir_is_shared_both_ways(guest: Guest) -> None:
    (guest.workdir / "from-host").write_text("hello")
    guest.run(f"cat {guest.guest_workdir}/from-host > {guest.guest_workdir}/from-guest", check=True)
    assert (guest.workdir / "from-guest").read_text() == "hello"


def test_timeout_kills_the_command(guest: Guest) -> None:
    t0 = time.monotonic()
    with pytest.raises(GuestTimeout):
        guest.run("sleep 600", timeout=2)
    assert time.monotonic() - t0 < 10
    # The session was killed: no sleep 600 left behind.
    _wait_guest(guest, "! pgrep -f 'sleep 600'", 10)


def test_background_job(guest: Guest) -> None:
    job = guest.run_bg("echo started; sleep 4; echo done")
    assert job.pid > 1
    assert guest.run(f"kill -0 {job.pid}").rc == 0
    res = job.wait(timeout=30)
    assert (res.rc, res.stdout) == (0, "started\ndone\n")


def test_edu_visible(guest: Guest) -> None:
    bdfs = guest.edu_bdfs()
    assert len(bdfs) == 1
    sysfs = f"/sys/bus/pci/devices/{bdfs[0]}"
    r = guest.run(f"cat {sysfs}/vendor {sysfs}/device", check=True)
    assert r.stdout.split() == [EDU_VENDOR, EDU_DEVICE]
    assert guest.run(f"readlink {sysfs}/iommu_group", check=True).stdout.strip()


def test_bind_edu_to_vfio_pci_by_shell(guest: Guest) -> None:
    bdf = guest.edu_bdfs()[0]
    sysfs = f"/sys/bus/pci/devices/{bdf}"
    # busybox-style steps (VM-NOTES): type1 first, then vfio-pci; driverctl's override+probe.
    guest.run(
        "modprobe vfio_iommu_type1 && modprobe vfio-pci && "
        f"echo vfio-pci > {sysfs}/driver_override && echo {bdf} > /sys/bus/pci/drivers_probe",
        check=True,
    )
    r = guest.run(f"basename $(readlink {sysfs}/driver); basename $(readlink {sysfs}/iommu_group)")
    driver, group = r.stdout.split()
    assert driver == "vfio-pci"
    assert guest.run(f"test -c /dev/vfio/{group}").rc == 0
    assert guest.run("test -c /dev/vfio/vfio").rc == 0


def test_dmesg(guest: Guest) -> None:
    log = guest.dmesg()
    assert "DMAR" in log
    assert "Linux version" in log


def _edu_hotplug_roundtrip(g: Guest, dev_id: str) -> str:
    """Hot-add an edu on rp2, wait for it in the guest, return its BDF (caller removes it)."""
    before = set(g.edu_bdfs())
    reply = g.qmp("device_add", driver="edu", bus="rp2", id=dev_id)
    assert reply == {"return": {}}, reply
    deadline = time.monotonic() + 60
    while True:
        new = set(g.edu_bdfs()) - before
        if new:
            break
        assert time.monotonic() < deadline, "hot-added edu never appeared in the guest"
        time.sleep(0.3)
    [bdf] = new
    return bdf


def test_qmp_hotplug_add_and_remove(guest: Guest) -> None:
    bdf = _edu_hotplug_roundtrip(guest, "hp-test")
    # pciehp put it below the root port; it has its own IOMMU group (VM-NOTES: not hard-coded).
    group = guest.run(f"readlink /sys/bus/pci/devices/{bdf}/iommu_group", check=True).stdout
    assert group.strip()
    assert guest.qmp("device_del", id="hp-test") == {"return": {}}
    guest.wait_qmp_event("DEVICE_DELETED", timeout=60, device="hp-test")
    _wait_guest(guest, f"test ! -e /sys/bus/pci/devices/{bdf}", 30)


def test_qmp_error_reply_is_returned(guest: Guest) -> None:
    reply = guest.qmp("device_add", driver="edu", bus="no-such-bus", id="x")
    assert reply["error"]["class"] == "GenericError"


def test_reset_devices_unplugs_and_unbinds(guest: Guest) -> None:
    bdf = _edu_hotplug_roundtrip(guest, "hp-reset")
    boot_bdf = guest.edu_bdfs()[0] if guest.edu_bdfs()[0] != bdf else guest.edu_bdfs()[1]
    guest.run(
        f"modprobe vfio-pci && echo vfio-pci > /sys/bus/pci/devices/{boot_bdf}/driver_override"
        f" && echo {boot_bdf} > /sys/bus/pci/drivers_probe",
        check=True,
    )
    guest.reset_devices()
    assert guest.edu_bdfs() == [boot_bdf]
    sysfs = f"/sys/bus/pci/devices/{boot_bdf}"
    assert guest.run(f"test -e {sysfs}/driver").rc == 1
    assert guest.run(f"cat {sysfs}/driver_override", check=True).stdout == "(null)\n"


_RULE = (
    'ACTION=="add", SUBSYSTEM=="pci", ATTR{vendor}=="0x1234", ATTR{device}=="0x11e8", '
    "RUN+=\"/bin/sh -c 'echo add %k >> /run/udev-test.log'\"\n"
    'ACTION=="remove", SUBSYSTEM=="pci", ENV{PCI_ID}=="1234:11E8", '
    "RUN+=\"/bin/sh -c 'echo remove %k >> /run/udev-test.log'\"\n"
)


@pytest.mark.parametrize("kernel", ["6.1", "6.12"])
def test_udev_rule_fires_on_hotplug(vm_pool: object, kernel: str) -> None:
    from vm._fixtures import GuestPool

    assert isinstance(vm_pool, GuestPool)
    g = vm_pool.get(kernel, udev=True)
    rule = "/etc/udev/rules.d/99-udriver-harness-test.rules"
    (g.workdir / "rule").write_text(_RULE)
    g.run(f"cp {g.guest_workdir}/rule {rule} && rm -f /run/udev-test.log", check=True)
    g.udev_reload()
    try:
        bdf = _edu_hotplug_roundtrip(g, "hp-udev")
        assert _wait_guest(g, "grep add /run/udev-test.log", 30) == f"add {bdf}\n"
        assert g.qmp("device_del", id="hp-udev") == {"return": {}}
        _wait_guest(g, "grep remove /run/udev-test.log", 30)
        log = g.run("cat /run/udev-test.log", check=True).stdout
        assert log == f"add {bdf}\nremove {bdf}\n"
    finally:
        g.run(f"rm -f {rule}")
        g.udev_reload()
        g.reset_devices()


def test_unknown_kernel_is_refused() -> None:
    with pytest.raises(GuestError, match="cannot boot kernel 4.19: unknown kernel '4.19'"):
        Guest(kernel="4.19").start()


def test_qemu_failing_to_start_is_reported() -> None:
    require_vm("6.1")
    g = Guest(kernel="6.1", qemu_args=["-device", "no-such-device"])
    with pytest.raises(GuestDied, match="QEMU exited with rc 1 while waiting for guest boot"):
        g.start()
    assert "no-such-device" in (g.rundir / "qemu.out").read_text()
    assert not g.alive
    shutil.rmtree(g.rundir)


def test_boot_timeout_kills_qemu_and_keeps_the_console() -> None:
    require_vm("6.1")
    g = Guest(kernel="6.1", boot_timeout=0.5)
    with pytest.raises(GuestTimeout, match="waiting for guest boot"):
        g.start()
    assert not g.alive
    assert g.console_log.exists()  # kept for diagnosis
    shutil.rmtree(g.rundir)


def test_qemu_death_is_reported_and_the_next_test_gets_a_new_guest(guest_61: Guest) -> None:
    assert guest_61.qmp("quit") == {"return": {}}
    with pytest.raises(GuestDied):
        guest_61.run("true", timeout=30)
    assert not guest_61.alive


def test_guest_after_death_is_fresh(guest_61: Guest) -> None:
    # Runs after the test above: the pool rebooted the guest.
    assert guest_61.run("true", timeout=60).rc == 0
