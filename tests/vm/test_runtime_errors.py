"""Bad input to udriver.runtime on a real kernel: a clear exception, never a crash or hang.

(issue 2, acceptance 6.) A guest script exercises every rejection path against a real
vfio-pci device and prints one JSON line per case; each test below asserts one case.
The script runs under `timeout`, so a hang fails the test instead of stalling the suite,
and its exit status must be 0, so a segfault fails every case.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from udriver_vm.harness import Guest

# The error paths run on every kernel in `make test-kernels`; `make test` runs them on its
# first kernel (--kernel-matrix=core).
pytestmark = [pytest.mark.vm, pytest.mark.kernel_primary]

_RESULTS: dict[str, dict[str, dict[str, Any]]] = {}

_SCRIPT = r'''
import errno, json, os, sys
from udriver.runtime import Device, AccessError
from udriver.errors import DeviceError, NativeError

bdf = sys.argv[1]
sysdev = f"/sys/bus/pci/devices/{bdf}"

def case(name, fn):
    try:
        fn()
        out = {"case": name, "exc": None, "msg": ""}
    except Exception as e:
        out = {"case": name, "exc": type(e).__name__, "msg": str(e),
               "bases": [c.__name__ for c in type(e).__mro__]}
    print(json.dumps(out), flush=True)

def write(path, text):
    with open(path, "w") as f:
        f.write(text)

# Unbound first (the fixture leaves edu unbound): refuse with a hint to bind.
if os.path.exists(sysdev + "/driver"):
    write(sysdev + "/driver/unbind", bdf)
case("missing_bdf", lambda: Device("0000:00:1f.6"))
case("bad_bdf", lambda: Device("00:03"))
case("not_bound", lambda: Device(bdf))

os.system("modprobe vfio-pci")
write(sysdev + "/driver_override", "vfio-pci")
write("/sys/bus/pci/drivers_probe", bdf)

dev = Device(bdf)
bar0 = dev.bar(0)
case("region_index_out_of_range", lambda: dev.bar(6))
case("region_info_index_out_of_range", lambda: dev.region_info(9))
case("bar_not_implemented", lambda: dev.bar(1))
case("past_bar_end", lambda: bar0.read32(bar0.size))
case("straddles_bar_end", lambda: bar0.write64(bar0.size - 4, 0))
case("misaligned", lambda: bar0.read32(2))
case("wrong_size", lambda: bar0.read(0, 3))
case("value_too_wide", lambda: bar0.write32(4, 1 << 32))
case("config_past_end", lambda: dev.config.read(dev.config.size - 2, 4))
case("dma_size_zero", lambda: dev.dma_alloc(0, (1 << 28) - 1))
case("dma_size_one_too_large", lambda: dev.dma_alloc((1 << 28) + 1, (1 << 28) - 1))
case("irq_count_too_large", lambda: dev.interrupts.enable("msi", 2))

# The C layer checks the same things itself (drivers' C code calls it directly).
from udriver._nativecall import ffi, lib
out = ffi.new("uint32_t *")
h = dev.c_handle
native = {
    "misaligned": lib.ud_api_bar_read32(h, 0, 2, out),
    "past_end": lib.ud_api_bar_read32(h, 0, bar0.size, out),
    "bad_bar": lib.ud_api_bar_read32(h, 7, 0, out),
    "huge_offset": lib.ud_api_bar_read32(h, 0, (1 << 64) - 4, out),
    "null_dev": lib.ud_api_bar_read32(ffi.NULL, 0, 0, out),
    "irq_bad_index": lib.ud_api_irq_enable(h, 9, 0, 1, ffi.new("int32_t[]", [0])),
}
print(json.dumps({"case": "native", "returns": native}), flush=True)

# A slice of a DMA buffer's view keeps its memory alive: free() refuses (after unmapping),
# the slice stays usable, and once it is released free() succeeds.
held = dev.dma_alloc(4096, (1 << 28) - 1)
piece = held.view[8:16]
piece[:] = b"udriver!"
case("free_with_live_slice", held.free)
print(json.dumps({"case": "after_refused_free", "piece": bytes(piece).decode(),
                  "mapped": held.mapped}), flush=True)
piece.release()
case("free_after_slice_released", held.free)

buf = dev.dma_alloc(4096, (1 << 28) - 1)
view_ok = bytes(buf.view[:4])
survivor = buf.view[:4]  # still alive when the device closes below
dev.interrupts.enable("msi")
dev.close()
case("use_after_close_bar", lambda: dev.bar(0))
case("use_after_close_region", lambda: bar0.read32(0))
case("use_after_close_dma", lambda: buf.view)
case("use_after_close_irq", lambda: dev.interrupts.enable("msi"))
case("use_after_close_reset", lambda: dev.reset())
case("close_twice", lambda: dev.close())
survivor[:] = b"live"  # the memory a live view reaches was never released: no crash
print(json.dumps({"case": "survivor", "value": bytes(survivor).decode()}), flush=True)
print(json.dumps({"case": "end"}), flush=True)
'''


def _compute(g: Guest) -> dict[str, dict[str, Any]]:
    script = g.workdir / "runtime_errors.py"
    script.write_text(_SCRIPT)
    bdf = g.edu_bdfs()[0]
    r = g.run(f"cd /tmp && timeout 120 python3 {script} {bdf}", timeout=180)
    assert r.rc == 0, f"rc {r.rc} (a crash or hang is a failure)\n{r.stdout}\n{r.stderr}"
    res = {o["case"]: o for o in map(json.loads, r.stdout.splitlines())}
    assert "end" in res
    return res


@pytest.fixture
def results(kernel: str, vm_pool: Any) -> dict[str, dict[str, Any]]:
    """The guest script's results, computed once per kernel (then the guest is reset)."""
    if kernel not in _RESULTS:
        g = vm_pool.get(kernel)
        try:
            _RESULTS[kernel] = _compute(g)
        finally:
            g.reset_devices()
    return _RESULTS[kernel]


