"""`udriver devices`, `udriver bind`, `udriver unbind`: exact output and exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from udriver import cli
from udriver.cli import _bind as cli_bind
from udriver.cli import _unbind as cli_unbind
from udriver.pci import _bind as bind_mod
from udriver.pci import bind, unbind
from udriver.pci.testing import FakeSysfs

# The project carries its sysfs snapshots in tests/fixtures/ (copied from shared/fixtures).
FIXTURES = Path(os.environ.get("UDRIVER_FIXTURES")
                or Path(__file__).resolve().parents[1] / "fixtures") / "sysfs"
GPU = FIXTURES / "gpu-server"
SMALL = FIXTURES / "small-vm"
PCI_IDS = Path("/usr/share/misc/pci.ids")

needs_fixtures = pytest.mark.skipif(not GPU.is_dir(), reason=f"sysfs snapshots not at {FIXTURES}")
needs_pci_ids = pytest.mark.skipif(not PCI_IDS.is_file(),
                                   reason="Debian package pci.ids not installed")


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("UDRIVER_SYSFS_ROOT", raising=False)
    # No repositories, nothing installed: the INSTALLED/AVAILABLE columns are "-".
    monkeypatch.setenv("UDRIVER_CONFIG_DIR", str(tmp_path / "etc"))
    monkeypatch.setenv("UDRIVER_STATE_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("UDRIVER_PCI_IDS", str(PCI_IDS))
    monkeypatch.setenv("UDRIVER_BIND_RULES", str(tmp_path / "rules.d" / "61-udriver-bind.rules"))
    monkeypatch.setattr(bind_mod, "_POLL_INTERVAL", 0.001)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


GPU_TABLE = """\
BDF           IDS        CLASS   DRIVER      IOMMU  INSTALLED  AVAILABLE  NAME
0000:00:00.0  8086:0d57  060000  -           -      -          -          Host bridge: Intel Corporation Device 0d57
0000:00:01.0  1af4:1042  018000  virtio-pci  -      -          -          Mass storage controller: Red Hat, Inc. Virtio 1.0 block device
0000:00:02.0  1af4:1042  018000  virtio-pci  -      -          -          Mass storage controller: Red Hat, Inc. Virtio 1.0 block device
0000:00:03.0  1af4:1041  020000  virtio-pci  -      -          -          Ethernet controller: Red Hat, Inc. Virtio 1.0 network device
0000:00:04.0  1af4:1053  ffff00  virtio-pci  -      -          -          Unassigned class: Red Hat, Inc. Virtio 1.0 socket
0000:00:05.0  1af4:1044  ffff00  virtio-pci  -      -          -          Unassigned class: Red Hat, Inc. Virtio 1.0 RNG
0000:00:06.0  10de:2330  030200  nvidia      -      -          -          3D controller: NVIDIA Corporation GH100[H100 SXM5 80GB]
"""

SMALL_TABLE = """\
BDF           IDS        CLASS   DRIVER      IOMMU  INSTALLED  AVAILABLE  NAME
0000:00:00.0  8086:0d57  060000  -           -      -          -          Host bridge: Intel Corporation Device 0d57
0000:00:01.0  1af4:1045  ffff00  virtio-pci  -      -          -          Unassigned class: Red Hat, Inc. Virtio 1.0 memory balloon
0000:00:02.0  1af4:1042  018000  virtio-pci  -      -          -          Mass storage controller: Red Hat, Inc. Virtio 1.0 block device
0000:00:03.0  1af4:1041  020000  virtio-pci  -      -          -          Ethernet controller: Red Hat, Inc. Virtio 1.0 network device
0000:00:04.0  1af4:1053  ffff00  virtio-pci  -      -          -          Unassigned class: Red Hat, Inc. Virtio 1.0 socket
0000:00:05.0  1af4:1044  ffff00  virtio-pci  -      -          -          Unassigned class: Red Hat, Inc. Virtio 1.0 RNG
"""


@needs_fixtures
@needs_pci_ids
@pytest.mark.parametrize("root,table", [(GPU, GPU_TABLE), (SMALL, SMALL_TABLE)])
def test_devices_table(capsys: pytest.CaptureFixture[str], root: Path, table: str) -> None:
    assert _run(capsys, "devices", "--sysfs-root", str(root)) == (0, table, "")


@needs_fixtures
@needs_pci_ids
def test_devices_root_from_environment(capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UDRIVER_SYSFS_ROOT", str(GPU))
    assert _run(capsys, "devices") == (0, GPU_TABLE, "")


@needs_fixtures
@needs_pci_ids
def test_devices_json_h100_exact(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(capsys, "devices", "--json", "--sysfs-root", str(GPU))
    assert (rc, err) == (0, "")
    devices = json.loads(out)
    assert [d["bdf"] for d in devices] == [f"0000:00:0{i}.0" for i in range(7)]
    assert devices[6] == {
        "bdf": "0000:00:06.0", "vendor": "10de", "device": "2330",
        "subsystem_vendor": "10de", "subsystem_device": "16c1", "class": "030200",
        "revision": "a1",
        "modalias": "pci:v000010DEd00002330sv000010DEsd000016C1bc03sc02i00",
        "driver": "nvidia", "driver_override": None, "iommu_group": None, "header_type": 0,
        "names": {"vendor": "NVIDIA Corporation", "device": "GH100[H100 SXM5 80GB]",
                  "subsystem_vendor": "NVIDIA Corporation", "subsystem": None,
                  "class": "3D controller"},
        "installed": None, "available": None,
    }


@needs_fixtures
@needs_pci_ids
@pytest.mark.parametrize("root", [GPU, SMALL])
def test_devices_json_every_device_complete(capsys: pytest.CaptureFixture[str],
                                            root: Path) -> None:
    rc, out, _ = _run(capsys, "devices", "--json", "--sysfs-root", str(root))
    assert rc == 0
    for d in json.loads(out):
        sysdir = root / "sys/bus/pci/devices" / d["bdf"]
        for attr in ("vendor", "device", "subsystem_vendor", "subsystem_device", "class",
                     "revision"):
            assert int(d[attr], 16) == int((sysdir / attr).read_text(), 16), (d["bdf"], attr)
        assert d["modalias"] == (sysdir / "modalias").read_text().strip()
        link = sysdir / "driver"
        assert d["driver"] == (link.read_text().strip().rsplit("/", 1)[-1]
                               if link.exists() else None)
        assert d["names"]["vendor"] is not None  # every vendor here is in pci.ids


@needs_fixtures
def test_devices_without_pci_ids(capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UDRIVER_PCI_IDS", "")
    rc, out, _ = _run(capsys, "devices", "--sysfs-root", str(GPU))
    assert rc == 0
    assert out.splitlines()[-1] == (
        "0000:00:06.0  10de:2330  030200  nvidia      -      -          -          -")


def test_devices_empty_tree(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "sys/bus/pci/devices").mkdir(parents=True)
    assert _run(capsys, "devices", "--sysfs-root", str(tmp_path)) == (
        0, "BDF  IDS  CLASS  DRIVER  IOMMU  INSTALLED  AVAILABLE  NAME\n", "")
    assert _run(capsys, "devices", "--json", "--sysfs-root", str(tmp_path)) == (0, "[]\n", "")


def test_devices_without_a_sysfs_tree_is_an_error(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    """`--sysfs-root /nonexistent` printed an empty table and exit 0 (issue 13)."""
    root = tmp_path / "nonexistent"
    assert _run(capsys, "devices", "--sysfs-root", str(root)) == (
        1, "", (f"error: No PCI devices directory under the sysfs root: "
                f"'{root}/sys/bus/pci/devices'\n"
                "hint: is sysfs mounted? `--sysfs-root` (or UDRIVER_SYSFS_ROOT) names the "
                "directory that holds sys/, / by default\n"))


def test_devices_shows_the_iommu_group(capsys: pytest.CaptureFixture[str],
                                       fake: FakeSysfs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UDRIVER_PCI_IDS", "")
    rc, out, _ = _run(capsys, "devices", "--sysfs-root", str(fake.root))
    assert rc == 0
    rows = [line.split()[:5] for line in out.splitlines()[1:]]
    assert rows == [["0000:00:03.0", "1234:11e8", "00ff00", "-", "3"],
                    ["0000:01:00.0", "8086:1521", "020000", "igb", "4"],
                    ["0000:01:00.1", "8086:1521", "020000", "igb", "4"]]


@needs_fixtures
def test_bind_missing_device(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "bind", "0000:00:09.0", "--sysfs-root", str(SMALL)) == (
        1, "", (f"error: No PCI device 0000:00:09.0 in {SMALL}/sys/bus/pci/devices (present: "
                "0000:00:00.0, 0000:00:01.0, 0000:00:02.0, 0000:00:03.0, 0000:00:04.0, "
                "0000:00:05.0)\n"))


def test_bind_malformed_bdf(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert _run(capsys, "bind", "06.0", "--sysfs-root", str(tmp_path)) == (
        1, "", "error: Invalid PCI address (expected DDDD:BB:DD.F, e.g. 0000:00:06.0): '06.0'\n")


@needs_fixtures
def test_bind_without_iommu_group(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "bind", "0000:00:06.0", "--sysfs-root", str(GPU)) == (
        1, "", ("error: Cannot bind PCI device 0000:00:06.0 to `vfio-pci`: it has no IOMMU "
                "group: is the IOMMU enabled? Boot with intel_iommu=on (Intel) or amd_iommu=on "
                "(AMD); under QEMU add -device intel-iommu\n"))


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSysfs:
    """A fake machine; the commands get a FakeSysfs so the kernel's side effects happen."""
    fs = FakeSysfs(tmp_path)
    fs.add_device("0000:00:03.0", 0x1234, 0x11E8, class_code=0x00FF00, iommu_group=3)
    fs.add_device("0000:01:00.0", 0x8086, 0x1521, class_code=0x020000, driver="igb",
                  iommu_group=4)
    fs.add_device("0000:01:00.1", 0x8086, 0x1521, class_code=0x020000, driver="igb",
                  iommu_group=4)
    monkeypatch.setattr(cli_bind, "bind", lambda bdf, driver, sysfs_root, timeout: bind(
        bdf, driver, sysfs_root=fs, timeout=timeout))
    monkeypatch.setattr(cli_unbind, "unbind", lambda bdf, sysfs_root: unbind(
        bdf, sysfs_root=fs))
    return fs


