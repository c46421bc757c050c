#!/usr/bin/env python3
"""Benchmark: wall time of `udriver build` (wheel + .deb) for the two templates (issue 3, acc. 7).

    python3 bench/build_time.py [--runs N]

Creates `udriver new bench_py --pci 1af4:1041` and the same `--with-c` in a temporary
directory, runs the `udriver build` command N times for each (each run from a clean
dist/, same SOURCE_DATE_EPOCH), and prints the median, min and max wall time. The goal
is < 5 s for the pure-Python template.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _udriver(*args: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-c",
                    "import sys; from udriver.cli import run; sys.argv[0] = 'udriver'; run()",
                    *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="udriver-bench-") as tmp:
        top = Path(tmp)
        for label, name, extra in (("pure Python", "bench_py", []), ("--with-c", "bench_c", ["--with-c"])):
            _udriver("new", name, "--pci", "1af4:1041", "--dir", str(top), *extra, cwd=top)
            proj = top / name
            times = []
            for _ in range(args.runs):
                shutil.rmtree(proj / "dist", ignore_errors=True)
                t0 = time.perf_counter()
                _udriver("build", str(proj), cwd=top)
                times.append(time.perf_counter() - t0)
            rows.append((label, statistics.median(times), min(times), max(times)))
    print(f"udriver build (wheel + deb), {args.runs} runs each, {os.cpu_count()} CPUs")
    print(f"{'template':<14}{'median s':>10}{'min s':>8}{'max s':>8}")
    for label, med, lo, hi in rows:
        print(f"{label:<14}{med:>10.2f}{lo:>8.2f}{hi:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
