"""What each kernel offers, read by the runtime in the guest, and the fallback it takes (issue 12).

The probe is the one that generates docs/kernels.md (udriver_vm.capabilities), run on every
kernel of the session (`--kernels`). Expected values come from an independent source where one
exists: the kernel's own build config in the cached package (`CONFIG_BLK_DEV_UBLK`...).

Differences found between the four kernels, each asserted below on the kernel that has it:
* ublk is missing from 5.10 and 6.1 (not built), so `choose_block_bridge` falls back to NBD, and
  NBD really loads there; 6.12 and 7.2 get ublk, and ublk really loads.
* `VFIO_UNMAP_ALL` / `VFIO_UPDATE_VADDR` (Linux 5.12) are missing from 5.10, and
  `VFIO_TYPE1_NESTING_IOMMU` is offered by some kernels only (see docs/kernels.md); udriver uses
  none of them.
* The DMA-ownership viability rule (Linux 5.19) differs for 5.10: see
  test_runtime_errors.py::test_non_viable_iommu_group, which runs on every kernel.
Not different on any of the four (so their fallbacks cannot be exercised on a real kernel, only in
tests/unit/test_runtime_kernel.py and, for the request IRQ, test_runtime_request_irq.py):
type1v2 (so never the type1 fallback), the IOVA-range capability, the request IRQ, the VFIO
container; IOMMUFD is absent everywhere. docs/kernels.md lists each fallback with its test.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from udriver_vm import kernels
from udriver_vm.capabilities import probe_guest
from udriver_vm.harness import Guest

pytestmark = pytest.mark.vm

_ANSWERS: dict[str, dict[str, Any]] = {}


def _config(kernel: str) -> dict[str, str]:
    kp = kernels.kernel_paths(kernel)
    root = kp.modules_dir.parents[2]  # <entry>/root[/usr]/lib/modules/<ver>
    for cand in (kp.modules_dir / "config", root / "boot" / f"config-{kp.version}",
                 root.parent / "boot" / f"config-{kp.version}"):
        if cand.is_file():
            return dict(re.findall(r"^(CONFIG_\w+)=(.*)$", cand.read_text(), re.MULTILINE))
    raise AssertionError(f"no kernel config for {kernel} next to {kp.modules_dir}")


@pytest.fixture
def answer(kernel: str, guest: Guest) -> dict[str, Any]:
    """The probe's answer on this kernel (the guest is probed once, then reset)."""
    if kernel not in _ANSWERS:
        _ANSWERS[kernel] = probe_guest(guest)
    return _ANSWERS[kernel]


def test_release_is_the_cached_kernel(kernel: str, answer: dict[str, Any]) -> None:
    assert answer["release"] == kernels.kernel_paths(kernel).version


def test_container_api_with_type1v2(kernel: str, answer: dict[str, Any]) -> None:
    # (Whether vfio was loaded before the probe depends on the tests that ran in this guest.)
    assert answer["vfio_container"] is True
    types = answer["iommu_types"]
    assert types[:2] == ["type1", "type1v2"]
    # VFIO_TYPE1_NESTING_IOMMU comes and goes (docs/kernels.md); udriver never asks for it.
    assert set(types[2:]) <= {"type1-nesting", "noiommu"}
    assert ("noiommu" in types) is (_config(kernel).get("CONFIG_VFIO_NOIOMMU") == "y")
    assert answer["iommu_type"] == "type1v2"
    assert answer["iommufd"] is False


def test_iova_range_capability_excludes_the_msi_window(answer: dict[str, Any]) -> None:
    ranges = answer["iova_ranges"]
    assert ranges, "every kernel since 5.4 reports VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE"
    assert not any(a <= 0xFEE00000 <= b for a, b in ranges)
    assert ranges[0][0] == 0 and answer["pgsizes"] & 0x1000


def test_request_irq_is_offered(answer: dict[str, Any]) -> None:
    assert answer["req_irq"] is True


def test_unmap_all_appears_with_5_12(kernel: str, answer: dict[str, Any]) -> None:
    have = "unmap-all" in answer["vfio_extensions"]
    assert have is (kernel != "5.10"), answer["vfio_extensions"]


def test_block_bridge_follows_the_kernel_config(kernel: str, answer: dict[str, Any]) -> None:
    cfg = _config(kernel)
    ublk = cfg.get("CONFIG_BLK_DEV_UBLK") in ("m", "y")
    assert cfg.get("CONFIG_BLK_DEV_NBD") in ("m", "y")
    assert answer["bridges"]["ublk"] == ("module" if ublk else "absent")
    want = "ublk" if ublk else "nbd"  # the fallback: NBD where ublk is not built
    assert answer["block_bridge"] == want
    assert answer["bridges_after_load"][want] == "ready"  # and it really loads
    if kernel in ("5.10", "6.1"):
        assert want == "nbd"
    if kernel in ("6.12", "7.2"):
        assert want == "ublk"


def test_tun_cuse_io_uring_everywhere(answer: dict[str, Any]) -> None:
    assert {answer["bridges"][b] for b in ("tun", "cuse")} <= {"module", "ready"}
    assert answer["io_uring"] == "enabled"
