"""The NVMe namespace as a Linux block device through ublk (linux/ublk_cmd.h; 6.0+).

The privileged parent added a ublk device with one queue of `queue_depth` tags whose
buffers are `io_bytes` long, set its parameters, opened /dev/ublkcN and handed the
descriptor to this driver (`udriver.runtime.Bridge.block`, kind "ublk"). Order of
operations (`UblkServer`):

1. `serve` (in a thread of its own, start to end: ublk only accepts a tag's answer from the
   task that fetched it) runs the C data path (native/nvme_ublk.c): it mmaps the request
   descriptors, fetches every tag, writes one byte to the ready pipe, and serves.
2. `start` (another thread) waits for that byte, then asks the parent for
   UBLK_U_CMD_START_DEV (`BlockBridge.start`), which adds /dev/ublkbN; the kernel's
   partition scan is already served by step 1.
3. `stop` makes the stop pipe readable: the loop answers what is in flight and returns;
   `close` closes the char device (the parent stops and deletes the device).

Rules for each request are those of native/nvme_ublk.c (the same as NBD's).

The serving thread runs under SCHED_BATCH (sched(7): a woken SCHED_BATCH task does not
preempt the running one). On a guest with one vCPU the submitting program (fio, a file
system) then queues its whole batch before the server runs, and the server fetches, submits
and answers that batch in one pass: half the context switches per request, and fewer
doorbells. Lowering one's own policy needs no privilege; where it is refused (a seccomp
filter) the server runs as SCHED_OTHER.
"""

from __future__ import annotations

import os
import select

from udriver.errors import BridgeError
from udriver.runtime import BlockBridge

from ._controller import Controller

__all__ = ["UblkServer"]

_WHY = {0: "aborted by the kernel", 2: "stopped"}


class UblkServer:
    """Serves one namespace of a started `Controller` on a ublk char device."""

    def __init__(self, ctrl: Controller, disk: BlockBridge, nsid: int | None = None) -> None:
        self.ctrl, self.disk = ctrl, disk
        self.ns = ctrl.namespace(nsid)
        self._ready_r, self._ready_w = os.pipe()
        self._stop_r, self._stop_w = os.pipe()
        self.served = 0
        """Requests answered."""
        self.errors = 0
        """Requests answered with an error."""
        self.stats: dict[str, int] = {}
        """The C loop's counters once `serve` returned (`DataPath._finish`)."""

    def serve(self) -> str:
        """Step 1: serve until stopped or aborted; returns why it ended.

        Raises:
            NvmeError, NativeError: the C data path failed (see `Controller.serve_ublk`).
        """
        try:
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))  # this thread only
        except OSError:
            pass
        try:
            st = self.ctrl.serve_ublk(self.disk.fd, self._ready_w, self._stop_r,
                                      self.disk.queue_depth, self.ns.nsid)
        except BaseException:
            os.write(self._ready_w, b"e")  # `start` must not ask for START_DEV now
            raise
        self.served, self.errors, self.stats = st["requests"], st["errors"], st
        return _WHY.get(st["why"], f"why {st['why']}")

    def start(self, timeout: float = 30.0) -> None:
        """Step 2: once every tag is fetched, have the parent add /dev/ublkbN.

        Raises:
            BridgeError: the server did not fetch its tags within `timeout` seconds, or
                the parent could not start the device.
        """
        if not select.select([self._ready_r], [], [], timeout)[0]:
            raise BridgeError(f"{self.disk.device}: the ublk server did not fetch its "
                              f"{self.disk.queue_depth} tags within {timeout} s")
        if os.read(self._ready_r, 1) != b"r":
            raise BridgeError(f"{self.disk.device}: the ublk server failed before fetching "
                              f"its tags")
        self.disk.start()

    def stop(self) -> None:
        try:
            os.write(self._stop_w, b"x")
        except OSError:
            pass

    def close(self) -> None:
        self.disk.close()
        for fd in (self._ready_r, self._ready_w, self._stop_r, self._stop_w):
            os.close(fd)
