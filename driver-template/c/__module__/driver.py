"""The `{{name}}` driver, with its device work in C (`{{module}}/native.py`).

The runtime (`udriver run {{name}} BDF`, or the `udriver@BDF` service) opens the device
over VFIO, calls `probe()`, awaits `run()`, calls `on_interrupt()` for each interrupt
and `remove()` on shutdown.
"""

from __future__ import annotations

import logging

from udriver.modalias import PciId
from udriver.runtime import Device, Driver

from . import native

__all__ = ["{{Class}}"]

log = logging.getLogger(__name__)


class {{Class}}(Driver):
    """Drives PCI device {{vendor_hex}}:{{device_hex}}."""

    # Must list the same devices as `[tool.udriver] modaliases` in pyproject.toml.
    ids = [{{pciid}}]
    abi = "{{abi}}"

    def probe(self, device: Device) -> None:
        super().probe(device)
        native.check_api()
        ident = native.read_id(device)
        log.info("{{name}}: %s register 0 = %#010x (read in C)", device.bdf, ident)

    def remove(self) -> None:
        log.info("{{name}}: removed")
