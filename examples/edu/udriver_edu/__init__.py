"""udriver driver for QEMU's edu device (PCI 1234:11e8)."""

from ._driver import EduDriver

__all__ = ["EduDriver"]
