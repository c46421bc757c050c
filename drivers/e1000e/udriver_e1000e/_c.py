"""Thin wrapper over `udriver_e1000e._native`: descriptor rings in runtime DMA memory.

Python allocates each ring's descriptors and packet buffers with the runtime
(`Device.dma_alloc`) and fills `struct e1k_ring` with their addresses; C gets the
runtime's ABI table (`udriver.runtime.api_address()`) and the device handle
(`Device.c_address`) on each call and reaches the device only through that table.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from udriver.errors import NativeError
from udriver.runtime import Device, DmaBuffer, api_address

from ._native import ffi, lib  # type: ignore[import-not-found]

__all__ = ["BUF_SIZE", "Ring", "check", "check_api", "ffi", "lib"]

BUF_SIZE = 2048  # RCTL.BSIZE = 00b with BSEX = 0 (10.2.5.1): 2048-byte receive buffers


def check(rc: int, what: str) -> int:
    """Return `rc` if >= 0, else raise.

    Raises:
        NativeError: the C call returned -errno.
    """
    if rc >= 0:
        return rc
    raise NativeError(-rc, os.strerror(-rc), what)


def check_api(address: int | None = None) -> None:
    """Refuse a runtime ABI table the C part cannot use.

    Raises:
        NativeError: EPROTO, the table's major differs or its minor is too old.
    """
    check(lib.e1k_check_api(api_address() if address is None else address),
          "check the udriver ABI table")


class Ring:
    """`count` legacy descriptors and `count` 2 KiB buffers in DMA memory (7.1.4, 7.2.10)."""

    def __init__(self, device: Device, count: int, irq_fd: int = -1, ims: int = 0) -> None:
        """Allocate the ring (nothing touches the device yet).

        Raises:
            ValueError: `count` is not a multiple of 8 in 8..4096 (RDLEN/TDLEN are
                multiples of 128 bytes, 10.2.5/10.2.6).
        """
        if not 8 <= count <= 4096 or count % 8:
            raise ValueError(f"ring size must be a multiple of 8 in 8..4096, got {count}")
        self.count = count
        self.desc: DmaBuffer = device.dma_alloc(max(4096, count * 16))
        self.bufs: DmaBuffer = device.dma_alloc(count * BUF_SIZE)
        self.c: Any = ffi.new("struct e1k_ring *")
        self.c.desc = ffi.cast("void *", self.desc.vaddr)
        self.c.bufs = ffi.cast("uint8_t *", self.bufs.vaddr)
        self.c.bufs_iova, self.c.count, self.c.buf_size = self.bufs.iova, count, BUF_SIZE
        self.c.irq_fd, self.c.ims = irq_fd, ims

    @property
    def iova(self) -> int:
        return self.desc.iova

    @property
    def length(self) -> int:
        return self.count * 16

    def counters(self) -> dict[str, int]:
        c = self.c
        return {"packets": int(c.packets), "bytes": int(c.bytes), "wakeups": int(c.wakeups),
                "full": int(c.full)}

    def free(self) -> None:
        self.desc.free()  # idempotent
        self.bufs.free()


def errno_name(rc: int) -> str:
    return errno.errorcode.get(-rc, str(rc))
