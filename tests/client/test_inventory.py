"""One inventory of installed drivers (store and .debs): every consumer gives one answer.

`udriver install --auto`, `udriver devices`, `udriver autobind` and `udriver supervise`
(without `--driver`) all ask "which installed driver claims this device"
(`udriver.client._inventory`); here a .deb-installed driver and a store driver are both
present, and they must all agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import EDU_DEV, Published
from udriver.cli import main
from udriver.client import find_installed, installed_manifests
from udriver.errors import DeviceError
from udriver.manifest import DriverManifest
from udriver.modalias import parse_modalias
from udriver.pci import get_device
from udriver.pci.testing import FakeSysfs
from udriver.supervise import _autobind, _run
from udriver_vm.fakewheels import make_wheel

DEB_EDU, STORE_NIC, NOBODY = "0000:00:04.0", "0000:00:05.0", "0000:00:06.0"
QEDU = DriverManifest.from_json(json.dumps({
    "format": 1, "package": "udriver-qedu", "version": "2.0.0", "driver": "qedu",
    "entry_point": "udriver_qedu:Driver", "abi": "1.0",
    "modaliases": ["pci:v00001234d000011E8sv*sd*bc*sc*i*"]}).encode(), "qedu.json")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def machine(configured: Published, env: Path, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> Path:
    """Three devices: an edu claimed by a .deb driver (`qedu`, while the repository offers
    `edu` for it), a device claimed by a store driver (`nic`), and one nobody claims."""
    root = env / "sysroot"
    fs = FakeSysfs(root)
    fs.add_device(DEB_EDU, 0x1234, 0x11E8)
    fs.add_device(STORE_NIC, 0x1B36, 0x0005)
    fs.add_device(NOBODY, 0x1B36, 0x0010)
    debs = env / "usr-share-udriver-drivers"
    debs.mkdir()
    (debs / "qedu.json").write_bytes(QEDU.to_json())
    monkeypatch.setenv("UDRIVER_DEB_MANIFEST_DIR", str(debs))
    wheel = make_wheel(env / "local", package="udriver-nic", driver="nic",
                       modaliases=["pci:v00001B36d00000005sv*sd*bc*sc*i*"])
    assert run(capsys, "install", "--wheel", str(wheel))[0] == 0
    return root


def test_the_inventory_holds_store_and_deb_drivers(machine: Path) -> None:
    assert [(m.driver, m.version) for m in installed_manifests()] == [
        ("nic", "0.1.0"), ("qedu", "2.0.0")]


def test_devices_install_autobind_and_supervise_agree(capsys: pytest.CaptureFixture[str],
                                                      machine: Path) -> None:
    s = ["--sysfs-root", str(machine)]
    want = {DEB_EDU: "qedu", STORE_NIC: "nic", NOBODY: None}

    # `udriver devices`: the installed column.
    code, out, err = run(capsys, "devices", "--json", *s)
    assert (code, err) == (0, "")
    shown = {d["bdf"]: d["installed"] for d in json.loads(out)}
    assert shown == {DEB_EDU: {"driver": "qedu", "version": "2.0.0"},
                     STORE_NIC: {"driver": "nic", "version": "0.1.0"}, NOBODY: None}

    # `udriver install --auto`: the repository's `edu` would fit DEB_EDU, but the .deb
    # driver claims it already, so nothing is installed.
    assert run(capsys, "install", "--auto", *s) == (0, "nothing to install\n", "")

    # `udriver autobind` (its worker's decision) and `udriver supervise` without --driver.
    for bdf, driver in want.items():
        alias = get_device(bdf, machine).modalias
        m = _autobind.find_installed(alias, None, _autobind.installed_manifests())
        assert (m.driver if m else None) == driver, bdf
        if driver is None:
            with pytest.raises(DeviceError, match="no installed driver claims"):
                _run.resolve_driver(bdf, None, machine)
        else:
            assert _run.resolve_driver(bdf, None, machine) == driver


def test_a_store_driver_wins_over_a_deb_of_the_same_name(env: Path, machine: Path) -> None:
    debs = Path(env / "usr-share-udriver-drivers")
    other = json.loads(QEDU.to_json())
    other.update(driver="nic", package="udriver-nic", version="9.0.0")
    (debs / "nic.json").write_text(json.dumps(other))
    assert [(m.driver, m.version) for m in installed_manifests()] == [
        ("nic", "0.1.0"), ("qedu", "2.0.0")]


def test_an_unreadable_deb_manifest_is_skipped(env: Path, machine: Path) -> None:
    (env / "usr-share-udriver-drivers" / "broken.json").write_text("{")
    assert [m.driver for m in installed_manifests()] == ["nic", "qedu"]


def test_most_specific_pattern_wins_first_name_on_a_tie() -> None:
    wide = json.loads(QEDU.to_json())
    wide.update(driver="any1234", modaliases=["pci:v00001234d*sv*sd*bc*sc*i*"])
    same = json.loads(QEDU.to_json())
    same.update(driver="aaa")
    ms = [DriverManifest.from_json(json.dumps(d).encode(), "x") for d in (wide, same)]
    alias = parse_modalias(EDU_DEV)
    assert find_installed(alias, None, [ms[0], QEDU]) is QEDU
    assert find_installed(alias, None, [ms[0]]) is ms[0]
    assert find_installed(alias, None, [ms[1], QEDU]) is ms[1]
