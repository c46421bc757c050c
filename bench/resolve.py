#!/usr/bin/env python3
"""Resolution benchmark: every local device against a 100,000-driver repository.

What it does, in one run:

1. Generates a signed TUF repository (python-tuf Metadata API, one delegated role per
   publisher as in the repository contract) with `--drivers` drivers spread over
   `--vendors` PCI vendors, each vendor with its own `index/<vvvv>.json`, plus a small
   class-wide index. The local devices' vendors are among them, and some of their
   drivers match local devices.
2. Serves it on 127.0.0.1, configures a client, and fills the metadata cache once.
3. Times `udriver.client.annotate()` over the devices of the sysfs snapshots in
   /work/shared/fixtures/sysfs (13 devices), with cached metadata (offline), median of
   `--runs` runs: device discovery + TUF metadata load/verification + index lookup.
4. Times the baseline the way ubuntu-drivers matches: for every device, `fnmatch` the
   modalias against every pattern of every driver (100k patterns).

Prints a table with medians and the ratio. Goals: >= 1000x faster, whole run < 0.5 s.
"""

from __future__ import annotations

import argparse
import fnmatch
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "client"))

from tufrepo import Server, TufRepo

SNAPSHOTS = Path("/work/shared/fixtures/sysfs")


def _devices() -> dict[str, str]:
    from udriver.client import local_devices
    out = {}
    for snap in sorted(p for p in SNAPSHOTS.iterdir() if p.is_dir()):
        for bdf, alias in local_devices(snap).items():
            out[f"{snap.name}/{bdf}"] = str(alias)
    return out


def _generate(repo: TufRepo, n_drivers: int, n_vendors: int,
              local: dict[str, str], seed: int = 1) -> list[str]:
    """Fill `repo`; returns every pattern (for the baseline)."""
    rng = random.Random(seed)
    local_vendors = sorted({int(a[5:13], 16) for a in local.values()})
    vendors = list(local_vendors)
    while len(vendors) < n_vendors:
        v = rng.randrange(0x0001, 0xFFFF)
        if v not in vendors:
            vendors.append(v)
    per = n_drivers // n_vendors
    local_ids = [(int(a[5:13], 16), int(a[14:22], 16)) for a in local.values()]
    patterns: list[str] = []
    for vi, v in enumerate(vendors):
        repo.add_vendor(f"pub{vi:04d}", [v])
        drivers = []
        for i in range(per):
            dev = rng.randrange(0, 0x10000)
            mods = [f"pci:v0000{v:04X}d0000{dev:04X}sv*sd*bc*sc*i*"]
            drivers.append({"package": f"udriver-v{v:04x}-{i}", "driver": f"v{v:04x}d{i}",
                            "version": f"1.{i % 7}.0", "abi": "1.0", "modaliases": mods,
                            "files": {"wheel": f"drivers/{v:04x}/v{v:04x}d{i}-1.0-py3-none-any.whl"}})
            patterns.extend(mods)
        for (lv, ld) in local_ids:  # a driver that matches each local device of this vendor
            if lv == v:
                mods = [f"pci:v0000{v:04X}d0000{ld:04X}sv*sd*bc*sc*i*"]
                drivers[len(patterns) % per] = dict(drivers[len(patterns) % per], modaliases=mods)
                patterns.extend(mods)
        repo.add_index(f"pub{vi:04d}", f"{v:04x}", drivers)
    cls = [{"package": "udriver-nvme", "driver": "nvme", "version": "1.0", "abi": "1.0",
            "modaliases": ["pci:v*d*sv*sd*bc01sc08i02*"],
            "files": {"wheel": "drivers/class/udriver_nvme-1.0-py3-none-any.whl"}}]
    repo.add_vendor("classpub", [], class_grant=True)
    repo.add_index("classpub", "class", cls)
    patterns.extend(["pci:v*d*sv*sd*bc01sc08i02*"])
    repo.publish()
    return patterns


