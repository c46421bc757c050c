"""The runner with and without the kernel's request IRQ (issue 12, acceptance 3).

vfio-pci offers `VFIO_PCI_REQ_IRQ_INDEX` (Linux 4.0, linux/vfio.h) on every kernel the VM tests
boot, so its fallback cannot be reached on a real kernel: `Interrupts.request_channel()`
returns None when the device reports no such IRQ, and the runner must then serve the driver
without it and still remove it on SIGTERM (what systemd and `udriver supervise` send). Both
paths are driven here through the runner's own loop (`_serve`) with a fake device: the device
layer is this project's interface. The real request IRQ, on every kernel, is in
tests/vm/test_hotplug.py and tests/vm/test_booted_system.py (unplug while running).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

import pytest

from udriver.runtime.runner import _serve

BDF = "0000:01:00.0"


class _Interrupts:
    def __init__(self, request_fd: int | None) -> None:
        self.request_fd = request_fd
        self.attached = False

    def request_channel(self) -> int | None:
        return self.request_fd

    def attach(self, loop: asyncio.AbstractEventLoop, callback: Callable[..., Any]) -> None:
        self.attached = True

    def detach(self) -> None:
        self.attached = False


class _Device:
    bdf = BDF

    def __init__(self, request_fd: int | None) -> None:
        self.interrupts = _Interrupts(request_fd)


class _Driver:
    """Probes, then runs until cancelled; `poke` is called once run() is under way."""

    def __init__(self, poke: Callable[[], None]) -> None:
        self.poke = poke
        self.events: list[str] = []

    def probe(self, device: _Device) -> None:
        self.events.append("probe")

    def on_interrupt(self, *args: Any) -> None:  # pragma: no cover - never raised here
        self.events.append("irq")

    async def run(self) -> None:
        self.events.append("run")
        self.poke()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.events.append("cancelled")
            raise


def _serve_until_poked(device: _Device, poke: Callable[[], None]) -> _Driver:
    driver = _Driver(poke)
    asyncio.run(asyncio.wait_for(_serve(driver, device, False), 30))  # type: ignore[arg-type]
    return driver


def test_request_irq_fired_by_the_kernel_stops_the_driver(
        caplog: pytest.LogCaptureFixture) -> None:
    fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    try:
        device = _Device(fd)
        with caplog.at_level(logging.WARNING):
            driver = _serve_until_poked(device, lambda: os.eventfd_write(fd, 1))
        assert driver.events == ["probe", "run", "cancelled"]
        assert f"{BDF}: the kernel asks for the device back" in caplog.text
        assert device.interrupts.attached is False  # detached on the way out
        with pytest.raises(BlockingIOError):
            os.eventfd_read(fd)  # the runner consumed the kernel's signal
    finally:
        os.close(fd)


def test_without_request_irq_the_driver_runs_and_sigterm_still_removes_it(
        caplog: pytest.LogCaptureFixture) -> None:
    """The fallback: no request channel (None) -> no reader; SIGTERM is the way out."""
    device = _Device(None)
    before = signal.getsignal(signal.SIGTERM)
    with caplog.at_level(logging.WARNING):
        driver = _serve_until_poked(device, lambda: os.kill(os.getpid(), signal.SIGTERM))
    assert driver.events == ["probe", "run", "cancelled"]
    assert "asks for the device back" not in caplog.text
    assert device.interrupts.attached is False
    assert signal.getsignal(signal.SIGTERM) == before  # the runner's handler is gone again
