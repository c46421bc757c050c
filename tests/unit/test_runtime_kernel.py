"""udriver.runtime._kernel without a guest: feature reading over a directory tree, the pure
choices over records (every branch), and the capability-chain parser over built buffers.

The real kernels are covered by tests/vm/test_kernel_features.py."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import pytest

from udriver.errors import UdriverError
from udriver.runtime import (
    KernelFeatureError,
    KernelFeatures,
    choose_block_bridge,
    choose_iommu_type,
    read_features,
)
from udriver.runtime._kernel import _parse_caps

REL = "5.10.0-32-amd64"


def _root(tmp_path: Path, *, nodes: tuple[str, ...] = (), modules: tuple[str, ...] = (),
          builtin: tuple[str, ...] = (), usr: bool = False) -> Path:
    (tmp_path / "proc/sys/kernel").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel/osrelease").write_text(REL + "\n")
    moddir = tmp_path / ("usr/lib/modules" if usr else "lib/modules") / REL
    moddir.mkdir(parents=True)
    (moddir / "modules.dep").write_text("".join(f"{m}:\n" for m in modules))
    (moddir / "modules.builtin").write_text("".join(f"{m}\n" for m in builtin))
    for n in nodes:
        (tmp_path / n).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / n).touch()
    return tmp_path


def _no_vfio(root: Path) -> tuple[bool, set[int]]:
    return False, set()


def test_bridges_ready_module_and_absent(tmp_path: Path) -> None:
    root = _root(tmp_path, nodes=("dev/net/tun",),
                 modules=("kernel/drivers/block/nbd.ko", "kernel/fs/fuse/cuse.ko.xz"))
    f = read_features(root, check_extensions=_no_vfio)
    assert f.release == REL
    assert f.bridges == {"ublk": "absent", "nbd": "module", "tun": "ready", "cuse": "module"}
    assert choose_block_bridge(f) == "nbd"  # the fallback when ublk is missing (5.10, 6.1)


def test_ublk_module_under_usr_lib_modules_is_preferred(tmp_path: Path) -> None:
    root = _root(tmp_path, usr=True, modules=("kernel/drivers/block/ublk_drv.ko.xz",
                                               "kernel/drivers/block/nbd.ko.xz"))
    f = read_features(root, check_extensions=_no_vfio)
    assert f.bridges["ublk"] == "module" and choose_block_bridge(f) == "ublk"


def test_builtin_module_counts_as_offered(tmp_path: Path) -> None:
    root = _root(tmp_path, builtin=("kernel/drivers/block/nbd.ko",))
    assert read_features(root, check_extensions=_no_vfio).bridges["nbd"] == "module"


def test_check_extension_ids_become_names(tmp_path: Path) -> None:
    root = _root(tmp_path, nodes=("dev/iommu",))
    f = read_features(root, check_extensions=lambda r: (True, {1, 3, 9}))
    assert (f.vfio_container, f.iommu_types, f.vfio_extensions, f.iommufd) == (
        True, ("type1", "type1v2"), ("unmap-all",), True)
    assert f.io_uring == "unknown"  # only probed for the running root


def _features(**kw: object) -> KernelFeatures:
    base = KernelFeatures(REL, True, ("type1", "type1v2"), (), False,
                          {"ublk": "absent", "nbd": "absent", "tun": "absent", "cuse": "absent"},
                          "enabled")
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def test_type1v2_preferred() -> None:
    assert choose_iommu_type(_features()) == "type1v2"


def test_type1_fallback() -> None:
    assert choose_iommu_type(_features(iommu_types=("type1",))) == "type1"


def test_no_type1_is_refused_with_what_is_there() -> None:
    with pytest.raises(KernelFeatureError) as e:
        choose_iommu_type(_features(iommu_types=("noiommu",)))
    assert str(e.value) == (
        f"kernel {REL}'s VFIO container offers no type1 IOMMU (VFIO_CHECK_EXTENSION reports "
        "noiommu); load vfio_iommu_type1")
    assert isinstance(e.value, UdriverError)


def test_iommufd_only_kernel_is_refused() -> None:
    with pytest.raises(KernelFeatureError, match=r"offers only IOMMUFD \(/dev/iommu\); udriver "
                       "needs CONFIG_VFIO_CONTAINER"):
        choose_iommu_type(_features(vfio_container=False, iommu_types=(), iommufd=True))


def test_no_vfio_at_all_is_refused() -> None:
    with pytest.raises(KernelFeatureError, match="neither /dev/vfio/vfio nor /dev/iommu"):
        choose_iommu_type(_features(vfio_container=False, iommu_types=()))


def test_no_block_bridge_is_refused_naming_each() -> None:
    with pytest.raises(KernelFeatureError) as e:
        choose_block_bridge(_features())
    assert str(e.value) == (
        f"kernel {REL} offers no block bridge (ublk: absent, nbd: absent); a block driver needs "
        "CONFIG_BLK_DEV_UBLK (/dev/ublk-control) or CONFIG_BLK_DEV_NBD (/dev/nbd0)")


def test_block_bridge_order_is_the_callers() -> None:
    f = _features(bridges={"ublk": "ready", "nbd": "ready"})
    assert choose_block_bridge(f) == "ublk"
    assert choose_block_bridge(f, prefer=("nbd", "ublk")) == "nbd"


def _info(*caps: bytes) -> tuple[bytes, int]:
    """A vfio_iommu_type1_info (24 bytes) followed by `caps` chained by `next`."""
    buf = bytearray(24)
    off = 24
    for i, cap in enumerate(caps):
        nxt = off + len(cap) if i + 1 < len(caps) else 0
        buf += struct.pack("=HHI", cap[0], 1, nxt) + cap[8:]
        off += len(cap)
    return bytes(buf), 24 if caps else 0


def _iova_cap(ranges: list[tuple[int, int]]) -> bytes:
    # id byte (placeholder for the header, 8 bytes in all), nr_iovas, reserved, ranges.
    return bytes([1]) + b"\0" * 7 + struct.pack("=II", len(ranges), 0) + b"".join(
        struct.pack("=QQ", a, b) for a, b in ranges)


def test_iova_ranges_found_after_another_capability() -> None:
    other = bytes([3]) + b"\0" * 7 + struct.pack("=II", 65535, 0)  # DMA_AVAIL
    ranges = [(0, 0xFEDFFFFF), (0xFEF00000, 0xFFFFFFFFFFFFF)]
    buf, off = _info(other, _iova_cap(ranges))
    assert _parse_caps(buf, off) == tuple(ranges)


def test_no_capability_means_no_ranges() -> None:
    buf, off = _info()
    assert _parse_caps(buf, off) is None


def test_truncated_iova_capability_is_treated_as_absent() -> None:
    buf, off = _info(_iova_cap([(0, 0xFFFF), (0x20000, 0x2FFFF)]))
    assert _parse_caps(buf[:-8], off) is None


def test_capability_loop_terminates() -> None:
    loop = bytearray(24) + struct.pack("=HHI", 3, 1, 24) + bytes(8)  # next points at itself
    assert _parse_caps(bytes(loop), 24) is None