def _baseline(aliases: list[str], patterns: list[str]) -> list[tuple[float, float]]:
    """ubuntu-drivers style: fnmatch every pattern for every device.

    Returns (wall, cpu) seconds per device."""
    out = []
    for alias in aliases:
        a = alias.lower()
        t, c = time.perf_counter(), time.process_time()
        hits = [p for p in patterns if fnmatch.fnmatch(a, p.lower())]
        out.append((time.perf_counter() - t, time.process_time() - c))
        del hits
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drivers", type=int, default=100_000)
    ap.add_argument("--vendors", type=int, default=2_000)
    ap.add_argument("--runs", type=int, default=20, help="timed runs of our resolution")
    ap.add_argument("--baseline-devices", type=int, default=3,
                    help="scan this many devices in the baseline and extrapolate the "
                         "per-device median to all (0: all; each takes ~10 s of CPU)")
    ap.add_argument("--profile", action="store_true", help="cProfile one run of ours")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)

    work = Path(tempfile.mkdtemp(prefix="udriver-bench-"))
    os.environ["UDRIVER_CONFIG_DIR"] = str(work / "etc")
    os.environ["UDRIVER_STATE_DIR"] = str(work / "var")
    from udriver.client import Client, add_repo, annotate, local_devices

    devices = _devices()
    t = time.perf_counter()
    repo = TufRepo(work / "repo", expiry_days=1)
    patterns = _generate(repo, args.drivers, args.vendors, devices)
    gen = time.perf_counter() - t
    size = sum(f.stat().st_size for f in (repo.public / "metadata").iterdir())
    server = Server(repo.public)
    try:
        add_repo("bench", server.url, repo.path / "root.json")
        t = time.perf_counter()
        first = annotate(devices, refresh=True)  # online: fills the cache
        online = time.perf_counter() - t
    finally:
        server.close()  # from here on the network is gone: cached metadata only

    def ours() -> dict[str, object]:
        devs: dict[str, str] = {}
        for snap in sorted(p for p in SNAPSHOTS.iterdir() if p.is_dir()):
            for bdf, alias in local_devices(snap).items():
                devs[f"{snap.name}/{bdf}"] = str(alias)
        return annotate(devs, client=Client(offline=True))

    if args.profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.runcall(ours)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    times, cpu = [], []
    for _ in range(args.runs):
        t, c = time.perf_counter(), time.process_time()
        result = ours()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    assert result == first, "offline resolution differs from online"
    found = sum(1 for v in result.values() if v["available"])  # type: ignore[union-attr]

    aliases = list(devices.values())
    if args.baseline_devices:
        aliases = aliases[:args.baseline_devices]
    base = _baseline(aliases, patterns)
    base_wall = statistics.median(b[0] for b in base)
    base_cpu = statistics.median(b[1] for b in base)
    n = len(devices)
    ours_med, ours_cpu = statistics.median(times), statistics.median(cpu)

    print(f"repository: {args.drivers:,} drivers over {args.vendors:,} vendors, "
          f"{len(patterns):,} patterns; metadata {size / 1e6:.1f} MB; generated in {gen:.1f} s")
    print(f"devices: {len(devices)} (sysfs snapshots), {found} with an available driver; "
          f"first online resolution {online:.2f} s")
    print()
    print(f"{'method':42} {'wall/device':>12} {'wall, all':>10} {'CPU, all':>10}")
    print(f"{'udriver (cached metadata, PatternIndex)':42} {ours_med / n * 1e3:>9.2f} ms "
          f"{ours_med:>8.3f} s {ours_cpu:>8.3f} s")
    print(f"{'baseline: fnmatch every pattern':42} {base_wall * 1e3:>9.0f} ms "
          f"{base_wall * n:>8.1f} s {base_cpu * n:>8.1f} s")
    print(f"(ours: median of {args.runs} runs, each discovering devices, loading and verifying "
          f"cached TUF metadata, and resolving;\n baseline: per-device median over {len(aliases)} "
          f"devices, times {n})")
    ratio = base_wall * n / ours_med
    ratio_cpu = base_cpu * n / ours_cpu
    print(f"\nspeed-up: {ratio:,.0f}x wall, {ratio_cpu:,.0f}x CPU (goal >= 1000x); "
          f"whole resolution {ours_med:.3f} s wall, {ours_cpu:.3f} s CPU (goal < 0.5 s)")
    return 0 if min(ratio, ratio_cpu) >= 1000 and ours_med < 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
