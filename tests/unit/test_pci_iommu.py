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

# (driver, header type, class, viable?) — the kernel's rules, see udriver.pci._iommu.
CASES = [
    (None, 0, 0x020000, True),
    ("vfio-pci", 0, 0x020000, True),
    ("mlx5_vfio_pci", 0, 0x020000, True),
    ("hisi-acc-vfio-pci", 0, 0x020000, True),
    ("pci-stub", 0, 0x020000, True),
    ("pcieport", 1, 0x060400, True),
    ("igb", 0, 0x020000, False),
    ("nvidia", 0, 0x030200, False),
    ("snd_hda_intel", 0, 0x040300, False),
    ("vfio-pci-foo", 0, 0x020000, False),  # not a vfio-pci variant name
    ("shpchp", 1, 0x060400, True),  # a bridge may keep any driver
    ("yenta_cardbus", 2, 0x060700, True),  # CardBus bridge header
    ("some_driver", None, 0x060400, True),  # config unreadable: class says bridge
    ("some_driver", None, 0x020000, False),
    ("ahci", 0, 0x060400, False),  # header type wins over class when known
]


@pytest.mark.parametrize("driver,header,cls,viable", CASES)
def test_rule_table(driver: str | None, header: int | None, cls: int, viable: bool) -> None:
    other = _dev(OTHER, driver, header_type=header, class_code=cls)
    problems = viability_problems(TARGET, [_dev(TARGET, "vfio-pci"), other])
    if viable:
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


def test_all_pairs_of_members() -> None:
    # Every combination of two other members: the group is viable iff both are.
    for (d1, h1, c1, v1), (d2, h2, c2, v2) in itertools.product(CASES, repeat=2):
        members = [_dev("0000:01:00.1", d1, header_type=h1, class_code=c1),
                   _dev("0000:01:00.2", d2, header_type=h2, class_code=c2)]
        assert (viability_problems(TARGET, members) == []) == (v1 and v2)


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

