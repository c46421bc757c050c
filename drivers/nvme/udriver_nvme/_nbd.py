"""The NVMe namespace as a Linux block device: the server side of NBD on the bridge socket.

The privileged parent connected /dev/nbdN to the other end of the stream socket this
driver received (`udriver.runtime.Bridge.block`, ABI 1.1), so the kernel's nbd driver is
the client and this module the server of the NBD transmission phase (linux/nbd.h; the
NBD protocol document, "Transmission"). There is no handshake: the parent set size, block
size and flags with ioctls.

Rules, in the order `NbdServer.serve` applies them to every request:

1. Read the 28-byte request: magic 0x25609513, type (command in bits 15:0, command flags
   in bits 31:16), an opaque 8-byte handle, offset and length (big-endian). A wrong magic
   ends the connection (the stream cannot be re-synchronised).
2. Offsets and lengths are whole logical blocks (the kernel's logical block size is the
   namespace's); anything else, or a range past the namespace, gets EINVAL.
3. READ -> NVMe Read (6.9), WRITE -> NVMe Write (6.15), FLUSH -> NVMe Flush (6.8), and a
   write carrying NBD_CMD_FLAG_FUA is followed by a Flush. TRIM is acknowledged without
   effect: discarding is advisory (a later read may return old data, which NBD allows)
   and QEMU's controller gains nothing from it under emulation. DISC ends the connection.
4. Every request but DISC gets one 16-byte reply (magic 0x67446698, error, handle), in
   request order, followed by the data for a successful READ. A failed NVMe command
   (a status, a timeout after which the controller was reset) is EIO; the server keeps
   serving.
5. `stop()` ends `serve` within `poll` seconds between requests; closing the socket then
   makes the kernel fail whatever it still has queued.

Two engines apply these rules: this module's loop ("python", one request at a time) and
the C data path's (`Controller.serve_nbd`, native/nvme_nbd.c, "c", the default: up to
`qd` NVMe commands in flight, replies as they complete).
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import struct
import threading
from dataclasses import dataclass

from ._controller import Controller
from ._status import NvmeError

__all__ = ["NbdRequest", "NbdServer", "parse_request", "reply"]

_log = logging.getLogger(__name__)

REQUEST_MAGIC = 0x25609513
REPLY_MAGIC = 0x67446698
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM = 0, 1, 2, 3, 4
CMD_FLAG_FUA = 1 << 16
_REQ = struct.Struct(">II8sQI")
_REP = struct.Struct(">II8s")
REQUEST_SIZE = _REQ.size  # 28


class NbdProtocolError(NvmeError):
    """The kernel side sent something that is not an NBD request."""


@dataclass(frozen=True)
class NbdRequest:
    """One decoded request (rule 1)."""

    command: int
    flags: int
    handle: bytes
    offset: int
    length: int


def parse_request(data: bytes) -> NbdRequest:
    """Decode the 28-byte request header.

    Raises:
        NbdProtocolError: wrong size or magic.
    """
    if len(data) != REQUEST_SIZE:
        raise NbdProtocolError(f"NBD request header is {len(data)} bytes, not {REQUEST_SIZE}")
    magic, typ, handle, offset, length = _REQ.unpack(data)
    if magic != REQUEST_MAGIC:
        raise NbdProtocolError(f"NBD request magic {magic:#010x}, expected {REQUEST_MAGIC:#x}")
    return NbdRequest(typ & 0xFFFF, typ & 0xFFFF0000, handle, offset, length)


def reply(handle: bytes, error: int = 0) -> bytes:
    """The 16-byte simple reply (rule 4)."""
    return _REP.pack(REPLY_MAGIC, error, handle)


class NbdServer:
    """Serves one namespace of a started `Controller` on an NBD socket."""

    def __init__(self, ctrl: Controller, sock_fd: int, nsid: int | None = None,
                 poll: float = 0.2, engine: str = "python", qd: int = 32) -> None:
        self.ctrl, self.engine, self.qd = ctrl, engine, qd
        self.ns = ctrl.namespace(nsid)
        self.sock = socket.socket(fileno=sock_fd)
        self.sock.setblocking(True)
        self.poll = poll
        self._stop = threading.Event()
        self._stop_r, self._stop_w = os.pipe()  # the C engine's stop signal
        self.served = 0
        """Requests answered."""
        self.errors = 0
        """Requests answered with an error."""

    def stop(self) -> None:
        self._stop.set()
        try:
            os.write(self._stop_w, b"x")
        except OSError:
            pass

    def _recv(self, n: int, idle_ok: bool) -> bytes | None:
        """Exactly `n` bytes; None on EOF or stop (before the first byte if `idle_ok`)."""
        buf = bytearray()
        if idle_ok:  # between requests: wake up every `poll` seconds to see `stop()`
            while not select.select([self.sock], [], [], self.poll)[0]:
                if self._stop.is_set():
                    return None
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _check_range(self, req: NbdRequest) -> tuple[int, int] | None:
        bs = self.ns.lba_bytes
        if req.offset % bs or req.length % bs or req.offset + req.length > self.ns.nsze * bs:
            return None
        return req.offset // bs, req.length // bs

    def _handle(self, req: NbdRequest) -> tuple[int, bytes]:
        """(error, read data) for one request (rules 2-3)."""
        if req.command == CMD_FLUSH:
            self.ctrl.flush(self.ns.nsid)
            return 0, b""
        if req.command == CMD_TRIM:
            return (0 if self._check_range(req) else errno.EINVAL), b""
        rng = self._check_range(req)
        if rng is None or rng[1] == 0:
            return errno.EINVAL, b""
        lba, n = rng
        if req.command == CMD_READ:
            return 0, self.ctrl.read(lba, n, self.ns.nsid)
        return errno.EINVAL, b""

    def serve(self) -> str:
        """Serve until DISC, EOF or `stop()`; returns why it ended.

        Raises:
            NbdProtocolError: a request with a wrong magic (rule 1).
            NvmeError, NativeError: the C engine failed (see `Controller.serve_nbd`).
        """
        if self.engine == "c":
            st = self.ctrl.serve_nbd(self.sock.fileno(), self._stop_r, self.qd, self.ns.nsid)
            self.served, self.errors = st["requests"], st["errors"]
            return ["closed by the kernel", "disconnect requested", "stopped"][st["why"]]
        while True:
            head = self._recv(REQUEST_SIZE, idle_ok=True)
            if head is None:
                return "stopped" if self._stop.is_set() else "closed by the kernel"
            req = parse_request(head)
            if req.command == CMD_DISC:
                return "disconnect requested"
            data = payload = b""
            if req.command == CMD_WRITE:
                got = self._recv(req.length, idle_ok=False)
                if got is None:
                    return "closed by the kernel"
                payload = got
            try:
                if req.command == CMD_WRITE:
                    rng = self._check_range(req)
                    if rng is None or rng[1] == 0:
                        err = errno.EINVAL
                    else:
                        self.ctrl.write(rng[0], payload, self.ns.nsid)
                        if req.flags & CMD_FLAG_FUA:
                            self.ctrl.flush(self.ns.nsid)
                        err = 0
                else:
                    err, data = self._handle(req)
            except NvmeError as e:  # rule 4: the controller reported or was reset
                _log.warning("NBD %d at %#x (+%d): %s", req.command, req.offset, req.length, e)
                err, data = errno.EIO, b""
            self.served += 1
            self.errors += err != 0
            self.sock.sendall(reply(req.handle, err) + (data if err == 0 else b""))

    def close(self) -> None:
        self.sock.close()
        for fd in (self._stop_r, self._stop_w):
            os.close(fd)
