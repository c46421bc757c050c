"""BAR regions and PCI config space, with checked accessors.

Every accessor checks its arguments in Python first, so a mistake raises `AccessError`
with the offending value; the C layer checks the same again (it also serves drivers'
C code). Accesses are exactly the requested width and naturally aligned: PCIe devices
(and QEMU's edu below 0x80) may treat other widths differently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .._nativecall import check, ffi, lib
from ..errors import DeviceError
from ._errors import AccessError

if TYPE_CHECKING:
    from ._device import Device

__all__ = ["ConfigSpace", "Region"]

_WIDTHS = (1, 2, 4, 8)


def _make_read(width: int) -> Callable[[Region, int], int]:
    cfunc = getattr(lib, f"ud_api_bar_read{width * 8}")
    mask = width - 1

    def read(self: Region, offset: int) -> int:
        """Read a little-endian register of this width at `offset` (see `read`)."""
        if offset.__class__ is not int or offset < 0 or offset > self.size - width or offset & mask:
            self._check(offset, width)
            offset = int(offset)
        out = self._out[width]
        ret = cfunc(self._device._handle, self.index, offset, out)
        if ret:
            self._fail(ret, f"read BAR{self.index}+{offset:#x}")
        return int(out[0])

    read.__name__ = f"read{width * 8}"
    return read


def _make_write(width: int) -> Callable[[Region, int, int], None]:
    cfunc = getattr(lib, f"ud_api_bar_write{width * 8}")
    mask = width - 1
    limit = 1 << (8 * width)

    def write(self: Region, offset: int, value: int) -> None:
        """Write a register of this width at `offset` (see `write`)."""
        if offset.__class__ is not int or offset < 0 or offset > self.size - width or offset & mask:
            self._check(offset, width)
            offset = int(offset)
        if value.__class__ is not int or not 0 <= value < limit:
            raise AccessError(f"BAR{self.index}: value {value!r} does not fit in {width} bytes")
        ret = cfunc(self._device._handle, self.index, offset, value)
        if ret:
            self._fail(ret, f"write BAR{self.index}+{offset:#x}")

    write.__name__ = f"write{width * 8}"
    return write


class Region:
    """One memory BAR of an open device (VFIO_PCI_BAR0..5_REGION_INDEX)."""

    def __init__(self, device: Device, index: int, size: int, flags: int) -> None:
        self._device = device
        self.index = index
        """BAR number, 0-5."""
        self.size = size
        """Size in bytes."""
        self.flags = flags
        """UDRIVER_REGION_* bits."""
        # One result cell per width. A Region is used from one thread (its event loop).
        self._out = {w: ffi.new(f"uint{w * 8}_t *") for w in _WIDTHS}

    def __repr__(self) -> str:
        return f"<Region BAR{self.index} size={self.size:#x}>"

    def _check(self, offset: int, width: int) -> None:
        if width not in _WIDTHS:
            raise AccessError(f"BAR{self.index}: access width must be 1, 2, 4 or 8 bytes, got {width!r}")
        if not isinstance(offset, int) or offset < 0 or offset + width > self.size:
            raise AccessError(f"BAR{self.index}: {width}-byte access at {offset!r} is outside the "
                              f"BAR (size {self.size:#x})")
        if offset % width:
            raise AccessError(f"BAR{self.index}: {width}-byte access at {offset:#x} is misaligned "
                              f"(offset must be a multiple of {width})")

    def _fail(self, ret: int, what: str) -> None:
        if not self._device.is_open:
            raise DeviceError(f"device {self._device.bdf} is closed")
        check(ret, what)

    def read(self, offset: int, width: int) -> int:
        """Read `width` bytes (1, 2, 4 or 8) at `offset`.

        Raises:
            AccessError: bad width, past the end, or misaligned.
            DeviceError: the device is closed.
            NativeError: the kernel refused the access.
        """
        self._check(offset, width)
        return _READ[width](self, offset)

    def write(self, offset: int, width: int, value: int) -> None:
        """Write `value` as `width` bytes at `offset`.

        Raises:
            AccessError: bad width, past the end, misaligned, or `value` does not fit.
            DeviceError: the device is closed.
            NativeError: the kernel refused the access.
        """
        self._check(offset, width)
        _WRITE[width](self, offset, value)

    # The fixed-width accessors are the interrupt hot path: one fast test, then C. Any
    # failure takes the slow path, which raises the precise error.
    read8 = _make_read(1)
    read16 = _make_read(2)
    read32 = _make_read(4)
    read64 = _make_read(8)
    write8 = _make_write(1)
    write16 = _make_write(2)
    write32 = _make_write(4)
    write64 = _make_write(8)


_READ = {1: Region.read8, 2: Region.read16, 4: Region.read32, 8: Region.read64}
_WRITE = {1: Region.write8, 2: Region.write16, 4: Region.write32, 8: Region.write64}


class ConfigSpace:
    """PCI configuration space through VFIO_PCI_CONFIG_REGION_INDEX (little-endian).

    vfio-pci virtualises parts of it (BARs, MSI/MSI-X capabilities); see
    drivers/vfio/pci/vfio_pci_config.c.
    """

    def __init__(self, device: Device, size: int) -> None:
        self._device = device
        self.size = size
        """Size in bytes (256, or 4096 for PCIe extended config space)."""

    def read(self, offset: int, length: int) -> bytes:
        """Read `length` bytes at `offset`.

        Raises:
            AccessError: outside config space.
            DeviceError: the device is closed.
            NativeError: the kernel refused the access.
        """
        self._check(offset, length)
        buf = ffi.new("uint8_t[]", length)
        check(lib.ud_api_config_read(self._device.c_handle, offset, buf, length),
              f"read config space +{offset:#x}")
        return bytes(ffi.buffer(buf, length))

    def write(self, offset: int, data: bytes) -> None:
        """Write `data` at `offset`.

        Raises:
            AccessError: outside config space.
            DeviceError: the device is closed.
            NativeError: the kernel refused the access.
        """
        self._check(offset, len(data))
        check(lib.ud_api_config_write(self._device.c_handle, offset, data, len(data)),
              f"write config space +{offset:#x}")

    def _check(self, offset: int, length: int) -> None:
        if not isinstance(offset, int) or not isinstance(length, int) or offset < 0 \
                or length < 0 or offset + length > self.size:
            raise AccessError(f"config space: {length!r} bytes at {offset!r} are outside "
                              f"config space (size {self.size:#x})")

    def read8(self, offset: int) -> int:
        return self.read(offset, 1)[0]

    def read16(self, offset: int) -> int:
        return int.from_bytes(self.read(offset, 2), "little")

    def read32(self, offset: int) -> int:
        return int.from_bytes(self.read(offset, 4), "little")

    def write16(self, offset: int, value: int) -> None:
        self.write(offset, value.to_bytes(2, "little"))

    def write32(self, offset: int, value: int) -> None:
        self.write(offset, value.to_bytes(4, "little"))

    @property
    def vendor_id(self) -> int:
        """PCI Local Bus spec 6.2.1: offset 0x00."""
        return self.read16(0x00)

    @property
    def device_id(self) -> int:
        """PCI Local Bus spec 6.2.1: offset 0x02."""
        return self.read16(0x02)
