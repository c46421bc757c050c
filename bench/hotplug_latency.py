#!/usr/bin/env python3
"""Hotplug latency: QMP `device_add` of an edu -> end of the driver's `probe` (issue 5,
acceptance 8), median over N runs, in two cases:

  installed   the driver is already installed: udev -> autobind -> bind -> supervise ->
              privilege drop -> `udriver run` -> probe;
  from-repo   nothing installed: the catch-all rule -> autobind -> TUF refresh + verified
              download + install from `udriver-repo serve` on the guest's loopback -> the rest.

The guest writes the driver's log into the shared work folder (UDRIVER_RUN_DIR is passed to
the udev rules), so the host sees the `{"event": "probed"}` line by polling a file every 5 ms;
the time is host-side, from just before the QMP command to that line.

    python3 bench/hotplug_latency.py [--runs 10] [--kernel 6.1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from udriver_vm.harness import Guest
from udriver_vm.hotplug import (
    GuestRepo,
    build_edu_wheel,
    copy_repo,
    edu_bdfs,
    make_repo,
    prepare_guest,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[1]


def _probed(log: Path) -> bool:
    try:
        text = log.read_text()
    except OSError:
        return False
    return any(line.startswith('{"bdf"') and '"event": "probed"' in line
               for line in text.splitlines())


def one_run(g: Guest, run_dir: Path, n: int, timeout: float) -> float:
    before = set(edu_bdfs(g))
    dev_id = f"edu-b{n}"
    logs = run_dir / "log"
    for old in logs.glob("*.log") if logs.is_dir() else []:
        old.unlink()
    t0 = time.perf_counter()
    reply = g.qmp("device_add", driver="edu", bus="rp1", id=dev_id)
    assert "error" not in reply, reply
    deadline = t0 + timeout
    while True:
        found = [p for p in logs.glob("*.log")] if logs.is_dir() else []
        if any(_probed(p) for p in found):
            dt = time.perf_counter() - t0
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"no probe within {timeout} s; logs: "
                               + " | ".join(p.read_text()[-400:] for p in found))
        time.sleep(0.005)
    assert "error" not in g.qmp("device_del", id=dev_id)
    wait_for(lambda: set(edu_bdfs(g)) == before, 300, f"{dev_id} to leave", step=0.5)
    wait_for(lambda: not any((run_dir / "supervise").glob("*.json")), 300,
             "the supervisor to exit", step=0.5)
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--kernel", default="6.1")
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        repo = make_repo(tmp / "repo", [build_edu_wheel(tmp / "dist")])
        results: dict[str, list[float]] = {}
        with Guest(kernel=args.kernel, devices=[], root_ports=1, udev=True, mem_mb=1024) as g:
            prepare_guest(g)
            shared = copy_repo(repo, g.workdir / "repo")
            gr = GuestRepo(g, shared)
            run_dir = g.workdir / "run"
            env = f"UDRIVER_RUN_DIR={run_dir}"
            gr.configure(shared / "public/keys/root.json")
            for mode in ("from-repo", "installed"):
                times = results.setdefault(mode, [])
                for i in range(args.runs):
                    reset = ("rm -rf /var/lib/udriver/drivers; " if mode == "from-repo"
                             else "")
                    g.run(f"{reset}{env} udriver autobind --update-rules", timeout=600,
                          check=True)
                    g.udev_reload()
                    dt = one_run(g, run_dir, len(times) + (0 if mode == "from-repo" else 1000),
                                 args.timeout)
                    times.append(dt)
                    print(f"{mode:10s} run {i + 1:2d}: {dt:7.3f} s", file=sys.stderr, flush=True)
            gr.stop()
    print(f"\nHotplug latency, device_add -> end of probe (guest: Linux {args.kernel}, TCG)")
    print(f"{'case':12s} {'runs':>4s} {'median s':>9s} {'min s':>7s} {'max s':>7s}")
    for mode, times in results.items():
        print(f"{mode:12s} {len(times):4d} {statistics.median(times):9.3f} "
              f"{min(times):7.3f} {max(times):7.3f}")
    print(json.dumps({m: {"runs": len(t), "median_s": round(statistics.median(t), 3)}
                      for m, t in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
