"""The NVMe controller: bring-up, admin commands, synchronous I/O, reset and shutdown.

Order of operations (NVMe 1.4 7.6.1 "Initialization"; Base 2.0 3.5.1):

1. read CAP (3.1.1): NVM command set supported, 4 KiB pages within MPSMIN..MPSMAX;
2. bus mastering on (PCI 6.2.2), then reset: CC.EN = 0 and wait for CSTS.RDY = 0, at most
   CAP.TO x 500 ms (3.1.5, 7.3.2 "Controller Level Reset");
3. admin queues in DMA memory: AQA, ASQ, ACQ (3.1.8-3.1.10);
4. MSI-X vector 0 (admin) and 1 (I/O) onto eventfds, or polled mode with INTMS masking
   the pin interrupt;
5. CC: NVM command set, 4 KiB pages, round robin, 64/16-byte entries, EN = 1; wait for
   CSTS.RDY = 1 (or CSTS.CFS: fatal);
6. Identify Controller (5.15, CNS 01h), Set Features Number of Queues (5.21.1.7), the
   active namespace list (CNS 02h) and each namespace (CNS 00h);
7. Create I/O Completion Queue (5.3), then Create I/O Submission Queue (5.4).

Shutdown (7.6.2): Delete I/O SQ, then CQ (5.6, 5.5), CC.SHN = 01b, wait for CSTS.SHST =
10b. A command that times out, or a controller that reports CSTS.CFS, gets a controller
reset and a fresh bring-up (7.3.2); the failed command's caller gets the error.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from udriver.errors import ConfigError, UdriverError
from udriver.runtime import Device, IrqType, api_address

from . import _regs as R
from ._c import PAGE, IoBuffers, QueuePair, check, check_api, ffi, lib
from ._datapath import DataPath
from ._identify import (
    ControllerId,
    NamespaceId,
    parse_active_ns_list,
    parse_controller,
    parse_namespace,
)
from ._status import NvmeError, NvmeStatusError, NvmeTimeoutError, decode_status

IO_TIMEOUT = 30.0  # seconds; Linux drivers/nvme/host/core.c `io_timeout` defaults to 30 s too

__all__ = ["Controller"]

_log = logging.getLogger(__name__)


class Controller(DataPath):
    """One NVMe controller driven from user space through a `udriver.runtime.Device`."""

    def __init__(self, device: Device, *, irq: str = "msix", io_depth: int = 128,
                 slots: int = 64, slot_bytes: int = 128 * 1024, timeout: float = IO_TIMEOUT,
                 admin_depth: int = 32) -> None:
        """Describe the set-up; nothing touches the device before `start()`.

        Args:
            device: the open device (bound to vfio-pci).
            irq: "msix" (completions wake an eventfd) or "poll" (busy polling, no IRQs).
            io_depth: entries of the I/O queue pair (at most CAP.MQES).
            slots: commands the direct path can keep in flight (< io_depth).
            slot_bytes: largest transfer of one command (capped by MDTS).
            timeout: seconds a command may take before the controller is reset (default
                30, as Linux's nvme `io_timeout`: an emulated controller's Flush is the
                host's fdatasync of the backing file, which takes seconds under load).
            admin_depth: entries of the admin queue pair.

        Raises:
            ConfigError: an option out of range.
        """
        if irq not in ("msix", "poll"):
            raise ConfigError(f"nvme: `irq` must be msix or poll, got {irq!r}")
        if not 2 <= admin_depth <= 4096 or not 2 <= io_depth <= 65536:
            raise ConfigError(f"nvme: queue depths out of range (admin {admin_depth}, "
                              f"io {io_depth})")
        if not 1 <= slots < io_depth or slot_bytes < PAGE or slot_bytes % PAGE:
            raise ConfigError(f"nvme: need 1 <= slots < io_depth ({io_depth}) and slot_bytes a "
                              f"multiple of {PAGE}, got {slots} slots of {slot_bytes} bytes")
        if not timeout > 0:
            raise ConfigError(f"nvme: `timeout` must be > 0 seconds, got {timeout!r}")
        self.device, self.irq = device, irq
        self.io_depth, self.admin_depth = io_depth, admin_depth
        self.slots, self.slot_bytes, self.timeout = slots, slot_bytes, timeout
        self.cap = 0
        self.version = 0
        self.ident: ControllerId | None = None
        self.namespaces: dict[int, NamespaceId] = {}
        self.resets = 0
        self.started = False
        self._api = 0
        self._dev = 0
        self._admin: QueuePair | None = None
        self._io: QueuePair | None = None
        self._bufs: IoBuffers | None = None
        self._idbuf: Any = None

    # -- registers ------------------------------------------------------------------------

    def _r32(self, off: int) -> int:
        return self.device.bar(0).read32(off)

    def _w32(self, off: int, value: int) -> None:
        self.device.bar(0).write32(off, value)

    def _w64(self, off: int, value: int) -> None:
        self._w32(off, value & 0xFFFFFFFF)  # low dword first, as 3.1.9 allows 32-bit halves
        self._w32(off + 4, value >> 32)

    @property
    def csts(self) -> int:
        """CSTS (3.1.6); all-ones once the device is gone."""
        return self._r32(R.CSTS)

    def _wait_csts(self, mask: int, want: int, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while True:
            csts = self.csts
            if csts == 0xFFFFFFFF:
                raise NvmeError(f"{what}: the controller is gone (CSTS reads all-ones)")
            if csts & mask == want:
                return
            if want & R.CSTS_RDY and csts & R.CSTS_CFS:
                raise NvmeTimeoutError(f"{what}: controller fatal status (CSTS {csts:#x})",
                                       fatal=True)
            if time.monotonic() > deadline:
                raise NvmeTimeoutError(f"{what}: CSTS {csts:#x} after {seconds:.1f} s "
                                       f"(CAP.TO), wanted {want:#x} under mask {mask:#x}")
            time.sleep(0.001)

    # -- bring-up -------------------------------------------------------------------------

    def start(self) -> None:
        """Reset the controller and bring it up (the module docstring's steps 1-7).

        Raises:
            NvmeError: the controller is unusable (no NVM command set, page size, entry
                sizes, no active namespace) or did not become ready.
            NvmeStatusError: an admin command failed.
            NativeError: the runtime refused (DMA, MSI-X, MMIO).
        """
        check_api()
        self._api, self._dev = api_address(), self.device.c_address
        bar = self.device.bar(0)
        self.cap = bar.read32(R.CAP) | bar.read32(R.CAP + 4) << 32  # 3.1.1, two dwords
        self.version = bar.read32(R.VS)
        if not R.cap_css_nvm(self.cap):
            raise NvmeError(f"controller does not support the NVM command set (CAP "
                            f"{self.cap:#x})")
        if not R.cap_mpsmin(self.cap) <= PAGE <= R.cap_mpsmax(self.cap):
            raise NvmeError(f"controller does not support {PAGE}-byte memory pages (CAP "
                            f"{self.cap:#x})")
        mqes = R.cap_mqes(self.cap)
        self.io_depth = min(self.io_depth, mqes)
        self.admin_depth = min(self.admin_depth, mqes)
        self.slots = min(self.slots, self.io_depth - 1)
        self.device.set_bus_master(True)
        self._disable()
        stride = R.cap_dstrd(self.cap)
        if self._admin is None:
            self._admin = QueuePair(self.device, 0, self.admin_depth, stride)
            self._io = QueuePair(self.device, 1, self.io_depth, stride)
            self._idbuf = self.device.dma_alloc(PAGE)
        assert self._io is not None
        self._admin.rewind()
        self._io.rewind()
        # 7.6.1 step 2: admin queue attributes and base addresses (0's based sizes).
        self._w32(R.AQA, (self.admin_depth - 1) << 16 | (self.admin_depth - 1))
        self._w64(R.ASQ, self._admin.sq.iova)
        self._w64(R.ACQ, self._admin.cq.iova)
        self._setup_irq()
        # 7.6.1 step 3-4: configure, then enable in a second write.
        cc = R.CC_CSS_NVM | 0 << R.CC_MPS_SHIFT | R.CC_AMS_RR | R.CC_IOSQES | R.CC_IOCQES
        self._w32(R.CC, cc)
        self._w32(R.CC, cc | R.CC_EN)
        self._wait_csts(R.CSTS_RDY, R.CSTS_RDY, self._to(), "enable (CC.EN=1)")
        self._identify_all()
        self._create_io_queues()
        self.started = True
        _log.info("nvme %s ready: %s, %d namespace(s), %s", self.device.bdf,
                  self.ident.model if self.ident else "?", len(self.namespaces), self.irq)

    def _to(self) -> float:
        return max(R.cap_timeout_s(self.cap), 0.5)

    def _disable(self) -> None:
        """CC.EN = 0 and wait for CSTS.RDY = 0 (3.1.5: a Controller Level Reset)."""
        cc, csts = self._r32(R.CC), self.csts
        if cc & R.CC_EN and not csts & R.CSTS_RDY and not csts & R.CSTS_CFS:
            # Enabling is still in progress: let it finish before clearing EN (3.1.6 RDY).
            try:
                self._wait_csts(R.CSTS_RDY, R.CSTS_RDY, self._to(), "finish enabling")
            except NvmeTimeoutError:
                pass
        self._w32(R.CC, cc & ~(R.CC_EN | R.CC_SHN_MASK))
        self._wait_csts(R.CSTS_RDY, 0, self._to(), "reset (CC.EN=0)")

    def _setup_irq(self) -> None:
        assert self._admin is not None and self._io is not None
        ints = self.device.interrupts
        if self.irq == "msix":
            fds = ints.enable(IrqType.MSIX, 2)
            ints.detach()  # the C loop waits on the eventfds itself, not the event loop
            self._admin.c.irq_fd, self._io.c.irq_fd = fds[0], fds[1]
        else:
            ints.disable()
            self._admin.c.irq_fd = self._io.c.irq_fd = -1
            self._w32(R.INTMS, 0xFFFFFFFF)  # 3.1.3: mask pin/MSI vectors; not used with MSI-X

    def _identify(self, cns: int, nsid: int = 0) -> bytes:
        self.admin(R.ADM_IDENTIFY, nsid=nsid, prp1=self._idbuf.iova, cdw10=cns)
        return bytes(self._idbuf.view[:PAGE])

    def _identify_all(self) -> None:
        self.ident = parse_controller(self._identify(R.CNS_CONTROLLER))
        limit = self.ident.max_transfer(R.cap_mpsmin(self.cap))
        if limit is not None:
            self.slot_bytes = min(self.slot_bytes, limit)
        # 5.21.1.7: ask for one I/O SQ and one I/O CQ (0's based counts).
        self.admin(R.ADM_SET_FEATURES, cdw10=R.FEAT_NUM_QUEUES, cdw11=0)
        self.namespaces = {}
        for nsid in parse_active_ns_list(self._identify(R.CNS_ACTIVE_NS_LIST)):
            self.namespaces[nsid] = parse_namespace(nsid, self._identify(R.CNS_NAMESPACE, nsid))
        if not self.namespaces:
            raise NvmeError(f"controller {self.ident.model!r} has no active namespace")

    def _create_io_queues(self) -> None:
        assert self._io is not None
        io, size = self._io, (self.io_depth - 1) << 16 | 1
        # 5.3: CDW11 PC (bit 0, physically contiguous), IEN (bit 1), IV (31:16): MSI-X
        # vector 1; polled: interrupts off and vector 0 (a vector past the enabled ones is
        # Invalid Interrupt Vector, SC 08h).
        ien_iv = 1 << 1 | 1 << 16 if self.irq == "msix" else 0
        self.admin(R.ADM_CREATE_CQ, prp1=io.cq.iova, cdw10=size, cdw11=1 | ien_iv)
        # 5.4: CDW11 PC (bit 0), QPRIO 00b, CQID (31:16) = 1.
        self.admin(R.ADM_CREATE_SQ, prp1=io.sq.iova, cdw10=size, cdw11=1 | 1 << 16)
        if self._bufs is None:
            self._bufs = IoBuffers(self.device, self.slots, self.slot_bytes)

    # -- commands -------------------------------------------------------------------------

    def admin(self, opcode: int, *, nsid: int = 0, prp1: int = 0, prp2: int = 0,
              cdw10: int = 0, cdw11: int = 0, cdw12: int = 0) -> int:
        """Run one admin command synchronously; returns CQE DW0.

        Raises:
            NvmeStatusError: non-zero status. NvmeTimeoutError: no completion.
        """
        assert self._admin is not None
        name = R.OPCODE_NAMES.get(("admin", opcode), f"admin opcode {opcode:#04x}")
        sqe, cqe = ffi.new("struct nvme_sqe *"), ffi.new("struct nvme_cqe *")
        sqe.cdw0 = opcode | self._admin.next_cid() << 16
        sqe.nsid, sqe.prp1, sqe.prp2 = nsid, prp1, prp2
        sqe.cdw10, sqe.cdw11, sqe.cdw12 = cdw10, cdw11, cdw12
        check(lib.nvme_cmd_sync(self._api, self._dev, self._admin.c, sqe,
                                int(self.timeout * 1000), cqe), f"NVMe {name}")
        if cqe.status >> 1:
            raise NvmeStatusError(name, decode_status(cqe.status >> 1))
        return int(cqe.dw0)

    def namespace(self, nsid: int | None = None) -> NamespaceId:
        """The namespace `nsid` (default: the first active one).

        Raises:
            NvmeError: not started, or `nsid` is not an active namespace.
        """
        if not self.started:
            raise NvmeError("the controller is not started (call start() first)")
        if nsid is None:
            nsid = min(self.namespaces)
        if nsid not in self.namespaces:
            raise NvmeError(f"namespace {nsid} is not active (active: "
                            f"{sorted(self.namespaces)})")
        return self.namespaces[nsid]

    # -- reset and shutdown ---------------------------------------------------------------

    def recover(self, why: str) -> None:
        """Controller Level Reset and a fresh bring-up (after a timeout or CSTS.CFS).

        Raises:
            NvmeError: the controller did not come back.
        """
        _log.warning("nvme %s: resetting the controller: %s", self.device.bdf, why)
        self.resets += 1
        self.started = False
        # Queue memory the failed controller may have given up on (or that lost its
        # mapping) is not reused: bring-up allocates fresh queues and buffers.
        for obj in (self._admin, self._io, self._bufs, self._idbuf):
            if obj is not None:
                try:
                    obj.free()
                except UdriverError as e:
                    _log.warning("nvme %s: while resetting: %s", self.device.bdf, e)
        self._admin = self._io = self._bufs = self._idbuf = None
        self.start()

    def _recovered(self, e: NvmeTimeoutError) -> NvmeTimeoutError:
        """Reset after a timeout or CSTS.CFS (not when the device is gone); the error to raise.

        Raises:
            NvmeError: the reset itself failed.
        """
        if e.gone:
            return e
        self.recover(str(e))
        return NvmeTimeoutError(f"{e}; the controller was reset (reset #{self.resets}), "
                                "the command did not complete", fatal=e.fatal)

    def shutdown(self) -> str:
        """Orderly shutdown (7.6.2); returns CSTS.SHST's name ("shutdown complete").

        Raises:
            NvmeError: the controller did not report shutdown complete in time.
        """
        if self.started:
            for opcode in (R.ADM_DELETE_SQ, R.ADM_DELETE_CQ):
                try:
                    self.admin(opcode, cdw10=1)
                except NvmeError as e:  # shutting down anyway: the notification suffices
                    _log.warning("nvme %s: %s", self.device.bdf, e)
        self.started = False
        cc = self._r32(R.CC)
        self._w32(R.CC, (cc & ~R.CC_SHN_MASK) | R.CC_SHN_NORMAL)
        rtd3e = self.ident.rtd3e / 1e6 if self.ident and self.ident.rtd3e else 0.0
        self._wait_csts(R.CSTS_SHST_MASK, R.CSTS_SHST_COMPLETE, max(rtd3e, 5.0),
                        "shutdown (CC.SHN=01b)")
        if self.irq == "poll":
            self._w32(R.INTMC, 0xFFFFFFFF)  # 3.1.4: leave the pin/MSI vectors unmasked
        self.device.interrupts.disable()
        self.device.set_bus_master(False)
        return R.SHST_NAMES[(self.csts & R.CSTS_SHST_MASK) >> 2]

    def stats(self) -> dict[str, int]:
        """Counters: controller resets, eventfd wake-ups of the admin and I/O queues."""
        return {"resets": self.resets,
                "admin_wakeups": self._admin.wakeups if self._admin else 0,
                "io_wakeups": self._io.wakeups if self._io else 0}
