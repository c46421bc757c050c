#!/usr/bin/env python3
"""Run udriver's benchmarks; each prints its own table (medians, ratios to its baseline).

    python3 bench/run.py              # every benchmark, default sizes (tens of minutes)
    python3 bench/run.py irq build    # only those whose name starts with these words
    python3 bench/run.py --list

| name | issue | compares |
|---|---|---|
| irq | 2 | interrupt round trip in a guest: Python driver vs the same loop in C |
| build | 3 | `udriver build` wall time, pure-Python and --with-c templates |
| repo-scale | 4 | publish latency and client metadata bytes at N = 1k/10k/100k vs flat targets.json |
| repo-http | 4 | metadata GETs per second: repo-server vs nginx on the same tree (wrk) |
| resolve | 5 | resolving every local device against 100k drivers vs an fnmatch scan |
| hotplug | 5 | QMP device_add -> end of the driver's probe, installed vs from the repository |
| nvme | 10 | fio on the kernel's nvme driver vs udriver's direct path (MSI-X, polled), one guest |
| net | 11 | iperf3/ping/pktgen: kernel e1000e on both NICs vs udriver on one (TAP bridge, direct path) |
| cli | 13 | `udriver devices`/`status`/`search` as whole processes vs `lspci -nnk`, 100k drivers cached |
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHES: dict[str, list[str]] = {
    "irq": ["irq_roundtrip.py"],
    "build": ["build_time.py"],
    "repo-scale": ["repo_scale.py", "--debs"],
    "repo-http": ["repo_http.py"],
    "resolve": ["resolve.py"],
    "hotplug": ["hotplug_latency.py"],
    "nvme": ["nvme.py"],
    "net": ["net.py"],
    "cli": ["cli_wall.py"],
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="benchmarks to run (prefixes); default: all")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = p.parse_args(argv)
    if args.list:
        for name, cmd in BENCHES.items():
            print(f"{name:12} bench/{' '.join(cmd)}")
        return 0
    chosen = [n for n in BENCHES if not args.names or any(n.startswith(w) for w in args.names)]
    if not chosen:
        p.error(f"no benchmark matches {args.names}; see --list")
    failed = []
    for name in chosen:
        cmd = [sys.executable, str(HERE / BENCHES[name][0]), *BENCHES[name][1:]]
        print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.monotonic()
        rc = subprocess.run(cmd, check=False).returncode
        print(f"=== {name}: exit {rc} after {time.monotonic() - t0:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
