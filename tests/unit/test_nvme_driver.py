"""No-hardware tests of drivers/nvme: PRP lists, CRC32C tags, status and Identify parsing,
the ABI check, options. The C functions run from the built extension."""

from __future__ import annotations

import ctypes
import errno
import struct
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from udriver.errors import ConfigError, NativeError
from udriver.modalias import parse_modalias
from udriver_vm.nvme import install_nvme


@pytest.fixture(scope="module")
def nv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    target = install_nvme(tmp_path_factory.mktemp("nvme") / "site")
    sys.path.insert(0, str(target))
    try:
        import udriver_nvme
        from udriver_nvme import _c, _identify
        yield type("NV", (), {"pkg": udriver_nvme, "c": _c, "ident": _identify})
    finally:
        sys.path.remove(str(target))
        for name in [m for m in sys.modules if m.startswith("udriver_nvme")]:
            del sys.modules[name]


def prp(nv: Any, iova: int, length: int, list_pages: int = 1) -> tuple[int, int, list[int]]:
    ffi, lib = nv.c.ffi, nv.c.lib
    lst = ffi.new("uint64_t[]", 512 * list_pages)
    p1, p2 = ffi.new("uint64_t *"), ffi.new("uint64_t *")
    rc = lib.nvme_prp_build(iova, length, 4096, lst, 0x900000, list_pages, p1, p2)
    if rc:
        raise OSError(-rc, "prp")
    return int(p1[0]), int(p2[0]), list(lst)


def test_prp_one_page_needs_no_prp2(nv: Any) -> None:
    assert prp(nv, 0x10000, 4096)[:2] == (0x10000, 0)
    assert prp(nv, 0x10200, 512)[:2] == (0x10200, 0)


def test_prp_two_pages_puts_the_second_in_prp2(nv: Any) -> None:
    assert prp(nv, 0x10000, 8192)[:2] == (0x10000, 0x11000)
    # An offset into the first page pushes the end into the next page (NVMe 1.4 4.3).
    assert prp(nv, 0x10800, 4096)[:2] == (0x10800, 0x11000)


def test_prp_three_pages_use_a_list(nv: Any) -> None:
    p1, p2, lst = prp(nv, 0x10000, 3 * 4096)
    assert (p1, p2, lst[:3]) == (0x10000, 0x900000, [0x11000, 0x12000, 0])


def test_prp_list_chains_to_a_second_page(nv: Any) -> None:
    pages = 1 + 512 + 1  # 513 entries: 511 data + chain pointer, then 2 in page two
    p1, p2, lst = prp(nv, 0x100000, pages * 4096, list_pages=2)
    assert p1 == 0x100000
    assert p2 == 0x900000
    assert lst[510] == 0x100000 + 511 * 4096
    assert lst[511] == 0x901000  # the last entry of a full list page points to the next
    assert lst[512:514] == [0x100000 + 512 * 4096, 0x100000 + 513 * 4096]


def test_prp_exactly_one_full_list_page_does_not_chain(nv: Any) -> None:
    _, _, lst = prp(nv, 0x100000, 513 * 4096)
    assert lst[511] == 0x100000 + 512 * 4096


def test_prp_too_long_for_the_list_is_refused(nv: Any) -> None:
    with pytest.raises(OSError) as e:
        prp(nv, 0x100000, 600 * 4096, list_pages=1)
    assert e.value.errno == errno.E2BIG


def test_prp_unaligned_or_empty_is_refused(nv: Any) -> None:
    for iova, length in ((0x10001, 512), (0x10000, 0)):
        with pytest.raises(OSError) as e:
            prp(nv, iova, length)
        assert e.value.errno == errno.EINVAL


def test_crc32c_check_value(nv: Any) -> None:
    # The CRC-32C check value of "123456789" (RFC 3720 B.4 polynomial).
    assert nv.c.lib.nvme_crc32c(0, b"123456789", 9) == 0xE3069283


def test_tag_round_trip_and_corruption(nv: Any) -> None:
    ffi, lib = nv.c.ffi, nv.c.lib
    block = ffi.new("uint8_t[]", 4096)
    lib.nvme_tag_fill(block, 4096, 1234, 99)
    assert lib.nvme_tag_check(block, 4096, 1234) == 0
    assert lib.nvme_tag_check(block, 4096, 1235) == 1  # misdirected write
    block[2000] ^= 1
    assert lib.nvme_tag_check(block, 4096, 1234) == 1  # flipped bit


def test_status_decoding_names_lba_out_of_range(nv: Any) -> None:
    st = nv.pkg.decode_status(0x4080)  # DNR | SCT 0 | SC 80h
    assert (st.sct, st.sc, st.dnr, st.ok) == (0, 0x80, True, False)
    assert str(st) == "SCT 0x0 (Generic Command Status), SC 0x80 (LBA Out of Range), DNR"
    assert nv.pkg.decode_status(0x102).name == "Invalid Queue Size"
    assert nv.pkg.decode_status(0x281).name == "Unrecovered Read Error"
    assert nv.pkg.decode_status(0).ok


def test_status_decoding_rejects_more_than_15_bits(nv: Any) -> None:
    with pytest.raises(ValueError, match="15 bits"):
        nv.pkg.decode_status(1 << 15)


