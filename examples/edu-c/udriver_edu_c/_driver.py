"""EduCDriver: the edu driver with every register access done in C (native/edu_c.c).

Python keeps what the runtime offers Python drivers - the event loop, interrupts as
eventfds, options - and the checks' bookkeeping. Results go to stdout as the same JSON
lines examples/edu writes (`{"check": ..., "ok": ...}`, `{"event": "done", "ok": ...}`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from udriver.errors import ConfigError
from udriver.runtime import Device, Driver, IrqType

from ._c import EduC, check_api

__all__ = ["EduCDriver"]

_log = logging.getLogger(__name__)
_DEFAULT_CHECKS = "id,liveness,factorial_msi,factorial_intx,dma,cycles"
_IRQ_TIMEOUT = 10.0
_ID_EXPECTED = 0x010000ED
_IRQ_FACTORIAL, _IRQ_DMA = 0x1, 0x100
_DMA_BUFFER, _DMA_MAX = 0x40000, 4095  # edu's internal buffer; QEMU 7.2 rejects 4096


def emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


class EduCDriver(Driver):
    """Drives edu from C: identification, liveness, factorial (MSI/INTx), raise/ack, DMA."""

    ids = ["pci:v00001234d000011E8sv*sd*bc*sc*i*"]
    abi = "1.0"

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        super().__init__(options)
        self.c: EduC | None = None
        self.ident = 0
        self.stray = 0
        self._waiter: asyncio.Future[tuple[int, int]] | None = None
        self.checks = [c for c in self.options.get("checks", _DEFAULT_CHECKS).split(",") if c]
        self.irq = self.options.get("irq", "msi")
        try:
            self.cycles = int(self.options.get("cycles", "1000"), 0)
        except ValueError:
            self.cycles = 0
        if set(self.checks) - set(_CHECKS) or self.irq not in ("msi", "intx") or self.cycles < 1:
            raise ConfigError(f"edu_c: checks are {', '.join(_CHECKS)}; irq is msi or intx; "
                              f"cycles >= 1 (got {self.options})")

    def probe(self, device: Device) -> None:
        super().probe(device)
        check_api()
        self.c = EduC(device)
        self.ident = self.c.probe()
        self.c.bus_master(True)
        emit(event="probed", bdf=device.bdf, id=f"{self.ident:#010x}", pid=os.getpid(), impl="c")

    async def run(self) -> None:
        ok = True
        for name in self.checks:
            result = await _CHECKS[name](self)
            ok = ok and bool(result.get("ok"))
            emit(check=name, **result)
        emit(event="done", ok=ok)

    def on_interrupt(self, vector: int, count: int) -> None:
        assert self.c is not None
        status = self.c.irq_ack()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((status, count))
        else:
            self.stray += count

    def remove(self) -> None:
        if self.device is not None and self.device.is_open and self.c is not None:
            self.device.interrupts.disable()
            self.c.bus_master(False)
        emit(event="removed")

    def _use_irq(self, kind: str) -> None:
        assert self.device is not None
        want = IrqType.MSI if kind == "msi" else IrqType.INTX
        if self.device.interrupts.kind is not want:
            self.device.interrupts.enable(want)

    async def _interrupt(self, trigger: Callable[[], None]) -> tuple[int, int] | None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            trigger()
            return await asyncio.wait_for(self._waiter, _IRQ_TIMEOUT)
        except TimeoutError:
            return None
        finally:
            self._waiter = None

    async def check_id(self) -> dict[str, Any]:
        return {"ok": self.ident == _ID_EXPECTED, "value": f"{self.ident:#010x}"}

    async def check_liveness(self) -> dict[str, Any]:
        assert self.c is not None
        bad = self.c.liveness()
        return {"ok": bad == 0, "mismatches": bad}

    async def _factorial(self, kind: str, n: int = 10) -> dict[str, Any]:
        assert self.c is not None
        c = self.c
        self._use_irq(kind)
        got = await self._interrupt(lambda: c.factorial_start(n))
        value = c.factorial_result()
        expected = 1
        for i in range(2, n + 1):
            expected *= i
        status = None if got is None else got[0]
        return {"ok": status == _IRQ_FACTORIAL and value == expected, "n": n, "value": value,
                "expected": expected, "irq": kind, "irq_status": status}

    async def check_factorial_msi(self) -> dict[str, Any]:
        return await self._factorial("msi")

    async def check_factorial_intx(self) -> dict[str, Any]:
        return await self._factorial("intx")

    async def check_cycles(self) -> dict[str, Any]:
        assert self.c is not None
        c = self.c
        self._use_irq(self.irq)
        lost = duplicated = wrong = 0
        self.stray = 0
        for i in range(self.cycles):
            value = 1 << (12 + i % 16)
            got = await self._interrupt(lambda v=value: c.irq_raise(v))
            if got is None:
                lost += 1
                continue
            duplicated += got[1] - 1
            wrong += got[0] != value
        await asyncio.sleep(0.2)
        duplicated += self.stray
        return {"ok": lost == duplicated == wrong == 0, "cycles": self.cycles, "lost": lost,
                "duplicated": duplicated, "wrong_status": wrong, "irq": self.irq}

    async def check_dma(self) -> dict[str, Any]:
        assert self.c is not None
        c = self.c
        self._use_irq(self.irq)
        n = _DMA_MAX
        data = os.urandom(n)
        out, back = c.dma_alloc(n), c.dma_alloc(n)
        try:
            c.dma_view(out, n)[:] = data
            irq1 = await self._interrupt(lambda: c.dma_start(out.iova, _DMA_BUFFER, n, False))
            irq2 = await self._interrupt(lambda: c.dma_start(_DMA_BUFFER, back.iova, n, True))
            got = bytes(c.dma_view(back, n))
            status = [None if i is None else i[0] for i in (irq1, irq2)]
            return {"ok": status == [_IRQ_DMA, _IRQ_DMA] and got == data, "bytes": n,
                    "mismatched_bytes": sum(a != b for a, b in zip(got, data)),
                    "iova_out": f"{out.iova:#x}", "iova_back": f"{back.iova:#x}",
                    "irq_status": status}
        finally:
            c.dma_free(out)
            c.dma_free(back)


_CHECKS: dict[str, Callable[[EduCDriver], Any]] = {
    "id": EduCDriver.check_id,
    "liveness": EduCDriver.check_liveness,
    "factorial_msi": EduCDriver.check_factorial_msi,
    "factorial_intx": EduCDriver.check_factorial_intx,
    "dma": EduCDriver.check_dma,
    "cycles": EduCDriver.check_cycles,
}
