"""The "block" bridge through ublk: a /dev/ublkbN whose server is the unprivileged driver.

ublk (drivers/block/ublk_drv.c, linux/ublk_cmd.h; Debian builds it from 6.12, not in 6.1)
hands each block request to a user-space server as an io_uring URING_CMD completion, and
copies the data between the request and the server's buffer itself. The parent (root) does
every control command; the driver only serves the char device it is given. Order of
operations (`UblkBackend.open`, then `UblkDevice.start` and `close`):

1. Load the module if /dev/ublk-control is missing (`modprobe ublk_drv`; the systemd unit
   has it loaded before it starts, through `modprobe@ublk_drv.service`).
2. UBLK_U_CMD_ADD_DEV with `struct ublksrv_ctrl_dev_info`: 1 hardware queue, the driver's
   queue depth and buffer size per tag (`max_io_buf_bytes`), dev_id -1 (the kernel picks
   one and writes it back), flags UBLK_F_CMD_IOCTL_ENCODE (the driver's I/O commands use
   the _IOWR encoding). The kernel checks CAP_SYS_ADMIN: the parent's.
3. UBLK_U_CMD_SET_PARAMS with `struct ublk_params`, basic only: logical = physical block
   size, `max_sectors` = the buffer size (a request never exceeds one tag's buffer),
   `dev_sectors` (512-byte sectors), UBLK_ATTR_VOLATILE_CACHE (flushes reach the driver,
   which sends NVMe Flush; without UBLK_ATTR_FUA the block layer turns FUA writes into a
   write and a flush). No discard parameters: the kernel sends no DISCARD.
4. Open /dev/ublkcN and hand it to the driver (reply `kind` "ublk", `dev_id`,
   `queue_depth`, `io_bytes`, `device` /dev/ublkbN).
5. The driver sets up its io_uring, issues UBLK_IO_FETCH_REQ for every tag and sends
   {"op": "start"}; the parent then issues UBLK_U_CMD_START_DEV with the driver's pid
   (data[0]), which waits until every tag is fetched and adds the disk /dev/ublkbN (the
   partition scan is served by the driver already), then answers {"ok": true}. The wait
   is bounded (`START_TIMEOUT`): a driver that never fetches gets an error, not the
   parent's thread.
6. Tear-down (`close`): UBLK_U_CMD_STOP_DEV (the disk goes, requests in flight fail),
   then UBLK_U_CMD_DEL_DEV, which waits until the driver's char device is released (the
   driver exited: its io_uring is gone); it runs in a thread, waited for `timeout` s.
"""

from __future__ import annotations

import logging
import os
import struct
import subprocess
import threading
import time
from pathlib import Path

from .. import _bridgewire as wire
from ..errors import BridgeError
from ._uring import uring_cmd

__all__ = ["UblkBackend", "UblkDevice", "ctrl_cmd", "dev_info", "ioc", "params"]

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
"""Seconds START_DEV may take: the driver's FETCH_REQs are done before it says `start`, so
what remains is adding the disk and its partition scan, which the driver serves (slow
under TCG, but seconds). Like NBD's request timeout."""


def ioc(direction: int, nr: int, size: int) -> int:
    """asm-generic/ioctl.h _IOC(dir, 'u', nr, size): dir << 30 | size << 16 | 'u' << 8 | nr."""
    return direction << 30 | size << 16 | ord("u") << 8 | nr


