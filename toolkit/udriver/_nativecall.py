"""Thin wrapper over the private cffi module `udriver._native`.

Rules: every C call returns 0 or -errno; `check()` turns a negative return into
`NativeError(errno, strerror, what)`. Nothing else in udriver imports `_native`.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

from .errors import NativeError

__all__ = ["CAPSULE_NAME", "api_address", "api_capsule", "check", "ffi", "lib"]

try:
    from ._native import ffi, lib  # type: ignore[import-not-found,unused-ignore]
except ImportError as e:  # pragma: no cover - only on a broken install
    raise NativeError(0, str(e), "load udriver._native (reinstall udriver: `pip install .`)") from e

#: PyCapsule name, as UDRIVER_API_CAPSULE in udriver.h.
CAPSULE_NAME = b"udriver._native.api"


def check(ret: int, what: str) -> int:
    """Return `ret` if non-negative, else raise NativeError for -ret.

    Raises:
        NativeError: `ret` < 0.
    """
    if ret < 0:
        raise NativeError(-ret, os.strerror(-ret), what)
    return ret


def api_address() -> int:
    """Address of the runtime's `const struct udriver_api` (udriver.h)."""
    return int(ffi.cast("uintptr_t", lib.udriver_get_api()))


_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


def api_capsule() -> Any:
    """A PyCapsule named "udriver._native.api" holding the `struct udriver_api *`.

    A driver's C extension reads it with
    `PyCapsule_Import`-style `PyCapsule_GetPointer(obj, UDRIVER_API_CAPSULE)`.
    """
    # The name must outlive the capsule: CAPSULE_NAME is a module-level bytes constant.
    return _capsule_new(api_address(), CAPSULE_NAME, None)
