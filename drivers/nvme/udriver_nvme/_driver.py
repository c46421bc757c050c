"""NvmeDriver: the udriver `Driver` for any NVMe controller (PCI class 01:08:02).

`udriver run --device BDF --driver nvme` probes (full controller bring-up, see
`_controller`), reports the controller and its namespaces as a JSON line on stdout, then
serves until told to stop; `remove()` does the orderly shutdown (CC.SHN) and reports the
shutdown state. Options (`--option KEY=VALUE`): `irq` msix|poll, `io_depth`, `timeout`
seconds, `bridge` auto|off (off: no block device even under a privileged parent; with
`--once` the driver then probes, reads LBA 0 and removes itself), `nbd` c|python (the NBD
server's engine: the C data path with up to `nbd_qd` commands in flight, default 32, or
the Python loop, one request at a time).

The manifest declares `bridge = "block"` (ABI 1.1): under a privileged parent (`udriver
supervise`, `udriver-block@.service`, `udriver run` as root) `probe` asks it for a block
device of the first namespace's size and block size, and `run` serves the NBD requests of
/dev/nbdN in a thread (`_nbd.NbdServer`) until the connection ends or the driver is
stopped. Without a parent (`Driver.bridge` is None) the driver only probes and reads.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from udriver.errors import ConfigError
from udriver.runtime import BlockBridge, Device, Driver

from ._controller import IO_TIMEOUT, Controller
from ._nbd import NbdServer
from ._ublk import UblkServer

__all__ = ["NvmeDriver"]


def emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


class NvmeDriver(Driver):
    """Brings an NVMe controller up in probe() and shuts it down in remove()."""

    ids: ClassVar[Sequence[str]] = ("pci:v*d*sv*sd*bc01sc08i02",)
    abi: ClassVar[str] = "1.1"

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        super().__init__(options)
        self.irq = self.options.get("irq", "msix")
        try:
            self.io_depth = int(self.options.get("io_depth", "128"), 0)
            self.timeout = float(self.options.get("timeout", str(IO_TIMEOUT)))
        except ValueError as e:
            raise ConfigError(f"nvme: `io_depth` is an integer and `timeout` a number of "
                              f"seconds (got {self.options}): {e}") from None
        self.use_bridge = self.options.get("bridge", "auto")
        if self.use_bridge not in ("auto", "off"):
            raise ConfigError(f"nvme: `bridge` must be auto or off, got {self.use_bridge!r}")
        self.block_kind = self.options.get("block", "auto")
        if self.block_kind not in ("auto", "ublk", "nbd"):
            raise ConfigError(f"nvme: `block` must be auto, ublk or nbd, got {self.block_kind!r}")
        self.nbd_engine = self.options.get("nbd", "c")
        if self.nbd_engine not in ("c", "python"):
            raise ConfigError(f"nvme: `nbd` must be c or python, got {self.nbd_engine!r}")
        try:
            self.nbd_qd = int(self.options.get("nbd_qd", "32"), 0)
        except ValueError:
            raise ConfigError(f"nvme: `nbd_qd` is an integer, got "
                              f"{self.options['nbd_qd']!r}") from None
        known = {"irq", "io_depth", "timeout", "bridge", "block", "nbd", "nbd_qd"}
        unknown = set(self.options) - known
        if unknown:
            raise ConfigError(f"nvme: unknown option(s) {', '.join(sorted(unknown))} "
                              f"(known: {', '.join(sorted(known))})")
        self.ctrl: Controller | None = None
        self.disk: BlockBridge | None = None
        self.server: NbdServer | UblkServer | None = None
        self._thread: threading.Thread | None = None
        self._ended: list[str] = []  # why the server thread returned, once it did
        self._reported = False

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
        if self.bridge is not None and self.use_bridge == "auto":  # ABI 1.1: a block device
            ns = self.ctrl.namespace()
            kinds = {"auto": ("ublk", "nbd"), "ublk": ("ublk",), "nbd": ("nbd",)}[self.block_kind]
            # ublk: one tag per DMA slot, the slot size the largest request.
            self.disk = self.bridge.block(blocks=ns.nsze, block_size=ns.lba_bytes, kinds=kinds,
                                          queue_depth=min(self.nbd_qd, self.ctrl.slots),
                                          io_bytes=self.ctrl.slot_bytes)
            emit(event="bridge", kind=self.disk.kind, device=self.disk.device, nsid=ns.nsid,
                 blocks=ns.nsze, block_size=ns.lba_bytes)

    async def run(self) -> None:
        """Read LBA 0 (the I/O queue works), then serve the block device, if any."""
        assert self.ctrl is not None
        first = self.ctrl.read(0, 1)  # one command through the I/O queue: it works
        if self.disk is None or self.disk.kind not in ("nbd", "ublk"):
            emit(event="ready", lba0_bytes=len(first))
            return
        if self.disk.kind == "ublk":
            self.server = UblkServer(self.ctrl, self.disk)
        else:
            self.server = NbdServer(self.ctrl, self.disk.fd, engine=self.nbd_engine,
                                    qd=self.nbd_qd)
            self.disk.fd = -1  # the server owns the socket now
        ended = self._ended

        def serve() -> None:
            assert self.server is not None
            try:
                ended.append(self.server.serve())
            except Exception as e:  # noqa: BLE001 - reported, then the driver fails
                ended.append(f"error: {type(e).__name__}: {e}")
        self._thread = threading.Thread(target=serve, name=self.disk.kind, daemon=True)
        self._thread.start()
        if isinstance(self.server, UblkServer):  # /dev/ublkbN appears once served
            await asyncio.to_thread(self.server.start)
        emit(event="ready", lba0_bytes=len(first))
        while self._thread.is_alive():
            await asyncio.sleep(0.2)
        self._report_end()
        if ended and ended[0].startswith("error:"):
            raise RuntimeError(f"nvme: {self.disk.kind} server failed: {ended[0]}")

    def _report_end(self) -> None:
        """Emit "bridge-ended" once the server thread is done (by itself, or stopped by
        `remove`), with the ublk loop's cost counters (io_uring enters, sleeps, MSI-X
        wake-ups, doorbell writes; native/nvme_ublk.c)."""
        if self._reported or self.server is None or not self._ended:
            return
        self._reported = True
        costs: dict[str, int] = {}
        if isinstance(self.server, UblkServer):
            costs = {k: v for k, v in self.server.stats.items()
                     if k in ("enters", "sleeps", "irqs", "sq_rings", "cq_rings")}
        emit(event="bridge-ended", why=self._ended[0], served=self.server.served,
             errors=self.server.errors, **costs)

    def remove(self) -> None:
        if self.server is not None:  # stop serving before the controller goes
            self.server.stop()
            if self._thread is not None:
                self._thread.join(30)
            self._report_end()
            self.server.close()
        if self.disk is not None:
            self.disk.close()
        state = None
        if self.ctrl is not None and self.device is not None and self.device.is_open:
            state = self.ctrl.shutdown()
        emit(event="removed", shutdown=state)
