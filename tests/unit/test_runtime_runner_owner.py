"""Issue 9, case 4: the runner loads `udriver.drivers` entry point NAME only from the
distribution whose manifest declares driver NAME.

Vendor B's wheel for driver `aaa` also declares `edu = beta_mod:Evil`, whose `ids` claim
vendor A's device. Both wheels are real wheels (zip + RECORD + dist-info with
`udriver.json`), installed with pypa/installer where `udriver install` puts them,
`<state>/drivers/<driver>/<version>/` with a `current` link; `aaa` sorts before `edu`, so
B's distribution is the first one the search path meets. Each module records, when it is
imported, that it was, in a directory the test reads: B's code must never even load.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as md
import json
import os
import sys
import zipfile
from pathlib import Path

import pytest
from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile

from udriver.cli import main
from udriver.runtime.runner import find_driver

EDU = "pci:v00001234d000011E8sv*sd*bc*sc*i*"
BDF = "0000:ff:1f.7"  # not on this host: the run stops at the device, after the import


def module(name: str, cls: str, marker_dir: Path, ids: str = EDU) -> bytes:
    return (f"import pathlib\n"
            f"pathlib.Path({str(marker_dir)!r}, {name!r}).write_text('imported')\n"
            f"from udriver.runtime import Driver\n"
            f"class {cls}(Driver):\n    ids = [{ids!r}]\n    abi = '1.0'\n").encode()


def build_wheel(out: Path, package: str, version: str, driver: str, entry_point: str,
                modules: dict[str, bytes], entry_points: dict[str, str]) -> Path:
    """A wheel whose manifest declares `driver` = `entry_point`, with `entry_points`."""
    dist = package.replace("-", "_")
    di = f"{dist}-{version}.dist-info"
    eps = "[udriver.drivers]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    files = {f"{m}.py": body for m, body in modules.items()}
    files |= {
        f"{di}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode(),
        f"{di}/WHEEL": b"Wheel-Version: 1.0\nGenerator: udriver-tests\nRoot-Is-Purelib: true\n"
                       b"Tag: py3-none-any\n",
        f"{di}/entry_points.txt": eps.encode(),
        f"{di}/udriver.json": json.dumps({
            "format": 1, "package": package, "version": version, "driver": driver,
            "entry_point": entry_point, "abi": "1.0", "modaliases": [EDU]},
            sort_keys=True, indent=2).encode() + b"\n",
    }
    record = []
    for n, d in files.items():
        h = base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode()
        record.append(f"{n},sha256={h},{len(d)}")
    files[f"{di}/RECORD"] = ("\n".join([*record, f"{di}/RECORD,,"]) + "\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in files.items():
            zf.writestr(n, d)
    return path


def install_as_udriver_does(wheel: Path, state: Path, driver: str, version: str) -> Path:
    d = state / "drivers" / driver
    target = d / version
    schemes = {"purelib": target, "platlib": target, "headers": target / "include",
               "scripts": target / "bin", "data": target / "data"}
    dest = SchemeDictionaryDestination({k: str(v) for k, v in schemes.items()},
                                       interpreter=sys.executable, script_kind="posix")
    with WheelFile.open(wheel) as src:
        src.validate_record(validate_contents=True)
        install(src, dest, {"INSTALLER": b"udriver\n"})
    (d / "current").symlink_to(version)
    return target


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    state, marks = tmp_path / "state", tmp_path / "imported"
    marks.mkdir()
    monkeypatch.setenv("UDRIVER_STATE_DIR", str(state))
    monkeypatch.setenv("UDRIVER_DEB_DRIVER_DIR", str(tmp_path / "no-debs"))
    # Only the two vendors' installs may offer these names (other tests put examples/edu,
    # a development tree with an `edu` entry point, on sys.path).
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not any(
        ep.group == "udriver.drivers" for d in md.distributions(path=[p])
        for ep in d.entry_points)])
    monkeypatch.setattr(os, "geteuid", lambda: 90000)  # the runner after the drop
    for m in ("alpha_mod", "beta_mod", "gamma_mod"):
        monkeypatch.delitem(sys.modules, m, raising=False)
    return state, marks


def vendor_a(tmp_path: Path, state: Path, marks: Path) -> None:
    whl = build_wheel(tmp_path / "dist-a", "udriver-edu", "1.0.0", "edu", "alpha_mod:Good",
                      {"alpha_mod": module("alpha_mod", "Good", marks)},
                      {"edu": "alpha_mod:Good"})
    install_as_udriver_does(whl, state, "edu", "1.0.0")


def vendor_b(tmp_path: Path, state: Path, marks: Path) -> None:
    """B's `aaa`, with a second entry point `edu` to its class claiming A's device."""
    body = module("beta_mod", "Aaa", marks, ids="pci:v00001B36d00000005sv*sd*bc*sc*i*")
    body += b"class Evil(Aaa):\n    ids = ['" + EDU.encode() + b"']\n"
    whl = build_wheel(tmp_path / "dist-b", "udriver-aaa", "1.0.0", "aaa", "beta_mod:Aaa",
                      {"beta_mod": body}, {"aaa": "beta_mod:Aaa", "edu": "beta_mod:Evil"})
    install_as_udriver_does(whl, state, "aaa", "1.0.0")


def test_a_foreign_entry_point_for_the_name_is_never_loaded(
        env: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state, marks = env
    vendor_b(tmp_path, state, marks)
    vendor_a(tmp_path, state, marks)
    found = find_driver("edu")
    assert (found.cls.__module__, found.cls.__name__) == ("alpha_mod", "Good")
    assert found.manifest is not None and found.manifest.package == "udriver-edu"
    assert found.location == str(state / "drivers/edu/current")
    # What `udriver run --driver edu` (udriver@<BDF> of A's device) does: A's class is
    # loaded, the run goes on to the device; B's module was never imported.
    rc = main(["run", "--device", BDF, "--driver", "edu"])
    _, err = capsys.readouterr()
    assert rc == 1 and err.splitlines()[-1] == \
        f"error: No PCI device at {BDF} (no /sys/bus/pci/devices/{BDF})"
    assert sorted(p.name for p in marks.iterdir()) == ["alpha_mod"]


def test_only_the_foreign_entry_point_is_refused(
        env: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A's driver is not installed: B's `edu` entry point is still no driver `edu`."""
    state, marks = env
    vendor_b(tmp_path, state, marks)
    rc = main(["run", "--device", BDF, "--driver", "edu"])
    out, err = capsys.readouterr()
    assert (rc, out) == (1, "")
    first = err.splitlines()[0]
    assert first.startswith("error: No driver named 'edu' in entry-point group "
                            "`udriver.drivers` (ignored: udriver-aaa 1.0.0 in ")
    assert first.endswith("its manifest declares driver 'aaa', not 'edu')")
    assert list(marks.iterdir()) == []


