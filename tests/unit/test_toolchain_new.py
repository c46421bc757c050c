"""udriver.toolchain._template (`udriver new`): rendering and refusals."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from udriver.cli import main as cli
from udriver.errors import ConfigError, ManifestError
from udriver.toolchain import load_project, new_driver

AUTHOR = ("A", "a@example.org")


def test_pure(tmp_path: Path) -> None:
    made = new_driver("acme", "1af4:1041", directory=tmp_path, author=AUTHOR)
    assert made.files == ("README.md", "acme/__init__.py", "acme/driver.py", "pyproject.toml",
                          "tests/test_driver.py")
    p = load_project(made.path)
    assert p.modaliases == ("pci:v00001AF4d00001041sv*sd*bc*sc*i*",)
    assert p.entry_point == "acme.driver:AcmeDriver" and not p.has_c
    assert "ids = [PciId(0x1AF4, 0x1041)]" in (made.path / "acme/driver.py").read_text()
    for f in made.files:
        assert "{{" not in (made.path / f).read_text(), f


def test_with_c_and_class(tmp_path: Path) -> None:
    made = new_driver("my_nic", "8086:10d3", class_code="020000", with_c=True,
                      directory=tmp_path, author=AUTHOR)
    assert {"setup.py", "native/build_ffi.py", "native/my_nic.c", "native/my_nic.h",
            "native/my_nic_cdef.h", "my_nic/native.py", "tests/test_native.py"} <= set(made.files)
    p = load_project(made.path)
    assert p.has_c and p.driver == "my_nic" and p.name == "udriver-my-nic"
    assert p.modaliases == ("pci:v00008086d000010D3sv*sd*bc02sc00i00*",)
    data = tomllib.loads((made.path / "pyproject.toml").read_text())
    assert data["build-system"]["requires"] == ["setuptools>=77", "cffi>=1.16"]
    assert "MY_NIC_REG_ID" in (made.path / "native/my_nic.h").read_text()
    assert "class_code=0x020000" in (made.path / "my_nic/driver.py").read_text()


def test_cli_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["new", "acme", "--pci", "1AF4:1041", "--dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == (
        f"created {tmp_path / 'acme'} (5 files) for pci:v00001AF4d00001041sv*sd*bc*sc*i*\n"
        f"next: cd {tmp_path / 'acme'} && udriver build\n")


@pytest.mark.parametrize(("name", "pci", "cls", "match"), [
    ("Acme", "1af4:1041", None, "driver name must match"),
    ("1acme", "1af4:1041", None, "driver name must match"),
    ("acme", "1af4-1041", None, "--pci must be VVVV:DDDD"),
    ("acme", "1af4:10411", None, "--pci must be VVVV:DDDD"),
    ("acme", "1af4:1041", "0200", "--class must be CCSSPP"),
])
def test_refuses_bad_arguments(tmp_path: Path, name: str, pci: str, cls: str | None,
                               match: str) -> None:
    with pytest.raises(ManifestError, match=match):
        new_driver(name, pci, class_code=cls, directory=tmp_path, author=AUTHOR)
    assert list(tmp_path.iterdir()) == []


def test_refuses_existing_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "acme").mkdir()
    assert cli(["new", "acme", "--pci", "1af4:1041", "--dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (f"error: {tmp_path / 'acme'} already exists; choose "
                                       "another name or directory\n")


def test_unknown_placeholder_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tpl = tmp_path / "tpl"
    (tpl / "common").mkdir(parents=True)
    (tpl / "common" / "pyproject.toml").write_text("name = '{{nmae}}'\n")
    monkeypatch.setenv("UDRIVER_TEMPLATE_DIR", str(tpl))
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"unknown template placeholder \{\{nmae\}\}"):
        new_driver("acme", "1af4:1041", directory=out, author=AUTHOR)
    assert list(out.iterdir()) == []
