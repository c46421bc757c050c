"""The 82574 controller: reset, address, link, rings, interrupts and filters.

Order of operations (82574 datasheet 4.6 "Software Initialization Sequence"):

1. bus mastering on (PCI 6.2.2); 4.6.1: mask every interrupt (IMC = all ones);
2. 4.6.2 global reset: CTRL.RST = 1, wait for it to clear (self-clearing, about 1 ms),
   mask interrupts again and clear ICR by reading it;
3. the Ethernet address: RAL0/RAH0 when RAH0.AV is set (loaded from the NVM at reset),
   else NVM words 0-2 through EERD (10.2.2.x), written back to RAL0/RAH0 with AV;
4. 4.6.3 link: CTRL.SLU with auto speed detection (CTRL.ASDE), the PHY auto-negotiates;
5. 4.6.5 statistics: read every counter once (they clear on read); MTA zeroed;
6. 4.6.6 receive: descriptor ring (RDBAL/RDBAH/RDLEN, RDH = 0, RDT), then RCTL
   (EN, broadcast accept, strip CRC, 2 KiB buffers, UPE/MPE as configured);
7. 4.6.7 transmit: ring (TDBAL/TDBAH/TDLEN, TDH = TDT = 0), TIPG, then TCTL (EN, pad
   short packets, collision threshold and distance);
8. interrupts: MSI-X vectors 0 (RX queue 0), 1 (TX queue 0) and 2 (other causes: link
   status change) through IVAR, auto-cleared by EIAC, moderated by EITR (7.4.4); or the
   polled mode, where every cause stays masked and C spins on the descriptors.

Stop: RCTL.EN and TCTL.EN off, interrupts masked, vectors torn down, bus mastering off.
"""

from __future__ import annotations

import logging
import os
import select
import time
from typing import Any

from udriver.errors import ConfigError, UdriverError
from udriver.runtime import Device, IrqType, api_address

from . import _regs as R
from ._c import Ring, check, check_api, ffi, lib

__all__ = ["E1000eError", "Nic", "mta_slot"]

_log = logging.getLogger(__name__)
VEC_RX, VEC_TX, VEC_OTHER = 0, 1, 2


class E1000eError(UdriverError):
    """The controller did not behave as the datasheet says (reset stuck, NVM read hung)."""


def mta_slot(mac: bytes, mo: int = 0) -> tuple[int, int]:
    """The Multicast Table Array word and bit of a destination address (10.2.5.x MTA).

    With RCTL.MO = 00b the 12-bit hash is address bits 47:36, i.e. the upper nibble of
    byte 4 and all of byte 5; MO 01b/10b/11b shift the window down by 1, 2 and 4 bits.
    """
    shift = (4, 3, 2, 0)[mo]
    value = ((mac[4] >> shift) | (mac[5] << (8 - shift))) & 0xFFF
    return value >> 5, value & 0x1F


