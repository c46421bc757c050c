"""Names from pci.ids: the file grammar, laziness, and the real Debian database."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from udriver.pci import PciIds, PciNames, default_pci_ids

SAMPLE = """\
#
#\tList of PCI ID's
#
# Syntax:
# vendor  vendor_name
#\tdevice  device_name\t\t\t\t<-- single tab
#\t\tsubvendor subdevice  subsystem_name\t<-- two tabs
0001  SafeNet (wrong ID)
10de  NVIDIA Corporation
\t2330  GH100[H100 SXM5 80GB]
# a comment inside a vendor block
\t2331  GH100 [H100 PCIe]
\t\t10de 1626  H100 PCIe 80GB
\t\t10de 1627  H100 PCIe 80GB (alt)
1af4  Red Hat, Inc.
\t1041  Virtio 1.0 network device
8086  Intel Corporation
\tbad-line-without-two-spaces
\t1521  I350 Gigabit Network Connection
\t\t8086 0001  Ethernet Server Adapter I350-T4

# List of known device classes, subclasses and programming interfaces
C 01  Mass storage controller
\t08  Non-Volatile memory controller
\t\t02  NVM Express
C 03  Display controller
\t00  VGA compatible controller
\t02  3D controller
C ff  Unassigned class
"""


@pytest.fixture
def db(tmp_path: Path) -> PciIds:
    p = tmp_path / "pci.ids"
    p.write_text(SAMPLE)
    return PciIds(p)


def test_vendor_device_subsystem(db: PciIds) -> None:
    assert db.vendor_name(0x10DE) == "NVIDIA Corporation"
    assert db.device_name(0x10DE, 0x2330) == "GH100[H100 SXM5 80GB]"
    assert db.device_name(0x10DE, 0x2331) == "GH100 [H100 PCIe]"  # after a comment line
    assert db.subsystem_name(0x10DE, 0x2331, 0x10DE, 0x1627) == "H100 PCIe 80GB (alt)"
    assert db.subsystem_name(0x10DE, 0x2330, 0x10DE, 0x1626) is None  # listed under 2331 only


def test_malformed_lines_are_skipped(db: PciIds) -> None:
    assert db.device_name(0x8086, 0x1521) == "I350 Gigabit Network Connection"
    assert db.subsystem_name(0x8086, 0x1521, 0x8086, 0x0001) == "Ethernet Server Adapter I350-T4"


def test_unknown_ids_are_none(db: PciIds) -> None:
    assert db.vendor_name(0x1234) is None
    assert db.device_name(0x10DE, 0x9999) is None
    assert db.device_name(0x1234, 0x11E8) is None
    assert db.class_name(0x120000) is None


def test_device_id_is_not_mistaken_for_vendor(db: PciIds) -> None:
    # "1041" appears only as a device line (tab-indented); it is no vendor.
    assert db.vendor_name(0x1041) is None


def test_class_names_most_specific(db: PciIds) -> None:
    assert db.class_name(0x030200) == "3D controller"
    assert db.class_name(0x010802) == "Non-Volatile memory controller"
    assert db.class_name(0x038000) == "Display controller"  # unknown subclass: base name
    assert db.class_name(0xFFFF00) == "Unassigned class"


def test_names_record(db: PciIds) -> None:
    assert db.names(0x10DE, 0x2331, 0x10DE, 0x1626, 0x030200) == PciNames(
        vendor="NVIDIA Corporation", device="GH100 [H100 PCIe]",
        subsystem_vendor="NVIDIA Corporation", subsystem="H100 PCIe 80GB",
        class_name="3D controller")
    n = db.names(0x8086, 0x0D57, 0, 0, 0x060000)
    assert n is not None and n.subsystem_vendor is None and n.device is None
    assert n.to_json() == {"vendor": "Intel Corporation", "device": None,
                           "subsystem_vendor": None, "subsystem": None, "class": None}


def test_lazy_nothing_read_before_first_lookup(tmp_path: Path) -> None:
    p = tmp_path / "pci.ids"
    db = PciIds(p)  # does not exist yet: constructing must not read it
    p.write_text(SAMPLE)
    assert db.vendor_name(0x10DE) == "NVIDIA Corporation"


def test_only_looked_up_blocks_are_parsed(db: PciIds) -> None:
    db.device_name(0x10DE, 0x2330)
    assert list(db._vendors) == [0x10DE]
    assert db._classes == {}


def test_no_database_gives_no_names(tmp_path: Path) -> None:
    assert PciIds(None).names(0x10DE, 0x2330, 0, 0, 0x030200) is None
    missing = PciIds(tmp_path / "absent.ids")
    assert missing.names(0x10DE, 0x2330, 0, 0, 0x030200) is None
    assert missing.vendor_name(0x10DE) is None


def test_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    p = tmp_path / "pci.ids"
    p.write_text(SAMPLE)
    monkeypatch.setenv("UDRIVER_PCI_IDS", str(p))
    assert default_pci_ids().path == p
    monkeypatch.setenv("UDRIVER_PCI_IDS", "")
    assert default_pci_ids().path is None


REAL = Path("/usr/share/misc/pci.ids")
needs_real = pytest.mark.skipif(not REAL.is_file(), reason="Debian package pci.ids not installed")


@needs_real
def test_real_database_h100_and_virtio() -> None:
    db = PciIds(REAL)
    assert db.names(0x10DE, 0x2330, 0x10DE, 0x16C1, 0x030200) == PciNames(
        vendor="NVIDIA Corporation", device="GH100[H100 SXM5 80GB]",
        subsystem_vendor="NVIDIA Corporation", subsystem=None, class_name="3D controller")
    assert db.device_name(0x1AF4, 0x1041) == "Virtio 1.0 network device"
    assert db.class_name(0x060000) == "Host bridge"


@needs_real
def test_real_database_lookups_are_fast() -> None:
    db = PciIds(REAL)
    t0 = time.perf_counter()
    db.names(0x10DE, 0x2330, 0x10DE, 0x16C1, 0x030200)  # first: reads the file
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(1000):
        db.names(0x10DE, 0x2330, 0x10DE, 0x16C1, 0x030200)
    cached = (time.perf_counter() - t0) / 1000
    assert first < 0.5, first
    assert cached < 1e-3, cached


def test_default_follows_env_changes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("UDRIVER_PCI_IDS", "")
    assert default_pci_ids().path is None
    monkeypatch.delenv("UDRIVER_PCI_IDS")
    expected = next((p for p in (REAL, Path("/usr/share/hwdata/pci.ids")) if p.is_file()), None)
    assert default_pci_ids().path == expected
    assert default_pci_ids() is default_pci_ids()  # cached while nothing changes


def test_file_without_class_section_and_last_vendor(tmp_path: Path) -> None:
    p = tmp_path / "pci.ids"
    p.write_text("1234  Last Vendor\n\t11e8  Edu\n\t\t1af4 1100  QEMU edu\n\n")
    db = PciIds(p)
    assert db.names(0x1234, 0x11E8, 0x1AF4, 0x1100, 0x00FF00) == PciNames(
        vendor="Last Vendor", device="Edu", subsystem_vendor=None, subsystem="QEMU edu",
        class_name=None)