def test_bind_then_unbind(capsys: pytest.CaptureFixture[str], fake: FakeSysfs) -> None:
    root = str(fake.root)
    assert _run(capsys, "bind", "0000:00:03.0", "--sysfs-root", root) == (
        0, "0000:00:03.0: bound to vfio-pci (IOMMU group 3, /dev/vfio/3)\n", "")
    # Idempotent: the same line again, and nothing written.
    fake.ops.clear()
    assert _run(capsys, "bind", "00:03.0", "--sysfs-root", root) == (
        0, "0000:00:03.0: bound to vfio-pci (IOMMU group 3, /dev/vfio/3)\n", "")
    assert fake.ops == []
    assert _run(capsys, "unbind", "0000:00:03.0", "--sysfs-root", root) == (
        0, "0000:00:03.0: unbound (no driver)\n", "")


def test_unbind_gives_device_back_to_kernel_driver(capsys: pytest.CaptureFixture[str],
                                                   fake: FakeSysfs) -> None:
    root = str(fake.root)
    _run(capsys, "bind", "0000:01:00.0", "--sysfs-root", root)
    assert _run(capsys, "unbind", "0000:01:00.0", "--sysfs-root", root) == (
        0, "0000:01:00.0: bound to igb\n", "")


def test_bind_warns_about_non_viable_group(capsys: pytest.CaptureFixture[str],
                                           fake: FakeSysfs) -> None:
    assert _run(capsys, "bind", "0000:01:00.0", "--sysfs-root", str(fake.root)) == (
        0, "0000:01:00.0: bound to vfio-pci (IOMMU group 4, /dev/vfio/4)\n",
        ("warning: IOMMU group 4 of 0000:01:00.0 is not viable: 0000:01:00.1 (8086:1521) is "
         "bound to `igb` (every device in the group must be unbound or bound to vfio-pci or "
         "pci-stub)\n"))
    # Binding the sibling too makes the group viable: no warning.
    assert _run(capsys, "bind", "0000:01:00.1", "--sysfs-root", str(fake.root)) == (
        0, "0000:01:00.1: bound to vfio-pci (IOMMU group 4, /dev/vfio/4)\n", "")