class Nic:
    """One 82574 driven from user space through a `udriver.runtime.Device`."""

    def __init__(self, device: Device, *, irq: str = "msix", rx_ring: int = 256,
                 tx_ring: int = 256, itr: int = 8000, promisc: bool = False,
                 allmulti: bool = False) -> None:
        """Describe the set-up; nothing touches the device before `start()`.

        Args:
            device: the open device (bound to vfio-pci).
            irq: "msix" (rings wake eventfds) or "poll" (busy polling, no interrupts).
            rx_ring, tx_ring: descriptors per ring (multiples of 8, 8..4096).
            itr: interrupt moderation, at most this many interrupts per second and vector
                (EITR, 7.4.4); 0 turns moderation off.
            promisc, allmulti: RCTL.UPE / RCTL.MPE (10.2.5.1).

        Raises:
            ConfigError: an option out of range.
        """
        if irq not in ("msix", "poll"):
            raise ConfigError(f"e1000e: `irq` must be msix or poll, got {irq!r}")
        for name, n in (("rx_ring", rx_ring), ("tx_ring", tx_ring)):
            if not 8 <= n <= 4096 or n % 8:
                raise ConfigError(f"e1000e: `{name}` must be a multiple of 8 in 8..4096, "
                                  f"got {n}")
        if not 0 <= itr <= 1_000_000:
            raise ConfigError(f"e1000e: `itr` must be 0..1000000 interrupts/s, got {itr}")
        self.device, self.irq, self.itr = device, irq, itr
        self.rx_count, self.tx_count = rx_ring, tx_ring
        self.promisc, self.allmulti = promisc, allmulti
        self.mac = b""
        self.mac_source = ""
        self.multicast: set[bytes] = set()
        self.rx: Ring | None = None
        self.tx: Ring | None = None
        self._bar = device.bar(R.MMIO_BAR)
        self._other_fd = -1
        self._stats: dict[str, int] = dict.fromkeys(R.STATS, 0)
        self._pkts: Any = ffi.new("struct e1k_pkt[64]")
        self.link_changes = 0

    # -- registers -----------------------------------------------------------------------
    def r32(self, off: int) -> int:
        return self._bar.read32(off)

    def w32(self, off: int, value: int) -> None:
        self._bar.write32(off, value & 0xFFFFFFFF)

    # -- bring-up ------------------------------------------------------------------------
    def start(self) -> None:
        """Reset and bring the controller up (module docstring, steps 1-8).

        Raises:
            E1000eError: the reset or an NVM read did not complete.
            NativeError: the C part refused the runtime's ABI table, or VFIO failed.
        """
        check_api()
        self.device.set_bus_master(True)
        self.reset()
        self._read_mac()
        # 4.6.3: let the PHY auto-negotiate; force nothing (CTRL.FRCSPD/FRCDPX off).
        ctrl = self.r32(R.CTRL) & ~(R.CTRL_FRCSPD | R.CTRL_FRCDPX | R.CTRL_PHY_RST)
        self.w32(R.CTRL, ctrl | R.CTRL_SLU | R.CTRL_ASDE)
        self.read_stats()  # 4.6.5: clear the counters
        self._stats = dict.fromkeys(R.STATS, 0)
        self._write_mta()
        self._setup_irq()
        self._setup_rx()
        self._setup_tx()
        self._enable_irq()
        _log.info("e1000e %s: %s, link %s, irq %s", self.device.bdf, self.mac_str,
                  "up" if self.link_up else "down", self.irq)

    def reset(self) -> None:
        """4.6.1 mask interrupts, 4.6.2 CTRL.RST and wait for it to self-clear.

        Raises:
            E1000eError: CTRL.RST still set after 100 ms.
        """
        self.w32(R.IMC, 0xFFFFFFFF)
        self.w32(R.RCTL, 0)
        self.w32(R.TCTL, R.TCTL_PSP)
        self.r32(R.STATUS)  # flush the posted writes
        time.sleep(0.01)  # let in-flight DMA finish before the reset (4.6.2)
        self.w32(R.CTRL, self.r32(R.CTRL) | R.CTRL_RST)
        deadline = time.monotonic() + 0.1
        time.sleep(0.001)
        while self.r32(R.CTRL) & R.CTRL_RST:
            if time.monotonic() > deadline:
                raise E1000eError(f"e1000e {self.device.bdf}: CTRL.RST did not clear within "
                                  "100 ms of a software reset")
            time.sleep(0.001)
        self.w32(R.IMC, 0xFFFFFFFF)  # 4.6.1: again after the reset
        self.r32(R.ICR)

    def nvm_read(self, word: int, timeout: float = 0.1) -> int:
        """Read one 16-bit NVM word through EERD (start, poll DONE, take DATA).

        Raises:
            E1000eError: DONE not set within `timeout` seconds.
        """
        self.w32(R.EERD, word << R.EERD_ADDR_SHIFT | R.EERD_START)
        deadline = time.monotonic() + timeout
        while True:
            value = self.r32(R.EERD)
            if value & R.EERD_DONE:
                return value >> R.EERD_DATA_SHIFT
            if time.monotonic() > deadline:
                raise E1000eError(f"e1000e {self.device.bdf}: NVM read of word {word} did "
                                  f"not complete (EERD {value:#010x})")
            time.sleep(0.0001)

    def nvm_mac(self) -> bytes:
        """The Ethernet address stored in NVM words 0-2 (low byte of each word first)."""
        words = [self.nvm_read(w) for w in R.NVM_MAC_WORDS]
        return b"".join(w.to_bytes(2, "little") for w in words)

    def _read_mac(self) -> None:
        rah = self.r32(R.RAH0)
        if rah & R.RAH_AV:
            self.mac = self.r32(R.RAL0).to_bytes(4, "little") + (rah & 0xFFFF).to_bytes(2,
                                                                                     "little")
            self.mac_source = "RAL0/RAH0"
        else:
            self.mac = self.nvm_mac()
            self.mac_source = "NVM"
            self.set_mac(self.mac)

    def set_mac(self, mac: bytes) -> None:
        """Program receive address 0 (RAL0/RAH0 with AV): the unicast filter."""
        if len(mac) != 6 or mac[0] & 1:
            raise ConfigError(f"e1000e: not a unicast Ethernet address: {mac.hex(':')}")
        self.w32(R.RAL0, int.from_bytes(mac[:4], "little"))
        self.w32(R.RAH0, int.from_bytes(mac[4:], "little") | R.RAH_AV)
        self.mac = bytes(mac)

    @property
    def mac_str(self) -> str:
        return self.mac.hex(":")

    # -- rings ---------------------------------------------------------------------------
    def _setup_rx(self) -> None:
        fd = self.device.interrupts.fileno(VEC_RX) if self.irq == "msix" else -1
        self.rx = Ring(self.device, self.rx_count, fd, R.ICR_RXQ0)
        # 4.6.6: ring base and length, head 0; the tail goes last (C, e1k_rx_init).
        self.w32(R.RDBAL, self.rx.iova & 0xFFFFFFFF)
        self.w32(R.RDBAH, self.rx.iova >> 32)
        self.w32(R.RDLEN, self.rx.length)
        self.w32(R.RDH, 0)
        self.w32(R.RDTR, 0)  # no receive delay timer: EITR does the moderation
        self.w32(R.RADV, 0)
        self.w32(R.RFCTL, 0)  # legacy descriptors (RFCTL.EXTEN = 0)
        check(lib.e1k_rx_init(api_address(), self.device.c_address, self.rx.c), "RX ring")
        self._write_rctl()

    def _write_rctl(self) -> None:
        rctl = R.RCTL_EN | R.RCTL_BAM | R.RCTL_SECRC  # BSIZE 00b: 2048 (= BUF_SIZE)
        if self.promisc:
            rctl |= R.RCTL_UPE | R.RCTL_MPE
        if self.allmulti:
            rctl |= R.RCTL_MPE
        self.w32(R.RCTL, rctl)

    def _setup_tx(self) -> None:
        fd = self.device.interrupts.fileno(VEC_TX) if self.irq == "msix" else -1
        self.tx = Ring(self.device, self.tx_count, fd, R.ICR_TXQ0)
        check(lib.e1k_tx_init(self.tx.c), "TX ring")
        self.w32(R.TDBAL, self.tx.iova & 0xFFFFFFFF)
        self.w32(R.TDBAH, self.tx.iova >> 32)
        self.w32(R.TDLEN, self.tx.length)
        self.w32(R.TDH, 0)
        self.w32(R.TDT, 0)
        self.w32(R.TIDV, 0)
        self.w32(R.TADV, 0)
        self.w32(R.TIPG, R.TIPG_COPPER)
        self.w32(R.TCTL, R.TCTL_EN | R.TCTL_PSP | 0x0F << R.TCTL_CT_SHIFT
                 | 0x3F << R.TCTL_COLD_SHIFT | R.TCTL_RTLC)

    # -- interrupts ----------------------------------------------------------------------
    def _setup_irq(self) -> None:
        ints = self.device.interrupts
        if self.irq == "poll":
            ints.disable()
            return
        fds = ints.enable(IrqType.MSIX, 3)
        ints.detach()  # C waits on the ring vectors itself; Python on the third
        self._other_fd = fds[VEC_OTHER]
        # 10.2.4.9 IVAR: RX queue 0 -> vector 0, TX queue 0 -> vector 1, other -> 2.
        self.w32(R.IVAR, (R.IVAR_VALID | VEC_RX) << R.IVAR_RXQ0_SHIFT
                 | (R.IVAR_VALID | VEC_TX) << R.IVAR_TXQ0_SHIFT
                 | (R.IVAR_VALID | VEC_OTHER) << R.IVAR_OTHER_SHIFT)
        # 10.2.4.8 EIAC: sending the RX/TX vector clears its ICR cause; CTRL_EXT.IAME keeps
        # the cause unmasked after that (C re-arms IMS before each sleep anyway).
        self.w32(R.EIAC, R.ICR_RXQ0 | R.ICR_TXQ0)
        self.w32(R.CTRL_EXT, self.r32(R.CTRL_EXT) | R.CTRL_EXT_IAME | R.CTRL_EXT_PBA_CLR)
        self.set_itr(self.itr)

    def set_itr(self, per_second: int) -> None:
        """Interrupt moderation: EITR of each vector (and ITR) to 1/per_second (7.4.4)."""
        interval = 0 if per_second == 0 else max(1, 10**9 // (per_second * R.ITR_UNIT_NS))
        self.itr = per_second
        self.w32(R.ITR, interval)
        for vec in (VEC_RX, VEC_TX, VEC_OTHER):
            self.w32(R.EITR0 + 4 * vec, interval)

    def _enable_irq(self) -> None:
        if self.irq == "msix":
            self.w32(R.IMS, R.ICR_RXQ0 | R.ICR_TXQ0 | R.ICR_LSC | R.ICR_OTHER)

    # -- link ----------------------------------------------------------------------------
    @property
    def status(self) -> int:
        return self.r32(R.STATUS)

    @property
    def link_up(self) -> bool:
        """STATUS.LU (10.2.2.2)."""
        return bool(self.status & R.STATUS_LU)

    @property
    def speed(self) -> int:
        """Negotiated speed in Mb/s from STATUS.SPEED."""
        return R.SPEEDS[(self.status >> R.STATUS_SPEED_SHIFT) & 3]

    def wait_link_change(self, timeout: float) -> bool | None:
        """Sleep until a link status change interrupt (ICR.LSC on the "other" vector).

        Returns:
            The new STATUS.LU, or None if no change was signalled within `timeout`
            (in polled mode: if STATUS.LU did not change).
        """
        was = self.link_up
        if self._other_fd < 0:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.link_up != was:
                    self.link_changes += 1
                    return not was
                time.sleep(0.01)
            return None
        p = select.poll()
        p.register(self._other_fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not p.poll(int(left * 1000)):
                return None
            try:
                os.eventfd_read(self._other_fd)
            except BlockingIOError:
                continue
            icr = self.r32(R.ICR)  # clear on read (10.2.4.1)
            self.w32(R.IMS, R.ICR_LSC | R.ICR_OTHER)
            if icr & R.ICR_LSC:
                self.link_changes += 1
                return self.link_up

    # -- filters -------------------------------------------------------------------------
    def set_promiscuous(self, on: bool) -> None:
        """RCTL.UPE and RCTL.MPE: accept every unicast and multicast frame."""
        self.promisc = on
        self._write_rctl()

    def set_allmulti(self, on: bool) -> None:
        """RCTL.MPE: accept every multicast frame."""
        self.allmulti = on
        self._write_rctl()

    def set_multicast(self, addresses: list[bytes]) -> None:
        """Accept these multicast groups through the MTA hash filter (10.2.5.x)."""
        for mac in addresses:
            if len(mac) != 6 or not mac[0] & 1:
                raise ConfigError(f"e1000e: not a multicast address: {bytes(mac).hex(':')}")
        self.multicast = {bytes(m) for m in addresses}
        self._write_mta()

    def _write_mta(self) -> None:
        words = [0] * R.MTA_WORDS
        for mac in self.multicast:
            word, bit = mta_slot(mac)
            words[word] |= 1 << bit
        for i, w in enumerate(words):
            self.w32(R.MTA + 4 * i, w)

    # -- packets (Python convenience over the C burst calls) -----------------------------
    def recv(self, max_frames: int = 64) -> list[bytes]:
        """Frames received since the last call (copied out; at most 64 per call)."""
        assert self.rx is not None
        dev = self.device.c_address
        n = check(lib.e1k_rx_burst(api_address(), dev, self.rx.c, self._pkts,
                                   min(64, max_frames)), "RX burst")
        frames = [bytes(ffi.buffer(self._pkts[i].data, self._pkts[i].len)) for i in range(n)]
        check(lib.e1k_rx_release(api_address(), dev, self.rx.c), "RX release")
        return frames

    def wait_rx(self, timeout: float) -> bool:
        """Sleep on the RX vector (MSI-X); in polled mode return at once (False)."""
        assert self.rx is not None
        return check(lib.e1k_wait(api_address(), self.device.c_address, self.rx.c,
                                  int(timeout * 1000)), "RX wait") > 0

    def send(self, frames: list[bytes]) -> int:
        """Queue frames (14..2048 bytes each, FCS added by the NIC); returns how many fit."""
        assert self.tx is not None
        keep = [ffi.from_buffer(f) for f in frames[:64]]
        pkts = ffi.new("struct e1k_pkt[]", len(keep))
        for i, buf in enumerate(keep):
            pkts[i].data, pkts[i].len = ffi.cast("uint8_t *", buf), len(buf)
        return check(lib.e1k_tx_burst(api_address(), self.device.c_address, self.tx.c, pkts,
                                      len(keep)), "TX burst")

    # -- statistics and stop -------------------------------------------------------------
    def read_stats(self) -> dict[str, int]:
        """Accumulated hardware counters (10.2.7; each read clears the register)."""
        for name, off in R.STATS.items():
            value = self.r32(off)
            if name in R.STATS_HIGH:
                value |= self.r32(R.STATS_HIGH[name]) << 32
            self._stats[name] += value
        return dict(self._stats)

    def counters(self) -> dict[str, Any]:
        return {"rx": self.rx.counters() if self.rx else None,
                "tx": self.tx.counters() if self.tx else None,
                "link_changes": self.link_changes}

    def stop(self) -> None:
        """Receiver and transmitter off, interrupts masked and torn down, DMA off."""
        if self.device.is_open:
            self.w32(R.RCTL, 0)
            self.w32(R.TCTL, R.TCTL_PSP)
            self.w32(R.IMC, 0xFFFFFFFF)
            self.r32(R.STATUS)
            self.device.interrupts.disable()
            self.device.set_bus_master(False)
        for ring in (self.rx, self.tx):
            if ring is not None:
                ring.free()
        self.rx = self.tx = None
        self._other_fd = -1
