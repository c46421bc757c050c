"""The direct path's measurement: a packet generator and a sink, both loops in C."""

from __future__ import annotations

import dataclasses
from typing import Any

from udriver.errors import ConfigError
from udriver.runtime import api_address

from ._c import check, ffi, lib
from ._nic import Nic

__all__ = ["PerfResult", "generate", "sink"]


@dataclasses.dataclass(frozen=True)
class PerfResult:
    """What one generator or sink run moved."""

    packets: int
    """Frames sent (queued and reaped) or generator frames received."""
    bytes: int
    """Their bytes, without the FCS."""
    seconds: float
    """Generator: the whole run; sink: first to last received burst."""
    batches: int
    """Bursts that moved at least one frame."""
    empty_polls: int
    """Bursts that moved nothing (ring full, or nothing received)."""
    other: int
    """Sink: frames that were not the generator's (ARP, IPv6 ND...)."""
    gaps: int
    """Sink: generator frames whose sequence number was not the previous one + 1."""

    @property
    def pps(self) -> float:
        return self.packets / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["pps"] = round(self.pps, 1)
        d["mbit_s"] = round(self.bytes * 8 / self.seconds / 1e6, 2) if self.seconds else 0.0
        return d


def _result(out: Any) -> PerfResult:
    return PerfResult(int(out.packets), int(out.bytes), int(out.elapsed_ns) / 1e9,
                      int(out.batches), int(out.empty_polls), int(out.other), int(out.gaps))


def generate(nic: Nic, dst: bytes, *, size: int = 60, batch: int = 32, count: int = 0,
             seconds: float = 0.0, rate: float = 0.0) -> PerfResult:
    """Send generator frames (ethertype 88B5h, sequence-stamped) to `dst` from C.

    Args:
        size: frame bytes without the FCS (60 makes a 64-byte frame on the wire).
        batch: frames per burst (1..64).
        count, seconds: stop after this many frames or this long (at least one).
        rate: at most this many frames per second (0: as fast as the ring takes them).

    Raises:
        ConfigError: a size, batch or stop condition out of range.
        NativeError: the C loop failed.
    """
    if len(dst) != 6 or not 26 <= size <= 1514 or not 1 <= batch <= 64 or rate < 0 or \
            (count <= 0 and seconds <= 0):
        raise ConfigError(f"e1000e perf: need a 6-byte `dst`, 26 <= size <= 1514, "
                          f"1 <= batch <= 64 and a count or duration (got size {size}, "
                          f"batch {batch}, count {count}, seconds {seconds})")
    assert nic.tx is not None
    frame = bytearray(size)
    frame[0:6], frame[6:12] = dst, nic.mac
    out = ffi.new("struct e1k_perf *")
    gap_ns = int(batch * 1e9 / rate) if rate else 0
    check(lib.e1k_gen(api_address(), nic.device.c_address, nic.tx.c, ffi.from_buffer(frame),
                      size, batch, count, int(seconds * 1e9), gap_ns, out), "packet generator")
    return _result(out)


def sink(nic: Nic, *, batch: int = 32, count: int = 0, seconds: float = 0.0,
         idle: float = 0.0) -> PerfResult:
    """Receive and count generator frames from C until `count`, `seconds`, or `idle`
    seconds without a frame after the first one.

    Raises:
        ConfigError: no stop condition, or batch out of range.
        NativeError: the C loop failed.
    """
    if not 1 <= batch <= 64 or (count <= 0 and seconds <= 0 and idle <= 0):
        raise ConfigError(f"e1000e perf: need 1 <= batch <= 64 and a count, duration or "
                          f"idle time (got batch {batch}, count {count}, seconds {seconds})")
    assert nic.rx is not None
    out = ffi.new("struct e1k_perf *")
    check(lib.e1k_sink(api_address(), nic.device.c_address, nic.rx.c, batch, count,
                       int(seconds * 1e9), int(idle * 1e9), out), "packet sink")
    return _result(out)
