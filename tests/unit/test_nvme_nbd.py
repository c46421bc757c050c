"""The NVMe driver's NBD server (drivers/nvme/udriver_nvme/_nbd.py) against a fake
controller (the driver's own interface), over a real socketpair: one test per request
kind and per refusal. The kernel as the client is in tests/vm/test_nvme_bridge.py."""

from __future__ import annotations

import errno
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from udriver_vm.nvme import install_nvme

BS = 512
BLOCKS = 64


@pytest.fixture(scope="module")
def nbd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    target = install_nvme(tmp_path_factory.mktemp("nvme") / "site")
    sys.path.insert(0, str(target))
    try:
        from udriver_nvme import _nbd, _status
        yield type("M", (), {"nbd": _nbd, "status": _status})
    finally:
        sys.path.remove(str(target))
        for name in [m for m in sys.modules if m.startswith("udriver_nvme")]:
            del sys.modules[name]


class FakeNs:
    nsid, nsze, lba_bytes = 1, BLOCKS, BS


class FakeCtrl:
    """The three calls NbdServer makes, on an in-memory namespace."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.disk = bytearray(BLOCKS * BS)
        self.log: list[str] = []
        self.fail = fail

    def namespace(self, nsid: int | None = None) -> FakeNs:
        return FakeNs()

    def read(self, lba: int, n: int, nsid: int | None = None) -> bytes:
        self.log.append(f"read {lba} {n}")
        if self.fail:
            raise self.fail
        return bytes(self.disk[lba * BS:(lba + n) * BS])

    def write(self, lba: int, data: bytes, nsid: int | None = None) -> None:
        self.log.append(f"write {lba} {len(data) // BS}")
        self.disk[lba * BS:lba * BS + len(data)] = data

    def flush(self, nsid: int | None = None) -> None:
        self.log.append("flush")


def req(cmd: int, handle: int, offset: int, length: int, flags: int = 0) -> bytes:
    return struct.pack(">II8sQI", 0x25609513, cmd | flags, handle.to_bytes(8, "big"),
                       offset, length)


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk, "server closed"
        buf += chunk
    return buf


def reply(s: socket.socket) -> tuple[int, int]:
    magic, err, handle = struct.unpack(">II8s", recv_exact(s, 16))
    assert magic == 0x67446698
    return err, int.from_bytes(handle, "big")


def start(m: Any, ctrl: FakeCtrl) -> tuple[Any, socket.socket, threading.Thread, list[str]]:
    kernel, driver = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    srv = m.nbd.NbdServer(ctrl, driver.detach(), poll=0.05)
    out: list[str] = []
    t = threading.Thread(target=lambda: out.append(srv.serve()), daemon=True)
    t.start()
    return srv, kernel, t, out


def test_write_read_flush_trim_disconnect(nbd: Any) -> None:
    ctrl = FakeCtrl()
    srv, k, t, out = start(nbd, ctrl)
    data = bytes(range(256)) * 4  # two blocks
    k.sendall(req(1, 7, 3 * BS, 2 * BS) + data)
    assert reply(k) == (0, 7)
    k.sendall(req(0, 8, 3 * BS, 2 * BS))
    assert reply(k) == (0, 8) and recv_exact(k, 2 * BS) == data
    k.sendall(req(3, 9, 0, 0))
    assert reply(k) == (0, 9)
    k.sendall(req(4, 10, 0, 8 * BS))
    assert reply(k) == (0, 10)
    k.sendall(req(1, 11, 0, BS, flags=1 << 16) + b"\xaa" * BS)  # FUA: write, then flush
    assert reply(k) == (0, 11)
    k.sendall(req(2, 12, 0, 0))
    t.join(5)
    assert out == ["disconnect requested"]
    assert ctrl.log == ["write 3 2", "read 3 2", "flush", "write 0 1", "flush"]
    assert (srv.served, srv.errors) == (5, 0)
    srv.close()


@pytest.mark.parametrize(("offset", "length"), [(1, BS), (0, BS + 1), ((BLOCKS - 1) * BS, 2 * BS),
                                                (0, 0)])
def test_read_outside_whole_blocks_is_einval(nbd: Any, offset: int, length: int) -> None:
    ctrl = FakeCtrl()
    srv, k, t, _ = start(nbd, ctrl)
    k.sendall(req(0, 1, offset, length))
    assert reply(k) == (errno.EINVAL, 1)
    assert ctrl.log == []
    k.close()
    t.join(5)
    srv.close()


def test_write_past_the_end_is_einval_and_the_stream_stays_in_step(nbd: Any) -> None:
    ctrl = FakeCtrl()
    srv, k, t, _ = start(nbd, ctrl)
    k.sendall(req(1, 1, BLOCKS * BS, BS) + b"x" * BS)  # payload consumed, then refused
    assert reply(k) == (errno.EINVAL, 1)
    k.sendall(req(0, 2, 0, BS))
    assert reply(k) == (0, 2) and len(recv_exact(k, BS)) == BS
    k.close()
    t.join(5)
    srv.close()


def test_unknown_command_is_einval(nbd: Any) -> None:
    srv, k, t, _ = start(nbd, FakeCtrl())
    k.sendall(req(6, 1, 0, BS))  # WRITE_ZEROES was not advertised
    assert reply(k) == (errno.EINVAL, 1)
    k.close()
    t.join(5)
    srv.close()


def test_a_failed_nvme_command_is_eio_and_serving_goes_on(nbd: Any) -> None:
    ctrl = FakeCtrl(fail=nbd.status.NvmeTimeoutError("NVMe Read: no completion"))
    srv, k, t, _ = start(nbd, ctrl)
    k.sendall(req(0, 1, 0, BS))
    assert reply(k) == (errno.EIO, 1)
    k.sendall(req(3, 2, 0, 0))
    assert reply(k) == (0, 2)
    k.close()
    t.join(5)
    assert srv.errors == 1
    srv.close()


def test_bad_magic_ends_the_connection(nbd: Any) -> None:
    kernel, driver = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    srv = nbd.nbd.NbdServer(FakeCtrl(), driver.detach(), poll=0.05)
    kernel.sendall(b"\x00" * 28)
    with pytest.raises(nbd.nbd.NbdProtocolError, match="NBD request magic 0x00000000, "
                                                       "expected 0x25609513"):
        srv.serve()
    srv.close()
    kernel.close()


def test_stop_ends_an_idle_server(nbd: Any) -> None:
    srv, k, t, out = start(nbd, FakeCtrl())
    srv.stop()
    t.join(5)
    assert out == ["stopped"]
    srv.close()
    k.close()
