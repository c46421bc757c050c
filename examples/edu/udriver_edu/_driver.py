"""EduDriver: the udriver driver for QEMU's edu device.

Interrupt model: `on_interrupt` is the top half. It reads IRQ_STATUS, acknowledges
exactly those bits (edu.rst: 0x64 clears them, lowering INTx), and hands the status to
whichever check awaits it. For INTx the runtime unmasks the line after the callback
returns, i.e. after the device has deasserted it.

Results go to stdout as JSON lines (see README.md); diagnostics go to the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from udriver.errors import ConfigError, DeviceError
from udriver.runtime import Device, Driver, IrqType, Region

from . import _regs as R

__all__ = ["EduDriver"]

_log = logging.getLogger(__name__)
_DEFAULT_CHECKS = "id,liveness,factorial_msi,factorial_intx,dma,cycles"
_IRQ_TIMEOUT = 10.0  # seconds; TCG is slow and a DMA takes 100 ms of virtual time


def emit(**fields: Any) -> None:
    """One result line on stdout."""
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


class EduDriver(Driver):
    """Drives edu: identification, liveness, factorial (MSI/INTx), raise/ack, DMA."""

    ids = ("pci:v00001234d000011E8sv*sd*bc*sc*i*",)
    abi = "1.0"

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        super().__init__(options)
        self.bar0: Region | None = None
        self._waiter: asyncio.Future[tuple[int, int] | None] | None = None
        self.stray = 0
        """Interrupts that arrived while nothing was waiting for one."""
        self.checks = [c for c in self.options.get("checks", _DEFAULT_CHECKS).split(",") if c]
        self.cycles = self._int_option("cycles", 1000, 1, 10_000_000)
        self.dma_size = self._int_option("dma_size", R.DMA_MAX_TRANSFER, 1, R.DMA_MAX_TRANSFER)
        self.irq = self.options.get("irq", "msi")
        unknown = set(self.checks) - set(_CHECKS)
        if unknown or self.irq not in ("msi", "intx"):
            raise ConfigError(f"edu: unknown `checks` {sorted(unknown)} or `irq` {self.irq!r}; "
                              f"checks are {', '.join(_CHECKS)}, irq is msi or intx")

    def _int_option(self, key: str, default: int, lo: int, hi: int) -> int:
        text = self.options.get(key, str(default))
        try:
            value = int(text, 0)
        except ValueError:
            value = lo - 1
        if not lo <= value <= hi:
            raise ConfigError(f"edu: option `{key}` must be an integer {lo}..{hi}, got {text!r}")
        return value

    # -- driver lifecycle ----------------------------------------------------------------

    def probe(self, device: Device) -> None:
        super().probe(device)
        self.bar0 = device.bar(0)
        ident = self.bar0.read32(R.ID)
        if ident & R.ID_LOW_MASK != R.ID_LOW:
            raise DeviceError(f"{device.bdf} is not an edu device: ID register reads {ident:#010x}")
        self._quiesce()
        device.set_bus_master(True)  # DMA and MSI are memory writes by the device
        emit(event="probed", bdf=device.bdf, id=f"{ident:#010x}", pid=os.getpid())

    def _quiesce(self) -> None:
        """Bring the device to a known state: a previous owner may have died mid-work.

        edu.rst: a DMA in flight keeps DMA_CMD_START set until done; a factorial keeps
        STATUS_COMPUTING set; IRQ_STATUS keeps raised-but-unacknowledged bits.
        """
        assert self.bar0 is not None
        deadline = time.monotonic() + _IRQ_TIMEOUT
        while (self.bar0.read64(R.DMA_CMD) & R.DMA_CMD_START
               or self.bar0.read32(R.STATUS) & R.STATUS_COMPUTING):
            if time.monotonic() > deadline:
                raise DeviceError("edu: DMA or factorial still busy after "
                                  f"{_IRQ_TIMEOUT:.0f} s")
            time.sleep(0.01)
        self.bar0.write32(R.STATUS, 0)
        pending = self.bar0.read32(R.IRQ_STATUS)
        if pending:
            _log.info("edu: acknowledging stale interrupt status %#x", pending)
            self.bar0.write32(R.IRQ_ACK, pending)

    async def run(self) -> None:
        ok = True
        for name in self.checks:
            result = await _CHECKS[name](self)
            ok = ok and bool(result.get("ok"))
            emit(check=name, **result)
        emit(event="done", ok=ok)

    def on_interrupt(self, vector: int, count: int) -> None:
        assert self.bar0 is not None
        status = self.bar0.read32(R.IRQ_STATUS)
        self.bar0.write32(R.IRQ_ACK, status)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((status, count))
        else:
            self.stray += count
            _log.warning("edu: unexpected interrupt (status %#x, count %d)", status, count)

    def remove(self) -> None:
        if self.device is not None and self.device.is_open:
            self.device.interrupts.disable()
            self.device.set_bus_master(False)
        emit(event="removed")

    # -- helpers -------------------------------------------------------------------------

    def _use_irq(self, kind: str) -> None:
        assert self.device is not None
        want = IrqType.MSI if kind == "msi" else IrqType.INTX
        if self.device.interrupts.kind is not want:
            self.device.interrupts.enable(want)

    async def _interrupt(self, trigger: Any) -> tuple[int, int] | None:
        """Arm a waiter, call `trigger()`, wait for the interrupt: (status, count) or None."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[tuple[int, int] | None] = loop.create_future()
        self._waiter = waiter
        # A timer instead of asyncio.wait_for(): on 3.11 wait_for can swallow a
        # cancellation (SIGTERM) that races with the interrupt (CPython gh-86296).
        timer = loop.call_later(_IRQ_TIMEOUT, lambda: waiter.done() or waiter.set_result(None))
        try:
            trigger()
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    # -- checks --------------------------------------------------------------------------

    async def check_id(self) -> dict[str, Any]:
        assert self.bar0 is not None
        value = self.bar0.read32(R.ID)
        return {"ok": value == R.ID_EXPECTED, "value": f"{value:#010x}"}

    async def check_liveness(self) -> dict[str, Any]:
        assert self.bar0 is not None
        bad = []
        for pattern in (0x00000000, 0xFFFFFFFF, 0x12345678, 0xA5A55A5A):
            self.bar0.write32(R.LIVENESS, pattern)
            got = self.bar0.read32(R.LIVENESS)
            if got != ~pattern & 0xFFFFFFFF:
                bad.append(f"{pattern:#x}->{got:#x}")
        return {"ok": not bad, "mismatches": bad}

    async def _factorial(self, kind: str, n: int = 10) -> dict[str, Any]:
        assert self.bar0 is not None
        bar0 = self.bar0
        self._use_irq(kind)
        bar0.write32(R.STATUS, R.STATUS_IRQ_FACT)
        got = await self._interrupt(lambda: bar0.write32(R.FACTORIAL, n))
        value = bar0.read32(R.FACTORIAL)
        expected = 1
        for i in range(2, n + 1):
            expected *= i
        status = None if got is None else got[0]
        return {"ok": got is not None and status == R.IRQ_FACTORIAL and value == expected,
                "n": n, "value": value, "expected": expected, "irq": kind,
                "irq_status": status}

    async def check_factorial_msi(self) -> dict[str, Any]:
        return await self._factorial("msi")

    async def check_factorial_intx(self) -> dict[str, Any]:
        return await self._factorial("intx")

    async def check_cycles(self) -> dict[str, Any]:
        """Raise/ack `cycles` times; every raise must produce exactly one interrupt."""
        assert self.bar0 is not None
        bar0 = self.bar0
        self._use_irq(self.irq)
        lost = duplicated = wrong = 0
        self.stray = 0
        start = time.perf_counter()
        for i in range(self.cycles):
            value = 1 << (12 + i % 16)  # bits 12..27: never a factorial/DMA status
            got = await self._interrupt(lambda v=value: bar0.write32(R.IRQ_RAISE, v))
            if got is None:
                lost += 1
                continue
            if got[1] != 1:
                duplicated += got[1] - 1
            if got[0] != value:
                wrong += 1
            if i % 1000 == 999:
                emit(event="progress", cycles=i + 1)
        elapsed = time.perf_counter() - start
        await asyncio.sleep(0.2)  # a late duplicate would show up as a stray interrupt
        duplicated += self.stray
        return {"ok": lost == 0 and duplicated == 0 and wrong == 0, "cycles": self.cycles,
                "lost": lost, "duplicated": duplicated, "wrong_status": wrong,
                "irq": self.irq, "seconds": round(elapsed, 3)}

    async def _dma(self, src: int, dst: int, count: int, to_ram: bool) -> tuple[int, int] | None:
        assert self.bar0 is not None
        bar0 = self.bar0
        bar0.write64(R.DMA_SRC, src)
        bar0.write64(R.DMA_DST, dst)
        bar0.write64(R.DMA_COUNT, count)
        cmd = R.DMA_CMD_START | R.DMA_CMD_IRQ | (R.DMA_CMD_TO_RAM if to_ram else 0)
        return await self._interrupt(lambda: bar0.write64(R.DMA_CMD, cmd))

    async def check_dma(self) -> dict[str, Any]:
        """host -> device -> host round trip of `dma_size` random bytes, bit for bit."""
        assert self.device is not None
        self._use_irq(self.irq)
        n = self.dma_size
        data = os.urandom(n)
        out = self.device.dma_alloc(n, R.DMA_MASK)
        back = self.device.dma_alloc(n, R.DMA_MASK)
        try:
            out.view[:n] = data
            irq1 = await self._dma(out.iova, R.DMA_BUFFER, n, to_ram=False)
            irq2 = await self._dma(R.DMA_BUFFER, back.iova, n, to_ram=True)
            got = bytes(back.view[:n])
            diff = sum(1 for a, b in zip(got, data) if a != b)
            return {"ok": irq1 is not None and irq2 is not None and got == data,
                    "bytes": n, "mismatched_bytes": diff, "iova_out": f"{out.iova:#x}",
                    "iova_back": f"{back.iova:#x}",
                    "irq_status": [None if i is None else i[0] for i in (irq1, irq2)]}
        finally:
            out.free()
            back.free()

    async def check_unmapped_dma(self) -> dict[str, Any]:
        """After unmap, a device write to the old IOVA must not reach the buffer."""
        assert self.device is not None
        self._use_irq(self.irq)
        n = self.dma_size
        src = self.device.dma_alloc(n, R.DMA_MASK)
        victim = self.device.dma_alloc(n, R.DMA_MASK)
        try:
            src.view[:n] = os.urandom(n)
            loaded = await self._dma(src.iova, R.DMA_BUFFER, n, to_ram=False)
            victim.view[:n] = b"\x5a" * n
            stale = victim.iova
            victim.unmap()
            done = await self._dma(R.DMA_BUFFER, stale, n, to_ram=True)
            unchanged = bytes(victim.view[:n]) == b"\x5a" * n
            return {"ok": loaded is not None and unchanged, "unchanged": unchanged,
                    "stale_iova": f"{stale:#x}", "dma_irq": done is not None}
        finally:
            src.free()
            victim.free()


_CHECKS = {
    "id": EduDriver.check_id,
    "liveness": EduDriver.check_liveness,
    "factorial_msi": EduDriver.check_factorial_msi,
    "factorial_intx": EduDriver.check_factorial_intx,
    "dma": EduDriver.check_dma,
    "cycles": EduDriver.check_cycles,
    "unmapped_dma": EduDriver.check_unmapped_dma,
}
