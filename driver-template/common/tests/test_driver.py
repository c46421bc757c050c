"""Tests that need no hardware: the driver's declarations agree with each other."""

from __future__ import annotations

import tomllib
from pathlib import Path

from udriver.modalias import parse_modalias, parse_pattern
from udriver.runtime import Driver

from {{module}}.driver import {{Class}}

PYPROJECT = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())


def test_is_a_driver() -> None:
    assert issubclass({{Class}}, Driver)


def test_ids_match_pyproject() -> None:
    table = sorted(str(parse_pattern(p)) for p in PYPROJECT["tool"]["udriver"]["modaliases"])
    assert sorted(str(p) for p in {{Class}}.patterns()) == table


def test_entry_point_names_the_class() -> None:
    eps = PYPROJECT["project"]["entry-points"]["udriver.drivers"]
    assert eps == {"{{name}}": "{{module}}.driver:{{Class}}"}


def test_supports_the_device() -> None:
    alias = parse_modalias("{{example_modalias}}")
    assert {{Class}}.supports(alias)
    other = parse_modalias("pci:v0000FFFEd0000FFFEsv00000000sd00000000bcFFscFFiFF")
    assert not {{Class}}.supports(other)


def test_abi_is_provided_by_this_runtime() -> None:
    from udriver.abi import check_abi, parse_abi
    check_abi(parse_abi({{Class}}.abi))
