"""udriver driver for QEMU's edu device (PCI 1234:11e8), with its device work in C."""

from ._driver import EduCDriver

__all__ = ["EduCDriver"]
