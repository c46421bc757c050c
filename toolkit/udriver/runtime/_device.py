"""`Device`: one PCI device opened through VFIO.

Order of operations in `Device.open` (or the constructor):
1. normalise the PCI address;
2. sysfs pre-checks, for clear messages: the device exists, is bound to vfio-pci, has
   an IOMMU group (`_sysfs.precheck`);
3. the native open (container -> group -> viability -> IOMMU -> device fd; native/device.c);
   -EBUSY there means the group is not viable, reported with every member's driver.

`close()` frees DMA buffers, disables interrupts, unmaps BARs and closes every fd; any
use afterwards raises DeviceError. Closing twice is harmless.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from .._nativecall import check, ffi, lib
from ..errors import DeviceError, NativeError
from ._dma import DmaBuffer
from ._errors import AccessError
from ._irq import Interrupts
from ._kernel import choose_iommu_type, read_features
from ._region import ConfigSpace, Region
from ._sysfs import group_members, normalise_bdf, precheck

__all__ = ["Device"]

_log = logging.getLogger(__name__)
_CONFIG_INDEX = 7  # VFIO_PCI_CONFIG_REGION_INDEX
_NUM_BARS = 6
#: Largest single DMA buffer (1 GiB); more is almost certainly a mistake.
MAX_DMA_SIZE = 1 << 30


class Device:
    """An open VFIO PCI device. Use as a context manager or call `close()`."""

    def __init__(self, bdf: str, *, container_fd: int | None = None, group_fd: int | None = None,
                 sysfs: str | Path = "/sys") -> None:
        """Open the device at `bdf`.

        With `container_fd` and `group_fd` (already-open fds handed over by a privileged
        parent), no device node is opened; the Device takes ownership of both fds.

        Raises:
            DeviceError: bad address, no such device, not bound to vfio-pci, no IOMMU
                group, or a non-viable IOMMU group.
            NativeError: any other VFIO failure.
        """
        self.bdf = normalise_bdf(bdf)
        self._sysfs = Path(sysfs)
        self._handle: Any = ffi.NULL
        self._dma: list[DmaBuffer] = []
        if (container_fd is None) != (group_fd is None):
            raise DeviceError("`container_fd` and `group_fd` must be given together")
        out = ffi.new("struct udriver_device **")
        group: str | None
        if container_fd is None:
            group = precheck(self.bdf, self._sysfs)
            ret = lib.ud_api_open(self.bdf.encode(), out)
        else:
            link = self._sysfs / "bus" / "pci" / "devices" / self.bdf / "iommu_group"
            group = os.path.basename(os.readlink(link)) if link.is_symlink() else None
            ret = lib.ud_api_open_fds(container_fd, group_fd, self.bdf.encode(), out)
        if ret == -errno.EBUSY:
            members = ", ".join(f"{b} ({d or 'no driver'})" for b, d in
                                group_members(self._sysfs, group or "?"))
            err = DeviceError(f"IOMMU group {group} of {self.bdf} is not viable: every device in "
                              f"it must be bound to vfio-pci or to no driver; members: {members}")
            err.hint = "bind the other devices of the group to vfio-pci too"
            raise err
        if ret == -errno.ENOTSUP:
            # native set_iommu found neither type1v2 nor type1: say what the kernel offers.
            choose_iommu_type(read_features())
        if ret == -errno.ENOENT and group is not None:
            raise DeviceError(f"/dev/vfio/{group} does not exist: {self.bdf} is not usable "
                              "through vfio-pci")
        check(ret, f"open {self.bdf}")
        self._handle = out[0]
        info = ffi.new("struct udriver_device_info *")
        check(lib.ud_api_device_info(self._handle, info), "device info")
        self.num_regions = int(info.num_regions)
        """Regions the device reports (BARs, ROM, config, VGA...)."""
        self.iommu_group = int(info.iommu_group)
        """The IOMMU group number."""
        self._regions: dict[int, Region] = {}
        self.config = ConfigSpace(self, self.region_info(_CONFIG_INDEX)[0])
        """PCI configuration space."""
        self.interrupts = Interrupts(self)
        """This device's interrupts."""
        _log.debug("opened %s (IOMMU group %d)", self.bdf, self.iommu_group)

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return bool(self._handle != ffi.NULL)

    @property
    def c_handle(self) -> Any:
        """The `struct udriver_device *` for a driver's C code (cffi pointer).

        Raises:
            DeviceError: the device is closed.
        """
        if self._handle == ffi.NULL:
            raise DeviceError(f"device {self.bdf} is closed")
        return self._handle

    @property
    def c_address(self) -> int:
        """`c_handle` as an integer, for C code built with another cffi instance."""
        return int(ffi.cast("uintptr_t", self.c_handle))

    def close(self) -> None:
        """Release everything; idempotent."""
        if self._handle == ffi.NULL:
            return
        try:
            self.interrupts.disable()
        except NativeError as e:
            _log.warning("%s: disabling interrupts on close: %s", self.bdf, e)
        for buf in list(self._dma):
            try:
                buf.free()
            except (NativeError, DeviceError) as e:
                _log.warning("%s: freeing DMA buffer on close: %s", self.bdf, e)
        handle, self._handle = self._handle, ffi.NULL
        self._regions.clear()
        check(lib.ud_api_close(handle), f"close {self.bdf}")
        # Buffers whose unmap failed above: the close just dropped every IOVA mapping,
        # so their memory can go now (or, while views of it live, when they go).
        for buf in list(self._dma):
            try:
                buf.free()
            except DeviceError:
                buf._abandon()
        self._dma.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_handle", ffi.NULL) != ffi.NULL:
            try:
                self.close()
            except Exception as e:  # noqa: BLE001 - never raise from a finaliser
                _log.warning("%s: closing in finaliser: %s", self.bdf, e)

    def __repr__(self) -> str:
        return f"<Device {self.bdf} {'open' if self.is_open else 'closed'}>"

    # -- regions -----------------------------------------------------------------------

    def region_info(self, index: int) -> tuple[int, int]:
        """(size, UDRIVER_REGION_* flags) of region `index`; size 0 if absent.

        Raises:
            AccessError: `index` out of range.
            DeviceError: the device is closed.
        """
        handle = self.c_handle
        if not isinstance(index, int) or not 0 <= index < min(self.num_regions, 9):
            raise AccessError(f"{self.bdf}: region index must be 0..{min(self.num_regions, 9) - 1}, "
                              f"got {index!r}")
        info = ffi.new("struct udriver_region_info *")
        check(lib.ud_api_region_info(handle, index, info), f"region {index} info")
        return int(info.size), int(info.flags)

    def bar(self, index: int) -> Region:
        """BAR `index` (0-5) as a `Region`.

        Raises:
            AccessError: `index` is not 0-5 or the BAR is not implemented.
            DeviceError: the device is closed.
        """
        if not isinstance(index, int) or not 0 <= index < _NUM_BARS:
            raise AccessError(f"{self.bdf}: BAR index must be 0..5, got {index!r}")
        region = self._regions.get(index)
        if region is None:
            size, flags = self.region_info(index)
            if size == 0:
                raise AccessError(f"{self.bdf}: BAR{index} is not implemented by this device")
            region = self._regions[index] = Region(self, index, size, flags)
        return region

    def set_bus_master(self, enable: bool = True) -> None:
        """Let the device issue memory writes: DMA and MSI/MSI-X messages.

        PCI Local Bus spec 6.2.2, Command register (0x04) bit 2 "Bus Master Enable";
        vfio-pci leaves it as the device came (usually off), like pci_set_master().

        Raises:
            DeviceError: the device is closed.
            NativeError: the config write failed.
        """
        cmd = self.config.read16(0x04)
        cmd = (cmd | 0x4) if enable else (cmd & ~0x4)
        self.config.write16(0x04, cmd)

    def reset(self) -> None:
        """Function-level reset (VFIO_DEVICE_RESET).

        Raises:
            DeviceError: the device is closed.
            NativeError: the device cannot be reset.
        """
        check(lib.ud_api_reset(self.c_handle), f"reset {self.bdf}")

    # -- DMA ---------------------------------------------------------------------------

    def dma_alloc(self, size: int, dma_mask: int = (1 << 64) - 1) -> DmaBuffer:
        """Allocate `size` bytes and map them at an IOVA within `dma_mask`.

        Raises:
            AccessError: `size` is 0, negative, above MAX_DMA_SIZE, or cannot fit below
                `dma_mask`.
            DeviceError: the device is closed.
            NativeError: out of memory, IOVA space, or VFIO_IOMMU_MAP_DMA failed.
        """
        handle = self.c_handle
        if not isinstance(size, int) or size <= 0:
            raise AccessError(f"DMA buffer size must be a positive number of bytes, got {size!r}")
        if size > MAX_DMA_SIZE or size > dma_mask + 1:
            raise AccessError(f"DMA buffer size {size:#x} is too large (limit "
                              f"{min(MAX_DMA_SIZE, dma_mask + 1):#x} for DMA mask {dma_mask:#x})")
        cdma = ffi.new("struct udriver_dma *")
        # The native allocation only sizes the buffer (granule-aligned for this IOMMU);
        # the memory itself is an mmap Python can track (see _dma's module docstring).
        check(lib.ud_api_dma_alloc(handle, size, cdma), f"allocate {size} DMA bytes")
        length = int(cdma.size)
        check(lib.ud_api_dma_free(ffi.NULL, cdma), "size a DMA buffer")
        try:
            mem = mmap.mmap(-1, length, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        except OSError as e:
            code = e.errno or errno.ENOMEM
            raise NativeError(code, os.strerror(code), f"allocate {size} DMA bytes") from e
        addr = ffi.from_buffer(mem)
        cdma.vaddr, cdma.size = ffi.cast("void *", addr), length
        del addr  # the address stays valid: `mem` is not closed while the buffer lives
        ret = lib.ud_api_dma_map(handle, cdma, dma_mask)
        if ret < 0:
            mem.close()
            check(ret, f"map {size} DMA bytes below {dma_mask:#x}")
        buf = DmaBuffer(self, cdma, mem, size, dma_mask)
        self._dma.append(buf)
        return buf

    def _forget(self, buf: DmaBuffer) -> None:
        if buf in self._dma:
            self._dma.remove(buf)
