"""DMA buffers: host memory the device reaches through an IOMMU mapping.

Lifecycle: allocate + map (`Device.dma_alloc`) -> use `.view` / hand `.iova` to the
device -> `unmap()` (after which the IOMMU blocks the device: linux/vfio.h
VFIO_IOMMU_UNMAP_DMA) -> `free()`. `Device.close()` frees every buffer it handed out;
`.view` then raises instead of touching freed memory.

The memory is a Python `mmap` (anonymous, private, page-aligned; sized by the native
`dma_alloc` rule, so granule-aligned for the IOMMU) mapped with the native `dma_map`.
An `mmap` cannot be closed while anything still exports its buffer, and every slice of
`.view` (or object built on it, e.g. numpy.frombuffer) keeps it exported. So memory a
Python object can still reach is never released: `free()` then unmaps the IOVA (the
device can no longer reach it) and raises; on `Device.close()` such memory simply stays
until the last view is gone. No use-after-free is possible from Python.
"""

from __future__ import annotations

import mmap
from typing import TYPE_CHECKING, Any

from .._nativecall import check, ffi, lib
from ..errors import DeviceError

if TYPE_CHECKING:
    from ._device import Device

__all__ = ["DmaBuffer"]


class DmaBuffer:
    """A page-aligned, zeroed, pinned buffer mapped for device DMA."""

    def __init__(self, device: Device, cdma: Any, mem: mmap.mmap, requested: int,
                 dma_mask: int) -> None:
        self._device = device
        self._c = cdma
        self._mem = mem
        self.requested_size = requested
        """The size asked for; `size` is that rounded up to pages."""
        self.dma_mask = dma_mask
        """The mask the IOVA was chosen under."""
        self._view: memoryview | None = memoryview(mem)

    def __repr__(self) -> str:
        state = "freed" if self._view is None else ("mapped" if self.mapped else "unmapped")
        return f"<DmaBuffer size={self.size:#x} iova={self.iova:#x} {state}>"

    @property
    def size(self) -> int:
        """Bytes, a multiple of the page size."""
        return int(self._c.size) if self._view is not None else 0

    @property
    def iova(self) -> int:
        """The address the device uses (0 when not mapped)."""
        return int(self._c.iova) if self.mapped else 0

    @property
    def vaddr(self) -> int:
        """The host virtual address."""
        self._alive()
        return int(ffi.cast("uintptr_t", self._c.vaddr))

    @property
    def mapped(self) -> bool:
        return self._view is not None and bool(self._c.mapped)

    @property
    def view(self) -> memoryview:
        """Writable bytes of the buffer.

        Raises:
            DeviceError: the buffer was freed.
        """
        self._alive()
        assert self._view is not None
        return self._view

    def _alive(self) -> None:
        if self._view is None:
            raise DeviceError("DMA buffer used after it was freed")

    def unmap(self) -> None:
        """Remove the IOMMU mapping; the device can no longer reach this memory.

        Raises:
            DeviceError: the buffer was freed, is not mapped, or the device is closed.
            NativeError: VFIO_IOMMU_UNMAP_DMA failed.
        """
        self._alive()
        if not self._c.mapped:
            raise DeviceError("DMA buffer is not mapped")
        check(lib.ud_api_dma_unmap(self._device.c_handle, self._c), "unmap DMA buffer")

    def map(self) -> None:
        """Map the buffer again, at a possibly different IOVA.

        Raises:
            DeviceError: the buffer was freed or the device is closed.
            NativeError: no IOVA space left, or VFIO_IOMMU_MAP_DMA failed.
        """
        self._alive()
        check(lib.ud_api_dma_map(self._device.c_handle, self._c, self.dma_mask), "map DMA buffer")

    def free(self) -> None:
        """Unmap (if mapped) and release the memory. Idempotent.

        Raises:
            NativeError: the unmap failed (the memory is then kept, never freed while
                the device may still reach it).
            DeviceError: views of the buffer (slices of `.view`, objects made from it)
                are still alive; the buffer is unmapped but its memory is kept. Release
                them (`del`, `memoryview.release()`) and call `free()` again.
        """
        if self._view is None:
            return
        if self._c.mapped and self._device.is_open:
            check(lib.ud_api_dma_unmap(self._device.c_handle, self._c), "unmap DMA buffer")
        self._view.release()
        try:
            self._mem.close()
        except BufferError:
            self._view = memoryview(self._mem)
            raise DeviceError("cannot free a DMA buffer while views of it are in use (slices "
                              "of .view or objects made from it); it is unmapped now: release "
                              "those views and call free() again") from None
        self._view = None
        self._c.vaddr = ffi.NULL
        self._c.mapped = 0
        self._c.size = 0
        self._device._forget(self)

    def _abandon(self) -> None:
        """The device closed (every IOVA is gone) while views are alive: forget the
        buffer; its memory goes when the last view does."""
        self._view = None
        self._c.mapped = 0
