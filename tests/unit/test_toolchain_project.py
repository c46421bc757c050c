"""udriver.toolchain._project: pyproject validation, one test per rejection path."""

from __future__ import annotations

from pathlib import Path

import pytest

from udriver.errors import ManifestError
from udriver.toolchain import load_project

GOOD = '''\
[project]
name = "udriver-acme"
version = "0.1.0"
authors = [{ name = "A", email = "a@example.org" }]

[project.entry-points."udriver.drivers"]
acme = "acme.driver:AcmeDriver"

[tool.udriver]
driver = "acme"
abi = "1.0"
modaliases = [
    "pci:v00001AF4d00001041sv*sd*bc*sc*i*",
    "pci:v00001af4d00001042sv*sd*bc01sc08i02",
]
'''


def _project(tmp: Path, text: str) -> Path:
    (tmp / "pyproject.toml").write_text(text)
    return tmp


def test_good(tmp_path: Path) -> None:
    p = load_project(_project(tmp_path, GOOD))
    assert (p.name, p.version, p.driver, p.entry_point, p.abi) == (
        "udriver-acme", "0.1.0", "acme", "acme.driver:AcmeDriver", (1, 0))
    assert p.modaliases == ("pci:v00001AF4d00001041sv*sd*bc*sc*i*",
                            "pci:v00001AF4d00001042sv*sd*bc01sc08i02*")
    assert p.maintainer == "A <a@example.org>"
    assert not p.has_c
    m = p.manifest()
    assert m.modaliases == p.modaliases and m.package == "udriver-acme"


def test_no_pyproject(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read.*run `udriver new`"):
        load_project(tmp_path)


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not valid TOML"):
        load_project(_project(tmp_path, "[project\n"))


def test_no_tool_udriver(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"no `\[tool.udriver\]` table"):
        load_project(_project(tmp_path, GOOD.split("[tool.udriver]")[0]))


def test_malformed_pattern_names_line(tmp_path: Path) -> None:
    d = _project(tmp_path, GOOD.replace("d00001042", "d1042"))
    with pytest.raises(ManifestError) as e:
        load_project(d)
    assert f"{d / 'pyproject.toml'}:14: malformed modalias pattern in `modaliases` entry 1" in str(e.value)
    assert "fix: write it as the kernel does" in str(e.value)


def test_duplicate_pattern_names_both_lines(tmp_path: Path) -> None:
    d = _project(tmp_path, GOOD.replace("d00001042sv*sd*bc01sc08i02", "d00001041sv*sd*bc*sc*i*"))
    with pytest.raises(ManifestError) as e:
        load_project(d)
    assert (f"{d / 'pyproject.toml'}:14: duplicate modalias pattern "
            "'pci:v00001af4d00001041sv*sd*bc*sc*i*' in `modaliases` (entry 1 is the same as "
            "entry 0 on line 13); fix: delete one of them") in str(e.value)


def test_empty_table(tmp_path: Path) -> None:
    text = GOOD.split("modaliases")[0] + "modaliases = []\n"
    with pytest.raises(ManifestError, match="`modaliases` must be a non-empty list"):
        load_project(_project(tmp_path, text))


def test_missing_entry_point_table(tmp_path: Path) -> None:
    text = GOOD.replace('[project.entry-points."udriver.drivers"]\nacme = "acme.driver:AcmeDriver"\n', "")
    with pytest.raises(ManifestError, match=r"missing entry point: no `\[project.entry-points"):
        load_project(_project(tmp_path, text))


def test_entry_point_for_other_name(tmp_path: Path) -> None:
    d = _project(tmp_path, GOOD.replace('acme = "acme.driver', 'other = "acme.driver'))
    with pytest.raises(ManifestError) as e:
        load_project(d)
    assert f"{d / 'pyproject.toml'}:6: missing entry point: `acme` is not in" in str(e.value)


def test_bad_entry_point_value(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match='must be "module:Class"'):
        load_project(_project(tmp_path, GOOD.replace('"acme.driver:AcmeDriver"', '"acme.driver"')))


def test_two_drivers_in_one_package(tmp_path: Path) -> None:
    text = GOOD.replace('acme = "acme.driver:AcmeDriver"',
                        'acme = "acme.driver:AcmeDriver"\nbeta = "acme.driver:Beta"')
    with pytest.raises(ManifestError, match="one driver per package"):
        load_project(_project(tmp_path, text))


def test_abi_not_provided(tmp_path: Path) -> None:
    d = _project(tmp_path, GOOD.replace('abi = "1.0"', 'abi = "2.0"'))
    with pytest.raises(ManifestError) as e:
        load_project(d)
    assert f"{d / 'pyproject.toml'}:11: `abi = '2.0'`: driver needs udriver ABI 2.0" in str(e.value)
    assert "the major versions differ" in str(e.value)


def test_abi_malformed(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="Invalid ABI version"):
        load_project(_project(tmp_path, GOOD.replace('abi = "1.0"', 'abi = "one"')))


def test_bad_driver_name(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="`driver` must match"):
        load_project(_project(tmp_path, GOOD.replace('driver = "acme"', 'driver = "Acme!"')))


def test_dynamic_version(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"`\[project\] version` must be a static string"):
        load_project(_project(tmp_path, GOOD.replace('version = "0.1.0"\n', "")))


def test_collects_every_problem(tmp_path: Path) -> None:
    text = GOOD.replace('abi = "1.0"', 'abi = "1.9"').replace("d00001042", "dXYZ")
    with pytest.raises(ManifestError, match=r"^2 problems:\n"):
        load_project(_project(tmp_path, text))


def test_maintainer_from_debemail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBEMAIL", "d@example.org")
    monkeypatch.setenv("DEBFULLNAME", "Deb Person")
    text = GOOD.replace('authors = [{ name = "A", email = "a@example.org" }]\n', "")
    assert load_project(_project(tmp_path, text)).maintainer == "Deb Person <d@example.org>"
