"""A minimal io_uring for the privileged parent: one URING_CMD at a time, 128-byte SQEs.

ublk's control commands (linux/ublk_cmd.h, UBLK_U_CMD_*) are not ioctls: they are
IORING_OP_URING_CMD submissions on /dev/ublk-control, and drivers/block/ublk_drv.c
(`ublk_ctrl_uring_cmd`) refuses them unless the ring was set up with IORING_SETUP_SQE128
(the 32-byte `struct ublksrv_ctrl_cmd` does not fit the 16 command bytes of a 64-byte SQE).
Order of operations (`uring_cmd`), all from linux/io_uring.h:

1. io_uring_setup(2) (x86-64 syscall 425) with 2 entries and IORING_SETUP_SQE128; the
   kernel fills `struct io_uring_params` (120 bytes) with the rings' offsets.
2. mmap the SQ ring (IORING_OFF_SQ_RING), the CQ ring (IORING_OFF_CQ_RING) and the SQE
   array (IORING_OFF_SQES).
3. Write SQE 0: opcode IORING_OP_URING_CMD (46), fd, cmd_op (offset 8), user_data; the
   command's bytes at offset 48 (`sqe->cmd`). Publish it in the SQ array, advance the tail.
4. io_uring_enter(2) (426) with to_submit 1, min_complete 1, IORING_ENTER_GETEVENTS: the
   control commands may block (ublk punts them to io-wq, START_DEV waits for the server),
   so this waits for the one CQE; its `res` is 0 or -errno.
   With a `timeout`, submit only (min_complete 0) and poll(2) the ring's fd, which is
   readable once a CQE is posted, until the deadline.
5. Close the ring (munmap, close). Closing a ring whose command has not completed cancels
   it: io_uring's exit work cancels the io-wq work item, which interrupts an interruptible
   wait (START_DEV's `wait_for_completion_interruptible`, DEL_DEV's
   `wait_event_interruptible`) and the command ends with -EINTR; nothing is left waiting.

A fresh ring per command: the parent sends a handful of commands per device, possibly from
two threads (START_DEV in the bridge thread, STOP_DEV/DEL_DEV at tear-down).
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import select
import struct
import time

__all__ = ["IORING_OP_URING_CMD", "IORING_SETUP_SQE128", "pack_sqe", "uring_cmd"]

_NR_IO_URING_SETUP, _NR_IO_URING_ENTER = 425, 426  # arch/x86/entry/syscalls/syscall_64.tbl
IORING_SETUP_SQE128 = 1 << 10
IORING_OP_URING_CMD = 46
_IORING_ENTER_GETEVENTS = 1 << 0
_IORING_OFF_SQ_RING, _IORING_OFF_CQ_RING, _IORING_OFF_SQES = 0, 0x8000000, 0x10000000
_SQE_BYTES = 128  # with IORING_SETUP_SQE128
_CQE = struct.Struct("=QiI")  # user_data, res, flags
# struct io_uring_params: 10 u32 (sq_entries .. resv[3]), io_sqring_offsets (7 u32, resv1,
# u64), io_cqring_offsets (8 u32, u64).
_PARAMS = struct.Struct("=10I 8IQ 8IQ")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _sys(nr: int, *args: int | None | ctypes.Array[ctypes.c_char]) -> int:
    # syscall(2) is variadic: every argument as a long (ctypes would pass an int).
    conv = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    rc = int(_libc.syscall(ctypes.c_long(nr), *conv))
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return rc


def pack_sqe(fd: int, cmd_op: int, cmd: bytes, user_data: int = 0) -> bytes:
    """A 128-byte IORING_OP_URING_CMD SQE (step 3).

    Raises:
        ValueError: `cmd` is longer than the 80 command bytes.
    """
    if len(cmd) > _SQE_BYTES - 48:
        raise ValueError(f"a URING_CMD carries at most 80 bytes, got {len(cmd)}")
    head = struct.pack("=BBHiII", IORING_OP_URING_CMD, 0, 0, fd, cmd_op, 0)  # 16 bytes
    head += bytes(16) + struct.pack("=Q", user_data) + bytes(8)  # addr, len, flags, ...
    return head + cmd + bytes(_SQE_BYTES - 48 - len(cmd))


def uring_cmd(fd: int, cmd_op: int, cmd: bytes, timeout: float | None = None) -> int:
    """Submit one URING_CMD on `fd` and wait for its completion (steps 1-5).

    Args:
        fd: the file the command is for (/dev/ublk-control).
        cmd_op: the command (`UBLK_U_CMD_*`).
        cmd: its bytes (`struct ublksrv_ctrl_cmd`).
        timeout: seconds to wait for the completion; None waits as long as it takes. On
            expiry the ring is closed, which cancels the command (step 5).

    Returns:
        The CQE's `res` (>= 0; a negative one is raised).

    Raises:
        TimeoutError: no completion within `timeout` (errno ETIMEDOUT).
        OSError: io_uring is missing or disabled, or the command failed (its errno).
    """
    params = ctypes.create_string_buffer(_PARAMS.size)
    struct.pack_into("=3I", params, 0, 0, 0, IORING_SETUP_SQE128)
    ring = _sys(_NR_IO_URING_SETUP, 2, params)  # step 1
    maps: list[mmap.mmap] = []
    try:
        p = _PARAMS.unpack(params.raw)
        sq_entries, cq_entries = p[0], p[1]
        _, sq_tail, sq_mask, _, _, _, sq_array = p[10:17]
        cq_head, cq_tail, cq_mask, _, _, cqes = p[19:25]
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        prot = mmap.PROT_READ | mmap.PROT_WRITE
        sq = mmap.mmap(ring, sq_array + 4 * sq_entries, flags, prot,
                       offset=_IORING_OFF_SQ_RING)  # step 2
        maps.append(sq)
        cq = mmap.mmap(ring, cqes + _CQE.size * cq_entries, flags, prot,
                       offset=_IORING_OFF_CQ_RING)
        maps.append(cq)
        sqes = mmap.mmap(ring, _SQE_BYTES * sq_entries, flags, prot, offset=_IORING_OFF_SQES)
        maps.append(sqes)
        tail = struct.unpack_from("=I", sq, sq_tail)[0]
        idx = tail & struct.unpack_from("=I", sq, sq_mask)[0]
        sqes[idx * _SQE_BYTES:(idx + 1) * _SQE_BYTES] = pack_sqe(fd, cmd_op, cmd, 1)  # step 3
        struct.pack_into("=I", sq, sq_array + 4 * idx, idx)
        struct.pack_into("=I", sq, sq_tail, (tail + 1) & 0xFFFFFFFF)
        head = struct.unpack_from("=I", cq, cq_head)[0]
        if timeout is None:
            _sys(_NR_IO_URING_ENTER, ring, 1, 1, _IORING_ENTER_GETEVENTS, None, 0)  # step 4
            while head == struct.unpack_from("=I", cq, cq_tail)[0]:  # EINTR-free wait
                _sys(_NR_IO_URING_ENTER, ring, 0, 1, _IORING_ENTER_GETEVENTS, None, 0)
        else:
            _sys(_NR_IO_URING_ENTER, ring, 1, 0, 0, None, 0)
            deadline = time.monotonic() + timeout
            readable = select.poll()
            readable.register(ring, select.POLLIN)
            while head == struct.unpack_from("=I", cq, cq_tail)[0]:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(errno.ETIMEDOUT,
                                       f"no completion within {timeout:g} s")
                readable.poll(max(1, int(left * 1000)))
        mask = struct.unpack_from("=I", cq, cq_mask)[0]
        _, res, _ = _CQE.unpack_from(cq, cqes + _CQE.size * (head & mask))
        struct.pack_into("=I", cq, cq_head, (head + 1) & 0xFFFFFFFF)
    finally:
        for m in maps:
            m.close()
        os.close(ring)  # step 5
    if res < 0:
        raise OSError(-res, os.strerror(-res))
    return int(res)