CASES = [
    # case, exception class, words of the message
    ("missing_bdf", "DeviceError", "No PCI device at 0000:00:1f.6"),
    ("bad_bdf", "DeviceError", "Invalid PCI address"),
    ("not_bound", "DeviceError", "is not bound to any driver, not to `vfio-pci`"),
    ("region_index_out_of_range", "AccessError", "BAR index must be 0..5, got 6"),
    ("region_info_index_out_of_range", "AccessError", "region index must be 0..8, got 9"),
    ("bar_not_implemented", "AccessError", "BAR1 is not implemented"),
    ("past_bar_end", "AccessError", "4-byte access at 1048576 is outside the BAR (size 0x100000)"),
    ("straddles_bar_end", "AccessError", "outside the BAR"),
    ("misaligned", "AccessError", "4-byte access at 0x2 is misaligned"),
    ("wrong_size", "AccessError", "access width must be 1, 2, 4 or 8 bytes, got 3"),
    ("value_too_wide", "AccessError", "does not fit in 4 bytes"),
    ("config_past_end", "AccessError", "outside config space"),
    ("dma_size_zero", "AccessError", "must be a positive number of bytes, got 0"),
    ("dma_size_one_too_large", "AccessError", "DMA buffer size 0x10000001 is too large"),
    ("irq_count_too_large", "ValueError", "MSI: `count` must be 1..1, got 2"),
    ("free_with_live_slice", "DeviceError", "cannot free a DMA buffer while views of it"),
    ("use_after_close_bar", "DeviceError", "is closed"),
    ("use_after_close_region", "DeviceError", "is closed"),
    ("use_after_close_dma", "DeviceError", "DMA buffer used after it was freed"),
    ("use_after_close_irq", "DeviceError", "is closed"),
    ("use_after_close_reset", "DeviceError", "is closed"),
]


@pytest.mark.parametrize("name,exc,words", CASES, ids=[c[0] for c in CASES])
def test_rejection(results: dict[str, Any], name: str, exc: str, words: str) -> None:
    got = results[name]
    assert got["exc"] == exc, got
    assert words in got["msg"], got
    assert "UdriverError" in got["bases"] or exc == "ValueError", got


def test_close_twice_is_harmless(results: dict[str, Any]) -> None:
    assert results["close_twice"]["exc"] is None


def test_dma_memory_outlives_free_while_a_view_lives(results: dict[str, Any]) -> None:
    """A refused free() unmaps but keeps the memory; the slice still reads what was written;
    once released, free() works; a view alive at close() keeps working (no use-after-free)."""
    assert results["after_refused_free"] == {"case": "after_refused_free",
                                             "piece": "udriver!", "mapped": False}
    assert results["free_after_slice_released"]["exc"] is None
    assert results["survivor"]["value"] == "live"


def test_native_layer_returns_negative_errno(results: dict[str, Any]) -> None:
    r = results["native"]["returns"]
    assert r == {"misaligned": -22, "past_end": -34, "bad_bar": -22, "huge_offset": -34,
                 "null_dev": -22, "irq_bad_index": -22}


# A PCIe-to-PCI bridge puts everything behind it in one IOMMU group (requester-ID
# aliasing); virtio-pci drives the rng next to the edu, so the group is not viable.
_BRIDGE = ["-device", "pcie-pci-bridge,id=br0,bus=pcie.0,addr=0x8",
           "-device", "edu,bus=br0,addr=0x1,id=edu_br",
           "-device", "virtio-rng-pci,bus=br0,addr=0x2"]


def test_non_viable_iommu_group(vm_pool: Any, kernel: str) -> None:
    g = vm_pool.get(kernel, qemu_args=tuple(_BRIDGE))
    try:
        bdf = None
        for cand in g.edu_bdfs():
            n = g.run(f"ls /sys/bus/pci/devices/{cand}/iommu_group/devices | wc -l",
                      timeout=30, check=True).stdout.strip()
            if int(n) > 1:
                bdf = cand
        assert bdf is not None, "no edu shares its IOMMU group"
        g.run(f"modprobe vfio-pci && echo vfio-pci > /sys/bus/pci/devices/{bdf}/driver_override"
              f" && echo {bdf} > /sys/bus/pci/drivers_probe", timeout=60, check=True)
        r = g.run(f"cd /tmp && timeout 60 python3 -c 'from udriver.runtime import Device; "
                  f"Device(\"{bdf}\")'", timeout=90)
        assert r.rc == 1, (r.stdout, r.stderr)
        last = r.stderr.strip().splitlines()[-1]
        assert last.startswith("udriver.errors.DeviceError: IOMMU group "), r.stderr
        assert f"of {bdf} is not viable" in last and "(virtio-pci)" in last, last
    finally:
        g.reset_devices()
