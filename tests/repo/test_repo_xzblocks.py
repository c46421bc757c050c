"""`_xzblocks`: one .xz stream from independently compressed blocks (apt reads only the
first stream of a file, so the apt view joins blocks, not streams)."""

from __future__ import annotations

import lzma
import shutil
import subprocess

import pytest
from udriver_repo._xzblocks import compress_blocks, join_blocks, split_stream


def _parts() -> list[bytes]:
    return [b"", b"a", b"Package: x\n" * 3000, bytes(range(256)) * 40, b"z" * 200_000]


def test_joined_stream_decodes_to_the_concatenation():
    data = _parts()
    joined = join_blocks([compress_blocks(d) for d in data])
    assert lzma.decompress(joined) == b"".join(data)
    # A single stream: its index lists every block of every part (the empty part has none).
    _, records = split_stream(joined)
    assert len(records) == 4 and sum(n for _, n in records) == len(b"".join(data))


def test_no_parts_is_an_empty_stream():
    assert lzma.decompress(join_blocks([])) == b""


def test_split_then_join_reproduces_a_stream_byte_for_byte():
    stream = lzma.compress(b"hello" * 1000, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64)
    assert join_blocks([split_stream(stream)]) == stream


def test_split_refuses_other_checks_and_formats():
    with pytest.raises(ValueError, match="CRC64"):
        split_stream(lzma.compress(b"x", format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32))
    with pytest.raises(ValueError, match="CRC64"):
        split_stream(b"\x1f\x8b not xz")


@pytest.mark.skipif(shutil.which("xz") is None, reason="xz(1) not installed")
def test_xz_tool_accepts_the_joined_stream(tmp_path):
    p = tmp_path / "Packages.xz"
    p.write_bytes(join_blocks([compress_blocks(d) for d in _parts()]))
    r = subprocess.run(["xz", "--test", "--verbose", str(p)], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["xz", "--list", "--robot", str(p)], capture_output=True, text=True,
                       check=True)
    assert any(line.startswith("totals\t1\t4\t") for line in r.stdout.splitlines()), r.stdout
