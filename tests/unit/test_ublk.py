"""The ublk block bridge without a kernel: the parent's struct packing against
linux/ublk_cmd.h and linux/io_uring.h, the choice between ublk and NBD, the follow-up
{"op": "start"} message, and the requests' new fields. The kernel side runs in
tests/vm/test_nvme_bridge.py (6.12: ublk; 6.1: NBD)."""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import pytest

from udriver import _bridgewire as wire
from udriver.errors import BridgeError
from udriver.runtime import Bridge
from udriver.supervise import _ublk as ublk
from udriver.supervise._bridgehost import BlockBackend, BridgeHost, channel
from udriver.supervise._uring import IORING_OP_URING_CMD, pack_sqe

ROOT = Path(__file__).resolve().parents[2]
REQ = wire.BlockRequest(1024, 4096, ("ublk", "nbd"), 32, 128 * 1024)


def test_struct_sizes_are_the_headers() -> None:
    # linux/ublk_cmd.h: ublksrv_ctrl_cmd 32, ublksrv_ctrl_dev_info 64, ublk_params (basic +
    # discard, 8-byte aligned) 64 bytes.
    assert (ublk.CTRL_CMD.size, ublk.DEV_INFO.size, ublk.PARAMS.size) == (32, 64, 64)


def test_control_opcodes_are_the_ioctl_encoding() -> None:
    # _IOWR('u', nr, struct ublksrv_ctrl_cmd) = 0xc020 75 nr
    assert ublk.UBLK_U_CMD_ADD_DEV == 0xC0207504
    assert ublk.UBLK_U_CMD_DEL_DEV == 0xC0207505
    assert ublk.UBLK_U_CMD_START_DEV == 0xC0207506
    assert ublk.UBLK_U_CMD_STOP_DEV == 0xC0207507
    assert ublk.UBLK_U_CMD_SET_PARAMS == 0xC0207508


def test_io_opcodes_in_the_c_server_match_the_encoding() -> None:
    text = (ROOT / "drivers/nvme/native/nvme_ublk.c").read_text()
    fetch = int(re.search(r"UBLK_U_IO_FETCH_REQ (0x[0-9A-Fa-f]+)u", text)[1], 16)  # type: ignore[index]
    commit = int(re.search(r"UBLK_U_IO_COMMIT_AND_FETCH_REQ (0x[0-9A-Fa-f]+)u", text)[1], 16)  # type: ignore[index]
    assert (fetch, commit) == (ublk.ioc(3, 0x20, 16), ublk.ioc(3, 0x21, 16))


def test_ctrl_cmd_fields_at_their_offsets() -> None:
    b = ublk.ctrl_cmd(7, 64, 0x1122334455667788, 4242)
    assert struct.unpack_from("=I", b, 0) == (7,)  # dev_id
    assert struct.unpack_from("=H", b, 4) == (0xFFFF,)  # queue_id: not a queue command
    assert struct.unpack_from("=H", b, 6) == (64,)  # len
    assert struct.unpack_from("=Q", b, 8) == (0x1122334455667788,)  # addr
    assert struct.unpack_from("=Q", b, 16) == (4242,)  # data[0]: START_DEV's pid


def test_dev_info_asks_one_queue_and_the_auto_id() -> None:
    b = ublk.dev_info(32, 128 * 1024)
    nr_hw_queues, depth = struct.unpack_from("=HH", b, 0)
    max_io, dev_id = struct.unpack_from("=II", b, 8)
    flags = struct.unpack_from("=Q", b, 24)[0]
    assert (nr_hw_queues, depth, max_io, dev_id) == (1, 32, 128 * 1024, 0xFFFFFFFF)
    assert flags == ublk.UBLK_F_CMD_IOCTL_ENCODE == 1 << 6


def test_params_basic_geometry() -> None:
    b = ublk.params(1024, 4096, 128 * 1024)
    length, types, attrs = struct.unpack_from("=III", b, 0)
    shifts = struct.unpack_from("=4B", b, 12)
    max_sectors, = struct.unpack_from("=I", b, 16)
    dev_sectors, = struct.unpack_from("=Q", b, 24)
    assert (length, types, attrs) == (64, 1, 1 << 2)  # BASIC, UBLK_ATTR_VOLATILE_CACHE
    assert shifts == (12, 12, 12, 12)
    assert max_sectors == 256  # 128 KiB: one tag's buffer
    assert dev_sectors == 1024 * 4096 // 512
    assert b[40:] == bytes(24)  # no discard parameters: the kernel sends no DISCARD


def test_uring_cmd_sqe_layout() -> None:
    sqe = pack_sqe(5, ublk.UBLK_U_CMD_ADD_DEV, ublk.ctrl_cmd(1), 9)
    assert len(sqe) == 128  # IORING_SETUP_SQE128
    assert sqe[0] == IORING_OP_URING_CMD == 46
    assert struct.unpack_from("=i", sqe, 4) == (5,)  # fd
    assert struct.unpack_from("=I", sqe, 8) == (0xC0207504,)  # cmd_op
    assert struct.unpack_from("=Q", sqe, 32) == (9,)  # user_data
    assert sqe[48:80] == ublk.ctrl_cmd(1)  # sqe->cmd
    with pytest.raises(ValueError, match="at most 80 bytes"):
        pack_sqe(5, 0, bytes(81))


