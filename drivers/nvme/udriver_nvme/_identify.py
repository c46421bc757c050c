"""Parse the Identify data structures (pure functions over the 4096 bytes returned).

NVMe 1.4 5.15.2.1 Identify Controller (CNS 01h, Figure 247), 5.15.2.2 Identify Namespace
(CNS 00h, Figure 245, NVM command set), and the Active Namespace ID list (CNS 02h).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ._status import NvmeError

__all__ = ["ControllerId", "NamespaceId", "parse_active_ns_list", "parse_controller",
           "parse_namespace"]

IDENTIFY_BYTES = 4096


def _ascii(raw: bytes) -> str:
    return raw.decode("ascii", errors="replace").rstrip(" \x00")


def _check_size(data: bytes, what: str) -> None:
    if len(data) != IDENTIFY_BYTES:
        raise NvmeError(f"Identify {what}: expected {IDENTIFY_BYTES} bytes, got {len(data)}")


@dataclass(frozen=True)
class ControllerId:
    """The Identify Controller fields the driver uses."""

    vid: int
    """PCI Vendor ID (bytes 1:0)."""
    serial: str
    """Serial Number (bytes 23:4)."""
    model: str
    """Model Number (bytes 63:24)."""
    firmware: str
    """Firmware Revision (bytes 71:64)."""
    mdts: int
    """Maximum Data Transfer Size (byte 77): 2 ^ MDTS units of CAP.MPSMIN; 0 = no limit."""
    cntlid: int
    """Controller ID (bytes 79:78)."""
    version: int
    """VER (bytes 83:80), same layout as the VS register."""
    rtd3e: int
    """RTD3 Entry Latency (bytes 91:88), microseconds: expected shutdown time; 0 = unknown."""
    sqes: int
    """SQES (byte 512): bits 3:0 required, 7:4 maximum SQ entry size, as powers of two."""
    cqes: int
    """CQES (byte 513), as SQES for CQ entries."""
    nn: int
    """Number of Namespaces (bytes 519:516): the largest NSID."""
    oncs: int
    """Optional NVM Command Support (bytes 521:520)."""
    vwc: bool
    """Volatile Write Cache present (byte 525 bit 0): Flush matters."""

    def max_transfer(self, mpsmin: int) -> int | None:
        """Largest transfer in bytes, or None for no limit."""
        return None if self.mdts == 0 else mpsmin << self.mdts


def parse_controller(data: bytes) -> ControllerId:
    """Parse an Identify Controller data structure.

    Raises:
        NvmeError: not 4096 bytes, or entry sizes the driver cannot use (needs 64-byte
            SQEs and 16-byte CQEs).
    """
    _check_size(data, "Controller")
    vid, = struct.unpack_from("<H", data, 0)
    cntlid, version = struct.unpack_from("<HI", data, 78)
    rtd3e, = struct.unpack_from("<I", data, 88)
    sqes, cqes = data[512], data[513]
    nn, oncs = struct.unpack_from("<IH", data, 516)
    ident = ControllerId(vid=vid, serial=_ascii(data[4:24]), model=_ascii(data[24:64]),
                         firmware=_ascii(data[64:72]), mdts=data[77], cntlid=cntlid,
                         version=version, rtd3e=rtd3e, sqes=sqes, cqes=cqes, nn=nn, oncs=oncs,
                         vwc=bool(data[525] & 1))
    # 5.15.2.1 SQES/CQES: the required (minimum) size must not exceed what CC.IOSQES /
    # CC.IOCQES will be set to (6: 64 bytes, 4: 16 bytes), nor the maximum fall below it.
    if not (sqes & 0xF) <= 6 <= sqes >> 4 or not (cqes & 0xF) <= 4 <= cqes >> 4:
        raise NvmeError(f"controller needs SQ/CQ entry sizes other than 64/16 bytes "
                        f"(SQES {sqes:#04x}, CQES {cqes:#04x})")
    return ident


@dataclass(frozen=True)
class NamespaceId:
    """The Identify Namespace fields the driver uses."""

    nsid: int
    nsze: int
    """Namespace Size (bytes 7:0), in logical blocks."""
    ncap: int
    """Namespace Capacity (bytes 15:8)."""
    lba_bytes: int
    """Logical block size of the format in use: 2 ^ LBADS of LBAF[FLBAS bits 3:0]."""
    metadata_bytes: int
    """Metadata size of that format (MS); the driver needs 0."""

    @property
    def size_bytes(self) -> int:
        return self.nsze * self.lba_bytes


def parse_namespace(nsid: int, data: bytes) -> NamespaceId:
    """Parse an Identify Namespace data structure (NVM command set).

    Raises:
        NvmeError: not 4096 bytes, an inactive namespace (all zero), an LBA format index
            past NLBAF, or an LBA size below 512 bytes or with metadata.
    """
    _check_size(data, f"Namespace {nsid}")
    nsze, ncap = struct.unpack_from("<QQ", data, 0)
    if nsze == 0:
        raise NvmeError(f"namespace {nsid} is not active (Identify Namespace is all zero)")
    nlbaf, flbas = data[25], data[26] & 0xF
    if flbas > nlbaf:
        raise NvmeError(f"namespace {nsid}: FLBAS selects LBA format {flbas}, "
                        f"but NLBAF says only 0..{nlbaf} exist")
    ms, lbads = struct.unpack_from("<HB", data, 128 + 4 * flbas)
    if lbads < 9 or lbads > 16 or ms != 0:
        raise NvmeError(f"namespace {nsid}: unsupported LBA format {flbas} "
                        f"(LBADS {lbads}, metadata {ms} bytes)")
    return NamespaceId(nsid=nsid, nsze=nsze, ncap=ncap, lba_bytes=1 << lbads,
                       metadata_bytes=ms)


def parse_active_ns_list(data: bytes) -> list[int]:
    """The NSIDs of an Active Namespace ID list (up to 1024, ascending, zero-terminated).

    Raises:
        NvmeError: not 4096 bytes.
    """
    _check_size(data, "Active Namespace ID list")
    out = []
    for (nsid,) in struct.iter_unpack("<I", data):
        if nsid == 0:
            break
        out.append(nsid)
    return out