_IOR, _IOWR = 2, 3
CTRL_CMD = struct.Struct("=IHHQ2Q")  # struct ublksrv_ctrl_cmd: dev_id, queue_id, len, addr, data[2]
DEV_INFO = struct.Struct("=4H2IiI5Q")  # struct ublksrv_ctrl_dev_info (64 bytes)
PARAMS = struct.Struct("=2I I4B2I2Q 4I2H4x")  # struct ublk_params: len, types, basic, discard
# linux/ublk_cmd.h: UBLK_U_CMD_* = _IOWR/_IOR('u', UBLK_CMD_*, struct ublksrv_ctrl_cmd)
UBLK_U_CMD_ADD_DEV = ioc(_IOWR, 0x04, CTRL_CMD.size)
UBLK_U_CMD_DEL_DEV = ioc(_IOWR, 0x05, CTRL_CMD.size)
UBLK_U_CMD_START_DEV = ioc(_IOWR, 0x06, CTRL_CMD.size)
UBLK_U_CMD_STOP_DEV = ioc(_IOWR, 0x07, CTRL_CMD.size)
UBLK_U_CMD_SET_PARAMS = ioc(_IOWR, 0x08, CTRL_CMD.size)
UBLK_F_CMD_IOCTL_ENCODE = 1 << 6
UBLK_ATTR_VOLATILE_CACHE = 1 << 2
UBLK_PARAM_TYPE_BASIC = 1 << 0
_NO_DEV, _NO_QUEUE = 0xFFFFFFFF, 0xFFFF  # "the kernel picks", "not a queue command"


def ctrl_cmd(dev_id: int, length: int = 0, addr: int = 0, data0: int = 0) -> bytes:
    """The 32 command bytes of a control SQE (`struct ublksrv_ctrl_cmd`)."""
    return CTRL_CMD.pack(dev_id, _NO_QUEUE, length, addr, data0, 0)


def dev_info(queue_depth: int, io_bytes: int, dev_id: int = _NO_DEV) -> bytes:
    """ADD_DEV's `struct ublksrv_ctrl_dev_info` (step 2)."""
    return DEV_INFO.pack(1, queue_depth, 0, 0, io_bytes, dev_id, -1, 0,
                         UBLK_F_CMD_IOCTL_ENCODE, 0, 0, 0, 0)


def params(blocks: int, block_size: int, io_bytes: int) -> bytes:
    """SET_PARAMS' `struct ublk_params`, basic parameters only (step 3)."""
    shift = block_size.bit_length() - 1
    return PARAMS.pack(PARAMS.size, UBLK_PARAM_TYPE_BASIC, UBLK_ATTR_VOLATILE_CACHE,
                       shift, shift, shift, shift, io_bytes >> 9, 0,
                       blocks * block_size >> 9, 0, 0, 0, 0, 0, 0, 0)


def _control(ctl: int, op: int, what: str, dev_id: int, payload: bytearray | None = None,
             data0: int = 0, timeout: float | None = None, late: str = "") -> None:
    """One control command; `late` is added to the error when `timeout` expires."""
    import ctypes
    buf = (ctypes.c_char * len(payload)).from_buffer(payload) if payload is not None else None
    addr = ctypes.addressof(buf) if buf is not None else 0
    try:
        uring_cmd(ctl, op, ctrl_cmd(dev_id, len(payload) if payload else 0, addr, data0),
                  timeout)
    except TimeoutError as e:
        raise BridgeError(f"ublk {what} failed: no answer within {timeout:g} s{late}") from e
    except OSError as e:
        raise BridgeError(f"ublk {what} failed: {e.strerror} (errno {e.errno})") from e
    finally:
        del buf


