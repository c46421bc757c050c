"""IOMMU groups and viability: the pure rule table exhaustively, then the sysfs reading."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from udriver.errors import DeviceError
from udriver.modalias import Modalias
from udriver.pci import (
    PciDevice,
    PciIds,
    check_viable,
    group_devices,
    iommu_group,
    is_vfio_driver,
    kernel_release,
    viability_problems,
)
from udriver.pci.testing import FakeSysfs

NO_DB = PciIds(None)


def _dev(bdf: str, driver: str | None, *, header_type: int | None = 0,
         class_code: int = 0x020000) -> PciDevice:
    return PciDevice(
        bdf=bdf, vendor=0x8086, device=0x1521, subsystem_vendor=0, subsystem_device=0,
        class_code=class_code, revision=1, modalias=Modalias.from_ids(0x8086, 0x1521, 0, 0,
                                                                      class_code),
        modalias_text="", driver=driver, driver_override=None, iommu_group=5,
        header_type=header_type, names=None)


TARGET = "0000:01:00.0"
OTHER = "0000:01:00.1"

# (driver, header type, class, viable on >= 5.19, viable before 5.19): see udriver.pci._iommu.
CASES = [
    (None, 0, 0x020000, True, True),
    ("vfio-pci", 0, 0x020000, True, True),
    ("mlx5_vfio_pci", 0, 0x020000, True, True),
    ("hisi-acc-vfio-pci", 0, 0x020000, True, True),
    ("pci-stub", 0, 0x020000, True, True),
    ("pcieport", 1, 0x060400, True, True),  # driver_managed_dma / a bridge
    ("igb", 0, 0x020000, False, False),
    ("nvidia", 0, 0x030200, False, False),
    ("snd_hda_intel", 0, 0x040300, False, False),
    ("vfio-pci-foo", 0, 0x020000, False, False),  # not a vfio-pci variant name
    ("shpchp", 1, 0x060400, False, True),  # old kernels exempt bridges, new ones do not
    ("yenta_cardbus", 2, 0x060700, False, True),  # CardBus bridge header
    ("some_driver", None, 0x060400, False, True),  # config unreadable: class says bridge
    ("some_driver", None, 0x020000, False, False),
    ("ahci", 0, 0x060400, False, False),  # header type wins over class when known
    ("pcieport", 0, 0x020000, True, False),  # (nonsense pairing) only the new rule trusts it
]
KERNELS = [(None, 3), ((6, 1), 3), ((6, 12), 3), ((5, 19), 3), ((5, 18), 4), ((4, 19), 4)]


@pytest.mark.parametrize("kernel,column", KERNELS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]:06x}")
def test_rule_table(case: tuple[object, ...], kernel: tuple[int, int] | None,
                    column: int) -> None:
    driver, header, cls = case[0], case[1], case[2]
    assert isinstance(cls, int) and (header is None or isinstance(header, int))
    assert driver is None or isinstance(driver, str)
    other = _dev(OTHER, driver, header_type=header, class_code=cls)
    problems = viability_problems(TARGET, [_dev(TARGET, "vfio-pci"), other], kernel=kernel)
    if case[column]:
        assert problems == []
    else:
        assert problems == [f"{OTHER} (8086:1521) is bound to `{driver}`"]


def test_target_itself_is_not_judged() -> None:
    assert viability_problems(TARGET, [_dev(TARGET, "igb")]) == []


def test_empty_group_is_viable() -> None:
    assert viability_problems(TARGET, []) == []


def test_every_offender_is_named_in_address_order() -> None:
    members = [_dev("0000:01:00.3", "igb"), _dev("0000:01:00.1", "nvidia"),
               _dev("0000:01:00.2", None)]
    assert viability_problems(TARGET, members) == [
        "0000:01:00.1 (8086:1521) is bound to `nvidia`",
        "0000:01:00.3 (8086:1521) is bound to `igb`",
    ]


@pytest.mark.parametrize("kernel,column", [(None, 3), ((5, 4), 4)])
def test_all_pairs_of_members(kernel: tuple[int, int] | None, column: int) -> None:
    # Every combination of two other members: the group is viable iff both are.
    for c1, c2 in itertools.product(CASES, repeat=2):
        members = [_dev("0000:01:00.1", c1[0], header_type=c1[1], class_code=c1[2]),
                   _dev("0000:01:00.2", c2[0], header_type=c2[1], class_code=c2[2])]
        viable = viability_problems(TARGET, members, kernel=kernel) == []
        assert viable == (c1[column] and c2[column]), (c1, c2)


@pytest.mark.parametrize("name,expected", [("vfio-pci", True), ("mlx5_vfio_pci", True),
                                           ("nvgrace-gpu-vfio-pci", True), (None, False),
                                           ("vfio", False), ("pci-stub", False)])
def test_is_vfio_driver(name: str | None, expected: bool) -> None:
    assert is_vfio_driver(name) is expected


@pytest.fixture
def fs(tmp_path: Path) -> FakeSysfs:
    fs = FakeSysfs(tmp_path)
    fs.add_device("0000:00:01.0", 0x8086, 0x29C0, class_code=0x060000, iommu_group=0)
    fs.add_device("0000:00:1c.0", 0x8086, 0xA110, class_code=0x060400, header_type=1,
                  driver="pcieport", iommu_group=4)
    fs.add_device("0000:01:00.0", 0x8086, 0x1521, class_code=0x020000, driver="igb",
                  iommu_group=4)
    fs.add_device("0000:01:00.1", 0x8086, 0x1521, class_code=0x020000, driver="igb",
                  iommu_group=4)
    fs.add_device("0000:02:00.0", 0x1234, 0x11E8, class_code=0x00FF00, iommu_group=5)
    fs.add_device("0000:03:00.0", 0x1234, 0x11E8, class_code=0x00FF00)
    return fs


def test_iommu_group_and_members(fs: FakeSysfs) -> None:
    assert iommu_group("0000:01:00.0", fs) == 4
    assert iommu_group("03:00.0", fs) is None
    assert group_devices(4, fs) == ["0000:00:1c.0", "0000:01:00.0", "0000:01:00.1"]
    assert group_devices(5, fs) == ["0000:02:00.0"]


def test_group_ignores_non_pci_members(fs: FakeSysfs) -> None:
    (fs.iommu_group_dir(5) / "devices" / "platform-thing").touch()
    assert group_devices(5, fs) == ["0000:02:00.0"]


def test_missing_group(fs: FakeSysfs) -> None:
    with pytest.raises(DeviceError) as ei:
        group_devices(9, fs)
    assert str(ei.value) == f"No IOMMU group 9: {fs.root}/sys/kernel/iommu_groups/9/devices does not exist"


def test_single_device_group_is_viable(fs: FakeSysfs) -> None:
    check_viable("0000:02:00.0", fs, pci_ids=NO_DB)


def test_sibling_bound_to_kernel_driver_is_not_viable(fs: FakeSysfs) -> None:
    with pytest.raises(DeviceError) as ei:
        check_viable("0000:01:00.0", fs, pci_ids=NO_DB)
    assert str(ei.value) == (
        "IOMMU group 4 of 0000:01:00.0 is not viable: 0000:01:00.1 (8086:1521) is bound to "
        "`igb` (every device in the group must be unbound or bound to vfio-pci or pci-stub)")
    assert ei.value.hint == "bind the other devices too (udriver bind BDF) or unbind them"


def test_group_viable_once_sibling_unbound(fs: FakeSysfs) -> None:
    (fs.device_dir("0000:01:00.1") / "driver").unlink()
    check_viable("0000:01:00.0", fs, pci_ids=NO_DB)  # the pcieport bridge is allowed


def test_old_kernel_exempts_bridge_driver(fs: FakeSysfs) -> None:
    fs.add_device("0000:05:00.0", 0x104C, 0xAC55, class_code=0x060700, header_type=2,
                  driver="yenta_cardbus", iommu_group=5)
    with pytest.raises(DeviceError, match=r"0000:05:00.0 \(104c:ac55\) is bound to `yenta_cardbus`"):
        check_viable("0000:02:00.0", fs, pci_ids=NO_DB)  # no osrelease: a current kernel
    (fs.root / "proc/sys/kernel").mkdir(parents=True)
    (fs.root / "proc/sys/kernel/osrelease").write_text("5.10.0-28-amd64\n")
    assert kernel_release(fs) == (5, 10)
    check_viable("0000:02:00.0", fs, pci_ids=NO_DB)


@pytest.mark.parametrize("text,expected", [("6.1.0-26-amd64\n", (6, 1)),
                                           ("6.12.95+deb12-amd64", (6, 12)),
                                           ("garbage", None), (None, None)])
def test_kernel_release(tmp_path: Path, text: str | None,
                        expected: tuple[int, int] | None) -> None:
    if text is not None:
        (tmp_path / "proc/sys/kernel").mkdir(parents=True)
        (tmp_path / "proc/sys/kernel/osrelease").write_text(text)
    assert kernel_release(tmp_path) == expected


def test_no_iommu_group(fs: FakeSysfs) -> None:
    with pytest.raises(DeviceError) as ei:
        check_viable("0000:03:00.0", fs)
    assert str(ei.value) == (
        "PCI device 0000:03:00.0 has no IOMMU group: is the IOMMU enabled? Boot with "
        "intel_iommu=on (Intel) or amd_iommu=on (AMD); under QEMU add -device intel-iommu")


def test_check_viable_missing_device(fs: FakeSysfs) -> None:
    with pytest.raises(DeviceError, match=r"^No PCI device 0000:09:00.0 in "):
        check_viable("0000:09:00.0", fs)


def test_check_viable_malformed_bdf(fs: FakeSysfs) -> None:
    with pytest.raises(DeviceError, match=r"^Invalid PCI address"):
        check_viable("nonsense", fs)


def test_member_vanishing_during_check_is_ignored(fs: FakeSysfs) -> None:
    # The sibling is listed in the group but its sysfs directory is gone (hot-unplug).
    fs.remove_device("0000:01:00.1")
    check_viable("0000:01:00.0", fs, pci_ids=NO_DB)