def test_bind_json(capsys: pytest.CaptureFixture[str], fake: FakeSysfs) -> None:
    rc, out, err = _run(capsys, "bind", "--json", "0000:00:03.0", "--sysfs-root",
                        str(fake.root))
    assert (rc, err) == (0, "")
    d = json.loads(out)
    assert (d["bdf"], d["driver"], d["driver_override"], d["iommu_group"]) == (
        "0000:00:03.0", "vfio-pci", "vfio-pci", 3)


def test_bind_probe_failure_with_real_sysfs_writes(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    # The plain Sysfs writes the files in order, but nothing plays the kernel: the
    # verification step must notice that no driver bound.
    fs = FakeSysfs(tmp_path)
    fs.add_device("0000:00:03.0", 0x1234, 0x11E8, iommu_group=3)
    fs.add_driver("vfio-pci")
    fs.modprobe("vfio_iommu_type1")
    rc, out, err = _run(capsys, "bind", "0000:00:03.0", "--timeout", "0.05",
                        "--sysfs-root", str(tmp_path))
    assert (rc, out) == (1, "")
    assert err == ("error: PCI device 0000:00:03.0 is not bound to `vfio-pci` after 0.05 s (it "
                   "has no driver); the kernel log (dmesg) says why the probe failed\n")
    assert (fs.device_dir("0000:00:03.0") / "driver_override").read_text() == "vfio-pci"
    assert fs.drivers_probe.read_text() == "0000:00:03.0"


def test_unbind_missing_device(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert _run(capsys, "unbind", "0000:00:09.0", "--sysfs-root", str(tmp_path)) == (
        1, "", (f"error: No PCI device 0000:00:09.0 in {tmp_path}/sys/bus/pci/devices "
                "(present: none)\n"))


def test_bind_persist_writes_a_driver_override_rule_and_unbind_removes_it(
        capsys: pytest.CaptureFixture[str], fake: FakeSysfs, tmp_path: Path) -> None:
    """driverctl's overrides, for udriver (issue 13): the bind survives a reboot."""
    rules = tmp_path / "rules.d" / "61-udriver-bind.rules"
    root = str(fake.root)
    assert _run(capsys, "bind", "00:03.0", "--persist", "--sysfs-root", root) == (
        0, (f"0000:00:03.0: bound to vfio-pci (IOMMU group 3, /dev/vfio/3); kept across "
           f"reboots ({rules})\n"), "")
    _run(capsys, "bind", "0000:01:00.0", "--persist", "--sysfs-root", root)
    _run(capsys, "bind", "0000:01:00.1", "--sysfs-root", root)  # not persisted
    lines = [ln for ln in rules.read_text().splitlines() if not ln.startswith("#")]
    assert lines == [
        ('ACTION=="add", SUBSYSTEM=="pci", KERNEL=="0000:00:03.0", '
        'ATTR{driver_override}="vfio-pci", RUN{builtin}+="kmod load vfio-pci"'),
        ('ACTION=="add", SUBSYSTEM=="pci", KERNEL=="0000:01:00.0", '
        'ATTR{driver_override}="vfio-pci", RUN{builtin}+="kmod load vfio-pci"')]
    assert oct(rules.stat().st_mode & 0o777) == "0o644"
    assert _run(capsys, "unbind", "0000:00:03.0", "--sysfs-root", root) == (
        0, f"0000:00:03.0: unbound (no driver); persistent bind removed from {rules}\n", "")
    assert "0000:00:03.0" not in rules.read_text()
    assert _run(capsys, "unbind", "0000:01:00.1", "--sysfs-root", root)[1] == (
        "0000:01:00.1: bound to igb\n")  # nothing persisted, nothing said
    _run(capsys, "unbind", "0000:01:00.0", "--sysfs-root", root)
    assert not rules.exists()  # the last one removes the file


def test_persistent_bind_refuses_a_malformed_driver(capsys: pytest.CaptureFixture[str],
                                                    fake: FakeSysfs, tmp_path: Path) -> None:
    from udriver.errors import DeviceError
    from udriver.pci._persist import persist_bind
    with pytest.raises(DeviceError, match="Invalid kernel driver name"):
        persist_bind("0000:00:03.0", 'vfio-pci", RUN+="/bin/sh')
    with pytest.raises(DeviceError):
        persist_bind("not-a-bdf", "vfio-pci")
    assert not (tmp_path / "rules.d").exists()

