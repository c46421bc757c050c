"""udriver.runtime: the Python API user-mode drivers are written against.

Semver'd together with the C ABI (`udriver.abi.ABI_VERSION`, native/udriver.h).

    with Device("0000:00:03.0") as dev:
        bar0 = dev.bar(0)
        print(hex(bar0.read32(0)))

A driver's C code gets the C function table with `api_address()` / `api_capsule()`
and a device's handle with `Device.c_handle` / `Device.c_address`; headers are at
`get_include()`.
"""

from __future__ import annotations

from pathlib import Path

from .._nativecall import CAPSULE_NAME, api_address, api_capsule
from ..abi import ABI_VERSION
from ._bridge import BlockBridge, Bridge, NetBridge
from ._device import MAX_DMA_SIZE, Device
from ._dma import DmaBuffer
from ._driver import Driver
from ._errors import AccessError
from ._irq import Interrupts, IrqType
from ._kernel import (
    IommuInfo,
    KernelFeatureError,
    KernelFeatures,
    choose_block_bridge,
    choose_iommu_type,
    iommu_info,
    read_features,
)
from ._region import ConfigSpace, Region

__all__ = [
    "ABI_VERSION",
    "CAPSULE_NAME",
    "MAX_DMA_SIZE",
    "AccessError",
    "BlockBridge",
    "Bridge",
    "ConfigSpace",
    "Device",
    "DmaBuffer",
    "Driver",
    "Interrupts",
    "IommuInfo",
    "IrqType",
    "KernelFeatureError",
    "KernelFeatures",
    "NetBridge",
    "Region",
    "api_address",
    "api_capsule",
    "choose_block_bridge",
    "choose_iommu_type",
    "get_include",
    "iommu_info",
    "read_features",
]


def get_include() -> str:
    """The directory holding `udriver.h`, for a driver's C extension build."""
    return str(Path(__file__).resolve().parent.parent / "include")
