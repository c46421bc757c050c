"""The privileged parent's side of a kernel bridge: answer the driver's one request.

Order of operations (`BridgeHost`, one per driver process, in a thread of the parent):

1. Before the driver starts, the parent creates the channel (`channel()`: an
   AF_UNIX/SOCK_SEQPACKET socketpair, unix(7)) and passes one end to the driver.
2. `serve` receives a request (`udriver._bridgewire`), checks it against the bridge the
   driver's manifest declares (`parse_request`: any other kind is refused), and asks the
   back-end for that kind (`_nbd.NbdBackend` for "block", `_tap.TapBackend` for "net") to
   set up the kernel side. The reply carries the descriptors the driver needs; the parent
   closes its copies of them, and keeps what it needs to tear down.
3. When the channel closes (the driver exited or was killed: the kernel closes its end) or
   the parent calls `close`, every kernel side set up for this driver is torn down.

Back-ends are injected, so the host's rules are tested with fakes of this interface; the
real back-ends are tested against the kernel.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Protocol

from .. import _bridgewire as wire
from ..errors import BridgeError

__all__ = ["Backend", "BlockBackend", "BridgeHost", "Opened", "channel", "default_backends"]

log = logging.getLogger(__name__)


class Opened(Protocol):
    """A kernel side set up for a driver."""

    reply: dict[str, object]
    """What the driver is told (`kind`, `device` or `ifname`)."""
    fds: list[int]
    """Descriptors for the driver; the host closes them after sending."""

    def close(self) -> None:
        """Tear the kernel side down (idempotent)."""


class Backend(Protocol):
    """Sets up one kind of kernel side."""

    def open(self, bdf: str, request: wire.BlockRequest | wire.NetRequest) -> Opened:
        """Raises: BridgeError: the kernel side cannot be set up (says why)."""


class BlockBackend:
    """"block": ublk when the driver serves it and the kernel has it, else NBD.

    linux 6.0+ with CONFIG_BLK_DEV_UBLK (Debian 6.12, 7.2) has /dev/ublk-control after
    `modprobe ublk_drv`; 5.10 and 6.1 do not, and get NBD. A driver that does not list
    "ublk" in its request's `kinds` gets NBD everywhere.
    """

    def __init__(self, ublk: Backend, nbd: Backend, ublk_available: Callable[[], bool]) -> None:
        self.ublk, self.nbd, self.ublk_available = ublk, nbd, ublk_available

    def open(self, bdf: str, request: wire.BlockRequest | wire.NetRequest) -> Opened:
        """Raises: BridgeError: no kind the driver serves can be set up (says why)."""
        if not isinstance(request, wire.BlockRequest):
            raise BridgeError("the block back-end serves block requests only")
        kinds = request.kinds
        if kinds[0] == "ublk" or ("ublk" in kinds and "nbd" not in kinds):
            if self.ublk_available():
                return self.ublk.open(bdf, request)
            if "nbd" not in kinds:
                raise BridgeError(f"{bdf}: the driver serves ublk only, and this kernel has no "
                                  f"ublk (/dev/ublk-control; CONFIG_BLK_DEV_UBLK, linux 6.0+)")
        return self.nbd.open(bdf, request)


def default_backends() -> dict[str, Backend]:
    """The real back-ends: ublk or NBD for "block", TAP for "net"."""
    from ._nbd import NbdBackend
    from ._tap import TapBackend
    from ._ublk import UblkBackend
    ublk = UblkBackend()
    return {"block": BlockBackend(ublk, NbdBackend(), ublk.available), "net": TapBackend()}


def channel() -> tuple[socket.socket, socket.socket]:
    """(parent end, driver end); the driver end is inheritable, the parent's is not."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    child.set_inheritable(True)
    return parent, child


class BridgeHost:
    """Serves one driver's bridge requests (module rules 2 and 3)."""

    def __init__(self, bdf: str, declared: str, sock: socket.socket,
                 backends: Mapping[str, Backend] | None = None) -> None:
        self.bdf, self.declared, self._sock = bdf, declared, sock
        self._backends = backends if backends is not None else default_backends()
        self._opened: list[Opened] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.driver_pid = 0
        """The driver process's pid (set by the spawner): ublk's START_DEV records it."""

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self.serve, name=f"bridge-{self.bdf}",
                                        daemon=True)
        self._thread.start()

    def _answer(self, obj: dict[str, object], used: bool) -> Opened:
        req = wire.parse_request(obj, self.declared)
        if used:
            raise BridgeError("this driver process already set up its bridge (one per process)")
        backend = self._backends.get(self.declared)
        if backend is None:
            raise BridgeError(f"this parent cannot set up a {self.declared!r} bridge")
        return backend.open(self.bdf, req)

    def serve(self) -> None:
        """Answer requests until the channel closes, then tear down (rule 3)."""
        used = False
        try:
            while True:
                try:
                    got = wire.recv(self._sock)
                except BridgeError as e:
                    if self._closed:
                        break
                    log.warning("%s: %s", self.bdf, e)
                    self._reply({"ok": False, "error": str(e)})
                    continue
                if got is None:
                    break
                obj, fds = got
                for fd in fds:  # the driver has nothing to hand the parent
                    os.close(fd)
                if isinstance(obj, dict) and obj.get("op") == "start":
                    self._reply(self._start())
                    continue
                try:
                    opened = self._answer(obj, used)
                except BridgeError as e:
                    log.warning("%s: bridge request refused: %s", self.bdf, e)
                    self._reply({"ok": False, "error": str(e)})
                    continue
                used = True
                with self._lock:
                    if self._closed:
                        opened.close()
                        break
                    self._opened.append(opened)
                log.info("%s: bridge up: %s", self.bdf, opened.reply)
                self._reply({"ok": True, **opened.reply}, opened.fds)
                for fd in opened.fds:  # the driver has its copies now
                    os.close(fd)
                opened.fds = []
        finally:
            self._teardown()

    def _start(self) -> dict[str, object]:
        """{"op": "start"}: a ublk driver fetched every tag; add its disk (`_ublk` step 5)."""
        with self._lock:
            opened = list(self._opened)
        start = getattr(opened[0], "start", None) if opened else None
        if start is None:
            return {"ok": False, "error": "nothing to start: ask for a ublk block device first"}
        try:
            start(self.driver_pid)
        except BridgeError as e:
            log.warning("%s: %s", self.bdf, e)
            return {"ok": False, "error": str(e)}
        log.info("%s: bridge started: %s", self.bdf, opened[0].reply)
        return {"ok": True}

    def _reply(self, obj: dict[str, object], fds: list[int] | None = None) -> None:
        try:
            wire.send(self._sock, obj, fds or [])
        except BridgeError as e:
            log.warning("%s: %s", self.bdf, e)

    def _teardown(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
            self._closed = True
        for o in opened:
            try:
                o.close()
                log.info("%s: bridge down: %s", self.bdf, o.reply)
            except (OSError, BridgeError) as e:
                log.error("%s: tearing down %s failed: %s", self.bdf, o.reply, e)
        try:
            self._sock.close()
        except OSError:
            pass

    def close(self, timeout: float = 30.0) -> None:
        """Stop serving and tear down; waits for the serving thread (idempotent)."""
        with self._lock:
            self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._teardown()
