"""The NIC as a kernel network interface: frames between its rings and a TAP device.

A TAP fd (linux/if_tun.h: IFF_TAP | IFF_NO_PI, one frame per read/write) is the kernel
side. `TapBridge` runs the C pump (`e1k_tap_pump`, native/e1k_tap.c) in a thread -- cffi
releases the GIL during the call -- and mirrors the NIC's link into the TAP's carrier
(TUNSETCARRIER) on every ICR.LSC. Who creates the TAP and hands over its fd is not this
module's business: `open_tap(name)` attaches to an existing TAP the caller may use (owned
by its uid, `ip tuntap add ... user U`), for tools and benchmarks.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
from typing import Any

from udriver.errors import UdriverError
from udriver.runtime import api_address

from . import _regs as R
from ._c import check, ffi, lib
from ._nic import Nic

__all__ = ["TapBridge", "TapError", "open_tap", "set_carrier", "unpersist"]

# linux/if_tun.h
TUNSETIFF = 0x400454CA  # _IOW('T', 202, int)
TUNSETCARRIER = 0x400454E2  # _IOW('T', 226, int)
TUNSETPERSIST = 0x400454CB  # _IOW('T', 203, int)
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000


class TapError(UdriverError):
    """The TAP device could not be opened or configured."""


def open_tap(name: str) -> int:
    """Attach to the TAP interface `name`; returns a non-blocking fd.

    Raises:
        TapError: /dev/net/tun or TUNSETIFF failed (no such TAP, or not ours).
    """
    if not name or len(name.encode()) > 15:
        raise TapError(f"not an interface name (1-15 bytes): {name!r}")
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise TapError(f"cannot open /dev/net/tun: {e.strerror}") from e
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TAP | IFF_NO_PI))
    except OSError as e:
        os.close(fd)
        raise TapError(f"cannot attach to TAP {name!r} (TUNSETIFF): {e.strerror}; the TAP "
                       "must exist and belong to this user (`ip tuntap add dev NAME mode tap "
                       "user UID`)") from e
    return fd


def set_carrier(fd: int, up: bool) -> None:
    """TUNSETCARRIER: the TAP interface's carrier (IFF_LOWER_UP) follows the NIC's link.

    Raises:
        TapError: the ioctl failed.
    """
    try:
        fcntl.ioctl(fd, TUNSETCARRIER, struct.pack("i", 1 if up else 0))
    except OSError as e:
        raise TapError(f"cannot set the TAP's carrier (TUNSETCARRIER): {e.strerror}") from e


def unpersist(fd: int) -> None:
    """TUNSETPERSIST 0: the TAP interface goes away when its last fd is closed.

    Raises:
        TapError: the ioctl failed.
    """
    try:
        fcntl.ioctl(fd, TUNSETPERSIST, 0)
    except OSError as e:
        raise TapError(f"cannot make the TAP non-persistent (TUNSETPERSIST): {e.strerror}") \
            from e


class TapBridge:
    """Pump frames between `nic` and the TAP `tap_fd` until `stop()`."""

    def __init__(self, nic: Nic, tap_fd: int, *, carrier: bool = True) -> None:
        self.nic, self.tap_fd, self.carrier = nic, tap_fd, carrier
        # The pump reads until EAGAIN: the fd must not block (the parent's may).
        os.set_blocking(tap_fd, False)
        self.stats: Any = ffi.new("struct e1k_tap_stats *")
        self._stop_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._thread: threading.Thread | None = None
        self._rc = 0

    def start(self) -> None:
        assert self.nic.rx is not None and self.nic.tx is not None
        if self.carrier:
            set_carrier(self.tap_fd, self.nic.link_up)
        if self.nic.irq == "msix":
            # The pump reaps TX descriptors as it queues new ones: no TX vector needed.
            self.nic.w32(R.IMC, R.ICR_TXQ0)
        self._thread = threading.Thread(target=self._pump, name="e1000e-tap", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        nic = self.nic
        assert nic.rx is not None and nic.tx is not None
        self._rc = lib.e1k_tap_pump(api_address(), nic.device.c_address, nic.rx.c, nic.tx.c,
                                    self.tap_fd, self._stop_fd, self.stats)

    def watch_link(self, timeout: float) -> bool | None:
        """Wait for a link change and mirror it into the carrier; returns the new state."""
        up = self.nic.wait_link_change(timeout)
        if up is not None and self.carrier:
            set_carrier(self.tap_fd, up)
        return up

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> dict[str, int]:
        """Stop the pump; returns its counters.

        Raises:
            NativeError: the pump had failed (for example the TAP went away).
        """
        os.eventfd_write(self._stop_fd, 1)
        if self._thread is not None:
            self._thread.join(10)
        os.close(self._stop_fd)
        check(self._rc, "TAP bridge")
        return self.counters()

    def counters(self) -> dict[str, int]:
        s = self.stats
        return {"to_tap": int(s.to_tap), "to_tap_drops": int(s.to_tap_drops),
                "from_tap": int(s.from_tap), "from_tap_drops": int(s.from_tap_drops)}