def _ctrl_page(sqes: int = 0x66, cqes: int = 0x44, mdts: int = 7) -> bytes:
    page = bytearray(4096)
    struct.pack_into("<HH", page, 0, 0x1B36, 0x1AF4)
    page[4:24] = b"udrv0001".ljust(20)
    page[24:64] = b"QEMU NVMe Ctrl".ljust(40)
    page[64:72] = b"7.2.22  "
    page[77] = mdts
    struct.pack_into("<HII", page, 78, 0, 0x10400, 0)
    page[512], page[513] = sqes, cqes
    struct.pack_into("<IH", page, 516, 256, 0x1F)
    page[525] = 1
    return bytes(page)


def test_parse_identify_controller(nv: Any) -> None:
    c = nv.ident.parse_controller(_ctrl_page())
    assert (c.vid, c.serial, c.model, c.firmware) == (0x1B36, "udrv0001", "QEMU NVMe Ctrl",
                                                      "7.2.22")
    assert (c.mdts, c.version, c.nn, c.vwc, c.max_transfer(4096)) == (7, 0x10400, 256, True,
                                                                       512 * 1024)


def test_parse_identify_controller_refuses_entry_sizes(nv: Any) -> None:
    with pytest.raises(nv.pkg.NvmeError, match="entry sizes"):
        nv.ident.parse_controller(_ctrl_page(sqes=0x77))


def test_parse_identify_controller_refuses_a_short_page(nv: Any) -> None:
    with pytest.raises(nv.pkg.NvmeError, match="expected 4096 bytes, got 100"):
        nv.ident.parse_controller(b"\0" * 100)


def _ns_page(nsze: int, lbads: int = 12, flbas: int = 1, nlbaf: int = 1, ms: int = 0) -> bytes:
    page = bytearray(4096)
    struct.pack_into("<QQQ", page, 0, nsze, nsze, 0)
    page[25], page[26] = nlbaf, flbas
    struct.pack_into("<HB", page, 128, 0, 9)
    struct.pack_into("<HB", page, 132, ms, lbads)
    return bytes(page)


def test_parse_identify_namespace_uses_the_format_in_use(nv: Any) -> None:
    ns = nv.ident.parse_namespace(1, _ns_page(16384))
    assert (ns.nsze, ns.lba_bytes, ns.size_bytes) == (16384, 4096, 64 * 2**20)


def test_parse_identify_namespace_inactive(nv: Any) -> None:
    with pytest.raises(nv.pkg.NvmeError, match="namespace 3 is not active"):
        nv.ident.parse_namespace(3, bytes(4096))


def test_parse_identify_namespace_bad_format_index(nv: Any) -> None:
    with pytest.raises(nv.pkg.NvmeError, match="FLBAS selects LBA format 2"):
        nv.ident.parse_namespace(1, _ns_page(8, flbas=2, nlbaf=1))


def test_parse_identify_namespace_metadata_refused(nv: Any) -> None:
    with pytest.raises(nv.pkg.NvmeError, match="metadata 8 bytes"):
        nv.ident.parse_namespace(1, _ns_page(8, ms=8))


def test_active_namespace_list(nv: Any) -> None:
    page = struct.pack("<III", 1, 2, 7).ljust(4096, b"\0")
    assert nv.ident.parse_active_ns_list(page) == [1, 2, 7]


def test_accepts_the_runtime_abi_table(nv: Any) -> None:
    nv.c.check_api()


def test_refuses_a_table_of_another_major(nv: Any) -> None:
    fake = (ctypes.c_uint16 * 4)(2, 0, 0xFFFF, 0xFFFF)
    with pytest.raises(NativeError) as e:
        nv.c.check_api(ctypes.addressof(fake))
    assert e.value.errno == errno.EPROTO


def test_driver_is_class_wide(nv: Any) -> None:
    drv = nv.pkg.NvmeDriver
    assert drv.supports(parse_modalias("pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02"))
    assert drv.supports(parse_modalias("pci:v0000144Dd0000A808sv0000144Dsd0000A801bc01sc08i02"))
    # AHCI (01:06:01) and the edu device are not NVMe.
    assert not drv.supports(parse_modalias("pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01"))
    assert not drv.supports(parse_modalias("pci:v00001234d000011E8sv00001AF4sd00001100bc00scFFi00"))


def test_driver_rejects_unknown_options(nv: Any) -> None:
    with pytest.raises(ConfigError, match=r"unknown option\(s\) depth"):
        nv.pkg.NvmeDriver({"depth": "3"})


def test_driver_rejects_a_bad_number(nv: Any) -> None:
    with pytest.raises(ConfigError, match="`io_depth` is an integer"):
        nv.pkg.NvmeDriver({"io_depth": "lots"})


def test_controller_rejects_bad_irq_mode(nv: Any) -> None:
    with pytest.raises(ConfigError, match="`irq` must be msix or poll, got 'intx'"):
        nv.pkg.Controller(object(), irq="intx")  # type: ignore[arg-type]


def test_pyproject_matches_driver_ids(nv: Any) -> None:
    import tomllib

    from udriver_vm.nvme import NVME_PROJECT
    meta = tomllib.loads((NVME_PROJECT / "pyproject.toml").read_text())["tool"]["udriver"]
    assert meta["modaliases"] == list(nv.pkg.NvmeDriver.ids)
    assert meta["abi"] == nv.pkg.NvmeDriver.abi == "1.1"  # the bridge API
    assert meta["bridge"] == "block"
