"""No-hardware tests of the edu_c driver (run against the installed wheel)."""

from __future__ import annotations

import ctypes
import errno

import pytest
from udriver_edu_c import EduCDriver
from udriver_edu_c._c import check_api

from udriver.errors import ConfigError, NativeError
from udriver.modalias import parse_modalias


def test_accepts_the_runtime_abi_table() -> None:
    check_api()


def test_refuses_a_table_of_another_major() -> None:
    fake = (ctypes.c_uint16 * 4)(2, 0, 0xFFFF, 0xFFFF)
    with pytest.raises(NativeError) as e:
        check_api(ctypes.addressof(fake))
    assert e.value.errno == errno.EPROTO


def test_supports_edu_only() -> None:
    assert EduCDriver.supports(parse_modalias("pci:v00001234d000011E8sv00001AF4sd00001100bc00scFFi00"))
    assert not EduCDriver.supports(parse_modalias("pci:v00001234d00001111sv00000000sd00000000bc03sc00i00"))


def test_rejects_unknown_options() -> None:
    with pytest.raises(ConfigError, match="edu_c: checks are"):
        EduCDriver({"checks": "nope"})
