"""Runtime-specific refinements of udriver.errors."""

from __future__ import annotations

from ..errors import DeviceError

__all__ = ["AccessError"]


class AccessError(DeviceError, ValueError):
    """A register, config or DMA access was out of range, misaligned or of a wrong size."""
