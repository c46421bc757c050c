"""Interrupts onto eventfds (linux/vfio.h VFIO_DEVICE_SET_IRQS, DATA_EVENTFD).

Rules:
- One IRQ type at a time: `enable()` of another type disables the current one first.
- Every vector gets its own non-blocking eventfd; an eventfd's counter is the number of
  interrupts since it was last read, so none is lost while nobody waits.
- INTx is level-triggered and vfio-pci masks it when it fires: after the device is
  serviced (its interrupt condition acknowledged), call `unmask()`. The asyncio
  integration does that itself after the callback returns.
"""

from __future__ import annotations

import asyncio
import enum
import os
import select
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._nativecall import check, ffi, lib
from ..errors import DeviceError

if TYPE_CHECKING:
    from ._device import Device

__all__ = ["Interrupts", "IrqType"]

InterruptCallback = Callable[[int, int], None]


class IrqType(enum.IntEnum):
    """IRQ indexes, VFIO_PCI_INTX/MSI/MSIX_IRQ_INDEX."""

    INTX = 0
    MSI = 1
    MSIX = 2


REQ_IRQ_INDEX = 4
"""VFIO_PCI_REQ_IRQ_INDEX: vfio-pci signals it when the kernel wants the device back."""


class Interrupts:
    """The interrupts of one open device."""

    def __init__(self, device: Device) -> None:
        self._device = device
        self.kind: IrqType | None = None
        """The enabled IRQ type, or None."""
        self._fds: list[int] = []
        self._req_fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._callback: InterruptCallback | None = None

    def available(self, kind: IrqType | str) -> int:
        """How many vectors of `kind` the device offers (0: none).

        Raises:
            DeviceError: the device is closed.
            NativeError: VFIO_DEVICE_GET_IRQ_INFO failed.
        """
        k = _kind(kind)
        info = ffi.new("struct udriver_irq_info *")
        check(lib.ud_api_irq_info(self._device.c_handle, k, info), f"IRQ info for {k.name}")
        return int(info.count)

    def enable(self, kind: IrqType | str = IrqType.MSI, count: int = 1) -> list[int]:
        """Route `count` vectors of `kind` to fresh eventfds.

        Returns:
            The eventfds, one per vector (owned by this object).

        Raises:
            ValueError: `count` < 1 or more than the device offers.
            DeviceError: the device is closed or lacks `kind`.
            NativeError: VFIO_DEVICE_SET_IRQS failed.
        """
        k = _kind(kind)
        have = self.available(k)
        if have == 0:
            raise DeviceError(f"device {self._device.bdf} has no {k.name} interrupt")
        if not isinstance(count, int) or not 1 <= count <= have:
            raise ValueError(f"{k.name}: `count` must be 1..{have}, got {count!r}")
        self.disable()
        fds = [os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK) for _ in range(count)]
        try:
            arr = ffi.new("int32_t[]", fds)
            check(lib.ud_api_irq_enable(self._device.c_handle, k, 0, count, arr),
                  f"enable {k.name} x{count}")
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        self.kind, self._fds = k, fds
        self._watch()
        return list(fds)

    def request_channel(self) -> int | None:
        """An eventfd the kernel signals when it asks for the device back.

        On hot-unplug (or an unbind), vfio-pci's remove waits until user space closes the
        device and meanwhile signals VFIO_PCI_REQ_IRQ_INDEX (drivers/vfio/pci/
        vfio_pci_core.c, `vfio_pci_core_request`); without this channel it can only log
        "No device request channel registered, blocked until released by user". The
        runner registers it for every driver and removes the driver when it fires.
        Independent of `enable()`. Idempotent.

        Returns:
            The eventfd (owned by this object), or None if the device has no such IRQ.

        Raises:
            NativeError: VFIO_DEVICE_SET_IRQS failed.
        """
        if self._req_fd is not None:
            return self._req_fd
        info = ffi.new("struct udriver_irq_info *")
        if lib.ud_api_irq_info(self._device.c_handle, REQ_IRQ_INDEX, info) != 0 \
                or info.count < 1:
            return None
        fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            check(lib.ud_api_irq_enable(self._device.c_handle, REQ_IRQ_INDEX, 0, 1,
                                        ffi.new("int32_t[]", [fd])), "enable the request IRQ")
        except BaseException:
            os.close(fd)
            raise
        self._req_fd = fd
        return fd

    def close_request_channel(self) -> None:
        """Unregister and close the request eventfd. Idempotent; never raises."""
        fd, self._req_fd = self._req_fd, None
        if fd is None:
            return
        try:
            if self._device.is_open:
                lib.ud_api_irq_disable(self._device.c_handle, REQ_IRQ_INDEX)
        finally:
            os.close(fd)

    def fileno(self, vector: int = 0) -> int:
        """The eventfd of `vector`.

        Raises:
            DeviceError: no interrupts are enabled, or `vector` does not exist.
        """
        if not 0 <= vector < len(self._fds):
            raise DeviceError(f"interrupt vector {vector!r} is not enabled "
                              f"({len(self._fds)} enabled)")
        return self._fds[vector]

    def wait(self, timeout: float | None = None, vector: int = 0) -> int:
        """Block until `vector` fires or `timeout` seconds pass.

        Returns:
            How many interrupts arrived since the last wait (0 on timeout).

        Raises:
            DeviceError: no interrupts are enabled, or `vector` does not exist.
        """
        fd = self.fileno(vector)
        ms = -1 if timeout is None else max(0, int(timeout * 1000))
        p = select.poll()
        p.register(fd, select.POLLIN)
        if not p.poll(ms):
            return 0
        return self._drain(fd)

    def pending(self, vector: int = 0) -> int:
        """Consume and return interrupts already signalled on `vector` without waiting."""
        return self._drain(self.fileno(vector))

    @staticmethod
    def _drain(fd: int) -> int:
        try:
            return os.eventfd_read(fd)
        except BlockingIOError:
            return 0

    def unmask(self, vector: int = 0) -> None:
        """Unmask INTx after servicing (VFIO_IRQ_SET_ACTION_UNMASK); no-op for MSI/MSI-X.

        Raises:
            DeviceError: the device is closed.
            NativeError: the kernel refused.
        """
        if self.kind is IrqType.INTX:
            check(lib.ud_api_irq_unmask(self._device.c_handle, IrqType.INTX, vector),
                  "unmask INTx")

    def attach(self, loop: asyncio.AbstractEventLoop, callback: InterruptCallback) -> None:
        """Call `callback(vector, count)` from `loop` whenever a vector fires.

        Stays in force across `enable()` calls (the new eventfds are watched too) until
        `detach()`. For INTx the line is unmasked after the callback returns. While
        attached, use the callback rather than `wait()`/`wait_async()`.
        """
        self.detach()
        self._loop, self._callback = loop, callback
        self._watch()

    def _watch(self) -> None:
        if self._loop is None or self._callback is None:
            return
        for vector, fd in enumerate(self._fds):
            self._loop.add_reader(fd, self._on_readable, vector, fd, self._callback)

    def _on_readable(self, vector: int, fd: int, callback: InterruptCallback) -> None:
        count = self._drain(fd)
        if count:
            callback(vector, count)
            if self._fds:  # the callback may have disabled interrupts
                self.unmask(vector)

    async def wait_async(self, timeout: float | None = None, vector: int = 0) -> int:
        """`wait()` for asyncio code; returns 0 on timeout. Do not mix with `attach()`."""
        fd = self.fileno(vector)
        n = self._drain(fd)
        if n:
            return n
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        loop.add_reader(fd, ready)
        # A timer rather than asyncio.wait_for(), which on 3.11 can swallow a
        # cancellation racing with the result (CPython gh-86296).
        timer = None if timeout is None else loop.call_later(timeout, ready)
        try:
            await fut
        finally:
            loop.remove_reader(fd)
            if timer is not None:
                timer.cancel()
        return self._drain(fd)

    def detach(self) -> None:
        """Stop delivering to the event loop."""
        self._unwatch()
        self._loop = self._callback = None

    def _unwatch(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            for fd in self._fds:
                self._loop.remove_reader(fd)

    def disable(self) -> None:
        """Tear down the current IRQ type and close its eventfds. Idempotent.

        Raises:
            NativeError: the kernel refused.
        """
        if self.kind is None:
            return
        self._unwatch()
        kind, fds = self.kind, self._fds
        self.kind, self._fds = None, []
        try:
            if self._device.is_open:
                check(lib.ud_api_irq_disable(self._device.c_handle, kind), f"disable {kind.name}")
        finally:
            for fd in fds:
                os.close(fd)


def _kind(kind: IrqType | str) -> IrqType:
    if isinstance(kind, IrqType):
        return kind
    try:
        return IrqType[str(kind).upper().replace("-", "")]
    except KeyError:
        raise ValueError(f"unknown interrupt type {kind!r} (expected intx, msi or msix)") from None
