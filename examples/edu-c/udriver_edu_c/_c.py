"""Thin wrapper over `udriver_edu_c._native`: checks arguments, turns -errno into NativeError.

The C code gets the runtime's ABI table address (`udriver.runtime.api_address()`) and the
device handle (`Device.c_address`) on every call; it never links against the runtime.
"""

from __future__ import annotations

import os
from typing import Any

from udriver.errors import NativeError
from udriver.runtime import Device, api_address

from ._native import ffi, lib  # type: ignore[import-not-found]

__all__ = ["EduC", "check_api"]


def _check(rc: int, what: str) -> None:
    if rc < 0:
        raise NativeError(-rc, os.strerror(-rc), what)


def check_api(address: int | None = None) -> None:
    """Refuse a runtime ABI table this driver cannot use.

    Raises:
        NativeError: EPROTO.
    """
    _check(lib.edu_c_check_api(api_address() if address is None else address),
           "check the udriver ABI table")


class EduC:
    """The C side of one open edu device."""

    def __init__(self, device: Device) -> None:
        self._api = api_address()
        self._dev = device.c_address
        self._u32 = ffi.new("uint32_t *")

    def probe(self) -> int:
        """Identify and quiesce; returns the ID register.

        Raises:
            NativeError: ENODEV (not an edu), ETIMEDOUT (still busy), EPROTO (ABI).
        """
        _check(lib.edu_c_probe(self._api, self._dev, self._u32), "probe edu")
        return int(self._u32[0])

    def bus_master(self, on: bool) -> None:
        _check(lib.edu_c_bus_master(self._api, self._dev, int(on)), "set bus master")

    def liveness(self) -> int:
        """Number of liveness patterns that did not read back inverted."""
        _check(lib.edu_c_liveness(self._api, self._dev, self._u32), "liveness check")
        return int(self._u32[0])

    def factorial_start(self, n: int) -> None:
        _check(lib.edu_c_factorial_start(self._api, self._dev, n), "start factorial")

    def factorial_result(self) -> int:
        _check(lib.edu_c_factorial_result(self._api, self._dev, self._u32), "read factorial")
        return int(self._u32[0])

    def irq_ack(self) -> int:
        status = ffi.new("uint32_t *")
        _check(lib.edu_c_irq_ack(self._api, self._dev, status), "acknowledge interrupt")
        return int(status[0])

    def irq_raise(self, value: int) -> None:
        _check(lib.edu_c_irq_raise(self._api, self._dev, value), "raise interrupt")

    def dma_alloc(self, size: int) -> Any:
        dma = ffi.new("struct udriver_dma *")
        _check(lib.edu_c_dma_alloc(self._api, self._dev, size, dma), "allocate DMA buffer")
        return dma

    def dma_view(self, dma: Any, n: int) -> Any:
        return ffi.buffer(dma.vaddr, n)

    def dma_free(self, dma: Any) -> None:
        _check(lib.edu_c_dma_free(self._api, self._dev, dma), "free DMA buffer")

    def dma_start(self, src: int, dst: int, count: int, to_ram: bool) -> None:
        _check(lib.edu_c_dma_start(self._api, self._dev, src, dst, count, int(to_ram)),
               "start DMA")
