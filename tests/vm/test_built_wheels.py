"""Wheels built by `udriver build` on the host run on the guest's kernel (issue 3, acceptance 6).

examples/edu (pure Python, py3-none-any) and examples/edu-c (its device work in C through
the udriver ABI table, cp311-abi3-manylinux) are built with the toolchain, installed from
their wheels the way `udriver install` lays drivers out (`<state>/drivers/<driver>/current`,
found through `udriver.paths.driver_search_path()`), and run with `udriver run` against the
guest's edu device. Both must pass every edu check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from udriver_vm.harness import Guest
from udriver_vm.state import guest_readable_state

pytestmark = pytest.mark.vm

ROOT = Path(__file__).resolve().parents[2]
CYCLES = 200
DRIVERS = {"edu": ROOT / "examples" / "edu", "edu_c": ROOT / "examples" / "edu-c"}


@pytest.fixture(scope="session")
def built_state(tmp_path_factory: pytest.TempPathFactory,
                session_wheels: Any) -> tuple[Path, dict[str, str]]:
    """Install the session's two edu wheels (built once, sha256 printed) into one state directory."""
    state = tmp_path_factory.mktemp("built-state")
    names = {}
    for driver in ("edu", "edu_c"):  # the edu drivers; nvme and e1000e have their own tests
        wheel = session_wheels.wheels[driver]
        names[driver] = wheel.name
        target = state / "drivers" / driver / "current"
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "--no-index", "--disable-pip-version-check", "--target",
                        str(target), str(wheel)], check=True, capture_output=True)
    return state, names


def _run(g: Guest, state: Path, driver: str) -> dict[str, Any]:
    dest = guest_readable_state(g, state, f"built-state-{driver}")
    bdf = g.edu_bdfs()[0]
    # driverctl's steps, in plain shell.
    g.run(f"modprobe vfio-pci && echo vfio-pci > /sys/bus/pci/devices/{bdf}/driver_override && "
          f"echo {bdf} > /sys/bus/pci/drivers_probe && "
          f"[ $(basename $(readlink /sys/bus/pci/devices/{bdf}/driver)) = vfio-pci ]",
          timeout=60, check=True)
    r = g.run(f"UDRIVER_STATE_DIR={dest} udriver run --device {bdf} --driver {driver} --once "
              f"--option cycles={CYCLES}", timeout=600)
    assert r.rc == 0, f"rc {r.rc}\n{r.stdout}\n{r.stderr}"
    out: dict[str, Any] = {"checks": {}, "events": []}
    for line in r.stdout.splitlines():
        obj = json.loads(line)
        if "check" in obj:
            out["checks"][obj["check"]] = obj
        else:
            out["events"].append(obj)
    return out


def _assert_edu_checks(res: dict[str, Any]) -> None:
    checks = res["checks"]
    assert set(checks) == {"id", "liveness", "factorial_msi", "factorial_intx", "dma", "cycles"}
    assert {name: c["ok"] for name, c in checks.items()} == {name: True for name in checks}
    assert checks["id"]["value"] == "0x010000ed"
    assert (checks["factorial_msi"]["value"], checks["factorial_intx"]["value"]) == (3628800,) * 2
    assert (checks["dma"]["bytes"], checks["dma"]["mismatched_bytes"]) == (4095, 0)
    assert (checks["cycles"]["cycles"], checks["cycles"]["lost"],
            checks["cycles"]["duplicated"]) == (CYCLES, 0, 0)
    assert res["events"][-2:] == [{"event": "done", "ok": True}, {"event": "removed"}]


def test_pure_python_wheel_runs_in_guest(guest: Guest,
                                         built_state: tuple[Path, dict[str, str]]) -> None:
    state, names = built_state
    assert names["edu"].endswith("-py3-none-any.whl")
    res = _run(guest, state, "edu")
    _assert_edu_checks(res)


def test_c_wheel_runs_in_guest(guest: Guest, built_state: tuple[Path, dict[str, str]]) -> None:
    state, names = built_state
    assert "-cp311-abi3-" in names["edu_c"] and "manylinux_2_" in names["edu_c"]
    res = _run(guest, state, "edu_c")
    assert res["events"][0]["event"] == "probed" and res["events"][0]["impl"] == "c"
    _assert_edu_checks(res)
