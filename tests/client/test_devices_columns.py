"""`udriver devices` shows, per device, the installed driver and the one the repositories offer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import BDF, Published
from udriver.cli import main
from udriver.client import DriverStore


@pytest.fixture
def machine(env: Path) -> Path:
    """A machine with one edu device (1234:11e8) at BDF."""
    d = env / "sysroot" / "sys" / "bus" / "pci" / "devices" / BDF
    d.mkdir(parents=True)
    for k, v in {"vendor": "0x1234", "device": "0x11e8", "subsystem_vendor": "0x1af4",
                 "subsystem_device": "0x1100", "class": "0x00ff00", "revision": "0x10",
                 "modalias": "pci:v00001234d000011E8sv00001AF4sd00001100bc00scFFi00",
                 "driver_override": "(null)"}.items():
        (d / k).write_text(v + "\n")
    return env / "sysroot"


def _devices(capsys: pytest.CaptureFixture[str], root: Path, *extra: str) -> str:
    assert main(["devices", "--sysfs-root", str(root), *extra]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def test_available_then_installed(capsys: pytest.CaptureFixture[str], configured: Published,
                                  machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UDRIVER_PCI_IDS", "")
    # Before any refresh there is no cached metadata: nothing is known to be available.
    assert _devices(capsys, machine).splitlines()[1].split() == [
        BDF, "1234:11e8", "00ff00", "-", "-", "-", "-", "-"]
    # --refresh fetches the verified index; the cache then answers without network.
    assert _devices(capsys, machine, "--refresh").splitlines()[1].split() == [
        BDF, "1234:11e8", "00ff00", "-", "-", "-", "edu", "0.1.0", "-"]
    configured.server.close()
    assert _devices(capsys, machine).splitlines()[1].split() == [
        BDF, "1234:11e8", "00ff00", "-", "-", "-", "edu", "0.1.0", "-"]
    # After install, the INSTALLED column names the running version.
    [wheel] = sorted((configured.wheels / "0.1.0").glob("*.whl"))
    DriverStore().install_wheel(wheel)
    row = json.loads(_devices(capsys, machine, "--json"))[0]
    assert row["installed"] == {"driver": "edu", "version": "0.1.0"}
    assert row["available"] == {"driver": "edu", "version": "0.1.0", "repo": "main"}
