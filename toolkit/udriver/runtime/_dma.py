"""DMA buffers: host memory the device reaches through an IOMMU mapping.

Lifecycle: allocate + map (`Device.dma_alloc`) -> use `.view` / hand `.iova` to the
device -> `unmap()` (after which the IOMMU blocks the device: linux/vfio.h
VFIO_IOMMU_UNMAP_DMA) -> `free()`. `Device.close()` frees every buffer it handed out;
`.view` then raises instead of touching freed memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._nativecall import check, ffi, lib
from ..errors import DeviceError

if TYPE_CHECKING:
    from ._device import Device

__all__ = ["DmaBuffer"]


class DmaBuffer:
    """A page-aligned, zeroed, pinned buffer mapped for device DMA."""

    def __init__(self, device: Device, cdma: Any, requested: int, dma_mask: int) -> None:
        self._device = device
        self._c = cdma
        self.requested_size = requested
        """The size asked for; `size` is that rounded up to pages."""
        self.dma_mask = dma_mask
        """The mask the IOVA was chosen under."""
        self._view: memoryview | None = memoryview(ffi.buffer(cdma.vaddr, cdma.size))

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
        """
        if self._view is None:
            return
        handle = self._device.c_handle if self._device.is_open else ffi.NULL
        self._view.release()
        self._view = None
        try:
            check(lib.ud_api_dma_free(handle, self._c), "free DMA buffer")
        except BaseException:
            self._view = memoryview(ffi.buffer(self._c.vaddr, self._c.size))
            raise
        self._device._forget(self)
