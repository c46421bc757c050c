"""Tests of the C part that need no hardware (run against the installed wheel)."""

from __future__ import annotations

import ctypes
import errno

import pytest

from udriver.errors import NativeError

from {{module}} import native


def test_accepts_this_runtimes_abi_table() -> None:
    native.check_api()


def test_refuses_a_table_of_another_major() -> None:
    fake = (ctypes.c_uint16 * 4)(2, 0, 0xFFFF, 0xFFFF)  # abi_major=2, minor=0, huge size
    with pytest.raises(NativeError) as e:
        native.check_api(ctypes.addressof(fake))
    assert e.value.errno == errno.EPROTO


def test_refuses_no_table() -> None:
    with pytest.raises(NativeError) as e:
        native.check_api(0)
    assert e.value.errno == errno.EPROTO
