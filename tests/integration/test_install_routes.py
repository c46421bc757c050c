"""The pip route: udriver's own wheel, installed into a clean venv, works as an ordinary user.

Issue 13: `pip install udriver` then `udriver new` failed with "driver template not found",
because the wheel did not ship `driver-template/`. The wheel is built from a `git ls-files`
export of the checkout (nothing from the working copy leaks in), installed into a venv made
by Debian's own /usr/bin/python3 (outside /root, so an unprivileged user can run it; its
dependencies come from the package index), and `udriver new` runs as `nobody`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world_readable_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="udriver-routes-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def wheel(world_readable_dir: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("needs git")
    src = world_readable_dir / "src"
    src.mkdir()
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.split(b"\0")
    for name in filter(None, files):
        rel = Path(os.fsdecode(name))
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    out = world_readable_dir / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(out),
                    str(src)], check=True, capture_output=True, timeout=600)
    (whl,) = out.glob("udriver-*.whl")
    return whl


def test_the_wheel_ships_the_driver_template(wheel: Path) -> None:
    import zipfile
    names = zipfile.ZipFile(wheel).namelist()
    assert "udriver/data/driver-template/common/pyproject.toml" in names
    assert "udriver/data/driver-template/c/native/build_ffi.py" in names
    assert not any("__pycache__" in n for n in names)


@pytest.fixture(scope="module")
def venv(wheel: Path, world_readable_dir: Path) -> Path:
    if not SYSTEM_PYTHON.exists() or shutil.which("runuser") is None:
        pytest.skip("needs Debian's /usr/bin/python3 and runuser (.ci/setup installs python3)")
    venv = world_readable_dir / "venv"
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(venv)], check=True, timeout=120)
    r = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                        str(wheel)], check=False, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return venv


def _as_nobody(venv: Path, cwd: Path, *argv: str,
               **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(cwd), "LANG": "C.UTF-8"}
    return subprocess.run([str(shutil.which("runuser")), "-u", "nobody", "--",
                           str(venv / "bin" / "udriver"), *argv], cwd=cwd, env={**base, **env},
                          capture_output=True, text=True, timeout=120, check=False)


def _nobody_dir(parent: Path, name: str) -> Path:
    d = parent / name
    d.mkdir()
    shutil.chown(d, "nobody", "nogroup")
    return d


def test_pip_installed_udriver_new_as_an_ordinary_user(venv: Path,
                                                       world_readable_dir: Path) -> None:
    work = _nobody_dir(world_readable_dir, "work")
    r = _as_nobody(venv, work, "new", "acme", "--pci", "1de5:f00d")
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert "Traceback" not in r.stderr
    pyproject = (work / "acme" / "pyproject.toml").read_text()
    assert "pci:v00001DE5d0000F00Dsv*sd*bc*sc*i*" in pyproject
    assert (work / "acme").stat().st_uid == 65534


def test_an_ordinary_user_writing_system_state_gets_one_line(venv: Path,
                                                             world_readable_dir: Path) -> None:
    """`udriver repo add` as non-root wrote a traceback (PermissionError on /etc/udriver)."""
    sys.path.insert(0, str(ROOT / "tests" / "client"))
    from tufrepo import TufRepo

    work = _nobody_dir(world_readable_dir, "work-root")
    repo = TufRepo(world_readable_dir / "tuf")
    repo.publish()
    root = world_readable_dir / "root.json"
    shutil.copy(repo.path / "root.json", root)
    root.chmod(0o644)
    system = world_readable_dir / "system-etc"  # stands in for /etc/udriver: root's, 0755
    system.mkdir(mode=0o755)
    r = _as_nobody(venv, work, "repo", "add", "main", "http://127.0.0.1:9", "--root", str(root),
                   UDRIVER_CONFIG_DIR=str(system), UDRIVER_STATE_DIR=str(system / "state"))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == f"error: permission denied: '{system / 'state'}': this needs root"
    assert lines[1].startswith("hint: run it as root")
    assert len(lines) == 2
    assert not any(system.iterdir())  # nothing half-written


def test_a_missing_template_names_the_variable_that_fixes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from udriver.errors import ConfigError
    from udriver.toolchain import _template

    # As if installed somewhere that has no template beside it (not this checkout).
    monkeypatch.setattr(_template, "__file__", str(tmp_path / "a/b/c/udriver/toolchain/x.py"))
    monkeypatch.setenv("UDRIVER_TEMPLATE_DIR", str(tmp_path / "nowhere"))
    if Path("/usr/share/udriver/driver-template/common/pyproject.toml").is_file():
        pytest.skip("the udriver .deb is installed on this machine, so a template is found")
    with pytest.raises(ConfigError, match="driver template not found") as e:
        _template.template_dir()
    assert str(tmp_path / "nowhere") in str(e.value)
    assert e.value.hint is not None and "UDRIVER_TEMPLATE_DIR" in e.value.hint


@pytest.mark.parametrize("example", ["edu", "edu-c"])
def test_the_examples_build_as_shipped(example: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`udriver build examples/edu` failed: "the .deb needs a maintainer" (issue 13)."""
    for var in ("DEBEMAIL", "DEBFULLNAME", "EMAIL"):
        monkeypatch.delenv(var, raising=False)
    src = tmp_path / example
    shutil.copytree(ROOT / "examples" / example, src,
                    ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"))
    r = subprocess.run([sys.executable, "-c", "from udriver.cli import run; run()", "build",
                        str(src)], capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    built = sorted(p.name for p in (src / "dist").iterdir())
    assert any(n.endswith(".whl") for n in built) and any(n.endswith(".deb") for n in built)


def test_debian_12_python_builds_a_new_driver(tmp_path: Path) -> None:
    """The .deb route's toolchain: Debian 12's own python3, python3-build and setuptools 66
    (`udriver build` said "build dependencies missing: setuptools>=77")."""
    if not SYSTEM_PYTHON.exists():
        pytest.skip("needs Debian's /usr/bin/python3 (.ci/setup installs it)")
    probe = subprocess.run([str(SYSTEM_PYTHON), "-c", ("import build, setuptools; "
                            "print(setuptools.__version__)")], capture_output=True, text=True,
                           check=False)
    assert probe.returncode == 0, "python3-build and python3-setuptools (.ci/setup installs them)"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "PYTHONPATH": str(ROOT / "toolkit"), "DEBFULLNAME": "A", "DEBEMAIL": "a@example.org"}
    cli = [str(SYSTEM_PYTHON), "-c", "from udriver.cli import run; run()"]
    r = subprocess.run([*cli, "new", "acme", "--pci", "5a5a:0001"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    pyproject = (tmp_path / "acme" / "pyproject.toml").read_text()
    if int(probe.stdout.split(".")[0]) < 77:  # Debian 12: 66
        assert 'requires = ["setuptools>=61"]' in pyproject
        assert 'license = { text = "Apache-2.0" }' in pyproject
    r = subprocess.run([*cli, "build"], cwd=tmp_path / "acme", env=env, capture_output=True,
                       text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    built = sorted(p.name for p in (tmp_path / "acme" / "dist").iterdir())
    assert built == ["udriver-driver-acme_0.1.0-1_all.deb", "udriver_acme-0.1.0-py3-none-any.whl"]
    from udriver.gate import admit
    for name in built:  # what the Debian toolchain built is publishable
        admit(tmp_path / "acme" / "dist" / name)


def test_without_pypa_build_the_error_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Without python3-build, `udriver build` was a traceback (issue 13)."""
    from udriver.cli import main
    src = tmp_path / "edu"
    shutil.copytree(ROOT / "examples" / "edu", src,
                    ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"))
    monkeypatch.setitem(sys.modules, "build", None)  # `import build` raises ImportError
    assert main(["build", str(src)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.startswith("error: pypa/build is not installed, and `udriver build` needs it")
    assert err.splitlines()[-1] == ("hint: pip install 'udriver[build]', or with udriver's "
                                    ".deb: apt install python3-build python3-setuptools")
    assert not (src / "dist").exists()
