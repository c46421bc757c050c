#!/usr/bin/env python3
"""Whole-process wall time of `udriver devices`, `status` and `search` vs `lspci -nnk`.

Issue 13, acceptance 6: users run these interactively and from scripts, next to lspci,
so each is timed the way a shell runs it (fork + exec of the installed `udriver` console
script, until exit), on this machine's own PCI devices, against `lspci -nnk` on the same
machine, medians of `--runs` runs, interleaved so load changes hit every command alike.

The client has one repository configured: a signed repository of `--drivers` drivers
(default 100,000) over `--vendors` vendors in the repository core's layout
(bench/repo_synthetic.py via bench/resolve.py), plus one real published driver for each
local device's vendor, served on 127.0.0.1. Its metadata cache is filled once by an
online `udriver search`; then:

- `devices`: every local device with its installed and available driver;
- `status`: installed drivers and device records (needs no repository);
- `search VVVV:DDDD` for a local device: online (a timestamp check over loopback HTTP,
  as a user's run does) and `--offline` (cached metadata only).

One untimed round runs first: the first run after new metadata takes the full TUF path
and records its answers in the client's derived lookup (`udriver.client._lookup`); the
timed runs are the ones a user gets every time after. Two reference rows, not goals,
show what the interpreter alone costs here: `python -I -S -c pass` (no site) and
`python -c pass` (with site: this environment's .pth files and editable finders).

Goal: each at most 5x lspci's median. Prints a table; exit status 1 if a goal is missed.

    python3 bench/cli_wall.py [--drivers 100000] [--vendors 2000] [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 5.0


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _time(cmd: list[str], env: dict[str, str], cpu: list[float] | None = None) -> float:
    """Wall time of one run; its CPU time (user + system) is appended to `cpu`."""
    c, t = _cpu(), time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       check=False, timeout=300)
    wall = time.perf_counter() - t
    if cpu is not None:
        cpu.append(_cpu() - c)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {r.returncode}): "
                         f"{r.stderr.decode(errors='replace')[-2000:]}")
    return wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drivers", type=int, default=100_000)
    ap.add_argument("--vendors", type=int, default=2_000)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args(argv)
    lspci = shutil.which("lspci")
    udriver = shutil.which("udriver") or str(Path(sys.executable).parent / "udriver")
    if lspci is None or not Path(udriver).exists():
        print("needs lspci (pciutils) and the udriver command on PATH", file=sys.stderr)
        return 2

    from resolve import _generate_core  # the 100k-driver repository of bench/resolve.py

    from udriver.client import local_devices
    from udriver_vm.tufrepo import Server

    work = Path(tempfile.mkdtemp(prefix="udriver-cliwall-"))
    env = dict(os.environ, UDRIVER_CONFIG_DIR=str(work / "etc"),
               UDRIVER_STATE_DIR=str(work / "var"), UDRIVER_RUN_DIR=str(work / "run"))
    env.pop("UDRIVER_SYSFS_ROOT", None)
    local = {bdf: str(alias) for bdf, alias in local_devices(Path("/")).items()}
    if not local:
        print("no PCI devices on this machine", file=sys.stderr)
        return 2
    t = time.perf_counter()
    public, root, patterns = _generate_core(work / "repo", args.drivers, args.vendors, local)
    gen = time.perf_counter() - t
    first = next(iter(local.values()))
    query = f"{first[5:13][-4:]}:{first[14:22][-4:]}".lower()
    server = Server(public)
    try:
        subprocess.run([udriver, "repo", "add", "bench", server.url, "--root", str(root)],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        t = time.perf_counter()
        subprocess.run([udriver, "search", query], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fills the metadata cache
        fill = time.perf_counter() - t
        cmds = {"lspci -nnk": [lspci, "-nnk"],
                "udriver devices": [udriver, "devices"],
                "udriver status": [udriver, "status"],
                f"udriver search {query}": [udriver, "search", query],
                f"udriver search --offline {query}": [udriver, "search", "--offline", query]}
        refs = {"(python -I -S -c pass)": [sys.executable, "-I", "-S", "-c", "pass"],
                "(python -c pass)": [sys.executable, "-c", "pass"]}
        for cmd in cmds.values():  # the untimed round (see the module docstring)
            _time(cmd, env)
        cmds.update(refs)
        times: dict[str, list[float]] = {k: [] for k in cmds}
        cpus: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(args.runs):
            for name, cmd in cmds.items():
                times[name].append(_time(cmd, env, cpus[name]))
    finally:
        server.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["lspci -nnk"]
    print(f"repository: {args.drivers:,} drivers over {args.vendors:,} vendors "
          f"({len(patterns):,} patterns), generated in {gen:.1f} s; cache filled by one "
          f"online search in {fill:.2f} s; {len(local)} local PCI devices")
    cbase = max(statistics.median(cpus["lspci -nnk"]), 1e-3)
    print(f"\n{'command':40} {'median':>9} {'min':>9} {'x lspci':>8}  {'goal <= ' + str(GOAL) + 'x':12}"
          f" {'cpu':>7} {'x lspci':>8}")
    ok = True
    for name, m in med.items():
        ratio = m / base
        verdict = "" if not name.startswith("udriver") else ("ok" if ratio <= GOAL
                                                             else "MISSED")
        ok &= verdict != "MISSED"
        cpu = statistics.median(cpus[name])
        print(f"{name:40} {m * 1e3:>6.0f} ms {min(times[name]) * 1e3:>6.0f} ms "
              f"{ratio:>7.1f}x  {verdict:12} {cpu * 1e3:>4.0f} ms {cpu / cbase:>7.1f}x")
    print(f"\n(medians of {args.runs} runs each, whole processes, interleaved; cpu: user + "
          f"system time of the process, less sensitive to a loaded machine than wall time; "
          f"python: {sys.executable})")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
