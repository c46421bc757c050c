"""One .xz stream assembled from independently compressed blocks  (pure).

apt's liblzma decoder reads only the first stream of a .xz file (no LZMA_CONCATENATED),
so the apt view cannot concatenate per-chunk streams the way it concatenates gzip
members. A single stream may hold any number of blocks, each compressed on its own
(The .xz File Format 1.1.0, section 3), so a chunk is compressed as its own stream,
its blocks and index records are lifted out (`split_stream`), and `join_blocks` writes
one stream header, every chunk's blocks in order, one index listing every block, and
the stream footer. Sections cited are of that specification.
"""

from __future__ import annotations

import lzma
import struct
import zlib

__all__ = ["Blocks", "compress_blocks", "join_blocks", "split_stream"]

Blocks = tuple[bytes, list[tuple[int, int]]]
"""(the bytes of one or more whole blocks, their (unpadded size, uncompressed size))."""

_MAGIC = b"\xfd7zXZ\x00"
_FLAGS = b"\x00\x04"  # 2.1.1.2 Stream Flags: check type 0x04 = CRC64
_FOOTER_MAGIC = b"YZ"


def _varint(n: int) -> bytes:
    """1.2 Multibyte Integers: 7 bits per byte, least significant first."""
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, pos
        shift += 7


def compress_blocks(data: bytes, preset: int = 2) -> Blocks:
    """Compress `data` into whole blocks (one stream, split apart)."""
    return split_stream(lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64,
                                      preset=preset))


def split_stream(stream: bytes) -> Blocks:
    """The blocks and index records of a single-stream .xz file.

    Raises:
        ValueError: not a single CRC64 .xz stream.
    """
    if stream[:6] != _MAGIC or stream[6:8] != _FLAGS or stream[-2:] != _FOOTER_MAGIC:
        raise ValueError("not a single CRC64 .xz stream")
    # 2.1.2 Stream Footer: Backward Size = (size of Index / 4) - 1.
    (backward,) = struct.unpack("<I", stream[-8:-4])
    index_size = (backward + 1) * 4
    index_start = len(stream) - 12 - index_size
    index = stream[index_start:len(stream) - 12]
    if index[0] != 0:  # 4.1 Index Indicator
        raise ValueError("bad .xz index indicator")
    count, pos = _read_varint(index, 1)
    records = []
    for _ in range(count):  # 4.3 Records
        unpadded, pos = _read_varint(index, pos)
        size, pos = _read_varint(index, pos)
        records.append((unpadded, size))
    return stream[12:index_start], records


def join_blocks(parts: list[Blocks]) -> bytes:
    """One stream: header, every part's blocks in order, a joint index, footer."""
    header = _MAGIC + _FLAGS + struct.pack("<I", zlib.crc32(_FLAGS))
    records = [r for _, rs in parts for r in rs]
    index = bytearray(b"\x00" + _varint(len(records)))
    for unpadded, size in records:
        index += _varint(unpadded) + _varint(size)
    index += b"\x00" * (-len(index) % 4)  # 4.4 Index Padding
    index += struct.pack("<I", zlib.crc32(index))
    backward = struct.pack("<I", len(index) // 4 - 1)
    footer = struct.pack("<I", zlib.crc32(backward + _FLAGS)) + backward + _FLAGS + _FOOTER_MAGIC
    return header + b"".join(b for b, _ in parts) + bytes(index) + footer
