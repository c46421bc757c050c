"""Thin wrapper over `udriver_nvme._native`: the queues and buffers the C data path uses.

Python allocates every DMA buffer with the runtime (`Device.dma_alloc`) and fills the C
structs `nvme_queue` / `nvme_bufs` with their addresses; C gets the runtime's ABI table
(`udriver.runtime.api_address()`) and the device handle (`Device.c_address`) on each call
and reaches the device only through that table.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from udriver.errors import NativeError
from udriver.runtime import Device, DmaBuffer, api_address

from ._native import ffi, lib  # type: ignore[import-not-found]
from ._regs import DOORBELLS
from ._status import NvmeTimeoutError

__all__ = ["IoBuffers", "QueuePair", "check", "check_api", "ffi", "lib"]

PAGE = 4096


def check(rc: int, what: str) -> None:
    """Turn a negative C return into the driver's errors.

    Raises:
        NvmeTimeoutError: ETIMEDOUT (no completion), EIO (CSTS.CFS set: `fatal`), ENODEV
            (the device reads all-ones: it is gone).
        NativeError: any other -errno.
    """
    if rc >= 0:
        return
    code = -rc
    if code == errno.ETIMEDOUT:
        raise NvmeTimeoutError(f"{what}: no completion within the command timeout")
    if code == errno.EIO:
        raise NvmeTimeoutError(f"{what}: the controller reports a fatal status (CSTS.CFS)",
                               fatal=True)
    if code == errno.ENODEV:
        raise NvmeTimeoutError(f"{what}: the controller is gone (registers read all-ones)",
                               gone=True)
    raise NativeError(code, os.strerror(code), what)


def check_api(address: int | None = None) -> None:
    """Refuse a runtime ABI table the C part cannot use.

    Raises:
        NativeError: EPROTO, the table's major differs or its minor is too old.
    """
    check(lib.nvme_c_check_api(api_address() if address is None else address),
          "check the udriver ABI table")


class QueuePair:
    """A submission queue and its completion queue in DMA memory (NVMe 1.4 4.1)."""

    def __init__(self, device: Device, qid: int, depth: int, stride: int, irq_fd: int = -1):
        if not 2 <= depth <= 65536:
            raise ValueError(f"queue depth must be 2..65536, got {depth}")
        self.qid, self.depth = qid, depth
        self.sq: DmaBuffer = device.dma_alloc(max(PAGE, depth * 64))
        self.cq: DmaBuffer = device.dma_alloc(max(PAGE, depth * 16))
        self.c: Any = ffi.new("struct nvme_queue *")
        self.c.sq = ffi.cast("void *", self.sq.vaddr)
        self.c.cq = ffi.cast("void *", self.cq.vaddr)
        # 3.1.24 / 3.1.25: SQyTDBL at 1000h + 2y * stride, CQyHDBL at 1000h + (2y + 1) * stride
        self.c.sq_db = DOORBELLS + 2 * qid * stride
        self.c.cq_db = DOORBELLS + (2 * qid + 1) * stride
        self.c.qid, self.c.depth, self.c.irq_fd = qid, depth, irq_fd
        self.rewind()
        self._cid = 0

    def rewind(self) -> None:
        """Empty both queues, as after a controller reset (heads, tails 0; phase 1)."""
        self.c.sq_tail = self.c.sq_head = self.c.cq_head = 0
        self.c.phase = 1
        self.cq.view[:] = bytes(len(self.cq.view))

    def next_cid(self) -> int:
        """A command identifier for a synchronous command (unique among those in flight)."""
        self._cid = (self._cid + 1) & 0xFFFF
        return self._cid

    @property
    def wakeups(self) -> int:
        return int(self.c.wakeups)

    def free(self) -> None:
        self.sq.free()  # idempotent
        self.cq.free()


class IoBuffers:
    """Per-command data buffers and PRP list pages ("slots") for one I/O queue."""

    def __init__(self, device: Device, slots: int, slot_bytes: int) -> None:
        if slots < 1 or slot_bytes < PAGE or slot_bytes % PAGE:
            raise ValueError(f"need >= 1 slot of a multiple of {PAGE} bytes, got "
                             f"{slots} x {slot_bytes}")
        self.slots, self.slot_bytes = slots, slot_bytes
        # A transfer of n pages needs n - 1 list entries (4.3); 512 fit in one 4 KiB page.
        self.prp_pages = max(1, -(-(slot_bytes // PAGE) // (PAGE // 8 - 1)))
        self.data: DmaBuffer = device.dma_alloc(slots * slot_bytes)
        self.prp: DmaBuffer = device.dma_alloc(slots * self.prp_pages * PAGE)
        self.c: Any = ffi.new("struct nvme_bufs *")
        self.c.data = ffi.cast("uint8_t *", self.data.vaddr)
        self.c.prp = ffi.cast("uint64_t *", self.prp.vaddr)
        self.c.data_iova, self.c.prp_iova = self.data.iova, self.prp.iova
        self.c.slot_bytes, self.c.prp_pages = slot_bytes, self.prp_pages
        self.c.slots, self.c.page_size = slots, PAGE

    def free(self) -> None:
        self.data.free()
        self.prp.free()
