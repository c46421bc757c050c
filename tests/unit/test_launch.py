"""udriver.launch: a launcher's directories reach udriver's children, and only them
(issue 14 item 4: the Debian vendoring lives in the Debian launcher, not in `import udriver`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import udriver
from udriver import launch

# Run as a child's boot code would be: prints sys.path[0] and this process's own
# self_command() (what its children would run).
_PROBE = ("import json, sys; from udriver.launch import self_command; "
          "print(json.dumps([sys.path[0], self_command()]))")


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launch, "_path", [])
    monkeypatch.setattr(sys, "path", list(sys.path))


def _child(cmd: list[str]) -> tuple[str, list[str]]:
    """Run `cmd` with its udriver CLI call replaced by the probe."""
    boot = cmd[2].replace("from udriver.cli import run; run()", _PROBE)
    r = subprocess.run([cmd[0], "-c", boot], capture_output=True, text=True, check=True)
    first, command = json.loads(r.stdout)
    return first, command


def test_import_udriver_leaves_sys_path_alone() -> None:
    code = "import sys; before = list(sys.path); import udriver; print(sys.path == before)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout == "True\n"
    assert "vendor" not in Path(udriver.__file__).read_text()


@pytest.mark.usefixtures("clean")
def test_without_launcher_directories_the_plain_command() -> None:
    assert launch.self_command() == [sys.executable, "-c", "from udriver.cli import run; run()"]


@pytest.mark.usefixtures("clean")
def test_use_path_puts_directories_first_in_order(tmp_path: Path) -> None:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    launch.use_path(a, b)
    assert sys.path[:2] == [a, b]
    launch.use_path(b)  # again: moved to the front, not duplicated
    assert sys.path[:2] == [b, a] and sys.path.count(b) == 1


@pytest.mark.usefixtures("clean")
def test_children_and_grandchildren_see_the_launcher_directory(tmp_path: Path) -> None:
    vendor = tmp_path / "vendor"
    (vendor / "vendored_probe").mkdir(parents=True)
    (vendor / "vendored_probe/__init__.py").write_text("")
    launch.use_path(str(vendor))
    first, grandchild = _child(launch.self_command())
    assert first == str(vendor)
    assert grandchild[1:] == launch.self_command()[1:]  # passed on again
    first, _ = _child(grandchild)
    assert first == str(vendor)


@pytest.mark.usefixtures("clean")
def test_supervisor_and_autobind_children_use_the_command(tmp_path: Path) -> None:
    from udriver.supervise import _autobind, _privsep

    launch.use_path(str(tmp_path))
    runner = _privsep.runner_command("0000:00:03.0", "edu", _privsep.VfioFds(5, 6, 7))
    assert runner[:3] == launch.self_command() and runner[3] == "run"
    assert _autobind._self_command() == launch.self_command()
