"""udriver.runtime on the host: sysfs pre-checks, argument checks, Driver, runner refusals.

No VFIO here, so objects that need an open device get a stub whose `c_handle` is NULL:
argument errors must be caught in Python before C is reached, and a call that does
reach C must come back as NativeError(EINVAL), never a crash.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from udriver._nativecall import ffi
from udriver.errors import DeviceError, ManifestError, NativeError
from udriver.modalias import PciId, parse_modalias
from udriver.runtime import AccessError, ConfigSpace, Device, Driver, Region, get_include
from udriver.runtime._irq import IrqType, _kind
from udriver.runtime._sysfs import group_members, normalise_bdf, precheck

BDF = "0000:00:03.0"


def make_sysfs(root: Path, driver: str | None = "vfio-pci", group: str | None = "7",
               others: dict[str, str | None] | None = None) -> Path:
    """A sysfs tree with device BDF (and `others` in the same IOMMU group)."""
    devs = root / "bus" / "pci" / "devices"
    devs.mkdir(parents=True)
    members = {BDF: driver, **(others or {})}
    for bdf, drv in members.items():
        d = root / "devices" / "pci0000:00" / bdf
        d.mkdir(parents=True)
        (devs / bdf).symlink_to(d)
        (d / "modalias").write_text("pci:v00001234d000011E8sv00001AF4sd00001100bc00sc00i00\n")
        if drv:
            drvdir = root / "bus" / "pci" / "drivers" / drv
            drvdir.mkdir(parents=True, exist_ok=True)
            (d / "driver").symlink_to(drvdir)
        if group is not None:
            g = root / "kernel" / "iommu_groups" / group
            (g / "devices").mkdir(parents=True, exist_ok=True)
            (d / "iommu_group").symlink_to(g)
            (g / "devices" / bdf).symlink_to(d)
    return root


class StubDevice:
    """Stands in for Device: an open-looking device whose handle is NULL."""

    bdf = BDF
    is_open = True
    c_handle = ffi.NULL
    _handle = ffi.NULL


# -- addresses and sysfs ------------------------------------------------------------------

def test_normalise_bdf() -> None:
    assert normalise_bdf("00:03.0") == BDF
    assert normalise_bdf("0000:0A:1F.7") == "0000:0a:1f.7"


@pytest.mark.parametrize("bad", ["", "00:03", "0000:00:03.8", "zz:00.0", "0000:00:03.0 "])
def test_normalise_bdf_rejects(bad: str) -> None:
    with pytest.raises(DeviceError, match="Invalid PCI address"):
        normalise_bdf(bad)


def test_precheck_ok_returns_group(tmp_path: Path) -> None:
    assert precheck(BDF, make_sysfs(tmp_path)) == "7"


def test_precheck_missing_device(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match=r"^No PCI device at 0000:00:04.0 \(no "):
        precheck("0000:00:04.0", make_sysfs(tmp_path))


def test_precheck_not_bound_to_vfio(tmp_path: Path) -> None:
    with pytest.raises(DeviceError) as e:
        precheck(BDF, make_sysfs(tmp_path, driver="virtio-pci"))
    assert str(e.value) == f"PCI device {BDF} is bound to `virtio-pci`, not to `vfio-pci`"
    assert e.value.hint == f"run `udriver bind {BDF}` first"


def test_precheck_unbound(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="is not bound to any driver, not to `vfio-pci`"):
        precheck(BDF, make_sysfs(tmp_path, driver=None))


def test_precheck_no_iommu_group(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="has no IOMMU group"):
        precheck(BDF, make_sysfs(tmp_path, group=None))


def test_group_members_lists_drivers(tmp_path: Path) -> None:
    root = make_sysfs(tmp_path, others={"0000:00:04.0": "virtio-pci", "0000:00:05.0": None})
    assert group_members(root, "7") == [(BDF, "vfio-pci"), ("0000:00:04.0", "virtio-pci"),
                                        ("0000:00:05.0", None)]


def test_device_open_runs_prechecks(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="not to `vfio-pci`"):
        Device(BDF, sysfs=make_sysfs(tmp_path, driver="e1000e"))


def test_device_fds_must_come_together() -> None:
    with pytest.raises(DeviceError, match="must be given together"):
        Device(BDF, container_fd=3)


# -- Region / ConfigSpace argument checks ---------------------------------------------------

@pytest.fixture
def bar() -> Region:
    return Region(StubDevice(), 0, 0x1000, 0)  # type: ignore[arg-type]


def test_region_past_end(bar: Region) -> None:
    with pytest.raises(AccessError, match=r"4-byte access at 4096 is outside the BAR \(size 0x1000\)"):
        bar.read32(0x1000)


def test_region_straddling_end(bar: Region) -> None:
    with pytest.raises(AccessError, match="outside the BAR"):
        bar.read64(0xFFC)


def test_region_negative_offset(bar: Region) -> None:
    with pytest.raises(AccessError, match="outside the BAR"):
        bar.read8(-1)


def test_region_misaligned(bar: Region) -> None:
    with pytest.raises(AccessError, match="2-byte access at 0x1 is misaligned"):
        bar.write16(1, 0)


def test_region_wrong_size(bar: Region) -> None:
    with pytest.raises(AccessError, match="access width must be 1, 2, 4 or 8 bytes, got 3"):
        bar.read(0, 3)


def test_region_value_too_wide(bar: Region) -> None:
    with pytest.raises(AccessError, match="does not fit in 1 bytes"):
        bar.write8(0, 256)


def test_access_error_is_a_value_error_and_device_error(bar: Region) -> None:
    with pytest.raises(ValueError):
        bar.read32(3)
    assert issubclass(AccessError, DeviceError)


def test_valid_access_reaches_c_which_rejects_null(bar: Region) -> None:
    with pytest.raises(NativeError) as e:
        bar.read32(0)
    assert e.value.errno == errno.EINVAL
    assert e.value.what == "read BAR0+0x0"


def test_config_space_bounds() -> None:
    cfg = ConfigSpace(StubDevice(), 256)  # type: ignore[arg-type]
    with pytest.raises(AccessError, match="outside config space"):
        cfg.read(254, 4)
    with pytest.raises(NativeError):
        cfg.read16(0)


# -- interrupts ---------------------------------------------------------------------------

def test_irq_kind_names() -> None:
    assert _kind("msi") is IrqType.MSI
    assert _kind("MSI-X") is IrqType.MSIX
    assert _kind(IrqType.INTX) is IrqType.INTX
    with pytest.raises(ValueError, match="unknown interrupt type 'legacy'"):
        _kind("legacy")


# -- Driver --------------------------------------------------------------------------------

class _Edu(Driver):
    ids = ("pci:v00001234d000011E8sv*sd*bc*sc*i*", PciId(0x8086, 0x10D3))


def test_driver_patterns_and_supports() -> None:
    assert [str(p) for p in _Edu.patterns()] == ["pci:v00001234d000011E8sv*sd*bc*sc*i*",
                                                  "pci:v00008086d000010D3sv*sd*bc*sc*i*"]
    assert _Edu.supports(parse_modalias("pci:v00001234d000011E8sv00001AF4sd00001100bc00sc00i00"))
    assert not _Edu.supports(parse_modalias("pci:v00001234d00001111sv0sd0bc03sc00i00"
                                            .replace("sv0sd0", "sv00000000sd00000000")))


def test_driver_bad_ids() -> None:
    class Bad(Driver):
        ids = (0x1234,)  # type: ignore[assignment]

    with pytest.raises(ManifestError, match="expected a modalias string or PciId, got 4660"):
        Bad.patterns()


def test_get_include_has_header() -> None:
    assert (Path(get_include()) / "udriver.h").is_file()


# -- interrupt delivery, with real eventfds standing in for the ones VFIO would signal ----

@pytest.fixture
def irq() -> Iterator[Any]:
    from udriver.runtime import Interrupts

    it = Interrupts(StubDevice())  # type: ignore[arg-type]
    it.kind, it._fds = IrqType.MSI, [os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)]
    yield it
    for fd in it._fds:
        os.close(fd)


def test_wait_counts_and_times_out(irq: Any) -> None:
    assert irq.wait(0.01) == 0
    os.eventfd_write(irq.fileno(), 2)  # two interrupts before anyone waited: none lost
    assert irq.wait(1.0) == 2
    assert irq.pending() == 0


def test_wait_async_and_timeout(irq: Any) -> None:
    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, os.eventfd_write, irq.fileno(), 1)
        got = await irq.wait_async(2.0)
        return got, await irq.wait_async(0.05)

    assert asyncio.run(main()) == (1, 0)


def test_attach_delivers_to_callback(irq: Any) -> None:
    seen: list[tuple[int, int]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        irq.attach(loop, lambda v, n: seen.append((v, n)))
        os.eventfd_write(irq.fileno(), 1)
        await asyncio.sleep(0.05)
        os.eventfd_write(irq.fileno(), 3)
        await asyncio.sleep(0.05)
        irq.detach()
        os.eventfd_write(irq.fileno(), 1)  # after detach: not delivered
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert seen == [(0, 1), (0, 3)]


def test_wait_on_missing_vector(irq: Any) -> None:
    with pytest.raises(DeviceError, match=r"interrupt vector 1 is not enabled \(1 enabled\)"):
        irq.wait(0, vector=1)