class UblkDevice:
    """One ublk device (`Opened` for `BridgeHost`)."""

    def __init__(self, root: Path, dev_id: int, cfd: int, req: wire.BlockRequest) -> None:
        self.root, self.dev_id = root, dev_id
        self.path = f"/dev/ublkb{dev_id}"
        self.reply: dict[str, object] = {
            "kind": "ublk", "device": self.path, "dev_id": dev_id, "blocks": req.blocks,
            "block_size": req.block_size, "queue_depth": req.queue_depth,
            "io_bytes": req.io_bytes}
        self.fds = [cfd]
        self.started = False
        self._closed = False
        self._lock = threading.Lock()

    def _ctl(self, op: int, what: str, data0: int = 0, timeout: float | None = None,
             late: str = "") -> None:
        ctl = os.open(self.root / "dev/ublk-control", os.O_RDWR | os.O_CLOEXEC)
        try:
            _control(ctl, op, what, self.dev_id, data0=data0, timeout=timeout, late=late)
        finally:
            os.close(ctl)

    def start(self, pid: int) -> None:
        """Step 5: START_DEV once the driver fetched every tag.

        The kernel waits, without a limit, until every tag is fetched; a driver that says
        `start` without fetching them (a bug, or on purpose) would hold this thread, the
        device and the lock `close` needs. So the wait is bounded by `START_TIMEOUT`, after
        which the command is cancelled (`_uring` step 5) and the driver told.

        Raises:
            BridgeError: the kernel refused, or no answer within `START_TIMEOUT` s.
        """
        with self._lock:
            if self._closed or self.started:
                raise BridgeError(f"{self.path} is {'closed' if self._closed else 'started'}")
            self._ctl(UBLK_U_CMD_START_DEV, f"START_DEV of {self.path}", pid,
                      timeout=START_TIMEOUT,
                      late=" (has the driver fetched every tag before `start`?)")
            self.started = True

    def close(self, timeout: float = 10.0) -> None:
        """Step 6 (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        try:
            self._ctl(UBLK_U_CMD_STOP_DEV, f"STOP_DEV of {self.path}")
        except (OSError, BridgeError) as e:
            log.warning("%s: %s", self.path, e)

        def delete() -> None:
            try:
                self._ctl(UBLK_U_CMD_DEL_DEV, f"DEL_DEV of {self.path}")
            except (OSError, BridgeError) as e:
                log.warning("%s: %s", self.path, e)
        t = threading.Thread(target=delete, name=f"ublk-del-{self.dev_id}", daemon=True)
        t.start()
        t.join(timeout)
        if t.is_alive():
            log.warning("%s: DEL_DEV still waiting after %s s for the server to let go",
                        self.path, timeout)


class UblkBackend:
    """Sets up /dev/ublkbN for a driver (module steps 1-4)."""

    def __init__(self, root: Path = Path("/"), load_module: bool = True) -> None:
        self.root, self.load_module = root, load_module

    def available(self) -> bool:
        """Whether /dev/ublk-control exists (loading ublk_drv first if allowed)."""
        ctl = self.root / "dev/ublk-control"
        if not ctl.exists() and self.load_module:
            subprocess.run(["modprobe", "ublk_drv"], check=False, capture_output=True)
        return ctl.exists()

    def open(self, bdf: str, request: wire.BlockRequest | wire.NetRequest) -> UblkDevice:
        """Raises: BridgeError: no ublk in this kernel, or a control command failed."""
        if not isinstance(request, wire.BlockRequest):
            raise BridgeError("the ublk back-end serves block requests only")
        if not self.available():
            raise BridgeError(f"{bdf}: this kernel has no ublk (/dev/ublk-control is missing "
                              f"after `modprobe ublk_drv`; CONFIG_BLK_DEV_UBLK is 6.0+)")
        try:
            ctl = os.open(self.root / "dev/ublk-control", os.O_RDWR | os.O_CLOEXEC)
        except OSError as e:
            raise BridgeError(f"cannot open /dev/ublk-control: {e.strerror}") from e
        try:
            info = bytearray(dev_info(request.queue_depth, request.io_bytes))
            _control(ctl, UBLK_U_CMD_ADD_DEV, "ADD_DEV", _NO_DEV, info)  # step 2
            dev_id = DEV_INFO.unpack(info)[5]
            try:
                p = bytearray(params(request.blocks, request.block_size, request.io_bytes))
                _control(ctl, UBLK_U_CMD_SET_PARAMS, f"SET_PARAMS of ublk {dev_id}", dev_id, p)
                cfd = self._open_char(dev_id)  # step 4
            except BridgeError:
                try:
                    _control(ctl, UBLK_U_CMD_DEL_DEV, f"DEL_DEV of ublk {dev_id}", dev_id)
                except BridgeError as e:
                    log.warning("%s", e)
                raise
        finally:
            os.close(ctl)
        return UblkDevice(self.root, dev_id, cfd, request)

    def _open_char(self, dev_id: int) -> int:
        path = self.root / "dev" / f"ublkc{dev_id}"
        for _ in range(50):  # devtmpfs creates the node as the char device is added
            if path.exists():
                break
            time.sleep(0.02)
        try:
            return os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as e:
            raise BridgeError(f"cannot open {path}: {e.strerror}") from e
