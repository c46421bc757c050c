"""`udriver run` refusals that happen before any device is touched (host, no VFIO).

Fake driver distributions are laid out the way `udriver install` lays them out,
`<UDRIVER_STATE_DIR>/drivers/<name>/current/`, so discovery goes through
`udriver.paths.driver_search_path()`. The device address does not exist on this host:
when the error is the ABI one, the refusal provably came before the device was opened.

The runner is what `udriver run` becomes after dropping root (started as root it opens the
device and re-executes itself as the device's uid: tests/unit/test_supervise_run_root.py);
these tests run it as that unprivileged process by reporting a non-zero euid.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from udriver.cli import main
from udriver.manifest import DriverManifest
from udriver.runtime.runner import driver_abi, find_driver

BDF = "0000:ff:1f.7"


def add_driver(state: Path, name: str, abi: str = "1.0", *, body: str | None = None,
               manifest_abi: str | None = None) -> None:
    cur = state / "drivers" / name / "current"
    mod = f"fake_{name}_drv"
    cur.mkdir(parents=True)
    (cur / f"{mod}.py").write_text(body if body is not None else (
        "from udriver.runtime import Driver\n"
        f"class D(Driver):\n    ids = ['pci:v00001234d000011E8sv*sd*bc*sc*i*']\n"
        f"    abi = {abi!r}\n"))
    info = cur / f"fake_{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fake-{name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[udriver.drivers]\n{name} = {mod}:D\n")
    if manifest_abi is not None:
        m = DriverManifest(f"fake-{name}", "1.0", name, f"{mod}:D",
                           tuple(int(x) for x in manifest_abi.split(".")),  # type: ignore[arg-type]
                           ("pci:v00001234d000011E8sv*sd*bc*sc*i*",))
        (info / "udriver.json").write_bytes(m.to_json())


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("UDRIVER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("UDRIVER_DEB_DRIVER_DIR", str(tmp_path / "no-debs"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(os, "geteuid", lambda: 90000)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["run", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_newer_minor_refused_naming_both_versions(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_driver(state, "newminor", "1.2")
    expected = ("error: refusing driver 'newminor': driver needs udriver ABI 1.2, but this "
                "runtime provides ABI 1.1 (the driver needs a newer minor version)\n"
                "hint: install a udriver runtime that provides ABI 1.2 or later 1.x\n")
    assert run(capsys, "--device", BDF, "--driver", "newminor") == (1, "", expected)


def test_abi_1_1_driver_refused_by_a_1_0_runtime(state: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10, acceptance 5: a bridge driver (ABI 1.1, e.g. nvme) on a runtime that
    provides 1.0. Only the provided version is patched; the refusal is the runner's own
    check before the device is opened, with the message from docs/abi.md."""
    from udriver.runtime import runner as _runner
    monkeypatch.setattr(_runner, "ABI_VERSION", (1, 0))
    add_driver(state, "bridged", "1.1")
    expected = ("error: refusing driver 'bridged': driver needs udriver ABI 1.1, but this "
                "runtime provides ABI 1.0 (the driver needs a newer minor version)\n"
                "hint: install a udriver runtime that provides ABI 1.1 or later 1.x\n")
    assert run(capsys, "--device", BDF, "--driver", "bridged") == (1, "", expected)


