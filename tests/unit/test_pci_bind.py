"""bind/unbind against FakeSysfs: driverctl's order of operations, idempotency, and failures."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from udriver.errors import DeviceError
from udriver.pci import _bind as bind_mod
from udriver.pci import bind, check_bound, get_device, unbind
from udriver.pci.testing import FakeSysfs

EDU = "0000:00:03.0"
NIC = "0000:00:04.0"


@pytest.fixture
def fs(tmp_path: Path) -> FakeSysfs:
    fs = FakeSysfs(tmp_path)
    # The edu device has no kernel driver; the NIC is bound to its kernel driver.
    fs.add_device(EDU, 0x1234, 0x11E8, class_code=0x00FF00, iommu_group=3)
    fs.add_device(NIC, 0x8086, 0x10D3, class_code=0x020000, driver="e1000e", iommu_group=4)
    return fs


@pytest.fixture(autouse=True)
def _fast_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bind_mod, "_POLL_INTERVAL", 0.001)


def test_bind_follows_driverctl_order(fs: FakeSysfs) -> None:
    dev = bind(NIC, sysfs_root=fs)
    assert fs.ops == [
        ("modprobe", "vfio_iommu_type1"),  # first: busybox modprobe ignores softdeps
        ("modprobe", "vfio-pci"),
        ("write", f"sys/bus/pci/devices/{NIC}/driver/unbind", NIC),
        ("write", f"sys/bus/pci/devices/{NIC}/driver_override", "vfio-pci"),
        ("write", "sys/bus/pci/drivers_probe", NIC),
    ]
    assert (dev.driver, dev.driver_override, dev.iommu_group) == ("vfio-pci", "vfio-pci", 4)
    assert fs.vfio_group_node(4).exists()


def test_bind_unbound_device_skips_unbind(fs: FakeSysfs) -> None:
    dev = bind(EDU, sysfs_root=fs)
    assert [op for op in fs.ops if op[0] == "write"] == [
        ("write", f"sys/bus/pci/devices/{EDU}/driver_override", "vfio-pci"),
        ("write", "sys/bus/pci/drivers_probe", EDU),
    ]
    assert dev.driver == "vfio-pci"


def test_bind_is_idempotent(fs: FakeSysfs) -> None:
    bind(EDU, sysfs_root=fs)
    fs.ops.clear()
    dev = bind(EDU, sysfs_root=fs)
    assert fs.ops == []  # nothing touched
    assert dev.driver == "vfio-pci"


def test_bind_when_bound_without_override_only_sets_override(fs: FakeSysfs) -> None:
    bind(EDU, sysfs_root=fs)
    (fs.device_dir(EDU) / "driver_override").write_text("(null)\n")
    fs.ops.clear()
    bind(EDU, sysfs_root=fs)
    assert [op for op in fs.ops if op[0] == "write"] == [
        ("write", f"sys/bus/pci/devices/{EDU}/driver_override", "vfio-pci")]


def test_bind_to_another_driver(fs: FakeSysfs) -> None:
    dev = bind(EDU, "pci-stub", sysfs_root=fs)
    assert fs.ops[0] == ("modprobe", "pci-stub")
    assert dev.driver == "pci-stub"
    assert not fs.vfio_group_node(3).exists()


def test_bind_accepts_short_bdf(fs: FakeSysfs) -> None:
    assert bind("00:03.0", sysfs_root=fs).bdf == EDU


def test_bind_missing_device(fs: FakeSysfs) -> None:
    with pytest.raises(DeviceError) as ei:
        bind("0000:00:09.0", sysfs_root=fs)
    assert str(ei.value) == (f"No PCI device 0000:00:09.0 in {fs.devices_dir} "
                             f"(present: {EDU}, {NIC})")
    assert fs.ops == []


def test_bind_malformed_bdf(fs: FakeSysfs) -> None:
    with pytest.raises(DeviceError, match=r"^Invalid PCI address"):
        bind("0000:00:03", sysfs_root=fs)
    assert fs.ops == []


def test_bind_without_iommu_group_touches_nothing(fs: FakeSysfs) -> None:
    fs.add_device("0000:00:05.0", 0x1234, 0x11E8, driver="e1000e")
    with pytest.raises(DeviceError) as ei:
        bind("0000:00:05.0", sysfs_root=fs)
    assert str(ei.value) == (
        "Cannot bind PCI device 0000:00:05.0 to `vfio-pci`: it has no IOMMU group: is the IOMMU "
        "enabled? Boot with intel_iommu=on (Intel) or amd_iommu=on (AMD); under QEMU add "
        "-device intel-iommu")
    assert fs.ops == []


@pytest.mark.parametrize("step,message", [
    ("driver/unbind", f"PCI device {NIC} vanished while unbinding from `e1000e` (hot-unplugged?)"),
    ("driver_override", f"PCI device {NIC} vanished while writing driver_override (hot-unplugged?)"),
    ("drivers_probe", f"PCI device {NIC} vanished while writing drivers_probe (hot-unplugged?)"),
])
def test_device_vanishing_before_each_step(fs: FakeSysfs, step: str, message: str) -> None:
    def unplug(path: Path, text: str) -> None:
        if str(path).endswith(step):
            fs.remove_device(NIC)
    fs.before_write = unplug
    with pytest.raises(DeviceError) as ei:
        bind(NIC, sysfs_root=fs)
    assert str(ei.value) == message
    assert isinstance(ei.value.__cause__, OSError)


def test_device_vanishing_while_waiting(fs: FakeSysfs) -> None:
    fs.probe_binds = False
    orig = fs.write

    def write_then_unplug(path: Path, text: str) -> None:
        orig(path, text)
        if path == fs.drivers_probe:
            fs.remove_device(EDU)
    fs.write = write_then_unplug  # type: ignore[method-assign]
    with pytest.raises(DeviceError) as ei:
        bind(EDU, sysfs_root=fs)
    assert str(ei.value) == (f"PCI device {EDU} vanished while waiting for `vfio-pci` to bind "
                             "(hot-unplugged?)")


def test_probe_that_does_not_bind_times_out(fs: FakeSysfs) -> None:
    fs.probe_binds = False
    with pytest.raises(DeviceError) as ei:
        bind(EDU, sysfs_root=fs, timeout=0.05)
    assert str(ei.value) == (f"PCI device {EDU} is not bound to `vfio-pci` after 0.05 s (it has "
                             "no driver); the kernel log (dmesg) says why the probe failed")


def test_missing_vfio_group_node_times_out(fs: FakeSysfs) -> None:
    orig = fs._probe

    def probe_without_devtmpfs(bdf: str) -> None:
        orig(bdf)
        fs.vfio_group_node(3).unlink()
    fs._probe = probe_without_devtmpfs  # type: ignore[method-assign]
    with pytest.raises(DeviceError) as ei:
        bind(EDU, sysfs_root=fs, timeout=0.05)
    assert str(ei.value) == (f"PCI device {EDU} is bound to `vfio-pci` but {fs.root}/dev/vfio/3 "
                             "did not appear within 0.05 s (is devtmpfs mounted on /dev?)")


def test_kernel_refusing_a_write(fs: FakeSysfs) -> None:
    def refuse(path: Path, text: str) -> None:
        if path.name == "driver_override":
            raise PermissionError(errno.EACCES, "Permission denied")
    fs.before_write = refuse
    with pytest.raises(DeviceError) as ei:
        bind(EDU, sysfs_root=fs)
    assert str(ei.value) == (
        f"Cannot complete writing driver_override for PCI device {EDU}: writing 'vfio-pci' to "
        f"{fs.device_dir(EDU)}/driver_override failed: Permission denied (errno 13)")
    assert ei.value.hint == "binding needs root"


def test_modprobe_failure_stops_before_any_write(tmp_path: Path) -> None:
    class NoModules(FakeSysfs):
        def modprobe(self, module: str) -> None:
            raise DeviceError(f"Cannot load kernel module `{module}` (modprobe exited 1): "
                              f"modprobe: FATAL: Module {module} not found")
    fs = NoModules(tmp_path)
    fs.add_device(EDU, 0x1234, 0x11E8, iommu_group=3)
    with pytest.raises(DeviceError, match=r"^Cannot load kernel module `vfio_iommu_type1`"):
        bind(EDU, sysfs_root=fs)
    assert fs.ops == []


def test_real_sysfs_modprobe_outside_root_is_refused(tmp_path: Path) -> None:
    from udriver.pci import Sysfs
    with pytest.raises(DeviceError) as ei:
        Sysfs(tmp_path).modprobe("vfio-pci")
    assert str(ei.value) == (f"Kernel module `vfio-pci` is not loaded under {tmp_path} and "
                             "modprobe only works on the real root filesystem")


def test_unbind_follows_driverctl_order(fs: FakeSysfs) -> None:
    bind(NIC, sysfs_root=fs)
    fs.ops.clear()
    dev = unbind(NIC, sysfs_root=fs)
    assert fs.ops == [
        ("write", f"sys/bus/pci/devices/{NIC}/driver_override", "\n"),
        ("write", f"sys/bus/pci/devices/{NIC}/driver/unbind", NIC),
        ("write", "sys/bus/pci/drivers_probe", NIC),
    ]
    # The kernel driver took it back.
    assert (dev.driver, dev.driver_override) == ("e1000e", None)


def test_unbind_device_without_kernel_driver(fs: FakeSysfs) -> None:
    bind(EDU, sysfs_root=fs)
    dev = unbind(EDU, sysfs_root=fs)
    assert (dev.driver, dev.driver_override) == (None, None)


def test_unbind_is_idempotent(fs: FakeSysfs) -> None:
    bind(EDU, sysfs_root=fs)
    unbind(EDU, sysfs_root=fs)
    fs.ops.clear()
    assert unbind(EDU, sysfs_root=fs).driver is None
    assert fs.ops == []


def test_unbind_leaves_kernel_owned_device_alone(fs: FakeSysfs) -> None:
    dev = unbind(NIC, sysfs_root=fs)
    assert dev.driver == "e1000e"
    assert fs.ops == []


def test_unbind_with_stale_override_only(fs: FakeSysfs) -> None:
    (fs.device_dir(EDU) / "driver_override").write_text("vfio-pci\n")
    dev = unbind(EDU, sysfs_root=fs)
    assert [op[1] for op in fs.ops] == [f"sys/bus/pci/devices/{EDU}/driver_override",
                                        "sys/bus/pci/drivers_probe"]
    assert dev.driver_override is None


def test_unbind_vanished_device(fs: FakeSysfs) -> None:
    bind(EDU, sysfs_root=fs)
    fs.before_write = lambda p, t: fs.remove_device(EDU) if p.name == "unbind" else None
    with pytest.raises(DeviceError) as ei:
        unbind(EDU, sysfs_root=fs)
    assert str(ei.value) == (f"PCI device {EDU} vanished while unbinding from `vfio-pci` "
                             "(hot-unplugged?)")


def test_unbind_missing_device(fs: FakeSysfs) -> None:
    with pytest.raises(DeviceError, match=r"^No PCI device 0000:00:09.0 in "):
        unbind("0000:00:09.0", sysfs_root=fs)


def test_check_bound(fs: FakeSysfs) -> None:
    with pytest.raises(DeviceError) as ei:
        check_bound(EDU, sysfs_root=fs)
    assert str(ei.value) == f"PCI device {EDU} is not bound to any driver; it must be bound to `vfio-pci`"
    assert ei.value.hint == f"run `udriver bind {EDU}` first"
    with pytest.raises(DeviceError) as ei:
        check_bound(NIC, sysfs_root=fs)
    assert str(ei.value) == f"PCI device {NIC} is bound to `e1000e`; it must be bound to `vfio-pci`"
    bind(EDU, sysfs_root=fs)
    assert check_bound(EDU, sysfs_root=fs) == get_device(EDU, fs)


def test_modprobe_failure_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from udriver.pci import Sysfs

    def fail(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        assert argv == ["modprobe", "udriver-no-such-module"]
        return subprocess.CompletedProcess(argv, 1, "", "modprobe: FATAL: Module "
                                           "udriver-no-such-module not found\n")
    monkeypatch.setattr(subprocess, "run", fail)  # _sysfs imports it when it loads a module
    with pytest.raises(DeviceError) as ei:
        Sysfs("/").modprobe("udriver-no-such-module")
    assert str(ei.value) == ("Cannot load kernel module `udriver-no-such-module` (modprobe "
                             "exited 1): modprobe: FATAL: Module udriver-no-such-module not found")


def test_modprobe_missing_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from udriver.pci import Sysfs

    def missing(argv: list[str], **kw: object) -> None:
        raise FileNotFoundError(2, "No such file or directory", "modprobe")
    monkeypatch.setattr(subprocess, "run", missing)
    with pytest.raises(DeviceError) as ei:
        Sysfs("/").modprobe("udriver-no-such-module")
    assert str(ei.value) == ("Cannot load kernel module `udriver-no-such-module`: modprobe not "
                             "found (install kmod)")


def test_modprobe_skipped_when_module_loaded(tmp_path: Path) -> None:
    from udriver.pci import Sysfs
    (tmp_path / "sys/module/vfio_pci").mkdir(parents=True)
    Sysfs(tmp_path).modprobe("vfio-pci")  # no error: nothing to do, even outside "/"