class Fake:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def open(self, bdf: str, request: wire.BlockRequest | wire.NetRequest) -> object:
        self.log.append(self.name)
        return self.name


def _choose(kinds: tuple[str, ...], has_ublk: bool) -> list[str]:
    log: list[str] = []
    be = BlockBackend(Fake("ublk", log), Fake("nbd", log), lambda: has_ublk)  # type: ignore[arg-type]
    be.open("0000:00:04.0", wire.BlockRequest(8, 512, kinds))
    return log


def test_ublk_is_chosen_where_the_kernel_has_it() -> None:
    assert _choose(("ublk", "nbd"), True) == ["ublk"]


def test_nbd_where_the_kernel_has_no_ublk() -> None:
    assert _choose(("ublk", "nbd"), False) == ["nbd"]


def test_a_driver_that_serves_nbd_only_gets_nbd_even_with_ublk() -> None:
    assert _choose(("nbd",), True) == ["nbd"]


def test_ublk_only_on_a_kernel_without_ublk_is_refused() -> None:
    with pytest.raises(BridgeError, match="serves ublk only, and this kernel has no ublk"):
        _choose(("ublk",), False)


def test_backend_without_ublk_control_says_so(tmp_path: Path) -> None:
    with pytest.raises(BridgeError, match="this kernel has no ublk"):
        ublk.UblkBackend(root=tmp_path, load_module=False).open("0000:00:04.0", REQ)


def test_request_refuses_unknown_kinds() -> None:
    with pytest.raises(BridgeError, match="`kinds` must be a list of ublk, nbd"):
        wire.parse_request({"op": "block", "blocks": 8, "block_size": 512,
                            "kinds": ["scsi"]}, "block")


def test_request_refuses_a_buffer_not_in_pages() -> None:
    with pytest.raises(BridgeError, match="`io_bytes` must be a multiple of 4096, got 5000"):
        wire.parse_request({"op": "block", "blocks": 8, "block_size": 512,
                            "kinds": ["ublk"], "io_bytes": 5000}, "block")


def test_request_refuses_a_queue_depth_out_of_range() -> None:
    with pytest.raises(BridgeError, match="`queue_depth` must be an integer from 1 to 4096"):
        wire.parse_request({"op": "block", "blocks": 8, "block_size": 512,
                            "kinds": ["ublk"], "queue_depth": 0}, "block")


class FakeUblk:
    def __init__(self) -> None:
        r, w = os.pipe()
        os.close(r)
        self.fds = [w]
        self.reply: dict[str, object] = {"kind": "ublk", "device": "/dev/ublkb3", "dev_id": 3,
                                         "queue_depth": 32, "io_bytes": 131072}
        self.started: list[int] = []

    def start(self, pid: int) -> None:
        self.started.append(pid)

    def close(self) -> None:
        pass


class FakeUblkBackend:
    def __init__(self) -> None:
        self.dev = FakeUblk()

    def open(self, bdf: str, request: wire.BlockRequest | wire.NetRequest) -> FakeUblk:
        return self.dev


def test_start_message_reaches_the_device_with_the_driver_pid() -> None:
    be = FakeUblkBackend()
    p, c = channel()
    host = BridgeHost("0000:00:04.0", "block", p, {"block": be})  # type: ignore[dict-item]
    host.driver_pid = 4321
    host.start()
    bridge = Bridge(c.detach(), "block", timeout=10)
    disk = bridge.block(blocks=8, block_size=512, kinds=("ublk", "nbd"), queue_depth=32)
    assert (disk.kind, disk.dev_id, disk.queue_depth, disk.io_bytes) == ("ublk", 3, 32, 131072)
    disk.start()
    assert be.dev.started == [4321]
    disk.close()
    bridge.close()
    host.close()


def test_start_before_a_ublk_device_is_refused() -> None:
    p, c = channel()
    host = BridgeHost("0000:00:04.0", "block", p, {"block": FakeUblkBackend()})  # type: ignore[dict-item]
    host.start()
    bridge = Bridge(c.detach(), "block", timeout=10)
    reply = bridge.request({"op": "start"}, "start")
    assert reply == {"ok": False, "error": "nothing to start: ask for a ublk block device first"}
    bridge.close()
    host.close()


def test_start_of_an_nbd_device_is_refused_by_the_driver_side() -> None:
    disk_kind = "nbd"
    from udriver.runtime import BlockBridge
    disk = BlockBridge(disk_kind, -1, "/dev/nbd0", 8, 512)
    with pytest.raises(BridgeError, match="only a ublk device is started"):
        disk.start()
