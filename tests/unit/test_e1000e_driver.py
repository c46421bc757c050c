"""No-hardware tests of drivers/e1000e: the MTA hash, options, the ABI check, and the C
ring functions on host memory (the receive side never touches the device until release;
the transmit side refuses a bad batch before it writes anything)."""

from __future__ import annotations

import errno
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from udriver.errors import ConfigError
from udriver_vm.net import install_e1000e


@pytest.fixture(scope="module")
def e1k(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    target = install_e1000e(tmp_path_factory.mktemp("e1000e") / "site")
    sys.path.insert(0, str(target))
    try:
        import udriver_e1000e
        from udriver_e1000e import _c, perf
        yield type("E", (), {"pkg": udriver_e1000e, "c": _c, "perf": perf})
    finally:
        sys.path.remove(str(target))
        for name in [m for m in sys.modules if m.startswith("udriver_e1000e")]:
            del sys.modules[name]


def ring(e1k: Any, count: int = 8) -> tuple[Any, Any, Any]:
    ffi = e1k.c.ffi
    desc = ffi.new("uint8_t[]", count * 16)
    bufs = ffi.new("uint8_t[]", count * 2048)
    r = ffi.new("struct e1k_ring *")
    r.desc, r.bufs, r.bufs_iova = ffi.cast("void *", desc), bufs, 0x100000
    r.count, r.buf_size, r.irq_fd = count, 2048, -1
    return r, desc, bufs


@pytest.mark.parametrize(("mac", "mo", "slot"), [
    ("01:00:5e:00:00:01", 0, (0x10 >> 5, 0x10 & 31)),   # bits 47:36 = 0x010
    ("01:00:5e:7f:00:02", 0, (0x20 >> 5, 0x20 & 31)),
    ("33:33:ff:12:34:56", 0, (0x563 >> 5, 0x563 & 31)),  # 0x56 << 4 | 0x34 >> 4
    ("33:33:ff:12:34:56", 3, (0x634 >> 5, 0x634 & 31)),  # MO 11b: bits 43:32
])
def test_mta_slot_is_the_datasheet_hash(e1k: Any, mac: str, mo: int, slot: tuple[int, int]) -> None:
    assert e1k.pkg.mta_slot(bytes.fromhex(mac.replace(":", "")), mo) == slot


@pytest.mark.parametrize(("options", "message"), [
    ({"speed": "1000"}, ("e1000e: unknown option(s) speed (known: irq, rx_ring, tx_ring, itr, "
                        "promisc, allmulti)")),
    ({"rx_ring": "many"}, "e1000e: `rx_ring`, `tx_ring` and `itr` are integers"),
    ({"promisc": "yes"}, "e1000e: `promisc` must be 0 or 1, got 'yes'"),
])
def test_driver_options_are_checked(e1k: Any, options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as ei:
        e1k.pkg.E1000eDriver(options)
    assert str(ei.value).startswith(message)


def test_driver_class_matches_the_82574l_only(e1k: Any) -> None:
    from udriver.modalias import parse_modalias
    drv = e1k.pkg.E1000eDriver
    assert drv.abi == "1.1"
    assert drv.supports(parse_modalias("pci:v00008086d000010D3sv00008086sd00000000bc02sc00i00"))
    assert not drv.supports(parse_modalias("pci:v00008086d0000100Esv00008086sd00000000bc02sc00i00"))


def test_c_refuses_an_abi_table_of_another_major(e1k: Any) -> None:
    ffi = e1k.c.ffi
    table = ffi.new("uint16_t[8]", [2, 0, 64, 0, 0, 0, 0, 0])  # abi_major 2
    assert e1k.c.lib.e1k_check_api(int(ffi.cast("uintptr_t", table))) == -errno.EPROTO


def test_rx_burst_hands_out_done_descriptors_in_order(e1k: Any) -> None:
    ffi, lib = e1k.c.ffi, e1k.c.lib
    r, desc, bufs = ring(e1k)
    d = ffi.cast("uint8_t *", desc)
    for i, length in enumerate((60, 1514)):  # two frames written back: DD | EOP
        d[i * 16 + 8], d[i * 16 + 9] = length & 0xFF, length >> 8
        d[i * 16 + 12] = 0b11
        bufs[i * 2048] = 0xA0 + i
    pkts = ffi.new("struct e1k_pkt[8]")
    assert lib.e1k_rx_burst(0, 0, r, pkts, 8) == 2
    assert [(pkts[i].len, pkts[i].data[0]) for i in range(2)] == [(60, 0xA0), (1514, 0xA1)]
    assert (r.held, r.packets, r.bytes) == (2, 2, 1574)
    assert lib.e1k_rx_burst(0, 0, r, pkts, 8) == -errno.EBUSY  # not released yet


def test_rx_burst_refuses_a_bad_ring(e1k: Any) -> None:
    ffi, lib = e1k.c.ffi, e1k.c.lib
    r, _, _ = ring(e1k)
    r.count = 12  # not a multiple of 8 (RDLEN is in 128-byte units)
    assert lib.e1k_rx_burst(0, 0, r, ffi.new("struct e1k_pkt[1]"), 1) == -errno.EINVAL


@pytest.mark.parametrize("length", [13, 2049])
def test_tx_burst_refuses_a_bad_frame_before_queuing(e1k: Any, length: int) -> None:
    ffi, lib = e1k.c.ffi, e1k.c.lib
    r, _, _ = ring(e1k)
    assert lib.e1k_tx_init(r) == 0
    data = ffi.new("uint8_t[]", 4096)
    pkts = ffi.new("struct e1k_pkt[2]")
    pkts[0].data, pkts[0].len = data, 60
    pkts[1].data, pkts[1].len = data, length
    assert lib.e1k_tx_burst(0, 0, r, pkts, 2) == -errno.EMSGSIZE
    assert (r.next, r.packets) == (0, 0)  # the good first frame was not queued either


def test_generator_refuses_a_run_without_an_end(e1k: Any) -> None:
    ffi, lib = e1k.c.ffi, e1k.c.lib
    r, _, _ = ring(e1k)
    frame = ffi.new("uint8_t[]", 60)
    out = ffi.new("struct e1k_perf *")
    assert lib.e1k_gen(0, 0, r, frame, 60, 32, 0, 0, 0, out) == -errno.EINVAL
    assert lib.e1k_gen(0, 0, r, frame, 20, 32, 10, 0, 0, out) == -errno.EINVAL  # < 26 bytes


def test_perf_tool_bad_mac_is_a_usage_error(e1k: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ei:
        e1k.perf.main(["--device", "0000:00:11.0", "tx", "--dst", "52:54:00"])
    assert ei.value.code == 2
    assert "not an Ethernet address: '52:54:00'" in capsys.readouterr().err
