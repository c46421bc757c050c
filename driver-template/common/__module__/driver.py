"""The `{{name}}` driver.

The runtime (`udriver run {{name}} BDF`, or the `udriver@BDF` service) opens the device
over VFIO, calls `probe()`, awaits `run()`, calls `on_interrupt()` for each interrupt
and `remove()` on shutdown.
"""

from __future__ import annotations

import logging

from udriver.modalias import PciId
from udriver.runtime import Device, Driver

__all__ = ["{{Class}}"]

log = logging.getLogger(__name__)


class {{Class}}(Driver):
    """Drives PCI device {{vendor_hex}}:{{device_hex}}."""

    # Must list the same devices as `[tool.udriver] modaliases` in pyproject.toml.
    ids = [{{pciid}}]
    abi = "{{abi}}"

    def probe(self, device: Device) -> None:
        super().probe(device)
        # Replace with your device's bring-up; BAR0's first register as an example.
        ident = device.bar(0).read32(0)
        log.info("{{name}}: %s register 0 = %#010x", device.bdf, ident)

    def remove(self) -> None:
        log.info("{{name}}: removed")
