"""Thin wrapper over `{{module}}._native`: turns -errno into `NativeError`."""

from __future__ import annotations

import os

from udriver.errors import NativeError
from udriver.runtime import Device, api_address

from ._native import ffi, lib  # type: ignore[import-not-found]

__all__ = ["check_api", "read_id"]


def _check(rc: int, what: str) -> None:
    if rc < 0:
        raise NativeError(-rc, os.strerror(-rc), what)


def check_api(address: int | None = None) -> None:
    """Check the runtime's C ABI table (default: this runtime's).

    Raises:
        NativeError: EPROTO when the table cannot serve this driver.
    """
    _check(lib.{{module}}_check_api(api_address() if address is None else address),
           "check the udriver ABI table")


def read_id(device: Device) -> int:
    """BAR0's identification register, read in C through the ABI table.

    Raises:
        NativeError: the read failed.
    """
    out = ffi.new("uint32_t *")
    _check(lib.{{module}}_read_id(api_address(), device.c_address, out), "read the ID register")
    return int(out[0])
