"""The controller's data path: synchronous I/O, the direct path and the kernel bridges' servers.

`read`/`write`/`flush` issue one NVM command at a time (6.9, 6.15, 6.8); `run`,
`serve_nbd` and `serve_ublk` hand the I/O queue pair and the DMA slots to a C loop
(native/nvme_io.c, nvme_nbd.c, nvme_ublk.c) and return its counters. A queue depth must fit
both the slots and the I/O queue (an SQ of N entries holds N - 1 commands, NVMe Base 2.0
3.3.1.1 "Full Queue"). A timeout or CSTS.CFS resets the controller (7.3.2) before the error
reaches the caller (`Controller._recovered`); the failed command is not retried.

`DataPath` is mixed into `Controller`, which owns the queues, the namespaces and reset.
"""

from __future__ import annotations

from typing import Any

from udriver.errors import ConfigError

from . import _regs as R
from ._c import IoBuffers, QueuePair, check, ffi, lib
from ._identify import NamespaceId
from ._job import JobResult, JobSpec, run_job
from ._status import NvmeStatusError, NvmeTimeoutError, decode_status

__all__ = ["DataPath"]


class DataPath:
    """Synchronous I/O, the direct path (`run`) and the block servers (`serve_nbd`,
    `serve_ublk`)."""

    io_depth: int
    timeout: float
    _api: int
    _dev: int
    _io: QueuePair | None
    _bufs: IoBuffers | None

    def namespace(self, nsid: int | None = None) -> NamespaceId:
        raise NotImplementedError  # Controller's

    def _recovered(self, e: NvmeTimeoutError) -> NvmeTimeoutError:
        raise NotImplementedError  # Controller's

    def _queues(self, what: str, depth: int) -> tuple[QueuePair, IoBuffers]:
        """The I/O queue pair and slots, with `depth` checked against both.

        Raises:
            ConfigError: `depth` does not fit the queues.
        """
        assert self._io is not None and self._bufs is not None, "Controller.start() first"
        top = min(self._bufs.slots, self.io_depth - 1)
        if not 1 <= depth <= top:
            raise ConfigError(f"nvme: {what} queue depth must be 1..{top}, got {depth}")
        return self._io, self._bufs

    def _finish(self, rc: int, what: str, st: Any) -> dict[str, int]:
        """Check a server loop's return code (resetting on a timeout); its counters.

        Raises:
            NvmeTimeoutError: the loop timed out or saw CSTS.CFS (the controller was reset).
            NativeError: the loop failed otherwise.
        """
        try:
            check(rc, what)
        except NvmeTimeoutError as e:
            raise self._recovered(e) from e
        return {"requests": int(st.requests), "errors": int(st.errors),
                "sync_requests": int(st.sync_requests), "why": int(st.why),
                "enters": int(st.enters), "sleeps": int(st.sleeps), "irqs": int(st.irqs),
                "sq_rings": int(st.sq_rings), "cq_rings": int(st.cq_rings)}

    def _io_cmd(self, opcode: int, ns: NamespaceId, lba: int, nblocks: int) -> None:
        assert self._io is not None and self._bufs is not None
        name = R.OPCODE_NAMES[("io", opcode)]
        cqe = ffi.new("struct nvme_cqe *")
        rc = lib.nvme_io_sync(self._api, self._dev, self._io.c, self._bufs.c, opcode, ns.nsid,
                              lba, nblocks, ns.lba_bytes, int(self.timeout * 1000), cqe)
        what = (f"NVMe {name} of LBA {lba:#x} (+{nblocks} blocks; namespace {ns.nsid} has "
                f"{ns.nsze:#x} blocks)")
        try:
            check(rc, what)
        except NvmeTimeoutError as e:
            raise self._recovered(e) from e
        if cqe.status >> 1:
            raise NvmeStatusError(name, decode_status(cqe.status >> 1),
                                  f"LBA {lba:#x} +{nblocks} blocks, namespace {ns.nsid} has "
                                  f"{ns.nsze:#x} blocks")

    def read(self, lba: int, nblocks: int, nsid: int | None = None) -> bytes:
        """Read `nblocks` logical blocks from `lba`. The controller checks the range.

        Raises:
            ConfigError: `lba` < 0 or `nblocks` < 1.
            NvmeStatusError: e.g. LBA Out of Range. NvmeTimeoutError: (controller reset).
        """
        ns = self.namespace(nsid)
        self._check_args(lba, nblocks)
        assert self._bufs is not None
        out = bytearray()
        per = self._bufs.slot_bytes // ns.lba_bytes
        while nblocks:
            n = min(nblocks, per)
            self._io_cmd(R.NVM_READ, ns, lba, n)
            out += self._bufs.data.view[:n * ns.lba_bytes]
            lba, nblocks = lba + n, nblocks - n
        return bytes(out)

    def write(self, lba: int, data: bytes, nsid: int | None = None) -> None:
        """Write `data` (a whole number of logical blocks) at `lba`.

        Raises:
            ConfigError: `lba` < 0, or `data` empty or not whole blocks.
            NvmeStatusError, NvmeTimeoutError: as `read`.
        """
        ns = self.namespace(nsid)
        if not data or len(data) % ns.lba_bytes:
            raise ConfigError(f"nvme: write needs whole {ns.lba_bytes}-byte blocks, got "
                              f"{len(data)} bytes")
        self._check_args(lba, 1)
        assert self._bufs is not None
        step = self._bufs.slot_bytes
        for off in range(0, len(data), step):
            chunk = data[off:off + step]
            self._bufs.data.view[:len(chunk)] = chunk
            self._io_cmd(R.NVM_WRITE, ns, lba + off // ns.lba_bytes, len(chunk) // ns.lba_bytes)

    def flush(self, nsid: int | None = None) -> None:
        """Flush (6.8): make the volatile write cache's data non-volatile.

        Raises:
            NvmeStatusError, NvmeTimeoutError: as `read`.
        """
        self._io_cmd(R.NVM_FLUSH, self.namespace(nsid), 0, 0)

    @staticmethod
    def _check_args(lba: int, nblocks: int) -> None:
        if not isinstance(lba, int) or lba < 0 or not isinstance(nblocks, int) or nblocks < 1:
            raise ConfigError(f"nvme: need lba >= 0 and nblocks >= 1, got {lba!r}, {nblocks!r}")

    def run(self, spec: JobSpec) -> JobResult:
        """Run a workload straight on the I/O queue pair (the direct path).

        Raises:
            ConfigError: the spec does not fit the queues or the namespace.
            NvmeTimeoutError: no completion within the timeout (the controller is reset).
        """
        ns = self.namespace(spec.nsid)
        assert self._io is not None and self._bufs is not None, "Controller.start() first"
        try:
            return run_job(self._api, self._dev, self._io, self._bufs, ns, spec,
                           int(self.timeout * 1000))
        except NvmeTimeoutError as e:
            raise self._recovered(e) from e

    def serve_nbd(self, sock_fd: int, stop_fd: int, qd: int = 32,
                  nsid: int | None = None) -> dict[str, int]:
        """Serve the NBD transmission protocol on `sock_fd` from the C data path
        (native/nvme_nbd.c) with up to `qd` commands in flight, until EOF, NBD_CMD_DISC or
        `stop_fd` becomes readable. Returns the C loop's counters.

        Raises:
            ConfigError: `qd` does not fit the queues.
            NvmeTimeoutError: no completion within the timeout (the controller is reset).
            NativeError: the socket failed (e.g. EPROTO: not an NBD request).
        """
        ns = self.namespace(nsid)
        io, bufs = self._queues("NBD", qd)
        st = ffi.new("struct nvme_nbd_stats *")
        rc = lib.nvme_nbd_serve(self._api, self._dev, io.c, bufs.c, sock_fd, stop_fd,
                                ns.nsid, ns.lba_bytes, ns.nsze, qd, int(self.timeout * 1000), st)
        return self._finish(rc, "NBD server", st)

    def serve_ublk(self, cfd: int, ready_fd: int, stop_fd: int, depth: int,
                   nsid: int | None = None) -> dict[str, int]:
        """Serve ublk's block requests on the char device `cfd` from the C data path
        (native/nvme_ublk.c): `depth` tags, tag i in DMA slot i (the parent set the
        device's buffer size to `slot_bytes`). Writes one byte to `ready_fd` once every
        tag is fetched; returns when `stop_fd` becomes readable or the kernel aborted every
        tag, with the C loop's counters.

        Must run in one thread from start to end: ublk answers only the task that fetched.

        Raises:
            ConfigError: `depth` does not fit the queues.
            NvmeTimeoutError: no completion within the timeout (the controller is reset).
            NativeError: io_uring or the char device failed (e.g. EPERM: seccomp).
        """
        ns = self.namespace(nsid)
        io, bufs = self._queues("ublk", depth)
        st = ffi.new("struct nvme_nbd_stats *")
        rc = lib.nvme_ublk_serve(self._api, self._dev, io.c, bufs.c, cfd, ready_fd, stop_fd,
                                 ns.nsid, ns.lba_bytes, ns.nsze, depth,
                                 int(self.timeout * 1000), st)
        return self._finish(rc, "ublk server", st)
