#!/usr/bin/env python3
"""Interrupt round-trip benchmark: Python driver vs. the same loop in C, in one guest run.

    python3 bench/irq_roundtrip.py [--kernel 6.1] [--cycles 10000]

On the host it builds the C loop (irq_roundtrip.c) as a cffi extension against
udriver.runtime.get_include(), boots the QEMU guest (udriver_vm.harness), binds edu to
vfio-pci and runs itself inside with --guest. In the guest, for each variant, one cycle is:
write edu IRQ_RAISE -> MSI eventfd readable -> handler -> read IRQ_STATUS, write IRQ_ACK
(QEMU docs/specs/edu.rst), timed with CLOCK_MONOTONIC.

    c                the C loop, calling the runtime through the struct udriver_api table
    python-asyncio   udriver.runtime: Interrupts.attach() -> loop.add_reader -> callback
    python-blocking  udriver.runtime: Interrupts.wait() (poll) in a plain loop

Under TCG absolute times are meaningless; compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EDU_IRQ_STATUS, EDU_IRQ_RAISE, EDU_IRQ_ACK = 0x24, 0x60, 0x64


def build_c(outdir: Path) -> None:
    """Compile irq_roundtrip.c into the extension module `_irq_roundtrip_c` in `outdir`."""
    import cffi

    from udriver.runtime import get_include

    ffi = cffi.FFI()
    ffi.cdef("int irq_roundtrip(uintptr_t api, uintptr_t dev, int efd, uint32_t n, "
             "uint64_t *samples);")
    ffi.set_source("_irq_roundtrip_c", (HERE / "irq_roundtrip.c").read_text(),
                   include_dirs=[get_include()],
                   extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror",
                                       "-D_POSIX_C_SOURCE=200809L"])
    with tempfile.TemporaryDirectory() as tmp:
        so = ffi.compile(tmpdir=tmp)
        shutil.copy(so, outdir / Path(so).name)


# -- guest side -------------------------------------------------------------------------

def _stats(ns: list[int]) -> dict[str, float]:
    us = sorted(x / 1000 for x in ns)
    return {"median_us": statistics.median(us), "p99_us": us[min(len(us) - 1, int(len(us) * 0.99))],
            "n": len(us)}


def _c_loop(dev: Any, n: int, cext: Path) -> list[int]:
    # The extension build_c compiled into `cext`, loaded from its file (importlib).
    [so] = cext.glob("_irq_roundtrip_c*.so")
    spec = importlib.util.spec_from_file_location("_irq_roundtrip_c", so)
    assert spec is not None and spec.loader is not None
    m: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)

    from udriver.runtime import api_address
    samples = m.ffi.new("uint64_t[]", n)
    dev.interrupts.enable("msi")
    ret = m.lib.irq_roundtrip(api_address(), dev.c_address, dev.interrupts.fileno(0), n, samples)
    if ret != 0:
        raise SystemExit(f"C loop failed: {ret}")
    return list(samples)


def _py_blocking(dev: Any, n: int) -> list[int]:
    bar, irq, out = dev.bar(0), dev.interrupts, []
    irq.enable("msi")
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        bar.write32(EDU_IRQ_RAISE, 1)
        if irq.wait(5.0) != 1:
            raise SystemExit("python-blocking: interrupt lost or duplicated")
        bar.write32(EDU_IRQ_ACK, bar.read32(EDU_IRQ_STATUS))
        out.append(clock() - t0)
    return out


def _py_asyncio(dev: Any, n: int) -> list[int]:
    bar, irq, out = dev.bar(0), dev.interrupts, []
    clock = time.perf_counter_ns

    async def main() -> None:
        loop = asyncio.get_running_loop()
        st: dict[str, Any] = {}

        def on_irq(vector: int, count: int) -> None:
            bar.write32(EDU_IRQ_ACK, bar.read32(EDU_IRQ_STATUS))
            out.append(clock() - st["t0"])
            st["fut"].set_result(count)

        irq.enable("msi")
        irq.attach(loop, on_irq)
        for _ in range(n):
            st["fut"] = loop.create_future()
            st["t0"] = clock()
            bar.write32(EDU_IRQ_RAISE, 1)
            # A bare await: wait_for() would add a Task per cycle to the measured interval;
            # the guest command's timeout catches a lost interrupt instead.
            if await st["fut"] != 1:
                raise SystemExit("python-asyncio: interrupt duplicated")
        irq.detach()

    asyncio.run(main())
    return out


def guest_main(bdf: str, n: int, cext: Path) -> None:
    from udriver.runtime import Device

    with Device(bdf) as dev:
        dev.set_bus_master(True)
        res = {}
        for name, fn in (("c", lambda: _c_loop(dev, n, cext)),
                         ("python-asyncio", lambda: _py_asyncio(dev, n)),
                         ("python-blocking", lambda: _py_blocking(dev, n))):
            res[name] = _stats(fn())
            dev.interrupts.disable()
    print(json.dumps(res))


# -- host side --------------------------------------------------------------------------

def host_main(kernel: str, n: int) -> int:
    from udriver_vm.harness import Guest

    with Guest(kernel=kernel) as g:
        cext = g.workdir / "cext"
        cext.mkdir()
        build_c(cext)
        bdf = g.edu_bdfs()[0]
        g.run(f"modprobe vfio-pci && echo vfio-pci > /sys/bus/pci/devices/{bdf}/driver_override"
              f" && echo {bdf} > /sys/bus/pci/drivers_probe", timeout=60, check=True)
        r = g.run(f"cd /tmp && python3 {HERE / 'irq_roundtrip.py'} --guest {bdf} --cycles {n} "
                  f"--cext {cext}", timeout=60 + n * 0.05, check=True)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        kver = g.kernel_version
    base = res["c"]["median_us"]
    print(f"IRQ round trip (raise -> eventfd -> handler -> ack), edu MSI, {n} cycles, "
          f"guest kernel {kver}, QEMU TCG")
    print(f"{'variant':<18}{'median us':>12}{'p99 us':>12}{'median / C':>12}")
    for name, s in res.items():
        print(f"{name:<18}{s['median_us']:>12.1f}{s['p99_us']:>12.1f}"
              f"{s['median_us'] / base:>12.2f}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", default="6.1", choices=["6.1", "6.12"])
    ap.add_argument("--cycles", type=int, default=10_000)
    ap.add_argument("--guest", metavar="BDF", help=argparse.SUPPRESS)
    ap.add_argument("--cext", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.guest:
        guest_main(args.guest, args.cycles, args.cext)
        return 0
    return host_main(args.kernel, args.cycles)


if __name__ == "__main__":
    sys.exit(main())
