"""NvmeDriver: the udriver `Driver` for any NVMe controller (PCI class 01:08:02).

`udriver run --device BDF --driver nvme` probes (full controller bring-up, see
`_controller`), reports the controller and its namespaces as a JSON line on stdout, then
serves until told to stop; `remove()` does the orderly shutdown (CC.SHN) and reports the
shutdown state. Options (`-o KEY=VALUE`): `irq` msix|poll, `io_depth`, `timeout` seconds.
The kernel bridge (ublk/NBD) that will make the namespace a block device is not here yet
(docs/storage.md).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from udriver.errors import ConfigError
from udriver.runtime import Device, Driver

from ._controller import Controller

__all__ = ["NvmeDriver"]


def emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


class NvmeDriver(Driver):
    """Brings an NVMe controller up in probe() and shuts it down in remove()."""

    ids: ClassVar[Sequence[str]] = ("pci:v*d*sv*sd*bc01sc08i02",)
    abi: ClassVar[str] = "1.0"

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        super().__init__(options)
        self.irq = self.options.get("irq", "msix")
        try:
            self.io_depth = int(self.options.get("io_depth", "128"), 0)
            self.timeout = float(self.options.get("timeout", "5"))
        except ValueError as e:
            raise ConfigError(f"nvme: `io_depth` is an integer and `timeout` a number of "
                              f"seconds (got {self.options}): {e}") from None
        unknown = set(self.options) - {"irq", "io_depth", "timeout"}
        if unknown:
            raise ConfigError(f"nvme: unknown option(s) {', '.join(sorted(unknown))} "
                              "(known: irq, io_depth, timeout)")
        self.ctrl: Controller | None = None

    def probe(self, device: Device) -> None:
        super().probe(device)
        self.ctrl = Controller(device, irq=self.irq, io_depth=self.io_depth,
                               slots=min(64, self.io_depth - 1), timeout=self.timeout)
        self.ctrl.start()
        ident = self.ctrl.ident
        assert ident is not None
        emit(event="probed", bdf=device.bdf, pid=os.getpid(), model=ident.model,
             serial=ident.serial, firmware=ident.firmware, version=f"{self.ctrl.version:#x}",
             irq=self.irq, mdts_bytes=ident.max_transfer(4096),
             namespaces=[{"nsid": ns.nsid, "blocks": ns.nsze, "lba_bytes": ns.lba_bytes}
                         for ns in self.ctrl.namespaces.values()])

    async def run(self) -> None:
        """Nothing to serve yet without a kernel bridge: report and wait for stop."""
        assert self.ctrl is not None
        first = self.ctrl.read(0, 1)  # one command through the I/O queue: it works
        emit(event="ready", lba0_bytes=len(first))

    def remove(self) -> None:
        state = None
        if self.ctrl is not None and self.device is not None and self.device.is_open:
            state = self.ctrl.shutdown()
        emit(event="removed", shutdown=state)