def test_abi_1_0_driver_runs_on_the_1_1_runtime(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 10, acceptance 5: edu-style drivers (1.0) pass the check on this runtime."""
    from udriver.abi import ABI_VERSION
    assert ABI_VERSION == (1, 1)
    add_driver(state, "old10", "1.0")
    rc, _, err = run(capsys, "--device", BDF, "--driver", "old10")
    assert rc == 1 and "refusing" not in err and f"No PCI device at {BDF}" in err


def test_other_major_refused(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_driver(state, "major2", "2.0")
    rc, out, err = run(capsys, "--device", BDF, "--driver", "major2")
    assert (rc, out) == (1, "")
    assert err.startswith("error: refusing driver 'major2': driver needs udriver ABI 2.0, but "
                          "this runtime provides ABI 1.1 (the major versions differ)\n")


def test_older_major_refused(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_driver(state, "major0", "0.9")
    rc, _, err = run(capsys, "--device", BDF, "--driver", "major0")
    assert rc == 1 and "needs udriver ABI 0.9" in err and "major versions differ" in err


def test_manifest_abi_wins_over_class_attribute(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_driver(state, "mani", "1.0", manifest_abi="1.4")
    assert driver_abi(find_driver("mani")) == (1, 4)
    rc, _, err = run(capsys, "--device", BDF, "--driver", "mani")
    assert rc == 1 and "driver needs udriver ABI 1.4" in err


def test_compatible_driver_gets_to_the_device(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_driver(state, "ok10", "1.0")
    rc, out, err = run(capsys, "--device", BDF, "--driver", "ok10")
    assert (rc, out) == (1, "")
    assert err.splitlines()[-1] == f"error: No PCI device at {BDF} (no /sys/bus/pci/devices/{BDF})"


def test_unknown_driver(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_driver(state, "present", "1.0")
    rc, out, err = run(capsys, "--device", BDF, "--driver", "absent")
    assert (rc, out) == (1, "")
    assert err.startswith("error: No driver named 'absent' in entry-point group `udriver.drivers`\n"
                          "hint: installed drivers: ")


def test_unknown_driver_hint_names_installed_and_deb_drivers(
        state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The hint said "installed drivers: none" while `udriver status` listed one: it looked
    on sys.path only, not where `udriver install` and the .deb put drivers (issue 13)."""
    import importlib.metadata as md
    add_driver(state, "present", "1.0")  # as `udriver install` lays it out
    debs = state / "debs"
    add_driver(debs / "x", "fromdeb", "1.0")  # as a .deb lays it out: <dir>/<driver>/...
    (debs / "x" / "drivers" / "fromdeb" / "current").rename(debs / "fromdeb")
    monkeypatch.setenv("UDRIVER_DEB_DRIVER_DIR", str(debs))
    on_path = {ep.name for d in md.distributions() for ep in d.entry_points
               if ep.group == "udriver.drivers"}
    rc, out, err = run(capsys, "--device", BDF, "--driver", "nosuch")
    assert (rc, out) == (1, "")
    names = ", ".join(sorted({"present", "fromdeb", *on_path}))
    assert err.splitlines() == [
        "error: No driver named 'nosuch' in entry-point group `udriver.drivers`",
        f"hint: installed drivers: {names} (`udriver status` lists them)"]


def test_entry_point_not_a_driver(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_driver(state, "notdrv", body="class D:\n    pass\n")
    rc, _, err = run(capsys, "--device", BDF, "--driver", "notdrv")
    assert rc == 1
    assert err == ("error: entry point 'notdrv' = 'fake_notdrv_drv:D' is not a udriver Driver "
                   "subclass\n")


def test_driver_import_failure(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_driver(state, "broken", body="raise RuntimeError('boom')\n")
    rc, _, err = run(capsys, "--device", BDF, "--driver", "broken")
    assert rc == 1
    assert err == ("error: cannot import driver 'broken' (fake_broken_drv:D): "
                   "RuntimeError: boom\n")


def test_bad_abi_attribute(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_driver(state, "badabi", "one")
    rc, _, err = run(capsys, "--device", BDF, "--driver", "badabi")
    assert rc == 1 and "Invalid ABI version" in err and "'one'" in err


def test_option_syntax(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--device", BDF, "--driver", "x", "--option", "novalue") == (
        1, "", "error: `--option` must be KEY=VALUE, got 'novalue'\n")


def test_fds_come_together(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--device", BDF, "--driver", "x", "--group-fd", "5") == (
        1, "", "error: `--container-fd` and `--group-fd` must be given together\n")


def test_device_and_driver_required(state: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UDRIVER_DEVICE", raising=False)
    assert run(capsys, "--driver", "x") == (
        1, "", "error: `--device` is required (or set UDRIVER_DEVICE)\n")