def test_b_still_gets_its_own_driver(env: tuple[Path, Path], tmp_path: Path) -> None:
    state, marks = env
    vendor_b(tmp_path, state, marks)
    vendor_a(tmp_path, state, marks)
    found = find_driver("aaa")
    assert (found.cls.__module__, found.cls.__name__) == ("beta_mod", "Aaa")
    assert sorted(p.name for p in marks.iterdir()) == ["beta_mod"]


def test_two_packages_owning_one_name_are_refused(
        env: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state, marks = env
    vendor_a(tmp_path, state, marks)
    whl = build_wheel(tmp_path / "dist-c", "udriver-edu-clone", "2.0.0", "edu",
                      "gamma_mod:Other", {"gamma_mod": module("gamma_mod", "Other", marks)},
                      {"edu": "gamma_mod:Other"})
    install_as_udriver_does(whl, state, "edu-clone", "2.0.0")
    rc = main(["run", "--device", BDF, "--driver", "edu"])
    out, err = capsys.readouterr()
    assert (rc, out) == (1, "")
    assert err.startswith("error: driver 'edu' is provided by 2 different packages: "
                          "udriver-edu 1.0.0 in ")
    assert "udriver-edu-clone 2.0.0 in " in err and err.splitlines()[-1] == \
        "hint: remove all but one of them (`udriver remove`, `apt-get remove`)"
    assert list(marks.iterdir()) == []


def test_entry_point_disagreeing_with_the_manifest_is_refused(
        env: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The manifest says edu = alpha_mod:Good; entry_points.txt points elsewhere."""
    state, marks = env
    body = module("alpha_mod", "Good", marks) + b"class Other(Good):\n    pass\n"
    whl = build_wheel(tmp_path / "dist-a", "udriver-edu", "1.0.0", "edu", "alpha_mod:Good",
                      {"alpha_mod": body}, {"edu": "alpha_mod:Other"})
    install_as_udriver_does(whl, state, "edu", "1.0.0")
    rc = main(["run", "--device", BDF, "--driver", "edu"])
    _, err = capsys.readouterr()
    assert rc == 1
    assert "entry point 'alpha_mod:Other' is not the manifest's 'alpha_mod:Good'" in err
    assert list(marks.iterdir()) == []
