"""The documented install routes, each in a clean environment, used by an ordinary user.

Issue 13: `pip install udriver` then `udriver new` failed with "driver template not found",
because the wheel did not ship `driver-template/`; and "nothing here needs root" was not
true. The project is exported with `git ls-files` (nothing from the working copy leaks in)
and installed by Debian's own /usr/bin/python3 into a venv outside /root (an unprivileged
user can run it; dependencies come from the package index) in the two ways docs/tutorial.md
names: from the built wheels, and `pip install -e` from the checkout. Then docs/tutorial.md
runs, its ```sh blocks extracted from the text (so this breaks when the tutorial drifts),
word for word, as `nobody` (runuser), with nothing set but PATH, HOME and LANG. The .deb
route is tests/integration/test_deb_route.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")
TUTORIAL = ROOT / "docs" / "tutorial.md"

pytestmark = pytest.mark.slow


def tutorial_script() -> str:
    """docs/tutorial.md's ```sh blocks, in order, as one `set -euo pipefail` bash script."""
    blocks = re.findall(r"^```sh\n(.*?)^```$", TUTORIAL.read_text(),
                        flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 8, "the tutorial lost its steps"
    return ("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
            + "\n".join(blocks))


def assert_tutorial_ran(r: subprocess.CompletedProcess[str], work: Path) -> None:
    """What every route's run of the tutorial must show (the tutorial's own claims)."""
    assert r.returncode == 0, f"stdout:\n{r.stdout[-4000:]}\nstderr:\n{r.stderr[-4000:]}"
    assert "Traceback" not in r.stderr
    out = r.stdout
    assert re.search(r"\b5 passed\b", out), out
    assert "published udriver_acme-0.1.0-py3-none-any.whl (sha256 " in out
    assert "published udriver-driver-acme_0.1.0-1_all.deb (sha256 " in out
    assert "acme 0.1.0  udriver-acme  [local]  pci:v00005A5Ad00000001sv*sd*bc*sc*i*" in out
    assert "installed acme 0.1.0 from local" in out
    current = work / "state" / "drivers" / "acme" / "current"
    assert current.is_symlink() and os.readlink(current) == "0.1.0"
    owners = {p.stat().st_uid for p in work.rglob("*") if not p.is_symlink()}
    assert owners == {65534}, "everything the tutorial wrote is the user's own"


def _need_runuser() -> None:
    if not SYSTEM_PYTHON.exists() or shutil.which("runuser") is None:
        pytest.skip("needs Debian's /usr/bin/python3 and runuser (.ci/setup installs python3)")
    for tool in ("curl", "lintian", "gpg"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (.ci/setup installs it)")


@pytest.fixture(scope="module")
def world_readable_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="udriver-routes-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def checkout(world_readable_dir: Path) -> Path:
    """The checkout as `git clone` gives it: the tracked files only."""
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
    return src


@pytest.fixture(scope="module")
def wheels(checkout: Path, world_readable_dir: Path) -> dict[str, Path]:
    out = world_readable_dir / "dist"
    for project in (checkout, checkout / "repo-server"):
        subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                        "--skip-dependency-check", "-o",
                        str(out), str(project)], check=True, capture_output=True, timeout=600)
    (whl,) = out.glob("udriver-*.whl")
    (repo,) = out.glob("udriver_repo_server-*.whl")
    return {"udriver": whl, "udriver-repo-server": repo}


@pytest.fixture(scope="module")
def wheel(wheels: dict[str, Path]) -> Path:
    return wheels["udriver"]


def test_the_wheel_ships_the_driver_template(wheel: Path) -> None:
    import zipfile
    names = zipfile.ZipFile(wheel).namelist()
    assert "udriver/data/driver-template/common/pyproject.toml" in names
    assert "udriver/data/driver-template/c/native/build_ffi.py" in names
    # man udriver and bash completion for pip users (issue 13), in the wheel's data.
    assert "udriver-0.1.0.data/data/share/man/man1/udriver.1" in names
    assert "udriver-0.1.0.data/data/share/bash-completion/completions/udriver" in names
    assert not any("__pycache__" in n for n in names)


def _venv(where: Path, *pip_args: str, cwd: Path | None = None) -> Path:
    _need_runuser()
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(where)], check=True, timeout=120)
    r = subprocess.run([str(where / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                        *pip_args], check=False, capture_output=True, text=True, timeout=900,
                       cwd=cwd)
    assert r.returncode == 0, r.stderr[-3000:]
    return where


@pytest.fixture(scope="module")
def venv(wheels: dict[str, Path], world_readable_dir: Path) -> Path:
    """The pip route: the built wheels, with the extras the tutorial names."""
    return _venv(world_readable_dir / "venv", f"{wheels['udriver']}[build,test]",
                 str(wheels["udriver-repo-server"]))


@pytest.fixture(scope="module")
def checkout_venv(checkout: Path, world_readable_dir: Path) -> Path:
    """The checkout route, with the tutorial's own words: `pip install -e '.[build,test]'
    -e ./repo-server`, run in the checkout."""
    m = re.search(r"`pip install (-e '\.\[build,test\]' -e \./repo-server)`",
                  TUTORIAL.read_text().replace("\n", " "))
    assert m, "the tutorial no longer names the checkout route's pip command"
    return _venv(world_readable_dir / "checkout-venv", *m.group(1).replace("'", "").split(),
                 cwd=checkout)


def _tutorial_as_nobody(venv: Path, work: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8"}
    return subprocess.run([str(shutil.which("runuser")), "-u", "nobody", "--", "bash", "-c",
                           tutorial_script()], cwd=work, env=env, capture_output=True,
                          text=True, timeout=1200, check=False)


def test_pip_route_runs_the_tutorial_as_an_ordinary_user(venv: Path,
                                                         world_readable_dir: Path) -> None:
    work = _nobody_dir(world_readable_dir, "tutorial-pip")
    assert_tutorial_ran(_tutorial_as_nobody(venv, work), work)


def test_checkout_route_runs_the_tutorial_as_an_ordinary_user(checkout_venv: Path,
                                                              world_readable_dir: Path) -> None:
    work = _nobody_dir(world_readable_dir, "tutorial-checkout")
    assert_tutorial_ran(_tutorial_as_nobody(checkout_venv, work), work)


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
    from udriver_vm.tufrepo import TufRepo

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
