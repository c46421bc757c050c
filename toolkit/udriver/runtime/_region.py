"""BAR regions and PCI config space, with checked accessors.

Every accessor checks its arguments in Python first, so a mistake raises `AccessError`
with the offending value; the C layer checks the same again (it also serves drivers'
C code). Accesses are exactly the requested width and naturally aligned: PCIe devices
(and QEMU's edu below 0x80) may treat other widths differently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._nativecall import check, ffi, lib
from ._errors import AccessError

if TYPE_CHECKING:
    from ._device import Device

__all__ = ["Region", "ConfigSpace"]

_WIDTHS = (1, 2, 4, 8)


class Region:
    """One memory BAR of an open device (VFIO_PCI_BAR0..5_REGION_INDEX)."""

    def __init__(self, device: "Device", index: int, size: int, flags: int) -> None:
        self._device = device
        self.index = index
        """BAR number, 0-5."""
        self.size = size
        """Size in bytes."""
        self.flags = flags
        """UDRIVER_REGION_* bits."""
        self._out = {w: ffi.new(f"uint{w * 8}_t *") for w in _WIDTHS}
        self._read = {1: lib.ud_api_bar_read8, 2: lib.ud_api_bar_read16,
                      4: lib.ud_api_bar_read32, 8: lib.ud_api_bar_read64}
        self._write = {1: lib.ud_api_bar_write8, 2: lib.ud_api_bar_write16,
                       4: lib.ud_api_bar_write32, 8: lib.ud_api_bar_write64}

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

    def read(self, offset: int, width: int) -> int:
        """Read `width` bytes (1, 2, 4 or 8) at `offset`.

        Raises:
            AccessError: bad width, past the end, or misaligned.
            DeviceError: the device is closed.
            NativeError: the kernel refused the access.
        """
        self._check(offset, width)
        out = self._out[width]
        check(self._read[width](self._device.c_handle, self.index, offset, out),
              f"read BAR{self.index}+{offset:#x}")
        return int(out[0])

    def write(self, offset: int, width: int, value: int) -> None:
        """Write `value` as `width` bytes at `offset`.

        Raises:
            AccessError: bad width, past the end, misaligned, or `value` does not fit.
            DeviceError: the device is closed.
            NativeError: the kernel refused the access.
        """
        self._check(offset, width)
        if not isinstance(value, int) or not 0 <= value < 1 << (8 * width):
            raise AccessError(f"BAR{self.index}: value {value!r} does not fit in {width} bytes")
        check(self._write[width](self._device.c_handle, self.index, offset, value),
              f"write BAR{self.index}+{offset:#x}")

    def read8(self, offset: int) -> int:
        return self.read(offset, 1)

    def read16(self, offset: int) -> int:
        return self.read(offset, 2)

    def read32(self, offset: int) -> int:
        return self.read(offset, 4)

    def read64(self, offset: int) -> int:
        return self.read(offset, 8)

    def write8(self, offset: int, value: int) -> None:
        self.write(offset, 1, value)

    def write16(self, offset: int, value: int) -> None:
        self.write(offset, 2, value)

    def write32(self, offset: int, value: int) -> None:
        self.write(offset, 4, value)

    def write64(self, offset: int, value: int) -> None:
        self.write(offset, 8, value)


class ConfigSpace:
    """PCI configuration space through VFIO_PCI_CONFIG_REGION_INDEX (little-endian).

    vfio-pci virtualises parts of it (BARs, MSI/MSI-X capabilities); see
    drivers/vfio/pci/vfio_pci_config.c.
    """

    def __init__(self, device: "Device", size: int) -> None:
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
