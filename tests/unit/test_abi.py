"""udriver.abi: the one compatibility rule, exhaustively."""

from __future__ import annotations

import pytest

from udriver.abi import ABI_VERSION, check_abi, format_abi, is_compatible, parse_abi
from udriver.errors import AbiError


def test_parse_and_format() -> None:
    assert parse_abi("1.0") == (1, 0)
    assert parse_abi(" 2.13 ") == (2, 13)
    assert format_abi((1, 7)) == "1.7"


@pytest.mark.parametrize("bad", ["", "1", "1.", "1.0.0", "a.b", "01.0", "-1.0", "1.-1"])
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(AbiError, match="Invalid ABI version"):
        parse_abi(bad)


def test_rule_exhaustive() -> None:
    for rmaj in range(3):
        for rmin in range(4):
            for pmaj in range(3):
                for pmin in range(4):
                    ok = rmaj == pmaj and rmin <= pmin
                    assert is_compatible((rmaj, rmin), (pmaj, pmin)) is ok


def test_check_names_both_versions() -> None:
    with pytest.raises(AbiError) as ei:
        check_abi((1, 3), (1, 2))
    assert str(ei.value) == (
        "driver needs udriver ABI 1.3, but this runtime provides ABI 1.2 "
        "(the driver needs a newer minor version)"
    )
    with pytest.raises(AbiError, match=r"ABI 2\.0, but this runtime provides ABI 1\.0 \(the major"):
        check_abi((2, 0), (1, 0))
    check_abi(ABI_VERSION)
    check_abi((ABI_VERSION[0], 0))
