"""The "block" bridge through NBD: a /dev/nbdN whose server is the unprivileged driver.

Every kernel udriver supports has NBD (`BLK_DEV_NBD=m` in Debian's 5.10 to 7.2); ublk
only from 6.0. The ioctl interface of linux/nbd.h is used, as nbd-client does without
netlink. Order of operations (`NbdBackend.open`, as root in the privileged parent):

1. Load the module if no /dev/nbd0 exists (`modprobe nbd`; the systemd unit has it
   loaded before it starts, through `modprobe@nbd.service`, because the main process may
   not load modules and the unit's device policy needs the `nbd` major).
2. Pick a free device: the first /sys/block/nbdN without a `pid` file (the file exists
   while a socket is attached, drivers/block/nbd.c `nbd_start_device`), and open it.
3. A stream socketpair (unix(7)): the kernel's end and the driver's end.
4. NBD_SET_BLKSIZE (the logical block size, before the size: the kernel keeps the byte
   size and rounds it to the block size), NBD_SET_SIZE (bytes), NBD_SET_FLAGS
   (NBD_FLAG_HAS_FLAGS | SEND_FLUSH | SEND_TRIM: the driver serves NBD_CMD_FLUSH and
   NBD_CMD_TRIM), NBD_SET_TIMEOUT (a request the driver does not answer in
   `timeout` seconds fails with an I/O error instead of hanging), NBD_SET_SOCK (the
   kernel's end; the kernel takes its own reference, so the parent closes its copy).
5. A parent thread runs NBD_DO_IT, which returns only when the connection ends: the driver
   closed its end (exit, SIGKILL) or NBD_DISCONNECT was issued.
6. Tear-down (`close`): NBD_DISCONNECT if still connected, wait for NBD_DO_IT, then
   NBD_CLEAR_SOCK, which fails every request still queued with an I/O error and sets the
   capacity to 0, then close the device.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import subprocess
import threading
from pathlib import Path

from .. import _bridgewire as wire
from ..errors import BridgeError

__all__ = ["NbdBackend", "NbdDevice"]

log = logging.getLogger(__name__)

# linux/nbd.h: _IO(0xab, n) = 0xab << 8 | n.
NBD_SET_SOCK = 0xAB00
NBD_SET_BLKSIZE = 0xAB01
NBD_SET_SIZE = 0xAB02
NBD_DO_IT = 0xAB03
NBD_CLEAR_SOCK = 0xAB04
NBD_DISCONNECT = 0xAB08
NBD_SET_TIMEOUT = 0xAB09
NBD_SET_FLAGS = 0xAB0A
NBD_FLAG_HAS_FLAGS = 1 << 0
NBD_FLAG_SEND_FLUSH = 1 << 2
NBD_FLAG_SEND_TRIM = 1 << 5


class NbdDevice:
    """One connected /dev/nbdN (`Opened` for `BridgeHost`)."""

    def __init__(self, path: str, fd: int, driver_end: int, blocks: int, block_size: int) -> None:
        self.path, self._fd = path, fd
        self.reply: dict[str, object] = {"kind": "nbd", "device": path, "blocks": blocks,
                                         "block_size": block_size}
        self.fds = [driver_end]
        self.result: int | None = None
        """0 when NBD_DO_IT returned cleanly, else the errno it failed with."""
        self._thread = threading.Thread(target=self._do_it, name=f"nbd-{path}", daemon=True)
        self._closed = False

    def _do_it(self) -> None:
        try:
            fcntl.ioctl(self._fd, NBD_DO_IT)  # step 5; releases the GIL while it blocks
            self.result = 0
        except OSError as e:
            self.result = e.errno or -1
        log.info("%s: NBD_DO_IT returned (%s)", self.path,
                 "clean" if not self.result else os.strerror(self.result))

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Step 6 (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            try:
                fcntl.ioctl(self._fd, NBD_DISCONNECT)
            except OSError as e:
                log.warning("%s: NBD_DISCONNECT: %s", self.path, e.strerror)
            self._thread.join(timeout)
        try:
            fcntl.ioctl(self._fd, NBD_CLEAR_SOCK)
        except OSError as e:
            log.warning("%s: NBD_CLEAR_SOCK: %s", self.path, e.strerror)
        for fd in (self._fd, *self.fds):
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []


class NbdBackend:
    """Sets up /dev/nbdN for a driver (module steps 1-5)."""

    def __init__(self, root: Path = Path("/"), timeout: int = 30, load_module: bool = True) -> None:
        self.root, self.timeout, self.load_module = root, timeout, load_module

    def _candidates(self) -> list[int]:
        sys_block = self.root / "sys/block"
        try:
            names = [p.name for p in sys_block.iterdir() if p.name.startswith("nbd")]
        except OSError:
            names = []
        nums = sorted(int(n[3:]) for n in names if n[3:].isdigit())
        return [n for n in nums if not (sys_block / f"nbd{n}" / "pid").exists()]

    def open(self, bdf: str, request: wire.BlockRequest | wire.NetRequest) -> NbdDevice:
        """Raises: BridgeError: no NBD in this kernel, no free device, or an ioctl failed."""
        if not isinstance(request, wire.BlockRequest):
            raise BridgeError("the NBD back-end serves block requests only")
        if not (self.root / "dev/nbd0").exists() and self.load_module:
            subprocess.run(["modprobe", "nbd"], check=False, capture_output=True)  # step 1
        free = self._candidates()
        if not free:
            raise BridgeError(f"{bdf}: no free NBD device (/dev/nbd*): is the nbd module "
                              f"loaded (`modprobe nbd`) and are all nbds_max devices in use?")
        errors = []
        for n in free:
            path = str(self.root / "dev" / f"nbd{n}")
            try:
                return self._connect(path, request)
            except BridgeError as e:
                errors.append(str(e))
        raise BridgeError(f"{bdf}: no NBD device could be connected: {'; '.join(errors)}")

    def _connect(self, path: str, req: wire.BlockRequest) -> NbdDevice:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as e:
            raise BridgeError(f"cannot open {path}: {e.strerror}") from e
        kernel_end, driver_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        step = "NBD_SET_BLKSIZE"
        try:
            fcntl.ioctl(fd, NBD_SET_BLKSIZE, req.block_size)
            step = "NBD_SET_SIZE"
            fcntl.ioctl(fd, NBD_SET_SIZE, req.blocks * req.block_size)
            step = "NBD_SET_FLAGS"
            fcntl.ioctl(fd, NBD_SET_FLAGS,
                        NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_TRIM)
            step = "NBD_SET_TIMEOUT"
            fcntl.ioctl(fd, NBD_SET_TIMEOUT, self.timeout)
            step = "NBD_SET_SOCK"
            fcntl.ioctl(fd, NBD_SET_SOCK, kernel_end.fileno())
        except OSError as e:
            os.close(fd)
            driver_end.close()
            raise BridgeError(f"{path}: {step} failed: {e.strerror} (errno {e.errno})") from e
        finally:
            kernel_end.close()
        dev = NbdDevice(path, fd, driver_end.detach(), req.blocks, req.block_size)
        dev.start()
        return dev
