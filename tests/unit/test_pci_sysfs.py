"""udriver.pci discovery: the real sysfs snapshots, BDF handling, and malformed trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from udriver.errors import DeviceError
from udriver.modalias import Modalias
from udriver.pci import PciIds, get_device, list_devices, normalise_bdf
from udriver.pci.testing import FakeSysfs

# The project carries its sysfs snapshots in tests/fixtures/ (copied from shared/fixtures).
FIXTURES = Path(os.environ.get("UDRIVER_FIXTURES")
                or Path(__file__).resolve().parents[1] / "fixtures") / "sysfs"
GPU = FIXTURES / "gpu-server"
SMALL = FIXTURES / "small-vm"
NO_DB = PciIds(None)

needs_fixtures = pytest.mark.skipif(not GPU.is_dir(), reason=f"sysfs snapshots not at {FIXTURES}")


@needs_fixtures
def test_gpu_server_lists_every_device() -> None:
    devs = list_devices(GPU, pci_ids=NO_DB)
    assert [d.bdf for d in devs] == [f"0000:00:0{i}.0" for i in range(7)]


@needs_fixtures
def test_h100_fields_exact() -> None:
    h100 = get_device("0000:00:06.0", GPU, pci_ids=NO_DB)
    assert (h100.vendor, h100.device) == (0x10DE, 0x2330)
    assert (h100.subsystem_vendor, h100.subsystem_device) == (0x10DE, 0x16C1)
    assert h100.class_code == 0x030200
    assert h100.revision == 0xA1
    assert h100.modalias_text == "pci:v000010DEd00002330sv000010DEsd000016C1bc03sc02i00"
    assert h100.modalias == Modalias(0x10DE, 0x2330, 0x10DE, 0x16C1, 0x03, 0x02, 0x00)
    assert h100.driver == "nvidia"  # the snapshot stores the link target as text
    assert h100.driver_override is None  # "(null)"
    assert h100.iommu_group is None  # the snapshot machine had no IOMMU
    assert h100.header_type == 0  # read from the binary config space
    assert h100.names is None
    assert h100.ids == "10de:2330"


@needs_fixtures
def test_host_bridge_has_no_driver() -> None:
    bridge = get_device("0000:00:00.0", GPU, pci_ids=NO_DB)
    assert bridge.driver is None
    assert bridge.class_code == 0x060000
    assert not bridge.is_bridge  # a host bridge has a type-0 header


@needs_fixtures
def test_small_vm_devices_and_drivers() -> None:
    devs = {d.bdf: d for d in list_devices(SMALL, pci_ids=NO_DB)}
    assert sorted(devs) == [f"0000:00:0{i}.0" for i in range(6)]
    assert devs["0000:00:01.0"].ids == "1af4:1045"
    assert devs["0000:00:03.0"].class_code == 0x020000
    assert {d.driver for b, d in devs.items() if b != "0000:00:00.0"} == {"virtio-pci"}


@needs_fixtures
def test_every_snapshot_modalias_matches_its_ids() -> None:
    for root in (GPU, SMALL):
        for d in list_devices(root, pci_ids=NO_DB):
            assert d.modalias == Modalias.from_ids(d.vendor, d.device, d.subsystem_vendor,
                                                   d.subsystem_device, d.class_code), d.bdf
            assert str(d.modalias) == d.modalias_text


@pytest.mark.parametrize("given,canon", [
    ("0000:00:06.0", "0000:00:06.0"),
    ("00:06.0", "0000:00:06.0"),
    ("0000:3B:1F.7", "0000:3b:1f.7"),
    ("10000:01:00.0", "10000:01:00.0"),  # VMD domains are wider than 4 digits
])
def test_normalise_bdf(given: str, canon: str) -> None:
    assert normalise_bdf(given) == canon


@pytest.mark.parametrize("bad", ["", "0000:00:06", "0000:00:20.0", "0000:00:06.8", "zz:00.0",
                                 "0000:000:06.0", "/sys/bus/pci/devices/0000:00:06.0",
                                 "0000:00:06.0/../x",
                                 " 0000:00:06.0\n"])  # one grammar (pci._address): no blanks
def test_malformed_bdf_is_rejected(bad: str) -> None:
    with pytest.raises(DeviceError) as ei:
        normalise_bdf(bad)
    assert str(ei.value) == (f"Invalid PCI address (expected DDDD:BB:DD.F, e.g. 0000:00:06.0): "
                             f"{bad!r}")


@needs_fixtures
def test_missing_bdf_lists_what_exists() -> None:
    with pytest.raises(DeviceError) as ei:
        get_device("0000:00:09.0", SMALL)
    assert str(ei.value) == (
        f"No PCI device 0000:00:09.0 in {SMALL}/sys/bus/pci/devices (present: 0000:00:00.0, "
        "0000:00:01.0, 0000:00:02.0, 0000:00:03.0, 0000:00:04.0, 0000:00:05.0)"
    )


def test_missing_bdf_on_empty_tree(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match=r"\(present: none\)$"):
        get_device("0000:00:01.0", tmp_path)
    assert list_devices(tmp_path) == []


def test_live_symlinks_are_followed(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    fs.add_device("0000:00:03.0", 0x1234, 0x11E8, driver="vfio-pci", iommu_group=7)
    assert os.path.islink(fs.device_dir("0000:00:03.0") / "driver")
    dev = get_device("0000:00:03.0", fs, pci_ids=NO_DB)
    assert (dev.driver, dev.iommu_group) == ("vfio-pci", 7)


def test_missing_modalias_is_computed_from_ids(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    fs.add_device("0000:00:03.0", 0x1234, 0x11E8, class_code=0x00FF00, modalias=False)
    dev = get_device("0000:00:03.0", fs, pci_ids=NO_DB)
    assert dev.modalias_text == "pci:v00001234d000011E8sv00000000sd00000000bc00scFFi00"


def test_malformed_modalias_falls_back_to_ids(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    d = fs.add_device("0000:00:03.0", 0x1234, 0x11E8, class_code=0x00FF00)
    (d / "modalias").write_text("garbage\n")
    dev = get_device("0000:00:03.0", fs, pci_ids=NO_DB)
    assert dev.modalias == Modalias(0x1234, 0x11E8, 0, 0, 0x00, 0xFF, 0x00)
    assert dev.modalias_text == "garbage"


def test_malformed_id_attribute(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    d = fs.add_device("0000:00:03.0", 0x1234, 0x11E8)
    (d / "vendor").write_text("0xnope\n")
    with pytest.raises(DeviceError) as ei:
        get_device("0000:00:03.0", fs)
    assert str(ei.value) == "Invalid `vendor` of PCI device 0000:00:03.0 (expected hex): '0xnope'"


def test_missing_required_attribute(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    d = fs.add_device("0000:00:03.0", 0x1234, 0x11E8)
    (d / "class").unlink()
    with pytest.raises(DeviceError, match=r"Cannot read `class` of PCI device 0000:00:03.0"):
        get_device("0000:00:03.0", fs)


def test_bridge_detected_from_header_type(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    fs.add_device("0000:00:1c.0", 0x8086, 0xA110, class_code=0x060400, header_type=1,
                  driver="pcieport")
    dev = get_device("0000:00:1c.0", fs, pci_ids=NO_DB)
    assert dev.header_type == 1 and dev.is_bridge


def test_bridge_detected_from_class_without_config(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    d = fs.add_device("0000:00:1c.0", 0x8086, 0xA110, class_code=0x060400)
    (d / "config").unlink()
    dev = get_device("0000:00:1c.0", fs, pci_ids=NO_DB)
    assert dev.header_type is None and dev.is_bridge


def test_json_has_every_field(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    fs.add_device("0000:00:03.0", 0x1234, 0x11E8, class_code=0x00FF00, revision=0x10,
                  subsystem_vendor=0x1AF4, subsystem_device=0x1100, driver="vfio-pci",
                  iommu_group=3)
    (fs.device_dir("0000:00:03.0") / "driver_override").write_text("vfio-pci\n")
    assert get_device("0000:00:03.0", fs, pci_ids=NO_DB).to_json() == {
        "bdf": "0000:00:03.0", "vendor": "1234", "device": "11e8",
        "subsystem_vendor": "1af4", "subsystem_device": "1100", "class": "00ff00",
        "revision": "10",
        "modalias": "pci:v00001234d000011E8sv00001AF4sd00001100bc00scFFi00",
        "driver": "vfio-pci", "driver_override": "vfio-pci", "iommu_group": 3,
        "header_type": 0, "names": None,
    }


def test_device_vanishing_while_listing_is_skipped(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fs = FakeSysfs(tmp_path)
    fs.add_device("0000:00:03.0", 0x1234, 0x11E8)
    listed = fs.bdfs()
    monkeypatch.setattr(fs, "bdfs", lambda: [*listed, "0000:00:04.0"])  # gone before reading
    assert [d.bdf for d in list_devices(fs, pci_ids=NO_DB)] == ["0000:00:03.0"]


def test_malformed_device_is_not_hidden_by_listing(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    d = fs.add_device("0000:00:03.0", 0x1234, 0x11E8)
    (d / "device").write_text("zz\n")
    with pytest.raises(DeviceError, match=r"^Invalid `device` of PCI device 0000:00:03.0"):
        list_devices(fs, pci_ids=NO_DB)


def test_unreadable_attribute_is_a_device_error(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fs = FakeSysfs(tmp_path)
    d = fs.add_device("0000:00:03.0", 0x1234, 0x11E8)
    real = Path.read_text

    def deny(self: Path, *a: object, **k: object) -> str:
        if self.name == "vendor":
            raise PermissionError(13, "Permission denied")
        return real(self, *a, **k)  # type: ignore[arg-type]
    monkeypatch.setattr(Path, "read_text", deny)
    with pytest.raises(DeviceError) as ei:
        get_device("0000:00:03.0", fs)
    assert str(ei.value) == f"Cannot read {d}/vendor: Permission denied (errno 13)"


def test_sysfs_write_is_one_write(tmp_path: Path) -> None:
    from udriver.pci import Sysfs
    target = tmp_path / "attr"
    target.write_text("old-and-longer\n")
    Sysfs(tmp_path).write(target, "new")
    # O_WRONLY without O_CREAT/O_TRUNC, one write(2): what a sysfs store() needs.
    assert target.read_text() == "new-and-longer\n"
    with pytest.raises(FileNotFoundError):
        Sysfs(tmp_path).write(tmp_path / "absent", "x")  # never creates files
    assert not (tmp_path / "absent").exists()
