"""The QEMU guest harness works: boots both kernels, runs the project, VFIO, hotplug, udev.

These run the real thing: Debian's kernels under QEMU TCG with q35, intel-iommu and edu.
"""

from __future__ import annotations

import time

import pytest

from vm.harness import Guest, GuestCommandError, GuestTimeout
from vm.kernels import kernel_paths

pytestmark = pytest.mark.vm

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
